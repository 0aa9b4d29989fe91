"""The kind of a seed run, chosen here: the theory simulator for a `theory:` section, CLIP
training otherwise; whoever runs it (`raygap train`, a study's trial, the bench). Ray-free."""

from __future__ import annotations

from typing import Any, Callable

from raygap.config import TrialConfig


def train_or_simulate(cfg: TrialConfig, report: Callable[[dict], None], **train_options: Any) -> dict:
    """Run `cfg`, calling `report(row)` at every evaluation point; return the final metrics.
    `train_options` (device, progress, checkpoint, resume_from, rank, world_size) apply to CLIP
    training; a theory simulation runs on one CPU and takes none."""
    if cfg.theory is not None:
        from raygap.theory.simulation import run_theory

        return run_theory(cfg, report)
    from raygap.clip.train import train

    return train(cfg, report, **train_options)
