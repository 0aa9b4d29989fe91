"""The `tracking:` section: where a study's curves go besides its Parquet results, as they are
measured (every evaluation point is a Tune result; these are Tune logger callbacks on the head)."""

from __future__ import annotations

from typing import Literal

from raygap.config.base import Strict


class MlflowTracking(Strict):
    """One MLflow run per trial (Ray's MLflowLoggerCallback): the searched parameters as params,
    each seed's curves as metric histories `seed<n>/<metric>`, tags `raygap.study` and Ray's `trial_name`."""

    tracking_uri: str = "sqlite:///mlflow.db"
    """Where runs go: a database (sqlite:///mlflow.db, relative to where the study runs) or a
    tracking server's URL. MLflow 3 refuses its file store (file:./mlruns) unless
    MLFLOW_ALLOW_FILE_STORE=true is set: a study says so before Ray starts."""
    experiment: str | None = None
    """The MLflow experiment; default: the study's name."""


class WandbTracking(Strict):
    """One W&B run per trial (Ray's WandbLoggerCallback): the searched parameters as its config, each
    seed's curves as series `seed<n>/<metric>`, grouped by study, tagged study and trial id."""

    project: str | None = None
    """The W&B project; default: the study's name."""
    mode: Literal["offline", "online"] = "offline"
    """offline (default) writes runs to disk and sends nothing (upload later with `wandb sync DIR`);
    online sends them to W&B as they are measured (needs `wandb login` or WANDB_API_KEY)."""
    dir: str | None = None
    """Where W&B writes its files (a `wandb/` folder is made inside); default: each trial's folder
    under <results>/ray/."""


class TrackingSpec(Strict):
    tensorboard: bool = True
    """TensorBoard event files per trial under <results>/ray/tune*/trial-<id>/ (Tune's own logger)."""
    mlflow: MlflowTracking | None = None
    """Set (e.g. `tracking.mlflow.tracking_uri=sqlite:///mlflow.db`) to log each trial to MLflow; needs
    pip install 'raygap[mlflow]'."""
    wandb: WandbTracking | None = None
    """Set (e.g. `tracking.wandb.mode=offline`) to log each trial to Weights & Biases; needs
    pip install 'raygap[wandb]'."""
