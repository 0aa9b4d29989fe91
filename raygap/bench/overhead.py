"""2, 3 and 6 through Ray: per-trial overhead, study efficiency and peak memory of a real study
(Ray Tune + Optuna) of short trials, read back from the stamps each trial row carries."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from raygap.bench.common import BenchSize, TrialSize, study_spec, trial_raw
from raygap.bench.memory import PeakMemory
from raygap.config import StudySpec


def bench_study(
    size: TrialSize, trials: int, steps: int, workers: int, worker_group: str, repeats: int = 1, group_per: str = "trial"
) -> StudySpec:
    """A study of `trials` bench trials of `repeats` seeds, each drawing its fixed temperature at random."""
    raw = trial_raw(size, steps, 256)
    raw.update(
        name=f"bench-{workers}w-{worker_group}",
        temperature={"kind": "fixed", "value": {"loguniform": [0.02, 0.2]}},
        search={"sampler": "random", "trials": trials, "repeats": repeats, "objectives": {"modality_gap": "min", "mean_r1": "max"}},
        resources={"workers_per_trial": workers, "worker_group": worker_group, "worker_group_per": group_per},
    )
    return study_spec(raw)


def _run(spec: StudySpec, echo):
    """Run `spec` in a scratch folder: its completed rows, start and end times, peak memory."""
    import polars as pl

    from raygap import study
    from raygap.results import TRIALS, ResultsFolder

    with tempfile.TemporaryDirectory() as scratch:
        folder = ResultsFolder(Path(scratch, "results"))
        started = time.time()
        with PeakMemory() as memory:
            study.run_study(spec, folder, echo=lambda line: echo("    " + line), dashboard=False)
        ended = time.time()
        return folder.read(TRIALS).filter(pl.col("status") == "completed"), started, ended, memory.peak


def seed_overheads(size: BenchSize, seeds: int, steps: int, echo) -> dict:
    """Two-worker trials of `seeds` seeds, a worker group per seed (before) and one per trial
    (after), each a real study: the seconds per seed that are not training steps."""
    out: dict = {"seeds": seeds, "workers_per_trial": 2, "steps": steps}
    for group_per in ("seed", "trial"):
        echo(f"    a worker group per {group_per}")
        rows, _, _, _ = _run(bench_study(size, size["group_trials"], steps, 2, "auto", seeds, group_per), echo)
        out[f"per_{group_per}"] = per_seed_overhead(rows)
    for kind in ("ray", "total"):
        key = "median_per_seed_ray_overhead_s" if kind == "ray" else "median_per_seed_overhead_s"
        out[f"{kind}_overhead_ratio"] = out["per_trial"][key] / out["per_seed"][key]
    return out


def per_seed_overhead(rows) -> dict:
    """Per trial, the seconds per seed outside the seeds' own work: (its last seed's result on the
    head − the trial's start − Σ its seeds' time in train()) / its seeds (`ray`: worker groups,
    reports), and the same outside their training steps (`total`: also raygap's data and model
    set-up and evaluations); the medians over trials."""
    import polars as pl

    wall = pl.col("recorded_at").max() - pl.col("trial_started_at").min()
    trials = rows.group_by("trial_id").agg(
        ((wall - (pl.col("finished_at") - pl.col("started_at")).sum()) / pl.len()).alias("ray"),
        ((wall - (pl.col("last_step_at") - pl.col("first_step_at")).sum()) / pl.len()).alias("total"),
        pl.len().alias("seeds"),
    )
    return {
        "trials": trials.height,
        "seed_runs": int(trials["seeds"].sum()),
        "median_per_seed_ray_overhead_s": float(trials["ray"].median()),
        "median_per_seed_overhead_s": float(trials["total"].median()),
    }


def study_overheads(size: TrialSize, trials: int, steps: int, workers: int, echo, worker_group: str = "auto") -> dict:
    """Run a real study of `trials` short trials and read the stamps back."""
    from raygap.study.cluster import plan_for_this_machine

    spec = bench_study(size, trials, steps, workers, worker_group)
    rows, started, ended, peak = _run(spec, echo)
    concurrency = min(trials, plan_for_this_machine(spec.defaults()).max_concurrent)
    return {
        "trials": rows.height,
        "workers_per_trial": workers,
        "worker_group": worker_group,
        **stamps_summary(rows, started, ended, concurrency),
        "peak_rss_gb": peak / 2**30,
        "peak_trial_rss_gb": float(rows["peak_rss_mb"].max()) / 1024 if "peak_rss_mb" in rows.columns else None,
    }


def stamps_summary(rows, started: float, ended: float, concurrency: int) -> dict:
    """Medians of each trial's stamps (trial start → train() entry → first step → last step →
    end of train() → result on the head) and the share of the workers' wall time spent stepping."""
    first_start, last_result = rows["trial_started_at"].min(), rows["recorded_at"].max()
    stepping = (rows["last_step_at"] - rows["first_step_at"]).sum()
    return {
        "median_start_overhead_s": float((rows["first_step_at"] - rows["trial_started_at"]).median()),
        "median_ray_start_s": float((rows["started_at"] - rows["trial_started_at"]).median()),
        "median_end_overhead_s": float((rows["recorded_at"] - rows["last_step_at"]).median()),
        "median_ray_end_s": float((rows["recorded_at"] - rows["finished_at"]).median()),
        "median_train_seconds": float((rows["last_step_at"] - rows["first_step_at"]).median()),
        "cluster_start_s": float(first_start - started),
        "study_wall_s": float(ended - started),
        "study_efficiency": float(stepping / (concurrency * (last_result - first_start))),
        "study_efficiency_with_cluster_start": float(stepping / (concurrency * (ended - started))),
    }
