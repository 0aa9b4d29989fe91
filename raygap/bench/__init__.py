"""`raygap bench`: what a study costs on this machine, against the targets raygap holds itself to.

Every measurement is a ratio or a time taken in the same run (machines are shared and noisy), one
module each:
1. loop efficiency    (loop)           raygap's trial loop against a plain open_clip loop written here
2. per-trial overhead (overhead)       Tune trial start → first step, last step → result on the head
3. study efficiency   (overhead)       fraction of the workers' wall time spent in training steps
4. input pipeline     (input_pipeline, decoded_cache)  samples/s the loader delivers against what
                                       the model consumes; for image files, an epoch from the
                                       one-time decoded copy against decoding every JPEG
5. evaluation cost    (evaluation)     a full evaluation (recalls, gap, uniformity, linear probe) against an epoch
6. memory             (memory)         peak resident memory of the study's processes, and per trial
7. live tracking      (live)           one evaluation point sent to Tune and its loggers, against
                                       the evaluation that measured it
8. early stopping     (early_stop)     compute and final-front hypervolume of one study with and
                                       without search.early_stop (`--only early-stop`; not in the
                                       default run: two studies of 32 seeds)
9. bookkeeping        (bookkeeping)    the head's cost of recording a trial at 100 and at 10,000
                                       recorded (`--only bookkeeping`)
10. study scale       (study_scale)    trials/s over the first and last 1,000 of a real 10,000-trial
                                       theory study through the engine (`--only study-scale`)
11. files study       (files_study)    a study on image files (PNG digits) against the same study on
                                       the same images in memory (`--only files-study`)
On a GPU (gpu): throughput and MFU per model, batch and pipeline (throughput), and trials sharing
the card (sharing). `common` holds the bench's trial config, the stopwatch and the JSON output.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from raygap.bench.bookkeeping import bookkeeping_cost
from raygap.bench.common import save_results, to_config, trial_raw
from raygap.bench.decoded_cache import decoded_cache_speedup
from raygap.bench.early_stop import early_stop_savings
from raygap.bench.evaluation import evaluation_cost
from raygap.bench.files_study import files_study_speed
from raygap.bench.gpu import GPU_PARTS, check_gpu_bench, run_gpu_bench
from raygap.bench.input_pipeline import input_pipeline
from raygap.bench.live import live_tracking_cost
from raygap.bench.loop import loop_efficiency
from raygap.bench.optuna_scale import sampler_cost, storage_cost
from raygap.bench.overhead import study_overheads
from raygap.bench.study_scale import study_scale

__all__ = [
    "CPU_PARTS",
    "GPU_PARTS",
    "SIZES",
    "TARGETS",
    "check_gpu_bench",
    "run_bench",
    "run_bookkeeping_bench",
    "run_early_stop_bench",
    "run_files_study_bench",
    "run_gpu_bench",
    "run_study_scale_bench",
]

CPU_PARTS = ("early-stop", "bookkeeping", "study-scale", "files-study")  # parts of a CPU size that run on their own (`--only`)

# size → model, batch, loop steps, eval pairs, study trials, study steps, worker-group trials, JPEGs and their batch
SIZES = {
    "ci": {
        "model": "tiny-vit",
        "batch": 32,
        "steps": 6,
        "eval_pairs": 256,
        "trials": 2,
        "study_steps": 4,
        "group_trials": 0,
        "photos": 32,
        "photo_batch": 16,
        "live_points": 20,
        "early_stop_trials": 4,
        "early_stop_steps": 6,
        "bookkeeping_trials": 300,
        "scale_trials": 200,
        "loop_rounds": 2,
        "files_study_trials": 2,
        "files_study_steps": 4,
        "files_study_rounds": 1,
    },
    "full": {
        "model": "tiny-vit",
        "batch": 128,
        "steps": 60,
        "eval_pairs": 5000,
        "trials": 6,
        "study_steps": 400,
        "group_trials": 2,
        "photos": 1024,
        "photo_batch": 64,
        "live_points": 200,
        "early_stop_trials": 16,
        "early_stop_steps": 120,
        "bookkeeping_trials": 10000,
        "scale_trials": 10000,
        "loop_rounds": 5,
        "files_study_trials": 4,
        "files_study_steps": 100,
        "files_study_rounds": 2,
    },
}
TARGETS = {
    "loop_efficiency": 0.95,
    "overhead_s": 5.0,
    "study_efficiency": 0.85,
    "compute_saved": 0.30,
    "hypervolume_ratio": 0.98,
    "bookkeeping_ratio": 1.5,
    "study_scale_ratio": 1.5,
    "files_over_memory": 0.9,
}


def run_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Every CPU-size measurement, printed as a table against TARGETS and saved as JSON under `output`."""
    size = SIZES[size_name]
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    echo(f"raygap bench ({size_name}): {size['model']}, batch {size['batch']}, {os.cpu_count()} CPU(s), torch {torch.__version__}")
    results: dict = {"size": size_name, "machine": f"{platform.node()} · {os.cpu_count()} CPU · {platform.processor() or platform.machine()}",
                     "device": "cpu", "date": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    echo("1. loop efficiency")
    results["loop"] = loop_efficiency(size, echo)
    consumed = results["loop"]["raygap_samples_per_s"]
    echo("4. input pipeline")
    results["input"] = input_pipeline(to_config(trial_raw(size, 1, 256)), consumed)
    echo("4b. image files: JPEG decoding every epoch against the decoded copy (224 px)")
    results["decoded_cache"] = decoded_cache_speedup(size["photos"], size["photo_batch"], torch.device("cpu"), echo)
    echo("5. evaluation cost")
    cfg = to_config(trial_raw(size, 1, size["eval_pairs"]))
    results["evaluation"] = evaluation_cost(cfg, consumed, cfg.data.train.size)
    echo("7. live tracking: an evaluation point as a Tune result")
    results["live"] = live_tracking_cost(cfg, size["live_points"])
    echo(f"2/3/6. a study of {size['trials']} one-worker trials × {size['study_steps']} steps")
    results["study"] = study_overheads(size, size["trials"], size["study_steps"], 1, echo)
    if size["group_trials"]:
        # The same one-worker trials through a Ray Train worker group: how every trial ran before
        # one-worker trials moved into the Tune trial process (the baseline for 2 and 3).
        echo(f"2b. baseline: {size['group_trials']} one-worker trials × {size['study_steps']} steps, each in a Ray Train worker group")
        results["study_worker_group"] = study_overheads(size, size["group_trials"], size["study_steps"], 1, echo, worker_group="always")
        echo(f"2c. {size['group_trials']} two-worker trials × 20 steps (a worker group is needed)")
        results["study_two_workers"] = study_overheads(size, size["group_trials"], 20, 2, echo)
    echo(format_table(results))
    save_results(results, Path(output) / f"bench-{size_name}-{results['device']}.json", echo)
    return results


def run_early_stop_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 8 alone: the study with and without Pareto early stopping, saved as JSON under `output`."""
    size = SIZES[size_name]
    echo(f"raygap bench ({size_name}) 8. early stopping: {size['model']}, batch {size['batch']}, {os.cpu_count()} CPU(s)")
    results = {"size": size_name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "early_stop": early_stop_savings(size, echo)}
    bench = results["early_stop"]
    full, stopped = bench["full"], bench["early_stop"]
    echo(
        f"compute saved (Σ seed seconds): {bench['compute_saved']:.3f} (target ≥ {TARGETS['compute_saved']:g}); "
        f"{stopped['seed_seconds']:.0f} s against {full['seed_seconds']:.0f} s, study {stopped['study_seconds']:.0f} s against {full['study_seconds']:.0f} s"
    )
    echo(
        f"hypervolume with / without: {bench['hypervolume_ratio']:.3f} (target ≥ {TARGETS['hypervolume_ratio']:g}); "
        f"{stopped['hypervolume']:.4f} against {full['hypervolume']:.4f}; fronts of {stopped['front_size']} and {full['front_size']}"
    )
    echo(f"pruned: {stopped['pruned_trials']} of {bench['trials']} trials ({stopped['pruned_seeds']} seed runs); "
         f"same configurations in both: {bench['same_configurations']}")  # fmt: skip
    save_results(results, Path(output) / f"bench-{size_name}-early-stop.json", echo)
    return results


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
    echo(f"rewriting the whole table at {trials} rows (before the parts): {cost['whole_table_rewrite_ms']:.1f} ms per seed; "
         f"closing the study (final front, compaction): {cost['close_seconds']:.1f} s")  # fmt: skip
    results = {
        "size": size_name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "bookkeeping": cost,
        "optuna_storage": [],
        "optuna_samplers": [],
    }
    for kind in ("sqlite", "journal"):
        results["optuna_storage"].append(storage_cost(kind, trials))
        r = results["optuna_storage"][-1]
        at_1000 = f", at 1,000: {r['at_1000_ms']:.2f} ms" if r["at_1000_ms"] is not None else ""
        echo(f"Optuna ask + tell, {kind}: {r['first_ms']:.2f} ms over the first 100 trials{at_1000}, {r['last_ms']:.2f} ms at {trials:,}")
    for sampler in ("tpe", "nsga2"):
        for held in sorted({min(1000, trials), trials}):
            results["optuna_samplers"].append(sampler_cost(sampler, held))
            echo(f"{sampler} ask on a study of {held:,} trials: {results['optuna_samplers'][-1]['seconds_per_ask']:.3f} s")
    save_results(results, Path(output) / f"bench-{size_name}-bookkeeping.json", echo)
    return results


def run_study_scale_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 10 alone: a real theory study of `scale_trials` trials, saved as JSON under `output`."""
    trials = SIZES[size_name]["scale_trials"]
    echo(f"raygap bench ({size_name}) 10. study scale: {trials:,} theory trials through Ray Tune, Optuna and the head's writer")
    scale = study_scale(trials, Path(output) / "study-scale", echo)
    echo(
        f"trials/s: {scale['first_trials_per_s']:.1f} over the first {scale['window']:,}, {scale['last_trials_per_s']:.1f} over the last: "
        f"ratio {scale['first_over_last']:.2f} (target ≤ {TARGETS['study_scale_ratio']:g}); {scale['trials']:,} trials in {scale['seconds']:.0f} s"
    )
    results = {"size": size_name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "study_scale": scale}
    save_results(results, Path(output) / f"bench-{size_name}-study-scale.json", echo)
    return results


def run_files_study_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Part 11 alone: studies on image files and on the same images in memory, saved as JSON."""
    size = SIZES[size_name]
    echo(f"raygap bench ({size_name}) 11. a study on image files against the same images in memory: "
         f"{size['files_study_trials']} trials × {size['files_study_steps']} steps, {size['model']}, batch {size['batch']}")  # fmt: skip
    speed = files_study_speed(size, echo)
    pace = [(r["files"]["samples_per_s"], r["memory"]["samples_per_s"]) for r in speed["rounds"]]
    echo(
        f"files / memory: {speed['files_over_memory']:.3f} (target ≥ {TARGETS['files_over_memory']:g}; median of {len(pace)} round(s), "
        f"min {speed['files_over_memory_min']:.3f}, max {speed['files_over_memory_max']:.3f}); samples/s per round (files, memory): "
        + ", ".join(f"{f:.0f}/{m:.0f}" for f, m in pace)
    )
    every = speed["every_epoch"]
    echo(f"decoded every epoch (decoded_cache: off) / memory: {speed['every_epoch_over_memory']:.3f}; {every['samples_per_s']:.0f} samples/s")
    results = {"size": size_name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "files_study": speed}
    save_results(results, Path(output) / f"bench-{size_name}-files-study.json", echo)
    return results


def format_table(results: dict) -> str:
    """One line per measurement: value, target and what it was measured from."""
    loop, study, cache, evaluation = results["loop"], results["study"], results["decoded_cache"], results["evaluation"]
    rows = [
        ("loop efficiency (raygap / plain open_clip loop)", f"{loop['loop_efficiency']:.3f}", f"≥ {TARGETS['loop_efficiency']}",
         f"median of {len(loop['rounds'])} paired rounds (min {loop['loop_efficiency_min']:.3f}, max {loop['loop_efficiency_max']:.3f}); "
         f"{loop['raygap_samples_per_s']:.0f} vs {loop['plain_samples_per_s']:.0f} samples/s"),
        ("per-trial overhead, 1 worker (start + end, s)", f"{study['median_ray_start_s'] + study['median_ray_end_s']:.2f}", f"≤ {TARGETS['overhead_s']:g}",
         f"incl. data/model setup and evaluation: {study['median_start_overhead_s']:.2f} + {study['median_end_overhead_s']:.2f} s"),
        ("study efficiency (training steps / worker wall)", f"{study['study_efficiency']:.3f}", f"≥ {TARGETS['study_efficiency']}",
         (f"{study['study_efficiency_with_cluster_start']:.3f} counting the {study['cluster_start_s']:.1f} s cluster start; "
          f"{study['median_train_seconds']:.1f} s of steps per trial")),
        ("input pipeline (delivered / consumed)", f"{results['input']['loader_headroom']:.1f}×", "> 1", f"{results['input']['loader_samples_per_s']:.0f} samples/s"),
        ("image files: decoded copy / JPEG decoding", f"{cache['cache_speedup']:.2f}×", "",
         (f"{cache['cached_samples_per_s']:.0f} vs {cache['jpeg_samples_per_s']:.0f} samples/s at 224 px; "
          f"built once in {cache['cache_build_seconds']:.1f} s, repaid after {cache['cache_pays_back_after_epochs']:.2f} epochs")),
        ("evaluation / one epoch", f"{evaluation['eval_per_epoch']:.3f}", "",
         (f"{evaluation['eval_pairs']} pairs in {evaluation['eval_seconds']:.1f} s; "
          f"epoch of {evaluation['epoch_pairs']} pairs {evaluation['epoch_seconds']:.1f} s")),
        ("live tracking: one Tune result / its evaluation", f"{results['live']['live_per_eval_point']:.3f}", "",
         (f"{1000 * results['live']['live_result_seconds']:.1f} ms per result ({results['live']['points']} through CSV/JSON/TensorBoard) "
          f"vs {1000 * results['live']['eval_point_seconds']:.0f} ms for the gap, uniformity and recalls of {results['live']['eval_pairs']} pairs")),
        ("peak memory of the study (GiB)", f"{study['peak_rss_gb']:.2f}", "", "Ray's processes included" + (f"; one trial process {study['peak_trial_rss_gb']:.2f} GiB" if study["peak_trial_rss_gb"] else "")),
    ]  # fmt: skip
    for key, name in (("study_worker_group", "1 worker in a worker group (baseline)"), ("study_two_workers", "2-worker group")):
        if key in results:
            group = results[key]
            rows.append((f"per-trial overhead, {name} (s)", f"{group['median_ray_start_s'] + group['median_ray_end_s']:.2f}", "",
                         (f"group start {group['median_ray_start_s']:.1f} s, end {group['median_ray_end_s']:.1f} s; "
                          f"study efficiency {group['study_efficiency']:.3f}")))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measurement':<{width}}  {'value':>8}  {'target':>7}  detail"]
    lines += [f"{name:<{width}}  {value:>8}  {target:>7}  {detail}" for name, value, target, detail in rows]
    return "\n".join(lines)
