"""Where a seed trains: a Ray Train worker group (TorchTrainer), the Tune trial's own process for a
one-worker trial, or the driver for a theory simulation. Each calls the Ray-free loop."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Callable

import ray
import ray.train

from raygap.config import TrialConfig
from raygap.study.messages import EvalPoint, Kind, carrier
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


def _train_worker(config: dict) -> None:
    """One Ray Train worker: the core training loop with this worker's rank. With
    train.checkpoint_interval, the group reports rank 0's training state every that many steps;
    a group that Ray Train restarts after a worker died continues from the latest one. With
    `live`, every evaluation point goes to the Tune trial as it is measured (TuneReportCallback)."""
    import ray.train.torch
    import torch

    from raygap.clip.train import train

    torch.set_num_threads(config["threads"])
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    cfg = TrialConfig.model_validate(config["trial"])
    resume_from = None
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            resume_from = torch.load(Path(folder, "training.pt"), weights_only=True, map_location="cpu")

    def save(state: dict) -> None:
        checkpoint = carrier(Kind.WORKER_CHECKPOINT, cfg.search.objectives)
        _report_from_rank0(rank, checkpoint, lambda folder: torch.save(state, folder / "training.pt"))

    history: list[dict] = list(resume_from["history"]) if resume_from else []

    def report(row: dict) -> None:
        history.append(row)
        if config["live"]:
            ray.train.report(live_result(row, cfg))  # every rank calls it: Ray Train's report is collective
            if rank == 0:
                export_gauges(row, cfg, config["trial_id"])

    final = train(
        cfg,
        report,
        rank=rank,
        world_size=world_size,
        device=ray.train.torch.get_device(),
        checkpoint=save if cfg.train.checkpoint_interval else None,
        resume_from=resume_from,
        keep=keep_artifacts(config["artifacts_to"], cfg.train.seed),
    )
    final["nodes"] = _count_nodes(world_size)
    # Ray Train (V2) returns only metrics that come with a checkpoint: rank 0 attaches its results.
    result = json.dumps({"final": final, "history": history})
    carried = carrier(Kind.WORKER_RESULT, cfg.search.objectives)
    _report_from_rank0(rank, carried, lambda folder: (folder / "result.json").write_text(result))


def _report_from_rank0(rank: int, metrics: dict, write: Callable[[Path], object]) -> None:
    """ray.train.report on every rank (a collective call), with a checkpoint that rank 0 fills
    by `write(folder)`: the ranks hold the same state, one copy is kept."""
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            write(Path(folder))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def train_in_trial(
    cfg: TrialConfig, plan: ResourcePlan, report: Callable[[dict], None], checkpoint=None, resume_from=None, artifacts_to=None
) -> dict:
    """A one-worker trial in the Tune trial's own process (Ray has set CUDA_VISIBLE_DEVICES to its GPU)."""
    import torch

    from raygap.trial_kind import run_trial

    torch.set_num_threads(plan.threads_per_worker)
    device = torch.device("cuda", 0) if plan.use_gpu else torch.device("cpu")
    rows: list[dict] = list(resume_from["history"]) if resume_from else []
    final = run_trial(
        cfg,
        lambda row: (rows.append(row), report(row)),
        device=device,
        checkpoint=checkpoint,
        resume_from=resume_from,
        keep=keep_artifacts(artifacts_to, cfg.train.seed),
    )
    return {**final, "nodes": 1, "history_rows": rows}


def _count_nodes(world_size: int) -> int:
    """How many distinct Ray nodes this trial's workers ran on."""
    import torch.distributed as dist

    node = ray.get_runtime_context().get_node_id()
    nodes = [node] * world_size
    if world_size > 1:
        dist.all_gather_object(nodes, node)
    return len(set(nodes))


def run_seed(
    cfg: TrialConfig,
    plan: ResourcePlan,
    storage: str,
    name: str,
    checkpoint=None,
    resume_from: dict | None = None,
    live: bool = False,
    artifacts_to: tuple[str, str] | None = None,
) -> dict:
    """One seed: a TorchTrainer over the plan's workers; or right here in the trial process for a
    one-worker trial or a theory simulation, where a worker group would cost more than it gives.
    A worker group restarts from its latest training-state checkpoint when a worker dies.
    `artifacts_to` (results folder, trial id): where the seed's artifacts go. With
    `live` (inside a Tune trial), each evaluation point of CLIP training is a Tune result
    (`live_result`); a theory simulation's records arrive with its seed (they take milliseconds)."""
    from ray import tune

    history: list[dict] = []
    if cfg.theory is not None:
        from raygap.trial_kind import run_trial

        return {"final": run_trial(cfg, history.append), "history": history}
    if plan.in_trial:

        def report(row: dict) -> None:
            if live:
                tune.report(live_result(row, cfg))
                export_gauges(row, cfg, tune.get_context().get_trial_id())

        final = train_in_trial(cfg, plan, report, checkpoint, resume_from, artifacts_to)
        # A resumed run's report callback saw only the rows after the checkpoint; train() kept them all.
        return {"final": final, "history": final.pop("history_rows")}
    from ray.train.torch import TorchTrainer  # imports torch: only in the trial's process, never on the head
    from ray.tune.integration.ray_train import TuneReportCallback

    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "trial": cfg.model_dump(mode="json"),
            "threads": plan.threads_per_worker,
            "live": live,
            "trial_id": tune.get_context().get_trial_id() if live else None,
            "artifacts_to": artifacts_to,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=plan.workers,
            use_gpu=plan.use_gpu,
            resources_per_worker=plan.worker_resources(),
            placement_strategy=plan.placement,
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_restarts),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            callbacks=[TuneReportCallback()] if live else [],
        ),
    )
    result = trainer.fit()
    with result.checkpoint.as_directory() as folder:
        return json.loads(Path(folder, "result.json").read_text())
