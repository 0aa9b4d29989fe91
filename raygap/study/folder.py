"""What may be done with a results folder, the same for the CLI and the Python API, for local paths
and URIs alike: a folder that holds a study is continued (resume) only with the spec it was run
with, replaced only when asked (overwrite), and never appended to by another study."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Iterator
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


TUNE_TRIAL_ID = "tune_trial_id"  # the Optuna user attribute that names a trial's Tune id
CLAIM = "study.claim"  # beside the Optuna file: the one process that runs the folder's study


@contextlib.contextmanager
def claimed(place: Path) -> Iterator[None]:
    """Hold the folder `place` (where the Optuna file lives) for this process while the block runs:
    the claim is an exclusive create, so of two commands started on one new folder only one runs;
    the other gets StudyInProgress. A claim whose process is gone (killed) is taken over. A folder
    this made and left empty is removed again."""
    made = []  # the folders this makes, deepest first: removed again if left empty
    missing = place
    while not missing.exists() and missing != missing.parent:
        made.append(missing)
        missing = missing.parent
    place.mkdir(parents=True, exist_ok=True)
    claim = place / CLAIM
    me = {"pid": os.getpid(), "host": socket.gethostname(), "created": _created(os.getpid())}
    try:
        for _ in range(2):
            try:
                with os.fdopen(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644), "w") as handle:
                    json.dump(me, handle)
                break
            except FileExistsError:
                owner = _claim_owner(claim)
                if owner is not None:
                    raise StudyInProgress(
                        f"{place}: another raygap process ({owner}) is running a study on this folder; wait for it, stop it, "
                        f"or remove {claim} if that process is gone"
                    ) from None
                claim.unlink(missing_ok=True)  # its process is gone
        else:
            raise StudyInProgress(f"{place}: could not claim the folder ({claim} keeps reappearing)")
        try:
            yield
        finally:
            claim.unlink(missing_ok=True)
    finally:
        for folder in made:
            try:
                folder.rmdir()  # only when empty: nothing was written
            except OSError:
                break


def _created(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


def _claim_owner(claim: Path) -> str | None:
    """'pid 123 on host' for a claim whose process may still run; None when it is surely gone."""
    import psutil

    try:
        owner = json.loads(claim.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # being written this instant, or half-written by a process killed while claiming
        import time

        try:
            fresh = time.time() - claim.stat().st_mtime < 10
        except OSError:
            return None
        return "a process claiming it this moment" if fresh else None
    if owner.get("host") != socket.gethostname():
        return f"pid {owner.get('pid')} on {owner.get('host')}"  # another machine: cannot tell, so assume it runs
    try:
        alive = abs(_created(int(owner["pid"])) - float(owner["created"])) < 1e-3
    except (psutil.Error, KeyError, TypeError, ValueError):
        alive = False
    return f"pid {owner['pid']} on {owner['host']}" if alive else None


# Everything a study writes into its folder (the Optuna study file may live elsewhere: optuna_path).
STUDY_FILES = (
    results.TRIALS,
    results.HISTORY,
    results.PARETO,
    results.SPEC,
    results.RUN,
    results.ARTIFACTS,
    results.RUNNING,
    "ray",
    "report",
)


def optuna_path(folder: results.ResultsFolder, name: str) -> Path:
    """The Optuna study's file, in the results folder or, when that is a URI, in a local folder of
    its own keyed by the URI (results/.uri-studies/<name>-<hash>/), so that two URI folders or a URI
    and a local folder of one study name never share an Optuna study: Optuna's journal file
    `optuna.log`, or `optuna.db` (SQLite) for a study that began with one. The journal takes 1.0–2.0
    ms per ask + tell up to 10,000 trials against SQLite's 15 (`raygap bench --only bookkeeping`)."""
    if folder.is_local:
        base = Path(folder.path)
    else:
        key = hashlib.sha256(folder.location.encode()).hexdigest()[:12]
        base = Path("results") / ".uri-studies" / f"{name}-{key}"
    return base / "optuna.db" if (base / "optuna.db").exists() else base / "optuna.log"


