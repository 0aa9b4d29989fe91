"""8. Early stopping: the same study (same sampled configurations, same seeds) with and without
`search.early_stop: pareto`, one after the other in one run: the compute each spent (wall seconds,
and training steps, which a shared machine's load does not change) and the hypervolume of each
final front."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from raygap.bench.common import BenchSize, study_spec, trial_raw
from raygap.config import StudySpec

OBJECTIVES = {"modality_gap": "min", "mean_r1": "max"}
REFERENCE = (2.0, 0.0)  # the catalogue's worst gap and R@1: the same box for both fronts


def early_stop_study(size: BenchSize, early_stop: dict) -> StudySpec:
    """The FLT space with T from 0.01 (a large gap) to 0.6 (retrieval collapses), sampled at random
    with a fixed seed so both runs train the same configurations in the same order."""
    raw = trial_raw(size, size["early_stop_steps"], 512)
    raw["train"].update(eval_interval=size["early_stop_steps"] // 6)
    raw.update(
        name=f"bench-early-stop-{early_stop['kind']}",
        temperature={"kind": "fixed", "value": {"loguniform": [0.01, 0.6]}},
        search={
            "sampler": "random",
            "seed": 0,
            "trials": size["early_stop_trials"],
            "repeats": 2,
            "objectives": OBJECTIVES,
            "early_stop": early_stop,
        },
    )
    return study_spec(raw)


def early_stop_savings(size: BenchSize, echo) -> dict:
    """Run the study without and with Pareto early stopping; compare compute and hypervolume."""
    steps = size["early_stop_steps"]
    rule = {"kind": "pareto", "grace_steps": steps // 3, "margin": 0.0, "min_finished": 4}
    runs = {}
    for name, early_stop in (("full", {"kind": "none"}), ("early_stop", rule)):
        echo(f"    {name}: {size['early_stop_trials']} trials × 2 seeds, {steps} steps")
        runs[name] = _run(early_stop_study(size, early_stop), echo)
    full, stopped = runs["full"], runs["early_stop"]
    return {
        "rule": rule,
        "trials": size["early_stop_trials"],
        "steps": steps,
        "same_configurations": full["configurations"] == stopped["configurations"],
        "full": {k: v for k, v in full.items() if k != "configurations"},
        "early_stop": {k: v for k, v in stopped.items() if k != "configurations"},
        "compute_saved": 1 - stopped["seed_seconds"] / full["seed_seconds"],
        "steps_saved": 1 - stopped["trained_steps"] / full["trained_steps"],
        "hypervolume_ratio": stopped["hypervolume"] / full["hypervolume"],
    }


def _run(spec: StudySpec, echo) -> dict:
    import polars as pl

    from raygap import pareto, study
    from raygap.results import PARETO, TRIALS, ResultsFolder

    with tempfile.TemporaryDirectory() as scratch:
        folder = ResultsFolder(Path(scratch, "results"))
        started = time.perf_counter()
        study.run_study(spec, folder, echo=lambda line: echo("      " + line), dashboard=False)
        wall = time.perf_counter() - started
        trials, front = folder.read(TRIALS), folder.read(PARETO)
    configurations = sorted(trials["param.temperature.value"].unique().to_list())
    return {
        "configurations": configurations,
        "seed_seconds": float(trials["wall_seconds"].sum()),
        "trained_steps": _trained_steps(trials),
        "study_seconds": wall,
        "pruned_seeds": trials.filter(pl.col("status") == "pruned").height,
        "pruned_trials": trials.filter(pl.col("status") == "pruned")["trial_id"].n_unique(),
        "front_size": front.filter(pl.col("rank") == 1).height,
        "hypervolume": pareto.hypervolume_2d(front, OBJECTIVES, REFERENCE),
    }


def _trained_steps(trials) -> int:
    """Σ training steps of every seed run: a pruned seed's up to its stop, a completed one's all."""
    import polars as pl

    stops = pl.col("stopped_at_step") if "stopped_at_step" in trials.columns else pl.lit(None)
    return int(trials.select(pl.coalesce(stops, "steps")).to_series().sum())
