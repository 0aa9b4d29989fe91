"""Part 13: what each loss kind costs per step against CLIP's, and what accumulation costs and saves.

Loss cost: in each round every kind's trial (the bench's model, batch `loss_batch`) runs `loss_steps`
optimizer steps after two warm ones, clip first; a kind's cost is its seconds per step over clip's
in the same round (median over rounds).

Accumulation: a batch of `accum_batch` pairs whole, then as `accumulate` micro-batches, each in a
fresh Python process (so one's memory cannot hide the other's): seconds per sample over
`accum_steps` steps after a warm one, and the peak resident memory the steps added to the process
above its resident size after a first step (model, data, optimizer state built), from Linux's
high-water mark (VmHWM, reset before the timed steps).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from raygap.bench.common import BenchSize, to_config, trial_raw
from raygap.clip.build import build_seed_run
from raygap.clip.step import train_step

KINDS = ("clip", "siglip", "cyclip", "inmodal_separation", "m3mix")


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (the high-water mark) of this process, from Linux's /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_high_water_mark() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from the current RSS


def _endless(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from batches


def seconds_per_step(raw: dict, kind: str, steps: int) -> float:
    """Seconds per optimizer step of the run `raw` trained with loss `kind`, after two warm steps."""
    run = build_seed_run(to_config({**raw, "loss": {"kind": kind}}), 0, 1, torch.device("cpu"))
    batches = _endless(run.batches)
    for step in range(2):
        train_step(run, *next(batches), step)
    started = time.perf_counter()
    for step in range(2, 2 + steps):
        train_step(run, *next(batches), step)
    return (time.perf_counter() - started) / steps


def loss_costs(size: BenchSize, echo) -> dict:
    raw = trial_raw({"model": size["model"], "batch": size["loss_batch"]}, 1000, 256)
    rounds: list[dict[str, float]] = []
    for round_ in range(size["loss_rounds"]):
        seconds = {kind: seconds_per_step(raw, kind, size["loss_steps"]) for kind in KINDS}
        rounds.append(seconds)
        echo(f"round {round_ + 1}: seconds per step " + ", ".join(f"{k} {s:.3f}" for k, s in seconds.items()))
    return {
        "batch": size["loss_batch"],
        "steps": size["loss_steps"],
        "rounds": rounds,
        "over_clip": {kind: statistics.median(r[kind] / r["clip"] for r in rounds) for kind in KINDS},
    }


def accumulation_run(raw: dict, steps: int) -> dict:
    """In this process: build the run, one warm step, `steps` timed steps; time and memory."""
    torch.manual_seed(0)
    run = build_seed_run(to_config(raw), 0, 1, torch.device("cpu"))
    batches = iter(run.batches)
    images, tokens = next(batches)
    train_step(run, images, tokens, 0)  # the optimizer's state exists from here
    before_mb = _status_mb("VmRSS")
    _reset_high_water_mark()
    started = time.perf_counter()
    for step in range(1, 1 + steps):
        train_step(run, images, tokens, step)  # the same batch: the loader's cost stays out
    seconds = time.perf_counter() - started
    return {"seconds_per_sample": seconds / (steps * raw["train"]["batch_size"]), "step_peak_mb": _status_mb("VmHWM") - before_mb}


def accumulation_cost(size: BenchSize, echo) -> dict:
    raw = trial_raw({"model": size["accum_model"], "batch": size["accum_batch"]}, 1000, 256)
    runs = {}
    for parts in (1, size["accumulate"]):
        tree = {**raw, "train": {**raw["train"], "accumulate": parts}}
        done = subprocess.run(
            [sys.executable, "-m", "raygap.bench.losses", json.dumps({"raw": tree, "steps": size["accum_steps"]})],
            capture_output=True,
            text=True,
            check=True,
        )
        runs[parts] = json.loads(done.stdout.strip().splitlines()[-1])
        echo(
            f"batch {size['accum_batch']} as {parts} micro-batch(es): {runs[parts]['seconds_per_sample'] * 1e3:.3f} ms per sample, "
            f"{runs[parts]['step_peak_mb']:.0f} MB added by the steps"
        )
    whole, split = runs[1], runs[size["accumulate"]]
    return {
        "model": size["accum_model"],
        "batch": size["accum_batch"],
        "accumulate": size["accumulate"],
        "whole": whole,
        "accumulated": split,
        "time_ratio": split["seconds_per_sample"] / whole["seconds_per_sample"],
        "memory_ratio": split["step_peak_mb"] / max(whole["step_peak_mb"], 1e-9),
    }


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    print(json.dumps(accumulation_run(options["raw"], options["steps"])))
