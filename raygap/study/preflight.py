"""Checks of a study's settings against this machine before Ray starts (and in a dry run): every
objective measured, every table a trial may read, the decoded copies' folders, the trackers'
settings, and whether a trial fits a local cluster. Each failure is a SpecError naming the file
and key. Ray-free: a dry run imports it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from raygap import local_files
from raygap.config import SpecError, StudySpec, TrialConfig


def check_study(spec: StudySpec, cfg: TrialConfig, data: bool = True) -> None:
    """Everything about a study that can fail before Ray starts, bar its results folder; `data`:
    read every file-backed table (a dry run may skip it for paper-scale tables)."""
    from raygap.data import check_tables
    from raygap.study.space import first_points

    if unmeasured := cfg.unmeasured_objective():
        raise SpecError(f"{spec.path}: {unmeasured}")
    first_points(spec, cfg.search)  # each search.first configuration names searched settings, in range
    if data:
        for variant in spec.data_variants():  # every table a `choice` may pick, not only the default's
            check_tables(variant, str(spec.path))
    check_extras(cfg.tracking, str(spec.path))
    check_tracking(cfg.tracking, str(spec.path))
    check_checkpoint(cfg, str(spec.path))


def check_checkpoint(cfg: TrialConfig, file: str) -> None:
    """A model.pretrained checkpoint that cannot start the model fails here, naming what differs."""
    if cfg.theory is not None or cfg.model.pretrained is None:
        return
    from raygap.clip.model import checkpoint_mismatch  # torch and open_clip: only when a checkpoint is named

    if why := checkpoint_mismatch(cfg.model.name, cfg.model.pretrained):
        raise SpecError(f"{file}: model.pretrained: {why}")


EXTRAS = {"mlflow": ("mlflow", "pip install 'raygap[mlflow]'"), "wandb": ("wandb", "pip install 'raygap[wandb]'")}


def check_extras(tracking, file: str) -> None:
    """A tracker whose library is missing fails here, before Ray starts."""
    for name, (module, install) in EXTRAS.items():
        if getattr(tracking, name) is not None and importlib.util.find_spec(module) is None:
            raise SpecError(f"{file}: tracking.{name} needs: {install}")


def check_tracking(tracking, file: str) -> None:
    """A setting a tracker would refuse once Tune starts it fails here, before Ray starts: an URI
    scheme MLflow has no store for, its file store (MLflow 3 refuses it unless
    MLFLOW_ALLOW_FILE_STORE is true), a SQLite database where nothing can be written, a W&B folder
    that cannot be made, W&B online without a key."""
    if tracking.mlflow is not None:
        _check_mlflow_uri(tracking.mlflow.tracking_uri, file)
    if tracking.wandb is not None:
        if tracking.wandb.dir is not None and (why := local_files.unwritable(tracking.wandb.dir)):
            raise SpecError(f"{file}: tracking.wandb.dir: {why}; expected a folder W&B can write in")
        if tracking.wandb.mode == "online" and not _wandb_key():
            raise SpecError(
                f"{file}: tracking.wandb.mode: online needs a W&B API key (`wandb login`, or WANDB_API_KEY) and none is "
                "set; expected offline (upload later with wandb sync), or a key"
            )


def _check_mlflow_uri(uri: str, file: str) -> None:
    from urllib.parse import urlparse

    where = f"{file}: tracking.mlflow.tracking_uri: {uri!r}"
    scheme = urlparse(uri).scheme  # as MLflow reads it: none or a drive letter is a path; bare "databricks" is not
    file_store = uri not in ("databricks", "databricks-uc", "uc") and (scheme == "file" or len(scheme) <= 1)
    if file_store and not _mlflow_allows_file_store():
        raise SpecError(
            f"{where} is MLflow's file store, which MLflow refuses unless MLFLOW_ALLOW_FILE_STORE=true is set; "
            "expected a database (sqlite:///mlflow.db) or a tracking server's URL (http://…)"
        )
    known = MLFLOW_SCHEMES | _mlflow_plugin_schemes()
    if not file_store and (scheme or uri).split("+")[0] not in known:  # bare "databricks" has no scheme
        raise SpecError(f"{where}: MLflow has no store for {scheme!r}; expected one of {', '.join(sorted(known))}")
    if scheme == "sqlite" and uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        database = Path(uri.removeprefix("sqlite:///"))
        why = local_files.unwritable(database.parent)
        if why or (database.exists() and not os.access(database, os.W_OK)):
            raise SpecError(f"{where}: {why or f'cannot write {database}'}; expected a database file MLflow can write")


# MLflow 3's tracking stores (mlflow.tracking._tracking_service.utils); plugins add theirs as entry points.
MLFLOW_SCHEMES = frozenset({"http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc"})


def _mlflow_plugin_schemes() -> set[str]:
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group="mlflow.tracking_store")}


def _wandb_key() -> bool:
    """Whether W&B would find an API key: WANDB_API_KEY, or a netrc entry for its host (`wandb login`)."""
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY"):
        return True
    # No hostname (a URL without a scheme): netrc's `default` entry still answers, as it did.
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _mlflow_allows_file_store() -> bool:
    """MLflow's own reading of MLFLOW_ALLOW_FILE_STORE; MLflow before 3 has no such switch and allows it."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:
        return True
    return bool(MLFLOW_ALLOW_FILE_STORE.get())
