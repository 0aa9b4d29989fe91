"""The CPU parts that run on their own (`raygap bench --only PART`), each saved as its JSON."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from raygap.bench.bookkeeping import bookkeeping_cost
from raygap.bench.common import SIZES, TARGETS, save_results, timed_raw, trial_raw
from raygap.bench.compiled import compile_speedup, top_kernels
from raygap.bench.files_study import files_study_speed
from raygap.bench.losses import accumulation_cost, loss_costs
from raygap.bench.optuna_scale import sampler_cost, storage_cost
from raygap.bench.overhead import seed_overheads
from raygap.bench.stop_savings import early_stop_savings
from raygap.bench.study_scale import study_scale


def saved_part(size_name: str, output: str | Path, part: str, numbers: dict, echo) -> dict:
    """A part's numbers with the size and the date, saved as bench-<size>-<part>.json under `output`."""
    results = {"size": size_name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), **numbers}
    save_results(results, Path(output) / f"bench-{size_name}-{part}.json", echo)
    return results


def run_early_stop_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 8 alone: the study with and without Pareto early stopping, saved as JSON under `output`."""
    size = SIZES[size_name]
    echo(f"raygap bench ({size_name}) 8. early stopping: {size['model']}, batch {size['batch']}, {os.cpu_count()} CPU(s)")
    bench = early_stop_savings(size, echo)
    full, stopped = bench["full"], bench["early_stop"]
    echo(
        f"compute saved (Σ seed seconds): {bench['compute_saved']:.3f} (target ≥ {TARGETS['compute_saved']:g}); "
        f"{stopped['seed_seconds']:.0f} s against {full['seed_seconds']:.0f} s, "
        f"study {stopped['study_seconds']:.0f} s against {full['study_seconds']:.0f} s; "
        f"training steps saved {bench['steps_saved']:.3f} ({stopped['trained_steps']} against {full['trained_steps']})"
    )
    echo(
        f"hypervolume with / without: {bench['hypervolume_ratio']:.3f} (target ≥ {TARGETS['hypervolume_ratio']:g}); "
        f"{stopped['hypervolume']:.4f} against {full['hypervolume']:.4f}; fronts of {stopped['front_size']} and {full['front_size']}"
    )
    echo(
        f"pruned: {stopped['pruned_trials']} of {bench['trials']} trials ({stopped['pruned_seeds']} seed runs); "
        f"same configurations in both: {bench['same_configurations']}"
    )
    return saved_part(size_name, output, "early-stop", {"early_stop": bench}, echo)


def run_bookkeeping_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 9 alone: recording cost per trial early and late in a large study, saved as JSON."""
    trials = SIZES[size_name]["bookkeeping_trials"]
    echo(f"raygap bench ({size_name}) 9. bookkeeping: {trials} trials recorded by the head's writer")
    cost = bookkeeping_cost(trials, echo=echo)
    echo(
        f"per trial, median: {cost['first_median_ms']:.2f} ms over the first {cost['window']}, {cost['last_median_ms']:.2f} ms over "
        f"the last: ratio {cost['last_over_first_median']:.2f} (target ≤ {TARGETS['bookkeeping_ratio']:g}); means "
        f"{cost['first_mean_ms']:.2f} / {cost['last_mean_ms']:.2f} ms (pareto.parquet on its cadence included)"
    )
    echo(
        f"rewriting the whole table at {trials} rows (before the parts): {cost['whole_table_rewrite_ms']:.1f} ms per seed; "
        f"closing the study (final front, compaction): {cost['close_seconds']:.1f} s"
    )
    results: dict = {"bookkeeping": cost, "optuna_storage": [], "optuna_samplers": []}
    for kind in ("sqlite", "journal"):
        results["optuna_storage"].append(storage_cost(kind, trials))
        r = results["optuna_storage"][-1]
        at_1000 = f", at 1,000: {r['at_1000_ms']:.2f} ms" if r["at_1000_ms"] is not None else ""
        echo(f"Optuna ask + tell, {kind}: {r['first_ms']:.2f} ms over the first 100 trials{at_1000}, {r['last_ms']:.2f} ms at {trials:,}")
    for sampler in ("tpe", "nsga2"):
        for held in sorted({min(1000, trials), trials}):
            results["optuna_samplers"].append(sampler_cost(sampler, held))
            echo(f"{sampler} ask on a study of {held:,} trials: {results['optuna_samplers'][-1]['seconds_per_ask']:.3f} s")
    return saved_part(size_name, output, "bookkeeping", results, echo)


