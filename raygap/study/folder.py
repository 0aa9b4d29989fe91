"""What may be done with a results folder, the same for the CLI and the Python API, for local paths
and URIs alike: a folder that holds a study is continued (resume) only with the spec it was run
with, replaced only when asked (overwrite), and never appended to by another study."""

from __future__ import annotations

from pathlib import Path

import yaml

from raygap import results
from raygap.config import SpecError, StudySpec


class StudyInProgress(RuntimeError):
    """Another live raygap process runs a study on this folder (not a spec problem: wait, or stop it)."""


CLUSTER_RECORD = "ray-cluster.json"  # beside the Optuna file: the driver and the local cluster it started


def check_no_study_running(record: Path) -> None:
    """StudyInProgress if the driver named in the cluster record at `record` is alive (matched by
    its start time, so a reused pid does not count). Studies on a cluster raygap did not start
    leave no record."""
    import json

    import psutil

    if not record.exists():
        return
    driver = json.loads(record.read_text())["driver"]
    try:
        alive = abs(psutil.Process(driver["pid"]).create_time() - driver["created"]) < 1e-3
    except psutil.Error:
        alive = False
    if alive:
        raise StudyInProgress(f"{record.parent}: a study is still running on this folder (pid {driver['pid']})")


# Everything a study writes into its folder (the Optuna study file may live elsewhere: optuna_path).
STUDY_FILES = (results.TRIALS, results.HISTORY, results.PARETO, results.SPEC, results.RUN, "ray", "report")


def optuna_path(folder: results.ResultsFolder, name: str) -> Path:
    """The Optuna study's file, in the results folder or locally when that is a URI: Optuna's
    journal file `optuna.log`, or `optuna.db` (SQLite) for a study that began with one. The journal
    takes 1.0–2.0 ms per ask + tell up to 10,000 trials against SQLite's 15 (`raygap bench --only
    bookkeeping`)."""
    base = Path(folder.path if folder.is_local else Path("results") / name)
    return base / "optuna.db" if (base / "optuna.db").exists() else base / "optuna.log"


def optuna_storage(path: Path):
    """The Optuna storage of a study file from `optuna_path`: SQLite for `.db`, else a journal file."""
    import optuna

    if path.suffix == ".db":
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def check_folder(folder: results.ResultsFolder, spec: StudySpec, resume: bool, overwrite: bool) -> None:
    """Raise SpecError, before anything is written, if the study may not run in `folder`."""
    if resume and overwrite:
        raise SpecError("resume and overwrite exclude each other")
    holds_a_study = folder.exists(results.TRIALS) or folder.exists(results.SPEC)
    if holds_a_study and not (resume or overwrite):
        raise SpecError(f"{folder} already holds a study; pass --resume to continue it, --overwrite to replace it (or --results DIR)")
    if resume and folder.exists(results.SPEC):
        differences = sorted(_differences(yaml.safe_load(read_stored_spec(folder)) or {}, spec.raw))
        if differences:
            raise SpecError(
                f"{folder}: holds a study run with a different spec (differs at {', '.join(differences)}); "
                "resume it with its own spec.yaml or use --overwrite"
            )


def read_stored_spec(folder: results.ResultsFolder) -> str:
    """The spec.yaml a study wrote into its folder (local or URI)."""
    if not folder.exists(results.SPEC):
        raise SpecError(f"{folder}: no {results.SPEC} here; not a raygap study folder")
    return folder.read_text(results.SPEC)


def clear(folder: results.ResultsFolder, optuna_file: Path) -> None:
    """Remove a study's files from its folder (overwrite)."""
    folder.remove(*STUDY_FILES)
    optuna_file.unlink(missing_ok=True)


def _differences(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in set(a) | set(b) for d in _differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".") or "(top level)"]
