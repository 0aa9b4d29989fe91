"""GPU 6. Several small trials sharing one GPU (as fractional GPUs run them) against one alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raygap.bench.common import to_config
from raygap.clip.train import train

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

_START_TOGETHER: Barrier | None = None  # set in each pool process by its initializer


def _hold_start(barrier: Barrier) -> None:
    global _START_TOGETHER
    _START_TOGETHER = barrier


def _shared_trial(raw: dict) -> dict:
    """One trial in its own process; every process starts stepping when all have set up."""
    started: list[bool] = []

    def report(row: dict) -> None:
        if not started:  # the step-0 evaluation: set-up is done, the first step comes next
            started.append(True)
            assert _START_TOGETHER is not None, "_shared_trial runs in gpu_sharing's pool, whose initializer sets it"
            _START_TOGETHER.wait()

    final = train(to_config(raw), report)
    return {
        "first_step_at": final["first_step_at"],
        "last_step_at": final["last_step_at"],
        "steps": final["steps"],
        "gpu_peak_mb": final.get("gpu_peak_mb", 0.0),
    }


def gpu_sharing(raw: dict, counts: tuple[int, ...], echo) -> list[dict]:
    """Total samples/s of `count` copies of the trial `raw` on one GPU, for each count, against one alone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    rows = []
    for count in counts:
        barrier = context.Barrier(count)
        with ProcessPoolExecutor(count, mp_context=context, initializer=_hold_start, initargs=(barrier,)) as pool:
            outs = list(pool.map(_shared_trial, [raw] * count))
        window = max(o["last_step_at"] for o in outs) - min(o["first_step_at"] for o in outs)
        total = sum(o["steps"] for o in outs) * raw["train"]["batch_size"] / window
        rows.append({"trials": count, "total_samples_per_s": total, "gpu_peak_gb_per_trial": max(o["gpu_peak_mb"] for o in outs) / 1024})
        rows[-1]["speedup"] = total / rows[0]["total_samples_per_s"]
        echo(f"  {count} trial(s) on one GPU: {total:.0f} samples/s in all ({rows[-1]['speedup']:.2f}× one alone)")
    return rows
