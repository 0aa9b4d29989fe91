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
8. early stopping     (stop_savings)   compute and final-front hypervolume of one study with and
                                       without search.early_stop (`--only early-stop`; not in the
                                       default run: two studies of 32 seeds)
9. bookkeeping        (bookkeeping)    the head's cost of recording a trial at 100 and at 10,000
                                       recorded (`--only bookkeeping`)
10. study scale       (study_scale)    trials/s over the first and last 1,000 of a real 10,000-trial
                                       theory study through the engine (`--only study-scale`)
11. files study       (files_study)    a study on image files (PNG digits) against the same study on
                                       the same images in memory (`--only files-study`)
12. compiled loop     (compiled)       train.compile: true against eager: warm samples/s, compile
                                       time, the top operators by the profiler (`--only compile`)
13. losses            (losses)         each loss kind's seconds per step against CLIP's; train.accumulate's
                                       time per sample and peak memory against the whole batch (`--only losses`)
14. worker groups   (overhead)       per-seed overhead of 3-seed two-worker trials, a worker group
                                       per trial against one per seed (`--only worker-groups`)
Parts 8–14 run on their own (`alone`). On a GPU (gpu): throughput and MFU per model, batch and
pipeline (throughput), the compiled loop (compiled), and trials sharing the card (sharing).
`common` holds the sizes, the targets, the bench's trial config, the stopwatch and the JSON output.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from raygap.bench.alone import (
    CPU_PARTS,
    run_bookkeeping_bench,
    run_compile_bench,
    run_early_stop_bench,
    run_files_study_bench,
    run_study_scale_bench,
)
from raygap.bench.common import SIZES, TARGETS, save_results, to_config, trial_raw
from raygap.bench.decoded_cache import decoded_cache_speedup
from raygap.bench.evaluation import evaluation_cost
from raygap.bench.gpu import GPU_PARTS, check_gpu_bench, run_gpu_bench
from raygap.bench.input_pipeline import input_pipeline
from raygap.bench.live import live_tracking_cost
from raygap.bench.loop import loop_efficiency
from raygap.bench.overhead import study_overheads
from raygap.config import SyntheticSource

__all__ = [
    "CPU_PARTS",
    "GPU_PARTS",
    "SIZES",
    "TARGETS",
    "check_gpu_bench",
    "run_bench",
    "run_bookkeeping_bench",
    "run_compile_bench",
    "run_early_stop_bench",
    "run_files_study_bench",
    "run_gpu_bench",
    "run_study_scale_bench",
]


