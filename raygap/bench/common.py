"""What the benchmarks share: their sizes and targets, the bench's trial configuration, a stopwatch that waits for the GPU,
and the JSON output."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Self, TypedDict

import torch

from raygap.config import StudySpec, TrialConfig, find_distributions


class TrialSize(TypedDict):
    """What `trial_raw` reads of a size: the model and the batch."""

    model: str
    batch: int


class BenchSize(TrialSize):
    """What each part runs at (one of SIZES)."""

    steps: int
    eval_pairs: int
    trials: int
    study_steps: int
    group_trials: int
    group_steps: int
    photos: int
    photo_batch: int
    live_points: int
    early_stop_trials: int
    early_stop_steps: int
    bookkeeping_trials: int
    scale_trials: int
    loop_rounds: int
    files_study_trials: int
    files_study_steps: int
    files_study_rounds: int
    compile_rounds: int
    loss_batch: int
    loss_steps: int
    loss_rounds: int
    accum_model: str
    accum_batch: int
    accumulate: int
    accum_steps: int


# size → what each part runs at: model, batch, loop steps and rounds, eval pairs, study trials and steps, JPEGs, …
SIZES: dict[str, BenchSize] = {
    "ci": {
        "model": "tiny-vit",
        "batch": 32,
        "steps": 6,
        "eval_pairs": 256,
        "trials": 2,
        "study_steps": 4,
        "group_trials": 1,  # ci runs every part of the default run, 2b and 2c included
        "group_steps": 4,
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
        "compile_rounds": 2,
        "loss_batch": 64,
        "loss_steps": 3,
        "loss_rounds": 1,
        "accum_model": "tiny-vit",
        "accum_batch": 256,
        "accumulate": 4,
        "accum_steps": 2,
    },
    "full": {
        "model": "tiny-vit",
        "batch": 128,
        "steps": 60,
        "eval_pairs": 5000,
        "trials": 6,
        "study_steps": 400,
        "group_trials": 2,
        "group_steps": 20,
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
        "compile_rounds": 3,
        "loss_batch": 256,
        "loss_steps": 20,
        "loss_rounds": 3,
        "accum_model": "small-vit",
        "accum_batch": 512,
        "accumulate": 4,
        "accum_steps": 5,
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
    "seed_overhead_ratio": 1 / 3,
}


def trial_raw(size: TrialSize, steps: int, eval_pairs: int) -> dict:
    """A synthetic-data trial of the bench's model and batch, as a study file's tree."""
    return {
        "name": "bench",
        "data": {
            "train": {"kind": "synthetic", "size": max(4096, size["batch"] * 8), "seed": 0},
            "eval": {"kind": "synthetic", "size": eval_pairs, "seed": 1},
            "probe": {"train": {"kind": "synthetic", "size": 1024, "seed": 2}, "test": {"kind": "synthetic", "size": 512, "seed": 3}},
        },
        "model": {"name": size["model"]},
        "train": {"steps": steps, "batch_size": size["batch"], "lr": 0.002, "warmup_steps": 1, "eval_interval": 0, "seed": 0},
        "temperature": {"kind": "fixed", "value": 0.07},
        "eval": {"gap_pairs": min(512, eval_pairs)},
    }


def timed_raw(raw: dict, steps: int) -> dict:
    """Twice `steps` steps with one evaluation half-way: the second window is `steps` warm steps."""
    raw["train"].update(steps=2 * steps, eval_interval=steps)
    return raw


def study_spec(raw: dict) -> StudySpec:
    """A bench study from its tree, never written to a file: the study reads `spec.path` only to name errors."""
    path = Path(f"{raw['name']}.yaml")
    return StudySpec(path=path, raw=raw, space=find_distributions(raw, str(path)))


def to_config(raw: dict) -> TrialConfig:
    """The bench's trees hold no search distributions and no file paths: validate them as they are."""
    return TrialConfig.model_validate(raw)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def save_results(results: dict, path: Path, echo) -> None:
    from raygap.local_files import write_local_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_local_text(path, json.dumps(results, indent=2))
    echo(f"results: {path}")


class Stopwatch:
    """Seconds spent inside the block, GPU work queued in it included and work queued before it not."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, 0.0

    def __enter__(self) -> Self:
        sync(self.device)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.seconds = time.perf_counter() - self.started
