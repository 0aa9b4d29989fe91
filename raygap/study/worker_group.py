"""A trial's seeds in a Ray Train worker group (TorchTrainer): one group trains the trial's seeds one
after the other, so a trial pays the group's start (seconds on a laptop) once rather than per seed.

Every report of the group goes to the Tune trial (TuneReportCallback): the evaluation points as
they are measured, each seed's record as it ends (`messages.seed_result`) and, after the last seed,
the trial's means (`messages.done_result`), in that order through one channel. Rank 0's
checkpoints carry the group's progress (`progress.json`: the next seed, the finished seeds' finals)
and, mid-seed, the training state: a group that Ray Train restarts after a worker died, or that a
restarted Tune trial starts again under the same name, continues where it stopped and repeats no
finished seed."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import ray
import ray.train

from raygap.config import TrialConfig
from raygap.seed_record import SeedRecord
from raygap.study import library_internals, messages
from raygap.study.messages import Kind, carrier
from raygap.study.plan import ResourcePlan
from raygap.study.worker import export_gauges, keep_artifacts, live_result

PROGRESS = "progress.json"
TRAINING_STATE = "training.pt"


@dataclass(frozen=True)
class GroupJob:
    """What one worker group trains: `seeds[first:last]` of a trial (each seed's configuration as
    JSON), after `finals_before` (the finals of the trial's seeds before `first`)."""

    trial_id: str
    params: dict
    """The trial's searched values (recorded with each seed)."""
    seeds: list[dict]
    first: int
    last: int
    finals_before: list[dict] = field(default_factory=list)
    held: dict = field(default_factory=dict)
    """What the trial holds (plan.held()), for CPU/GPU-hours."""
    threads: int = 1
    artifacts_to: tuple[str, str] | None = None

    def seed_config(self, index: int) -> TrialConfig:
        return TrialConfig.model_validate(self.seeds[index])


@dataclass(frozen=True)
class Progress:
    """How far a group got: the index of the seed it trains next and the finals of those before."""

    next: int
    finals: list[dict]
    records: list[dict] = field(default_factory=list)
    """The finished seeds' records (seed_record.SeedRecord as JSON), for a trial that continues this group's runs."""

    def write(self, folder: Path) -> None:
        Path(folder, PROGRESS).write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, folder: Path) -> Progress:
        return cls(**json.loads(Path(folder, PROGRESS).read_text()))


def _train_group(config: dict) -> None:
    """One Ray Train worker: the trial's seeds `first..last` in sequence with this worker's rank."""
    import torch

    library_internals.quiet_train_reports()
    job = GroupJob(**config["job"])
    torch.set_num_threads(job.threads)
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    progress, resume_from = _restore(job)
    finals, records = list(progress.finals), [_own(stored, job) for stored in progress.records]
    for index in range(progress.next, job.last):
        cfg = job.seed_config(index)
        started, started_at = time.perf_counter(), time.time()

        def save(state: dict, index: int = index) -> None:
            def write(folder: Path) -> None:
                Progress(index, finals, records=records).write(folder)
                torch.save(state, folder / TRAINING_STATE)

            _report_from_rank0(rank, carrier(Kind.WORKER_CHECKPOINT, cfg.search.objectives), write)

        final, history = _train_seed(cfg, job, rank, world_size, save, resume_from if index == progress.next else None)
        final = {**final, "wall_seconds": time.perf_counter() - started, "seed_started_at": started_at, **job.held}
        finals.append(final)
        record = SeedRecord(job.trial_id, cfg.train.seed, job.params, job.seeds[index], "completed", final=final, history=history)
        records.append(asdict(record))
        done = Progress(index + 1, finals, records=records)
        _report_from_rank0(rank, _same_on_every_rank(messages.seed_result(record, cfg.search.objectives), world_size), done.write)
    if job.last == len(job.seeds) and finals:  # again after a restart: the head counts a trial's means once
        _report_from_rank0(rank, messages.done_result(seed_means(finals)), Progress(job.last, finals, records=records).write)


def _own(record: dict, job: GroupJob) -> dict:
    """A finished seed's record from the group's checkpoint, reported again as this trial's: a
    stopped trial's (whose runs this trial continues, and whose rows the resume dropped), or this
    trial's own, whose report may have been lost between the checkpoint and the Tune trial (the
    head keeps one row per trial and seed). Every rank reports it (the report is collective), from
    the same checkpoint."""
    record = {**record, "trial_id": job.trial_id}
    objectives = job.seed_config(0).search.objectives
    ray.train.report(messages.seed_result(SeedRecord(**record), objectives))
    return record


def seed_means(finals: list[dict]) -> dict[str, float]:
    """The mean over seeds of every number their finals all have (what Optuna is told); a number
    some seeds lack (`resumed_from_step` of a seed that never stopped is null) has no mean."""

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return {k: sum(f[k] for f in finals) / len(finals) for k in finals[0] if all(number(f.get(k)) for f in finals)}


