"""Where a study's curves go as they are measured: Tune's logger callbacks on the head, chosen by
the study file's `tracking:` section. Every evaluation point is a Tune result (`worker.live_result`),
so each of these sees every point of every seed; the Parquet results stay the contract."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

from raygap import results
from raygap.study.messages import done_result
from raygap.study.worker import live_result


def logger_callbacks(tracking, study: str) -> list[tune.Callback]:
    """Tune's CSV and JSON loggers always, its TensorBoard logger unless turned off, and MLflow's
    when asked. Tune adds no loggers of its own (`quiet_tune`)."""
    callbacks: list[tune.Callback] = [CSVLoggerCallback(), JsonLoggerCallback()]
    if tracking.tensorboard:
        _import_tensorboardx_without_torch()
        callbacks.append(TBXLoggerCallback())
    if tracking.mlflow is not None:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        callbacks.append(
            MLflowLoggerCallback(
                tracking_uri=tracking.mlflow.tracking_uri,
                experiment_name=tracking.mlflow.experiment or study,
                tags={"raygap.study": study},
                save_artifact=False,
            )
        )
    if tracking.wandb is not None:
        callbacks.append(_wandb_callback(tracking.wandb, study))
    return callbacks


def _wandb_callback(wandb, study: str) -> tune.Callback:
    """Ray's W&B logger: one run per trial (its id and name are the trial's), grouped by study."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    options = {"mode": wandb.mode, "group": study, "tags": [f"raygap.study={study}"], "save_code": False}
    if wandb.dir is not None:
        Path(wandb.dir).mkdir(parents=True, exist_ok=True)
        options["dir"] = str(Path(wandb.dir).resolve())  # the logging actor runs in the trial's folder
    return WandbLoggerCallback(project=wandb.project or study, **options)


def _import_tensorboardx_without_torch() -> None:
    """Tune's TensorBoard logger imports tensorboardX, which imports torch where it can only to
    accept torch tensors (Tune passes numbers): about 470 MiB more in the head. Import it with torch
    hidden; trials import torch in their own processes."""
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        pass
    finally:
        del sys.modules["torch"]


def where_to_look(tracking, study: str, folder: results.ResultsFolder) -> list[str]:
    """One line per place the study's curves can be watched while it runs."""
    lines = []
    if tracking.tensorboard:  # the event files are written either way; the viewer is not a dependency
        viewer = "tensorboard" if importlib.util.find_spec("tensorboard") else "pip install 'raygap[tensorboard]', then tensorboard"
        lines.append(f"TensorBoard: {viewer} --logdir {folder.uri('ray')}")
    if tracking.mlflow is not None:
        lines.append(f"MLflow: {tracking.mlflow.tracking_uri} (experiment {tracking.mlflow.experiment or study})")
    if tracking.wandb is not None:
        where = tracking.wandb.dir or f"{folder.uri('ray')}/tune*/trial-*"
        sync = f"; upload later: wandb sync {where}/wandb/offline-run-*" if tracking.wandb.mode == "offline" else ""
        lines.append(f"W&B: project {tracking.wandb.project or study} ({tracking.wandb.mode}{sync})")
    lines.append(f"optuna-dashboard: raygap dashboard {folder}")
    return lines


def tracker_environment(tracking) -> dict[str, str]:
    """Variables the trackers read from the environment. W&B offline sends nothing, its crash
    reports included, and Ray's W&B logger asks for no API key only when WANDB_MODE says offline."""
    if tracking.wandb is None:
        return {}
    variables = {"WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}
    if tracking.wandb.mode == "offline":
        variables.update(WANDB_MODE="offline", WANDB_ERROR_REPORTING="false")
    return variables


@contextmanager
def environment(variables: dict[str, str]):
    """`variables` set in this process (and the local Ray processes it starts) for the block."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def quiet_tune():
    """Tune with raygap's loggers only and its legacy console output, which `verbose=0` silences
    (Tune's newer output prints an experiment box and a TensorBoard hint into a temporary folder
    whatever the verbosity)."""
    return environment({"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0"})


def live_result_cost(points: int, row: dict, cfg) -> float:
    """Seconds per live result: a one-trial Tune run that reports `points` evaluation rows as a
    study of `cfg` does (`worker.live_result`), timed inside the trial, through the CSV, JSON and
    TensorBoard loggers a study uses. Starts (and stops) a local Ray if none is running."""
    import tempfile
    import time

    import ray

    def trial(config: dict) -> None:
        started = time.perf_counter()
        for step in range(points):
            tune.report(live_result({**row, "step": step}, cfg))
        tune.report(
            done_result({"seconds_per_result": (time.perf_counter() - started) / points, **{k: 0.0 for k in cfg.search.objectives}})
        )

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="raygap-live-") as storage, quiet_tune():
            from raygap.config.tracking import TrackingSpec

            callbacks = logger_callbacks(TrackingSpec(), "live-cost")
            run = tune.RunConfig(storage_path=storage, callbacks=callbacks, verbose=0)
            result = tune.Tuner(trial, run_config=run).fit()[0]
            if result.metrics is None:
                raise RuntimeError(f"the live-tracking cost trial reported nothing ({result.error})")
            return result.metrics["seconds_per_result"]
    finally:
        if started_here:
            ray.shutdown()
