"""The record of one finished seed: what a trial reports to the study's head (raygap.study.messages
carries it) and what the results keep of it (raygap.results.record_seed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedRecord:
    """One seed's outcome as a trial reports it (raygap.study.messages) and the results keep it:
    its row of trials.parquet and its evaluation points in history.parquet."""

    trial_id: str
    seed: int
    params: dict
    """The searched values, by dotted path."""
    config: dict
    """The seed's whole configuration (JSON)."""
    status: str
    """completed, failed or pruned."""
    final: dict | None = None
    """Final metrics and bookkeeping (wall seconds, CPUs held, …)."""
    error: str | None = None
    history: list[dict] | None = None
    """The evaluation points, in step order."""
