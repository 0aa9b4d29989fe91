"""A trial's checkpoint as its driver reads it back: after Tune restarted the trial, or, in a
resumed study, the last checkpoint of the stopped trial whose configuration it runs again (found in
the results folder, local or object storage, under the stopped run's Tune folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs
import ray.train


def read_trial_checkpoint(checkpoint: ray.train.Checkpoint) -> dict:
    """{"repeat", "finals", "records", "state"}: the seed to train next, the finished seeds' finals
    and records, and the training state mid-seed (None between seeds)."""
    import torch

    with checkpoint.as_directory() as folder:
        trial = json.loads(Path(folder, "trial.json").read_text())
        state = Path(folder, "training.pt")
        trial["state"] = torch.load(state, weights_only=True) if state.exists() else None  # never unpickle a results folder
    trial.setdefault("records", [])
    return trial


def continued_checkpoint(results_location: str, trial_ids: list[str]) -> dict | None:
    """The last readable checkpoint of the first of `trial_ids` (earlier runs' trials of the study
    in `results_location`, newest first) that left one (`ray/tune*/trial-<id>/checkpoint_*`)."""
    if not trial_ids:
        return None
    filesystem, root = pafs.FileSystem.from_uri(_as_uri(results_location))
    runs = [run for run in _folders(filesystem, f"{root}/ray") if Path(run).name.startswith("tune")]
    for trial_id in trial_ids:
        candidates = [c for run in runs for c in _folders(filesystem, f"{run}/trial-{trial_id}") if Path(c).name.startswith("checkpoint_")]
        for path in sorted(candidates, key=lambda c: Path(c).name, reverse=True):
            try:
                return read_trial_checkpoint(ray.train.Checkpoint(path, filesystem=filesystem))
            except (OSError, ValueError, RuntimeError, EOFError, KeyError):  # one cut short by the stop: the one before
                continue
    return None


def _folders(filesystem: pafs.FileSystem, path: str) -> list[str]:
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [info.path for info in infos if info.type == pafs.FileType.Directory]


def _as_uri(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()