def run_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    """Every CPU-size measurement, printed as a table against TARGETS and saved as JSON under `output`."""
    size = SIZES[size_name]
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    echo(f"raygap bench ({size_name}): {size['model']}, batch {size['batch']}, {os.cpu_count()} CPU(s), torch {torch.__version__}")
    results: dict = {
        "size": size_name,
        "machine": f"{platform.node()} · {os.cpu_count()} CPU · {platform.processor() or platform.machine()}",
        "device": "cpu",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    echo("1. loop efficiency")
    results["loop"] = loop_efficiency(size, echo)
    consumed = results["loop"]["raygap_samples_per_s"]
    echo("4. input pipeline")
    results["input"] = input_pipeline(to_config(trial_raw(size, 1, 256)), consumed)
    echo("4b. image files: JPEG decoding every epoch against the decoded copy (224 px)")
    results["decoded_cache"] = decoded_cache_speedup(size["photos"], size["photo_batch"], torch.device("cpu"), echo)
    echo("5. evaluation cost")
    cfg = to_config(trial_raw(size, 1, size["eval_pairs"]))
    assert isinstance(cfg.data.train, SyntheticSource)  # trial_raw trains on synthetic pairs
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
        echo(f"2c. {size['group_trials']} two-worker trials × {size['group_steps']} steps (a worker group is needed)")
        results["study_two_workers"] = study_overheads(size, size["group_trials"], size["group_steps"], 2, echo)
    echo(format_table(results))
    save_results(results, Path(output) / f"bench-{size_name}-{results['device']}.json", echo)
    return results


def format_table(results: dict) -> str:
    """One line per measurement: value, target and what it was measured from."""
    rows = _loop_and_study_rows(results) + _input_evaluation_and_memory_rows(results) + _worker_group_rows(results)
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measurement':<{width}}  {'value':>8}  {'target':>7}  detail"]
    lines += [f"{name:<{width}}  {value:>8}  {target:>7}  {detail}" for name, value, target, detail in rows]
    return "\n".join(lines)


def _loop_and_study_rows(results: dict) -> list[tuple[str, str, str, str]]:
    loop, study = results["loop"], results["study"]
    return [
        (
            "loop efficiency (raygap / plain open_clip loop)",
            f"{loop['loop_efficiency']:.3f}",
            f"≥ {TARGETS['loop_efficiency']}",
            f"median of {len(loop['rounds'])} paired rounds (min {loop['loop_efficiency_min']:.3f}, "
            f"max {loop['loop_efficiency_max']:.3f}); "
            f"{loop['raygap_samples_per_s']:.0f} vs {loop['plain_samples_per_s']:.0f} samples/s",
        ),
        (
            "per-trial overhead, 1 worker (start + end, s)",
            f"{study['median_ray_start_s'] + study['median_ray_end_s']:.2f}",
            f"≤ {TARGETS['overhead_s']:g}",
            f"incl. data/model setup and evaluation: {study['median_start_overhead_s']:.2f} + {study['median_end_overhead_s']:.2f} s",
        ),
        (
            "study efficiency (training steps / worker wall)",
            f"{study['study_efficiency']:.3f}",
            f"≥ {TARGETS['study_efficiency']}",
            (
                f"{study['study_efficiency_with_cluster_start']:.3f} counting the {study['cluster_start_s']:.1f} s cluster start; "
                f"{study['median_train_seconds']:.1f} s of steps per trial"
            ),
        ),
    ]


def _input_evaluation_and_memory_rows(results: dict) -> list[tuple[str, str, str, str]]:
    cache, evaluation, study = results["decoded_cache"], results["evaluation"], results["study"]
    return [
        (
            "input pipeline (delivered / consumed)",
            f"{results['input']['loader_headroom']:.1f}×",
            "> 1",
            f"{results['input']['loader_samples_per_s']:.0f} samples/s",
        ),
        (
            "image files: decoded copy / JPEG decoding",
            f"{cache['cache_speedup']:.2f}×",
            "",
            (
                f"{cache['cached_samples_per_s']:.0f} vs {cache['jpeg_samples_per_s']:.0f} samples/s at 224 px; "
                f"built once in {cache['cache_build_seconds']:.1f} s, repaid after {cache['cache_pays_back_after_epochs']:.2f} epochs"
            ),
        ),
        (
            "evaluation / one epoch",
            f"{evaluation['eval_per_epoch']:.3f}",
            "",
            (
                f"{evaluation['eval_pairs']} pairs in {evaluation['eval_seconds']:.1f} s; "
                f"epoch of {evaluation['epoch_pairs']} pairs {evaluation['epoch_seconds']:.1f} s"
            ),
        ),
        (
            "live tracking: one Tune result / its evaluation",
            f"{results['live']['live_per_eval_point']:.3f}",
            "",
            (
                f"{1000 * results['live']['live_result_seconds']:.1f} ms per result "
                f"({results['live']['points']} through CSV/JSON/TensorBoard) "
                f"vs {1000 * results['live']['eval_point_seconds']:.0f} ms for the gap, uniformity and recalls "
                f"of {results['live']['eval_pairs']} pairs"
            ),
        ),
        (
            "peak memory of the study (GiB)",
            f"{study['peak_rss_gb']:.2f}",
            "",
            "Ray's processes included"
            + (f"; one trial process {study['peak_trial_rss_gb']:.2f} GiB" if study["peak_trial_rss_gb"] else ""),
        ),
    ]


def _worker_group_rows(results: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, name in (("study_worker_group", "1 worker in a worker group (baseline)"), ("study_two_workers", "2-worker group")):
        if key in results:
            group = results[key]
            rows.append(
                (
                    f"per-trial overhead, {name} (s)",
                    f"{group['median_ray_start_s'] + group['median_ray_end_s']:.2f}",
                    "",
                    (
                        f"group start {group['median_ray_start_s']:.1f} s, end {group['median_ray_end_s']:.1f} s; "
                        f"study efficiency {group['study_efficiency']:.3f}"
                    ),
                )
            )
    return rows
