"""Where a seed of a one-worker trial trains: the Tune trial's own process (a theory simulation too);
and what every place that trains inside a Tune trial shares (live results, gauges, artifacts).
Several workers train in a worker group (`worker_group`). Each calls the Ray-free loop."""

from __future__ import annotations

import math
from typing import Callable

from raygap.config import TrialConfig
from raygap.study.messages import EvalPoint
from raygap.study.plan import ResourcePlan


def live_result(row: dict, cfg: TrialConfig) -> dict:
    """An evaluation point of `cfg`'s seed as a Tune result (messages.EvalPoint)."""
    return EvalPoint.of_row(row, cfg.train.seed, cfg.search.objectives).result()


_GAUGES: dict = {}
GAUGED = {
    "modality_gap": "the modality gap",
    "mean_r1": "mean R@1 of image-to-text and text-to-image",
    "tau": "the logit scale 1/T",
}  # ASCII: Ray requires it


def export_gauges(row: dict, cfg: TrialConfig, trial_id: str) -> None:
    """The running trial's gap, R@1 and τ as Ray metrics (`raygap_<name>`, tagged study, trial and
    seed): a cluster's Prometheus scrapes them from each node's metrics export port."""
    from ray.util.metrics import Gauge

    if not _GAUGES:
        for name, description in GAUGED.items():
            _GAUGES[name] = Gauge(f"raygap_{name}", description=description, tag_keys=("study", "trial", "seed"))
    tags = {"study": cfg.name, "trial": trial_id, "seed": str(cfg.train.seed)}
    for name, gauge in _GAUGES.items():
        if isinstance(row.get(name), (int, float)) and math.isfinite(row[name]):
            gauge.set(float(row[name]), tags=tags)


def keep_artifacts(artifacts_to: tuple[str, str] | None, seed: int):
    """The `keep` callback that writes a seed's artifacts into the results folder (every node
    reaches it), before the seed's record is reported; None outside a study."""
    if artifacts_to is None:
        return None
    from raygap import kept_files, results

    location, trial_id = artifacts_to

    def keep(kept) -> None:
        kept_files.record_artifacts(results.ResultsFolder(location), trial_id, seed, kept.weights, kept.embeddings, kept.shift)

    return keep


def train_in_trial(
    cfg: TrialConfig, plan: ResourcePlan, report: Callable[[dict], None], checkpoint=None, resume_from=None, artifacts_to=None
) -> dict:
    """A one-worker trial in the Tune trial's own process (Ray has set CUDA_VISIBLE_DEVICES to its GPU)."""
    import torch

    from raygap.trial_kind import train_or_simulate

    torch.set_num_threads(plan.threads_per_worker)
    device = torch.device("cuda", 0) if plan.use_gpu else torch.device("cpu")
    rows: list[dict] = list(resume_from["history"]) if resume_from else []

    def keep_and_report(row: dict) -> None:
        rows.append(row)
        report(row)

    final = train_or_simulate(
        cfg,
        keep_and_report,
        device=device,
        checkpoint=checkpoint,
        resume_from=resume_from,
        keep=keep_artifacts(artifacts_to, cfg.train.seed),
    )
    return {**final, "nodes": 1, "history_rows": rows}


def run_seed(
    cfg: TrialConfig, plan: ResourcePlan, checkpoint=None, resume_from: dict | None = None, artifacts_to: tuple[str, str] | None = None
) -> dict:
    """One seed in the Tune trial's own process: a one-worker trial or a theory simulation, where a
    worker group would cost more than it gives (`worker_group` trains the others). Each evaluation
    point of CLIP training is a Tune result as it is measured (`live_result`); a theory
    simulation's records arrive with its seed (they take milliseconds). `artifacts_to` (results
    folder, trial id): where the seed's artifacts go."""
    from ray import tune

    history: list[dict] = []
    if cfg.theory is not None:
        from raygap.trial_kind import train_or_simulate

        return {"final": train_or_simulate(cfg, history.append), "history": history}

    def report(row: dict) -> None:
        tune.report(live_result(row, cfg))
        export_gauges(row, cfg, tune.get_context().get_trial_id())

    final = train_in_trial(cfg, plan, report, checkpoint, resume_from, artifacts_to)
    # A resumed run's report callback saw only the rows after the checkpoint; train() kept them all.
    return {"final": final, "history": final.pop("history_rows")}
