"""Part 12: the compiled trial loop (`train.compile: true`) against the eager one, both measured now.

Each round runs the eager trial, then the compiled one, back to back (`timed_raw`: two windows of
`steps` steps). Warm samples/s is the second window's. The compile time is what the compiled
trial's first window took beyond its second (the same number of steps). The first compiled run
starts from an empty kernel cache, as a study's first trial on a fresh machine does; later ones
run in the same process, as a study's later trials do in a reused trial process, and the graphs
each compiled are counted (none: dynamo reused the first trial's code for the new model).
"""

from __future__ import annotations

import os
import statistics
import tempfile

import torch

from raygap.clip.train import train
from raygap.config import TrialConfig


def window_seconds(row: dict, steps: int, batch: int) -> float:
    return steps * batch / row["samples_per_s"]


def with_compile(raw: dict, compile_: bool) -> TrialConfig:
    return TrialConfig.model_validate({**raw, "train": {**raw["train"], "compile": compile_}})


def timed_trial(raw: dict, compile_: bool) -> dict:
    """One trial of `raw` (built by `timed_raw`): its warm samples/s and its first window's extra seconds."""
    from torch._dynamo.utils import counters

    steps, batch = raw["train"]["steps"] // 2, raw["train"]["batch_size"]
    history: list[dict] = []
    graphs_before = counters["stats"]["unique_graphs"]
    final = train(with_compile(raw, compile_), history.append)
    first, second = (row for row in history if row["step"] > 0)
    return {
        "samples_per_s": second["samples_per_s"],
        "first_window_extra_s": window_seconds(first, steps, batch) - window_seconds(second, steps, batch),
        "graphs_compiled": counters["stats"]["unique_graphs"] - graphs_before,
        "gpu_peak_gb": final.get("gpu_peak_mb", 0.0) / 1024,
    }


def compile_speedup(raw: dict, rounds: int, echo) -> dict:
    """`rounds` paired rounds of the trial `raw` (a `timed_raw` tree), eager then compiled."""
    steps, batch = raw["train"]["steps"] // 2, raw["train"]["batch_size"]
    eager, compiled = [], []
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    torch._dynamo.reset()  # nothing compiled earlier in this process is reused
    with tempfile.TemporaryDirectory() as kernels:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = kernels  # the first compile starts cold
        try:
            for round_ in range(rounds):
                eager.append(timed_trial(raw, False))
                compiled.append(timed_trial(raw, True))
                echo(
                    f"  round {round_ + 1}: eager {eager[-1]['samples_per_s']:.0f} samples/s, compiled {compiled[-1]['samples_per_s']:.0f} "
                    f"(compile {compiled[-1]['first_window_extra_s'] - eager[-1]['first_window_extra_s']:.1f} s)"
                )
        finally:
            if before is None:
                del os.environ["TORCHINDUCTOR_CACHE_DIR"]
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = before
            torch._dynamo.reset()
    ratios = [c["samples_per_s"] / e["samples_per_s"] for e, c in zip(eager, compiled)]
    compile_s = [c["first_window_extra_s"] - e["first_window_extra_s"] for e, c in zip(eager, compiled)]
    eager_rate, compiled_rate = (
        statistics.median(e["samples_per_s"] for e in eager),
        statistics.median(c["samples_per_s"] for c in compiled),
    )
    saved_per_step = batch / eager_rate - batch / compiled_rate
    warm_compile = statistics.median(compile_s[1:]) if rounds > 1 else None
    return {
        "model": raw["model"]["name"],
        "batch": batch,
        "steps": steps,
        "eager_samples_per_s": eager_rate,
        "compiled_samples_per_s": compiled_rate,
        "speedup": statistics.median(ratios),
        "speedup_min": min(ratios),
        "speedup_max": max(ratios),
        "cold_compile_s": compile_s[0],
        "same_process_compile_s": warm_compile,
        "graphs_compiled": [c["graphs_compiled"] for c in compiled],
        "repaid_after_steps_cold": compile_s[0] / saved_per_step if saved_per_step > 0 else None,
        "repaid_after_steps_same_process": warm_compile / saved_per_step if saved_per_step > 0 and warm_compile is not None else None,
        "rounds": [{"eager": e, "compiled": c} for e, c in zip(eager, compiled)],
    }


def top_kernels(raw: dict, compile_: bool, steps: int = 5, count: int = 8) -> list[dict]:
    """The operators (on a GPU: the kernels) that take the largest share of `steps` warm training
    steps of the trial `raw`, by the torch profiler: what limits the loop."""
    from torch.profiler import ProfilerActivity, profile

    from raygap.clip.build import build_seed_run
    from raygap.clip.step import train_step
    from raygap.clip.train import TrainState, epoch_batches, resolve_device

    cfg = with_compile(raw, compile_)
    device = resolve_device(cfg.train.device)
    run = build_seed_run(cfg, 0, 1, device)
    batches = epoch_batches(run, TrainState())
    for step in range(3):  # compiled and warm before the profile
        train_step(run, *next(batches), step)
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        for step in range(3, 3 + steps):
            train_step(run, *next(batches), step)
        if on_gpu:
            torch.cuda.synchronize(device)
    timed = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, timed) > 0]
    total = sum(getattr(e, timed) for e in events)
    events.sort(key=lambda e: getattr(e, timed), reverse=True)
    return [{"name": e.key, "share": getattr(e, timed) / total, "calls": e.count} for e in events[:count]]
