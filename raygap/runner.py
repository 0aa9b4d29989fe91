"""The study engine: Ray Tune + Optuna search, a Ray Train TorchTrainer per trial. The only module
that imports ray.

Shape of a study:
- the head process (`run_study`) runs a Tuner whose search algorithm is OptunaSearch (multi-objective,
  SQLite-persisted) and whose callback (`StudyRecorder`) is the single writer of the results folder;
- each Tune trial is a light "driver" function that runs one TorchTrainer per seed and reports each
  seed's final metrics and history to Tune, then the seed means as the trial's final result;
- each Train worker calls the Ray-free `raygap.train.train` with its rank and world size.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import polars as pl
import ray
import ray.train
import ray.train.torch
import yaml
from ray import tune
from ray.train.torch import TorchTrainer
from ray.tune.search.optuna import OptunaSearch

from raygap import pareto, results
from raygap.evaluate import METRIC_NOTES
from raygap.search import make_sampler, number_of_trials, recorded_params, suggest_params
from raygap.spec import ResourcesSpec, SpecError, StudySpec, TrialConfig

DRIVER_CPUS = 0.1  # the driver only waits on its trainer; a whole CPU would deadlock a 2-core laptop
SUMMARY_METRICS = ["modality_gap", "uniformity", "mean_r1", "image_to_text_r1", "text_to_image_r1", "zero_shot_top1", "linear_probe_top1", "temperature"]


# ---------------------------------------------------------------------------------- resources
@dataclass(frozen=True)
class ResourcePlan:
    workers: int
    use_gpu: bool
    cpus_per_worker: float
    gpus_per_worker: float
    max_concurrent: int
    threads_per_worker: int
    placement: str = "PACK"

    def worker_resources(self) -> dict[str, float]:
        out = {"CPU": self.cpus_per_worker}
        if self.use_gpu:
            out["GPU"] = self.gpus_per_worker
        return out

    def describe(self) -> str:
        device = f"{self.gpus_per_worker:g} GPU + " if self.use_gpu else ""
        return (
            f"{self.workers} worker(s) per trial × ({device}{self.cpus_per_worker:.2f} CPU), driver {DRIVER_CPUS} CPU; "
            f"up to {self.max_concurrent} trial(s) at once"
        )


def plan_resources(spec: ResourcesSpec, cluster_cpus: float, cluster_gpus: float) -> ResourcePlan:
    """Fit trials to the cluster: on GPUs, GPUs // (workers × GPUs per worker) trials at once; on
    CPUs, whole cores per worker where possible and fractional shares otherwise, so that the
    driver plus its workers always fit (the default 1 CPU each deadlocks a 2-core machine)."""
    workers = spec.workers_per_trial
    use_gpu = spec.use_gpu if spec.use_gpu is not None else cluster_gpus >= 1
    if use_gpu:
        gpus = spec.gpus_per_worker or 1.0
        if workers * gpus > cluster_gpus:
            raise SpecError(f"resources: a trial needs {workers * gpus:g} GPUs but the cluster has {cluster_gpus:g}")
        concurrent = max(1, int(cluster_gpus // (workers * gpus)))
        cpus = spec.cpus_per_worker or max(0.5, min(4.0, (cluster_cpus - DRIVER_CPUS * concurrent) / (workers * concurrent)))
    else:
        gpus = 0.0
        concurrent = max(1, int(cluster_cpus // workers))  # about a core per worker where there are enough
        cpus = spec.cpus_per_worker or min(1.0, (cluster_cpus - DRIVER_CPUS * concurrent) / (workers * concurrent))
        if workers * cpus + DRIVER_CPUS > cluster_cpus:
            raise SpecError(f"resources: a trial needs {workers * cpus + DRIVER_CPUS:g} CPUs but the cluster has {cluster_cpus:g}")
        concurrent = max(1, min(concurrent, int(cluster_cpus // (workers * cpus + DRIVER_CPUS))))
    threads = max(1, int(cpus + 0.5))
    return ResourcePlan(workers, use_gpu, round(cpus, 3), gpus, concurrent, threads, spec.placement)


# ------------------------------------------------------------------------------ Train worker
def _train_worker(config: dict) -> None:
    """One Ray Train worker: the core training loop with this worker's rank."""
    import torch

    from raygap.train import train

    torch.set_num_threads(config["threads"])
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    cfg = TrialConfig.model_validate(config["trial"])
    history: list[dict] = []
    final = train(cfg, history.append, rank=rank, world_size=world_size, device=ray.train.torch.get_device())
    final["nodes"] = _count_nodes(world_size)
    # Ray Train (V2) returns only metrics that come with a checkpoint: rank 0 attaches its results.
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            Path(folder, "result.json").write_text(json.dumps({"final": final, "history": history}))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"modality_gap": final["modality_gap"], "mean_r1": final["mean_r1"]}, checkpoint=checkpoint)


