"""9. Bookkeeping at scale: what the head's single writer (raygap.study.ledger) spends per finished trial
when a study already holds 100 and when it holds 10,000, against rewriting the whole table per
seed (how results were recorded before the per-seed parts), measured in the same run."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

OBJECTIVES = {"modality_gap": "min", "margin": "max"}


def _trial(i: int) -> tuple[dict, list[dict]]:
    """A theory trial's final metrics and its six records, spread so the front keeps changing."""
    gap, margin = (i * 7919 % 10007) / 10007, (i * 104729 % 10007) / 10007
    final = {"modality_gap": gap, "margin": margin, "delta": 0.1, "wall_seconds": 0.5}
    history = [{"step": s, "time": s, "modality_gap": gap * (6 - s) / 6, "margin": margin, "delta": 0.1} for s in range(6)]
    return final, history


def bookkeeping_cost(trials: int, window: int = 100, echo=print) -> dict:
    """Record `trials` one-seed trials through the ledger, timing each (row, history, front);
    compare the first and last `window`; then time one whole-table rewrite at that size."""
    from raygap.results import TRIALS, ResultsFolder, trial_row
    from raygap.seed_record import SeedRecord
    from raygap.study.ledger import StudyLedger

    seconds = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = ResultsFolder(Path(scratch, "results"))
        ledger = StudyLedger(folder, OBJECTIVES)
        for i in range(trials):
            final, history = _trial(i)
            started = time.perf_counter()
            params = {"temperature.value": 0.01 + i / trials}
            ledger.record_seed(SeedRecord(f"t{i:05d}", 0, params, {"n": 8}, "completed", final, None, history))
            ledger.finish_trial(f"t{i:05d}")
            seconds.append(time.perf_counter() - started)
            if (i + 1) % max(trials // 5, 1) == 0:
                echo(f"    {i + 1} trials recorded")
        started = time.perf_counter()
        ledger.close()
        close_seconds = time.perf_counter() - started
        frame = folder.read(TRIALS)
        started = time.perf_counter()  # the old way: read the whole table, add the row, write it all back
        row = pl.DataFrame([trial_row("one-more", 0, {"temperature.value": 0.5}, {"n": 8}, "completed", _trial(trials)[0])])
        folder.write_parquet("rewrite.parquet", pl.concat([frame, row], how="diagonal_relaxed"))
        rewrite_seconds = time.perf_counter() - started
    first, last = seconds[:window], seconds[-window:]
    return {
        "trials": trials,
        "window": window,
        "first_median_ms": 1000 * statistics.median(first),
        "last_median_ms": 1000 * statistics.median(last),
        "first_mean_ms": 1000 * statistics.fmean(first),
        "last_mean_ms": 1000 * statistics.fmean(last),
        "last_over_first_median": statistics.median(last) / statistics.median(first),
        "last_over_first_mean": statistics.fmean(last) / statistics.fmean(first),
        "close_seconds": close_seconds,
        "whole_table_rewrite_ms": 1000 * rewrite_seconds,
        "front_size": len(ledger.front),
    }