def run_study_scale_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 10 alone: a real theory study of `scale_trials` trials, saved as JSON under `output`."""
    trials = SIZES[size_name]["scale_trials"]
    echo(f"raygap bench ({size_name}) 10. study scale: {trials:,} theory trials through Ray Tune, Optuna and the head's writer")
    scale = study_scale(trials, Path(output) / "study-scale", echo)
    echo(
        f"trials/s: {scale['first_trials_per_s']:.1f} over the first {scale['window']:,}, {scale['last_trials_per_s']:.1f} over the last: "
        f"ratio {scale['first_over_last']:.2f} (target ≤ {TARGETS['study_scale_ratio']:g}); "
        f"{scale['trials']:,} trials in {scale['seconds']:.0f} s"
    )
    return saved_part(size_name, output, "study-scale", {"study_scale": scale}, echo)


def run_files_study_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 11 alone: studies on image files and on the same images in memory, saved as JSON."""
    size = SIZES[size_name]
    echo(
        f"raygap bench ({size_name}) 11. a study on image files against the same images in memory: "
        f"{size['files_study_trials']} trials × {size['files_study_steps']} steps, {size['model']}, batch {size['batch']}"
    )
    speed = files_study_speed(size, echo)
    pace = [(r["files"]["samples_per_s"], r["memory"]["samples_per_s"]) for r in speed["rounds"]]
    echo(
        f"files / memory: {speed['files_over_memory']:.3f} (target ≥ {TARGETS['files_over_memory']:g}; median of {len(pace)} round(s), "
        f"min {speed['files_over_memory_min']:.3f}, max {speed['files_over_memory_max']:.3f}); samples/s per round (files, memory): "
        + ", ".join(f"{f:.0f}/{m:.0f}" for f, m in pace)
    )
    every = speed["every_epoch"]
    echo(
        f"decoded every epoch (decoded_cache: off) / memory: {speed['every_epoch_over_memory']:.3f}; {every['samples_per_s']:.0f} samples/s"
    )
    return saved_part(size_name, output, "files-study", {"files_study": speed}, echo)


def run_compile_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 12 alone: the bench's trial eager and compiled, paired rounds, and both profiles, saved as JSON."""
    size = SIZES[size_name]
    echo(
        f"raygap bench ({size_name}) 12. compiled loop: {size['model']}, batch {size['batch']}, {size['steps']} steps after as many, "
        f"{size['compile_rounds']} rounds, torch {torch.__version__}"
    )
    raw = timed_raw(trial_raw(size, size["steps"], 256), size["steps"])
    speed = compile_speedup(raw, size["compile_rounds"], echo)
    later = speed["same_process_compile_s"]
    cached = f"{later:.1f} s for a later trial in the same process" if later is not None else "no later trial"
    echo(
        f"compiled / eager: {speed['speedup']:.3f} (min {speed['speedup_min']:.3f}, max {speed['speedup_max']:.3f}); "
        f"{speed['compiled_samples_per_s']:.0f} vs {speed['eager_samples_per_s']:.0f} samples/s; "
        f"compile {speed['cold_compile_s']:.1f} s cold, {cached}; "
        f"repaid after {speed['repaid_after_steps_cold'] or float('inf'):.0f} steps cold"
    )
    speed["top_operators"] = {mode: top_kernels(raw, mode == "compiled") for mode in ("eager", "compiled")}
    for mode, ops in speed["top_operators"].items():
        echo(f"top operators, {mode}: " + ", ".join(f"{op['name']} {op['share']:.0%}" for op in ops[:5]))
    return saved_part(size_name, output, "compile", {"torch": torch.__version__, "compile": speed}, echo)


def run_losses_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 13 alone: each loss kind's seconds per step against CLIP's, and accumulation's time and memory."""
    size = SIZES[size_name]
    echo(
        f"raygap bench ({size_name}) 13. losses: {size['model']}, batch {size['loss_batch']}, {size['loss_rounds']} round(s); "
        f"accumulation: {size['accum_model']}, batch {size['accum_batch']} whole and as {size['accumulate']} micro-batches"
    )
    costs = loss_costs(size, echo)
    echo("seconds per step / clip's: " + ", ".join(f"{k} {r:.3f}" for k, r in costs["over_clip"].items()))
    accumulation = accumulation_cost(size, echo)
    echo(
        f"accumulate {accumulation['accumulate']} / whole batch: time per sample {accumulation['time_ratio']:.3f}, "
        f"peak memory added by the steps {accumulation['memory_ratio']:.3f}"
    )
    return saved_part(size_name, output, "losses", {"losses": costs, "accumulation": accumulation}, echo)


def run_worker_groups_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 14 alone: 3-seed two-worker trials with a worker group per seed and per trial, saved as JSON."""
    size = SIZES[size_name]
    steps = size["group_steps"]
    echo(f"raygap bench ({size_name}) 14. worker groups: {size['group_trials']} two-worker trial(s) × 3 seeds × {steps} steps")
    bench = seed_overheads(size, 3, steps, echo)
    before, after = bench["per_seed"], bench["per_trial"]
    echo(
        f"per-seed overhead (worker groups and reports): {after['median_per_seed_ray_overhead_s']:.2f} s with a group per trial "
        f"against {before['median_per_seed_ray_overhead_s']:.2f} s with a group per seed: ratio {bench['ray_overhead_ratio']:.3f} "
        f"(target ≤ {TARGETS['seed_overhead_ratio']:.3f}); counting data/model set-up and evaluations "
        f"{after['median_per_seed_overhead_s']:.2f} against {before['median_per_seed_overhead_s']:.2f} s "
        f"({bench['total_overhead_ratio']:.3f})"
    )
    return saved_part(size_name, output, "worker-groups", {"worker_groups": bench}, echo)


CPU_PARTS = {
    "early-stop": run_early_stop_bench,
    "bookkeeping": run_bookkeeping_bench,
    "study-scale": run_study_scale_bench,
    "files-study": run_files_study_bench,
    "compile": run_compile_bench,
    "losses": run_losses_bench,
    "worker-groups": run_worker_groups_bench,
}