def _count_nodes(world_size: int) -> int:
    """How many distinct Ray nodes this trial's workers ran on."""
    import torch.distributed as dist

    node = ray.get_runtime_context().get_node_id()
    nodes = [node] * world_size
    if world_size > 1:
        dist.all_gather_object(nodes, node)
    return len(set(nodes))


# ----------------------------------------------------------------------------------- driver
def _drive_trial(params: dict, *, spec_path: str, spec_raw: dict, plan: ResourcePlan, repeats: int, storage: str) -> None:
    """A Tune trial: one TorchTrainer per seed; each seed's results go to Tune as they finish.

    Every report carries the objectives (Tune checks them): a seed's own values, NaN for a failed
    seed, and the seed means in the last report, which is what Optuna is told.
    """
    spec = StudySpec(Path(spec_path), spec_raw)
    base = spec.resolve(params, check_paths=False)
    objectives = list(base.search.objectives)
    trial_id = tune.get_context().get_trial_id()
    finals = []
    for repeat in range(repeats):
        seed = base.train.seed + repeat
        cfg = _with_seed(base, seed, repeat)
        started = time.perf_counter()
        seed_report = {"trial_id": trial_id, "seed": seed, "params": recorded_params(params), "config": cfg.model_dump(mode="json")}
        try:
            outcome = _run_seed(cfg, plan, storage, f"{trial_id}-seed{seed}")
        except Exception as exc:  # the seed failed: record why, tell Tune (and so Optuna) the trial failed
            error = f"{type(exc).__name__}: {exc}"
            failed = {**seed_report, "status": "failed", "error": error}
            tune.report({"event": "seed", "payload": json.dumps(failed), **{k: math.nan for k in objectives}})
            raise RuntimeError(f"seed {seed} failed: {error}") from None
        final = {**outcome["final"], "wall_seconds": time.perf_counter() - started}
        finals.append(final)
        completed = {**seed_report, "status": "completed", "final": final, "history": outcome["history"]}
        tune.report({"event": "seed", "payload": json.dumps(completed), **{k: final[k] for k in objectives}})
    means = {k: sum(f[k] for f in finals) / len(finals) for k, v in finals[0].items() if isinstance(v, (int, float))}
    tune.report({"event": "done", **means})


def _with_seed(base: TrialConfig, seed: int, repeat: int) -> TrialConfig:
    update = {"train": base.train.model_copy(update={"seed": seed})}
    if base.theory is not None:
        update["theory"] = base.theory.model_copy(update={"seed": base.theory.seed + repeat})
    return base.model_copy(update=update)


def _run_seed(cfg: TrialConfig, plan: ResourcePlan, storage: str, name: str) -> dict:
    """One seed: a TorchTrainer over the plan's workers, or, for a theory trial, the simulation
    right here in the driver (it takes seconds on one core: a worker group would cost more)."""
    if cfg.theory is not None:
        from raygap.theory import run_theory_trial

        history: list[dict] = []
        return {"final": run_theory_trial(cfg, history.append), "history": history}
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={"trial": cfg.model_dump(mode="json"), "threads": plan.threads_per_worker},
        scaling_config=ray.train.ScalingConfig(
            num_workers=plan.workers,
            use_gpu=plan.use_gpu,
            resources_per_worker=plan.worker_resources(),
            placement_strategy=plan.placement,
        ),
        run_config=ray.train.RunConfig(name=name, storage_path=storage),
    )
    result = trainer.fit()
    with result.checkpoint.as_directory() as folder:
        return json.loads(Path(folder, "result.json").read_text())