def optuna_storage(path: Path):
    """The Optuna storage of a study file from `optuna_path`: SQLite for `.db`, else a journal file."""
    import optuna

    if path.suffix == ".db":
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def check_writable(folder: results.ResultsFolder) -> None:
    """UnusableFolder unless files can be written in `folder`: a probe is written and deleted (a
    missing bucket, an unreachable endpoint, a read-only disk show here, not mid-study)."""
    import uuid

    import pyarrow as pa

    from raygap import local_files

    if folder.is_local:
        if why := local_files.unwritable(folder.path):
            raise results.UnusableFolder(f"{folder}: {why}; expected a folder results can be written in")
        return
    probe = f"{folder.path}/.raygap-probe-{uuid.uuid4().hex}"
    try:
        if not folder.is_object_store:
            folder.filesystem.create_dir(folder.path, recursive=True)
        with folder.filesystem.open_output_stream(probe) as stream:
            stream.write(b"")
        folder.filesystem.delete_file(probe)
    except (OSError, pa.ArrowException) as error:
        raise results.UnusableFolder(f"{folder}: cannot write here ({error}); expected a folder results can be written in") from None


def check_folder(folder: results.ResultsFolder, spec: StudySpec, resume: bool, overwrite: bool) -> None:
    """Raise SpecError, before anything is written, if the study may not run in `folder`."""
    if resume and overwrite:
        raise SpecError("resume and overwrite exclude each other")
    holds_a_study = folder.exists(results.TRIALS) or folder.exists(results.SPEC)
    if holds_a_study and not (resume or overwrite):
        raise SpecError(f"{folder} already holds a study; pass --resume to continue it, --overwrite to replace it (or --results DIR)")
    if resume and folder.exists(results.SPEC):
        stored = yaml.safe_load(read_stored_spec(folder)) or {}
        _check_unedited(folder, stored)
        differences = sorted(_differences(stored, spec.raw))
        if differences:
            raise SpecError(
                f"{folder}: holds a study run with a different spec (differs at {', '.join(differences)}); "
                "resume it with its own spec.yaml or use --overwrite"
            )


def spec_record(raw: dict) -> dict:
    """What run.yaml keeps of the spec as run: the tree and its fingerprint, so a spec.yaml edited
    after the run is caught on resume (and what changed named)."""
    return {"spec_sha256": _fingerprint(raw), "spec_as_run": raw}


def _fingerprint(raw: dict) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _check_unedited(folder: results.ResultsFolder, stored: dict) -> None:
    """SpecError when the folder's spec.yaml no longer is the spec its study ran with (run.yaml)."""
    if not folder.exists(results.RUN):
        return
    run = yaml.safe_load(folder.read_text(results.RUN)) or {}
    if "spec_sha256" not in run or run["spec_sha256"] == _fingerprint(stored):
        return  # a study from before fingerprints, or unedited
    changed = sorted(_differences(run.get("spec_as_run") or {}, stored)) or ["(unknown)"]
    raise SpecError(
        f"{folder}: {results.SPEC} was edited after the study ran (differs at {', '.join(changed)}); its trials ran with the "
        f"spec kept in {results.RUN} (spec_as_run): restore that, or run the edited spec in a new folder"
    )


def read_stored_spec(folder: results.ResultsFolder) -> str:
    """The spec.yaml a study wrote into its folder (local or URI)."""
    if not folder.exists(results.SPEC):
        raise SpecError(f"{folder}: no {results.SPEC} here; not a raygap study folder")
    return folder.read_text(results.SPEC)


def stored_name(folder: results.ResultsFolder) -> str:
    """The study name in the folder's spec.yaml; "" where there is none."""
    if not folder.exists(results.SPEC):
        return ""
    return (yaml.safe_load(read_stored_spec(folder)) or {}).get("name", "")


def clear(folder: results.ResultsFolder, optuna_file: Path) -> None:
    """Remove a study's files from its folder (overwrite)."""
    folder.remove(*STUDY_FILES)
    optuna_file.unlink(missing_ok=True)


def _differences(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in set(a) | set(b) for d in _differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".") or "(top level)"]