def _train_seed(cfg: TrialConfig, job: GroupJob, rank: int, world_size: int, save, resume_from: dict | None) -> tuple[dict, list]:
    """One seed on this worker: the core loop; every evaluation point goes to the Tune trial."""
    import ray.train.torch

    from raygap.clip.train import train

    history: list[dict] = list(resume_from["history"]) if resume_from else []

    def report(row: dict) -> None:
        history.append(row)
        ray.train.report(live_result(row, cfg))  # every rank calls it: Ray Train's report is collective
        if rank == 0:
            export_gauges(row, cfg, job.trial_id)

    final = train(
        cfg,
        report,
        rank=rank,
        world_size=world_size,
        device=ray.train.torch.get_device(),
        checkpoint=save if cfg.train.checkpoint_interval else None,
        resume_from=resume_from,
        keep=keep_artifacts(job.artifacts_to, cfg.train.seed),
    )
    final["nodes"] = _count_nodes(world_size)
    return final, history


def _restore(job: GroupJob) -> tuple[Progress, dict | None]:
    """Where this group starts: its latest checkpoint's progress and training state (after a
    restart), or the job's first seed."""
    import torch

    restored = ray.train.get_checkpoint()
    if restored is None:
        return Progress(job.first, list(job.finals_before)), None
    with restored.as_directory() as folder:
        if not Path(folder, PROGRESS).exists():  # a run from before progress was kept: start afresh
            return Progress(job.first, list(job.finals_before)), None
        state = Path(folder, TRAINING_STATE)
        training = torch.load(state, weights_only=True, map_location="cpu") if state.exists() else None
        return Progress.read(Path(folder)), training


def _same_on_every_rank(metrics: dict, world_size: int) -> dict:
    """Rank 0's metrics on every rank: the Tune trial is told one rank's report of a collective call."""
    if world_size == 1:
        return metrics
    import torch.distributed as dist

    carried = [metrics]
    dist.broadcast_object_list(carried, src=0)
    return carried[0]


def _report_from_rank0(rank: int, metrics: dict, write: Callable[[Path], object]) -> None:
    """ray.train.report on every rank (a collective call), with a checkpoint that rank 0 fills
    by `write(folder)`: the ranks hold the same state, one copy is kept."""
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            write(Path(folder))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def _count_nodes(world_size: int) -> int:
    """How many distinct Ray nodes this trial's workers ran on."""
    import torch.distributed as dist

    node = ray.get_runtime_context().get_node_id()
    nodes = [node] * world_size
    if world_size > 1:
        dist.all_gather_object(nodes, node)
    return len(set(nodes))


def run_group(job: GroupJob, plan: ResourcePlan, storage: str, name: str, max_restarts: int) -> Progress:
    """Train `job` in a worker group; returns its progress. A group that fails more than
    `max_restarts` times in a row without finishing a seed raises; one that failed after finishing
    a seed starts again from its checkpoint with a fresh count, so each seed gets `max_restarts`
    restarts at least (and at most twice that)."""
    started = latest_progress(storage, name)
    while True:
        try:
            return _fit(job, plan, storage, name, max_restarts)
        except Exception:
            now = latest_progress(storage, name)
            if now is None or now.next <= (started.next if started else job.first):
                raise
            started = now


def latest_progress(storage: str, name: str) -> Progress | None:
    """The progress in a group's latest checkpoint under `storage/name`; None before any."""
    try:
        checkpoint = ray.train.Result.from_path(f"{storage.rstrip('/')}/{name}").checkpoint
    except Exception:  # no run of that name yet
        return None
    if checkpoint is None:
        return None
    try:
        with checkpoint.as_directory() as folder:
            return Progress.read(Path(folder))
    except (OSError, ValueError, TypeError):  # no progress.json (a run from before it was kept), or cut short
        return None


def _fit(job: GroupJob, plan: ResourcePlan, storage: str, name: str, max_restarts: int) -> Progress:
    from ray.train.torch import TorchTrainer  # imports torch: only in the trial's process, never on the head
    from ray.tune.integration.ray_train import TuneReportCallback

    trainer = TorchTrainer(
        _train_group,
        train_loop_config={"job": asdict(job)},
        scaling_config=ray.train.ScalingConfig(
            num_workers=plan.workers,
            use_gpu=plan.use_gpu,
            resources_per_worker=plan.worker_resources(),
            placement_strategy=plan.placement,
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=max_restarts),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            # Ray types this with Train V1's RunConfig (Tune callbacks); Train V2's RunConfig takes this one.
            callbacks=[TuneReportCallback()],  # type: ignore[list-item]
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"{name}: the worker group ended without reporting its progress")
    with result.checkpoint.as_directory() as folder:
        return Progress.read(Path(folder))