# ----------------------------------------------------------------------------- results writer
class StudyRecorder(tune.Callback):
    """The single writer of the results folder: rows land as seeds finish, the front as trials do."""

    def __init__(self, folder: results.ResultsFolder, objectives: dict[str, str], total: int, echo: Callable[[str], None]):
        self.folder, self.objectives, self.total, self.echo = folder, objectives, total, echo
        self.recorded: set[str] = set()
        self.completed = self.failed = 0
        self.started = time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("event") == "seed":
            self._record_seed(json.loads(result["payload"]))
        elif result.get("event") == "done":
            self.completed += 1
            front = self._update_front()
            self._progress(trials, trial, f"trial {trial.trial_id} done: " + ", ".join(f"{k} {result[k]:.3f}" for k in self.objectives) + f" · front {front} point(s)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        if trial.trial_id not in self.recorded:  # failed before any seed finished: record the error
            error = str(trial.get_error() or "unknown error").strip().splitlines()[-1]
            row = results.trial_row(trial.trial_id, -1, recorded_params(trial.config), {}, "failed", error=error)
            self.folder.append(results.TRIALS, [row])
        self._progress(trials, trial, f"trial {trial.trial_id} failed")

    def _record_seed(self, report: dict) -> None:
        self.recorded.add(report["trial_id"])
        row = results.trial_row(
            report["trial_id"], report["seed"], report["params"], report["config"], report["status"], report.get("final"), report.get("error")
        )
        self.folder.append(results.TRIALS, [row], METRIC_NOTES)
        if report.get("history"):
            history = results.history_rows(report["trial_id"], report["seed"], report["history"])
            self.folder.append(results.HISTORY, history, METRIC_NOTES)

    def _update_front(self) -> int:
        summary = pareto.summarize_trials(self.folder.read(results.TRIALS), self.objectives, SUMMARY_METRICS)
        self.folder.write_parquet(results.PARETO, summary, metadata={"objectives": json.dumps(self.objectives)})
        return summary.filter(pl.col("rank") == 1).height

    def _progress(self, trials, finished, message: str) -> None:
        running = sum(t.status == "RUNNING" and t is not finished for t in trials)
        elapsed = time.time() - self.started
        self.echo(f"[{elapsed:6.0f}s] {message} · {self.completed + self.failed}/{self.total} finished, {running} running, {self.failed} failed")


# -------------------------------------------------------------------------------------- study
def start_ray(address: str | None, dashboard: bool = True, num_cpus: int | None = None) -> str | None:
    """Join `address`, or start a local cluster whose dashboard listens on 127.0.0.1 only."""
    if address:
        context = ray.init(address=address, logging_level="ERROR")
    else:
        context = ray.init(
            num_cpus=num_cpus, include_dashboard=dashboard, dashboard_host="127.0.0.1", logging_level="ERROR", log_to_driver=False
        )
    return context.dashboard_url or None


def _echo(line: str) -> None:
    print(line, flush=True)  # progress must show up promptly in logs too


def run_study(
    spec: StudySpec,
    folder: results.ResultsFolder | str | Path,
    address: str | None = None,
    echo: Callable[[str], None] = _echo,
    dashboard: bool = True,
    num_cpus: int | None = None,
) -> pl.DataFrame:
    """Run the study to the end; return the per-configuration summary with Pareto ranks."""
    settings = spec.resolve(check_paths=True)
    folder = folder if isinstance(folder, results.ResultsFolder) else results.ResultsFolder(folder)
    total = number_of_trials(spec)
    started_here = not ray.is_initialized()
    if started_here:
        url = start_ray(address, dashboard=dashboard, num_cpus=num_cpus)
        echo(f"Ray dashboard: http://{url}" if url else "Ray dashboard: off")
    try:
        cluster = ray.cluster_resources()
        plan = plan_resources(settings.resources, cluster.get("CPU", 0), cluster.get("GPU", 0))
        echo(f"{spec.name}: {total} trial(s) × {settings.search.repeats} seed(s); {plan.describe()}")
        folder.write_text(results.SPEC, yaml.safe_dump(spec.raw, sort_keys=False))
        optuna_db = optuna_path(folder, spec.name)
        optuna_db.parent.mkdir(parents=True, exist_ok=True)

        objectives = settings.search.objectives
        searcher = OptunaSearch(
            space=functools.partial(suggest_params, raw=spec.raw, file=str(spec.path)),
            metric=list(objectives),
            mode=list(objectives.values()),
            sampler=make_sampler(spec),
            study_name=spec.name,
            storage=optuna.storages.RDBStorage(f"sqlite:///{optuna_db}"),
        )
        driver = tune.with_parameters(
            _drive_trial,
            spec_path=str(spec.path),
            spec_raw=spec.raw,
            plan=plan,
            repeats=settings.search.repeats,
            storage=folder.uri("ray/train"),
        )
        tuner = tune.Tuner(
            tune.with_resources(driver, {"CPU": DRIVER_CPUS}),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=total, max_concurrent_trials=plan.max_concurrent),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=folder.uri("ray"),
                callbacks=[StudyRecorder(folder, objectives, total, echo)],
                verbose=0,
            ),
        )
        tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    return folder.read(results.PARETO) if folder.exists(results.PARETO) else pl.DataFrame()


def optuna_path(folder: results.ResultsFolder, name: str) -> Path:
    """The Optuna study's SQLite file: in the results folder, or locally when that is a URI."""
    return Path(folder.path if folder.is_local else Path("results") / name) / "optuna.db"


def plan_for_this_machine(spec: StudySpec) -> ResourcePlan:
    """The plan a local run would use, without starting Ray (for --dry-run)."""
    import torch

    settings = spec.resolve(check_paths=False)
    return plan_resources(settings.resources, float(os.cpu_count() or 1), float(torch.cuda.device_count()))
