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

from raygap import catalog, pareto, results, study_folder
from raygap.search import make_sampler, number_of_trials, recorded_params, suggest_params
from raygap.spec import ResourcesSpec, SpecError, StudySpec, TrialConfig

DRIVER_CPUS = 0.1  # the driver only waits on its trainer; a whole CPU would deadlock a 2-core laptop


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
    in_trial: bool = False
    """Train inside the Tune trial process instead of starting a worker group."""

    def trial_resources(self) -> dict[str, float]:
        """What the Tune trial itself holds: a worker's share when it trains in-process."""
        return self.worker_resources() if self.in_trial else {"CPU": DRIVER_CPUS}

    def worker_resources(self) -> dict[str, float]:
        out = {"CPU": self.cpus_per_worker}
        if self.use_gpu:
            out["GPU"] = self.gpus_per_worker
        return out

    def describe(self) -> str:
        device = f"{self.gpus_per_worker:g} GPU + " if self.use_gpu else ""
        if self.in_trial:
            return f"1 worker per trial, in the trial process ({device}{self.cpus_per_worker:.2f} CPU); up to {self.max_concurrent} trial(s) at once"
        return (
            f"{self.workers} worker(s) per trial × ({device}{self.cpus_per_worker:.2f} CPU), driver {DRIVER_CPUS} CPU; "
            f"up to {self.max_concurrent} trial(s) at once"
        )


def study_plan(settings: TrialConfig, cluster_cpus: float, cluster_gpus: float) -> ResourcePlan:
    """The plan of a study's trials. A theory simulation runs on one CPU in its trial process
    (float64, no model): `resources` does not apply, and GPUs do not limit how many run at once."""
    if settings.theory is not None:
        return plan_resources(ResourcesSpec(use_gpu=False), cluster_cpus, cluster_gpus)
    return plan_resources(settings.resources, cluster_cpus, cluster_gpus)


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
    in_trial = workers == 1 and spec.worker_group == "auto"
    if in_trial and not use_gpu and not spec.cpus_per_worker:
        cpus = min(1.0, cluster_cpus / concurrent)  # no separate driver to leave room for
    return ResourcePlan(workers, use_gpu, round(cpus, 3), gpus, concurrent, threads, spec.placement, in_trial)


# ------------------------------------------------------------------------------ Train worker
def _train_worker(config: dict) -> None:
    """One Ray Train worker: the core training loop with this worker's rank. With
    train.checkpoint_interval, the group reports rank 0's training state every that many steps;
    a group that Ray Train restarts after a worker died continues from the latest one."""
    import torch

    from raygap.train import train

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
        _report_from_rank0(rank, {"step": state["step"]}, lambda folder: torch.save(state, folder / "training.pt"))

    history: list[dict] = list(resume_from["history"]) if resume_from else []
    final = train(cfg, history.append, rank=rank, world_size=world_size, device=ray.train.torch.get_device(),
                  checkpoint=save if cfg.train.checkpoint_interval else None, resume_from=resume_from)  # fmt: skip
    final["nodes"] = _count_nodes(world_size)
    # Ray Train (V2) returns only metrics that come with a checkpoint: rank 0 attaches its results.
    result = json.dumps({"final": final, "history": history})
    _report_from_rank0(rank, {"modality_gap": final["modality_gap"], "mean_r1": final["mean_r1"]}, lambda folder: (folder / "result.json").write_text(result))


def _report_from_rank0(rank: int, metrics: dict, write: Callable[[Path], object]) -> None:
    """ray.train.report on every rank (a collective call), with a checkpoint that rank 0 fills
    by `write(folder)`: the ranks hold the same state, one copy is kept."""
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            write(Path(folder))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def _train_in_trial(cfg: TrialConfig, plan: ResourcePlan, report: Callable[[dict], None], checkpoint=None, resume_from=None) -> dict:
    """A one-worker trial in the Tune trial's own process (Ray has set CUDA_VISIBLE_DEVICES to its GPU)."""
    import torch

    from raygap.train import train

    torch.set_num_threads(plan.threads_per_worker)
    device = torch.device("cuda", 0) if plan.use_gpu else torch.device("cpu")
    rows: list[dict] = list(resume_from["history"]) if resume_from else []
    final = train(cfg, lambda row: (rows.append(row), report(row)), device=device, checkpoint=checkpoint, resume_from=resume_from)
    return {**final, "nodes": 1, "history_rows": rows}


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
    """A Tune trial: its seeds one after the other; each seed's results go to Tune as they finish.

    Every report carries the objectives (Tune checks them): a seed's own values, NaN for a failed
    seed or a checkpoint, and the seed means in the last report, which is what Optuna is told.
    A failed seed ends the trial without raising, so Tune restarts only trials whose process died;
    a restarted trial continues from its last checkpoint (finished seeds and the training state).
    """
    spec = StudySpec(Path(spec_path), spec_raw)
    base = spec.resolve(params, check_paths=False)
    objectives = list(base.search.objectives)
    trial_id = tune.get_context().get_trial_id()
    resources = plan.trial_resources() if plan.in_trial else {"CPU": DRIVER_CPUS + plan.workers * plan.cpus_per_worker, "GPU": plan.workers * plan.gpus_per_worker}
    held = {"cpus_held": resources.get("CPU", 0.0), "gpus_held": resources.get("GPU", 0.0)}  # for CPU/GPU-hours in reports
    restored = _restore_trial()
    first, finals = (restored["repeat"], restored["finals"]) if restored else (0, [])
    no_objectives = {k: math.nan for k in objectives}
    for repeat in range(first, repeats):
        seed = base.train.seed + repeat
        cfg = _with_seed(base, seed, repeat)
        started, started_at = time.perf_counter(), time.time()
        seed_report = {"trial_id": trial_id, "seed": seed, "params": recorded_params(params), "config": cfg.model_dump(mode="json")}

        def save(state: dict, repeat=repeat) -> None:
            _report({"event": "checkpoint", "step": state["step"], **no_objectives}, {"repeat": repeat, "finals": finals}, state)

        try:
            resume_from = restored["state"] if restored and repeat == first else None
            outcome = _run_seed(cfg, plan, storage, f"{trial_id}-seed{seed}", save if cfg.train.checkpoint_interval else None, resume_from)
        except Exception as exc:  # the seed failed: record why; the NaN objectives tell Optuna the trial failed
            failed = {**seed_report, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            _report({"event": "seed", "payload": json.dumps(failed), **no_objectives})
            return
        final = {**outcome["final"], "wall_seconds": time.perf_counter() - started, "seed_started_at": started_at, **held}
        finals.append(final)
        completed = {**seed_report, "status": "completed", "final": final, "history": outcome["history"]}
        # The seed's report carries a checkpoint past it: a restart never runs (or records) it twice.
        _report({"event": "seed", "payload": json.dumps(completed), **{k: final[k] for k in objectives}}, {"repeat": repeat + 1, "finals": finals})
    means = {k: sum(f[k] for f in finals) / len(finals) for k, v in finals[0].items() if isinstance(v, (int, float))}
    tune.report({"event": "done", **means})


def _report(metrics: dict, trial_state: dict | None = None, training_state: dict | None = None) -> None:
    """tune.report, with a checkpoint when there is state: trial.json (plain JSON) and the
    training state (tensors, saved with torch.save and read back with weights_only=True)."""
    if trial_state is None:
        tune.report(metrics)
        return
    import torch

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "trial.json").write_text(json.dumps(trial_state))
        if training_state is not None:
            torch.save(training_state, Path(folder, "training.pt"))
        tune.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def _restore_trial() -> dict | None:
    """The restarted trial's last checkpoint: {"repeat", "finals", "state"}; None on a first start."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    import torch

    with checkpoint.as_directory() as folder:
        trial = json.loads(Path(folder, "trial.json").read_text())
        state = Path(folder, "training.pt")
        trial["state"] = torch.load(state, weights_only=True) if state.exists() else None  # never unpickle a results folder
    return trial


def _with_seed(base: TrialConfig, seed: int, repeat: int) -> TrialConfig:
    update = {"train": base.train.model_copy(update={"seed": seed})}
    if base.theory is not None:
        update["theory"] = base.theory.model_copy(update={"seed": base.theory.seed + repeat})
    return base.model_copy(update=update)


def _run_seed(cfg: TrialConfig, plan: ResourcePlan, storage: str, name: str, checkpoint=None, resume_from: dict | None = None) -> dict:
    """One seed: a TorchTrainer over the plan's workers; or right here in the trial process for a
    one-worker trial or a theory simulation, where a worker group would cost more than it gives.
    A worker group restarts from its latest training-state checkpoint when a worker dies."""
    history: list[dict] = []
    if cfg.theory is not None:
        from raygap.theory import run_theory_trial

        return {"final": run_theory_trial(cfg, history.append), "history": history}
    if plan.in_trial:
        final = _train_in_trial(cfg, plan, history.append, checkpoint, resume_from)
        # A resumed run's report callback saw only the rows after the checkpoint; train() kept them all.
        return {"final": final, "history": final.pop("history_rows")}
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={"trial": cfg.model_dump(mode="json"), "threads": plan.threads_per_worker},
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
        ),
    )
    result = trainer.fit()
    with result.checkpoint.as_directory() as folder:
        return json.loads(Path(folder, "result.json").read_text())


TUNE_TRIAL_ID = "tune_trial_id"  # Optuna user attribute


class FailureAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna a trial failed when it ended with NaN objectives (a failed
    seed ends its trial without raising, so that Tune restarts only trials whose process died),
    and records each Optuna trial's Tune trial id."""

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        if trial_id in self._ot_trials:  # a resume matches Optuna's trial to the rows Tune's trial wrote
            self._ot_trials[trial_id].set_user_attr(TUNE_TRIAL_ID, trial_id)
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        if result and any(not isinstance(result.get(m), (int, float)) or math.isnan(result[m]) for m in metrics):
            result, error = None, True
        super().on_trial_complete(trial_id, result, error)


# ----------------------------------------------------------------------------- results writer
class StudyRecorder(tune.Callback):
    """The single writer of the results folder: rows land as seeds finish, the front as trials do."""

    def __init__(self, folder: results.ResultsFolder, objectives: dict[str, str], total: int, echo: Callable[[str], None], finished: int = 0):
        self.folder, self.objectives, self.total, self.echo = folder, objectives, total, echo
        self.recorded: set[str] = set()
        self.recorded_seeds: set[tuple[str, int]] = set()
        self.trial_started_at: dict[str, float] = {}
        self.completed, self.failed = finished, 0  # a resumed study counts the trials it kept
        self.started = time.time()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.trial_started_at.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("event") == "seed":
            report = json.loads(result["payload"])
            if (report["trial_id"], report["seed"]) in self.recorded_seeds:
                return  # a restarted trial's repeat of a seed already written
            self._record_seed(report)
            if report["status"] == "failed":
                self.failed += 1
                self._progress(trials, trial, f"trial {trial.trial_id} failed: {report['error']}")
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
        self.recorded_seeds.add((report["trial_id"], report["seed"]))
        # Wall-clock stamps on the head, for the per-trial overhead in `raygap bench`.
        stamps = {"trial_started_at": self.trial_started_at.get(report["trial_id"]), "recorded_at": time.time()}
        final = report.get("final") and {**report["final"], **stamps}
        row = results.trial_row(report["trial_id"], report["seed"], report["params"], report["config"], report["status"], final, report.get("error"))
        self.folder.append(results.TRIALS, [row], catalog.MEASURED)
        if report.get("history"):
            history = results.history_rows(report["trial_id"], report["seed"], report["history"])
            self.folder.append(results.HISTORY, history, catalog.MEASURED)

    def _update_front(self) -> int:
        summary = pareto.summarize_trials(self.folder.read(results.TRIALS), self.objectives, catalog.SUMMARIZED)
        self.folder.write_parquet(results.PARETO, summary, metadata={"objectives": json.dumps(self.objectives)})
        return summary.filter(pl.col("rank") == 1).height

    def _progress(self, trials, finished, message: str) -> None:
        running = sum(t.status == "RUNNING" and t is not finished for t in trials)
        elapsed = time.time() - self.started
        self.echo(f"[{elapsed:6.0f}s] {message} · {self.completed + self.failed}/{self.total} finished, {running} running, {self.failed} failed")


# -------------------------------------------------------------------------------------- study
# Ray Train's controller polls its workers every 2 s by default, so a finished trainer waits up to
# 2 s to notice; polling a few workers is cheap. Set before Ray starts, so every process inherits it.
TRAIN_ENV_DEFAULTS = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}


def start_ray(address: str | None, dashboard: bool = True, num_cpus: int | None = None) -> str | None:
    """Join `address`, or start a local cluster whose dashboard listens on 127.0.0.1 only."""
    for key, value in TRAIN_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
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
    resume: bool = False,
    overwrite: bool = False,
) -> pl.DataFrame:
    """Run the study to the end; return the per-configuration summary with Pareto ranks.

    A folder that holds a study is refused unless `resume` (the same spec only) or `overwrite`.
    With `resume`, the folder's finished trials are kept, its unfinished ones are dropped and run
    again with the same parameters, and the Optuna study continues where it stopped. Bad data
    (tables, images) and a trial that cannot fit this machine fail here, before Ray starts.
    """
    from raygap.data import check_tables

    settings = spec.resolve(check_paths=True)
    folder = folder if isinstance(folder, results.ResultsFolder) else results.ResultsFolder(folder)
    study_folder.check_folder(folder, spec, resume, overwrite)
    check_tables(settings, str(spec.path))
    if not address and not ray.is_initialized():  # a local cluster is this machine: check the trial fits it
        try:
            plan_for_this_machine(spec)
        except SpecError as error:
            raise SpecError(f"{spec.path}: {error}") from None
    total = number_of_trials(spec)
    optuna_db = optuna_path(folder, spec.name)
    optuna_db.parent.mkdir(parents=True, exist_ok=True)
    cluster_record = optuna_db.parent / CLUSTER_RECORD
    stop_stale_cluster(cluster_record, echo)
    if overwrite:
        study_folder.clear(folder, optuna_db)
    folder.sweep_temporaries()
    finished, rerun = (_prepare_resume(folder, optuna_db, spec.name, settings.search.objectives, settings.search.repeats, echo) if resume else (0, []))
    remaining = max(total - finished, 0)
    if resume and remaining == 0:
        echo(f"{spec.name}: all {total} trial(s) already finished; nothing to resume")
        return folder.read(results.PARETO) if folder.exists(results.PARETO) else pl.DataFrame()
    started_here = not ray.is_initialized()
    if started_here:
        url = start_ray(address, dashboard=dashboard, num_cpus=num_cpus)
        if not address:
            record_cluster(cluster_record)
        echo(f"Ray dashboard: http://{url}" if url else "Ray dashboard: off")
    try:
        cluster = ray.cluster_resources()
        plan = study_plan(settings, cluster.get("CPU", 0), cluster.get("GPU", 0))
        echo(f"{spec.name}: {remaining} trial(s) × {settings.search.repeats} seed(s); {plan.describe()}")
        folder.write_text(results.SPEC, yaml.safe_dump(spec.raw, sort_keys=False))
        folder.write_text(results.RUN, yaml.safe_dump(_run_record(cluster, plan), sort_keys=False))

        objectives = settings.search.objectives
        searcher = FailureAwareOptunaSearch(
            space=functools.partial(suggest_params, raw=spec.raw, file=str(spec.path)),
            metric=list(objectives),
            mode=list(objectives.values()),
            sampler=make_sampler(spec),
            study_name=spec.name,
            storage=optuna.storages.RDBStorage(f"sqlite:///{optuna_db}"),
            points_to_evaluate=rerun[:remaining] or None,
        )
        driver = tune.with_parameters(
            _drive_trial,
            spec_path=str(spec.path),
            spec_raw=spec.raw,
            plan=plan,
            repeats=settings.search.repeats,
            storage=folder.uri("ray/train"),
        )
        recorder = StudyRecorder(folder, objectives, total, echo, finished=finished)
        tuner = tune.Tuner(
            tune.with_resources(driver, plan.trial_resources()),
            # Reused trial processes keep torch and open_clip imported: seconds saved per trial.
            tune_config=tune.TuneConfig(
                search_alg=searcher, num_samples=remaining, max_concurrent_trials=plan.max_concurrent, reuse_actors=True
            ),
            run_config=tune.RunConfig(
                name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}" if resume else "tune",
                storage_path=folder.uri("ray"),
                callbacks=[recorder],
                # A trial whose process died restarts from its last checkpoint; only the latest is kept.
                failure_config=tune.FailureConfig(max_failures=settings.train.max_restarts),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=0,
            ),
        )
        tuner.fit()  # Ctrl-C: Tune stops the trials and returns
    finally:
        if started_here:
            ray.shutdown()
            cluster_record.unlink(missing_ok=True)
    if recorder.completed + recorder.failed < total:
        raise StudyStopped(recorder.completed + recorder.failed, total)
    return folder.read(results.PARETO) if folder.exists(results.PARETO) else pl.DataFrame()


class StudyStopped(Exception):
    """The study ended before all its trials did (Ctrl-C); what finished is kept for a resume."""

    def __init__(self, finished: int, total: int):
        super().__init__(f"stopped after {finished} of {total} trial(s)")
        self.finished, self.total = finished, total


# ------------------------------------------------------------------------------------ resume
def finished_trials(trials: pl.DataFrame, repeats: int) -> list[str]:
    """Trials that ended: every seed completed, or one failed (a failed seed ends its trial)."""
    per_trial = trials.group_by("trial_id", maintain_order=True).agg(
        (pl.col("status") == "completed").sum().alias("completed"), (pl.col("status") == "failed").any().alias("failed")
    )
    return per_trial.filter((pl.col("completed") >= repeats) | pl.col("failed"))["trial_id"].to_list()


def _prepare_resume(folder: results.ResultsFolder, optuna_db: Path, name: str, objectives: dict[str, str], repeats: int, echo) -> tuple[int, list[dict]]:
    """Keep the finished trials' rows (exactly once) and drop the rest; tell Optuna the outcome
    of trials that finished before the stop but were never told (the driver died in between),
    and mark the other running ones failed. Return how many trials are finished and the
    parameters of the unfinished ones, to run again first."""
    finished: list[str] = []
    trials = pl.DataFrame()
    if folder.exists(results.TRIALS):
        trials = folder.read(results.TRIALS)
        finished = finished_trials(trials, repeats)
        kept = trials.filter(pl.col("trial_id").is_in(finished))
        if kept.height < trials.height:
            folder.write_parquet(results.TRIALS, kept, _footer(folder, results.TRIALS))
            if folder.exists(results.HISTORY):
                history = folder.read(results.HISTORY).filter(pl.col("trial_id").is_in(finished))
                folder.write_parquet(results.HISTORY, history, _footer(folder, results.HISTORY))
    rerun, told = [], 0
    if optuna_db.exists():
        storage = optuna.storages.RDBStorage(f"sqlite:///{optuna_db}")
        study = optuna.load_study(study_name=name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)):
            tune_id = trial.user_attrs.get(TUNE_TRIAL_ID)
            if tune_id in finished:
                values = _finished_values(trials.filter(pl.col("trial_id") == tune_id), objectives)
                state = optuna.trial.TrialState.COMPLETE if values else optuna.trial.TrialState.FAIL
                storage.set_trial_state_values(trial._trial_id, state, values)
                told += 1
                continue
            if trial.params:
                rerun.append(dict(trial.params))
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    echo(f"resuming: {len(finished)} finished trial(s) kept, {len(rerun)} unfinished one(s) to run again"
         + (f"; {told} finished one(s) told to Optuna" if told else ""))  # fmt: skip
    return len(finished), rerun


def _finished_values(rows: pl.DataFrame, objectives: dict[str, str]) -> list[float] | None:
    """What the trial would have told Optuna: its seeds' mean objectives, or None if a seed failed."""
    if (rows["status"] != "completed").any():
        return None
    return [float(rows[key].mean()) for key in objectives]


def _footer(folder: results.ResultsFolder, name: str) -> dict[str, str]:
    metadata = folder.schema(name).metadata or {}
    return {k.decode(): v.decode() for k, v in metadata.items() if not k.startswith(b"ARROW")}


# A local cluster that raygap started: its head processes, so that a killed study's leftovers
# (Ray leaves its dashboard and agents running after a SIGKILL of the driver) can be stopped later.
CLUSTER_RECORD = "ray-cluster.json"


def record_cluster(path: Path) -> None:
    import psutil

    me = psutil.Process()
    processes = [{"pid": p.pid, "created": p.create_time()} for p in me.children()]
    record = {"driver": {"pid": me.pid, "created": me.create_time()}, "processes": processes, "recorded": time.time()}
    results.write_local_text(path, json.dumps(record))


def stop_stale_cluster(path: Path, echo: Callable[[str], None]) -> int:
    """Stop what a dead raygap driver left running from the cluster it recorded at `path`; never
    touch a live study's processes or any process the record does not name (checked by start time)."""
    import psutil

    if not path.exists():
        return 0
    record = json.loads(path.read_text())

    def alive(entry: dict) -> psutil.Process | None:
        try:
            process = psutil.Process(entry["pid"])
            return process if abs(process.create_time() - entry["created"]) < 1e-3 else None
        except psutil.Error:
            return None

    if alive(record["driver"]):
        raise SpecError(f"{path.parent}: a study is still running on this folder (pid {record['driver']['pid']})")
    heads = [process for process in map(alive, record["processes"]) if process is not None]
    doomed = {p.pid: p for head in heads for p in [head, *head.children(recursive=True)]}
    # Processes the raylet started carry its pid in RAY_RAYLET_PID, and outlive it when orphaned.
    head_pids = {str(entry["pid"]) for entry in record["processes"]}
    for process in psutil.process_iter():
        try:
            if process.create_time() >= record["recorded"] - 60 and process.environ().get("RAY_RAYLET_PID") in head_pids:
                doomed.setdefault(process.pid, process)
        except psutil.Error:
            continue
    stopped = []
    for process in doomed.values():
        try:
            process.kill()
            stopped.append(process)
        except psutil.Error:
            pass
    psutil.wait_procs(stopped, timeout=10)
    path.unlink()
    if stopped:
        echo(f"stopped {len(stopped)} process(es) left by a killed study's Ray cluster")
    return len(stopped)


def _run_record(cluster: dict, plan: ResourcePlan) -> dict:
    """run.yaml: what the report's header says about where and when the study ran."""
    import platform

    import torch

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cluster": f"{nodes} node(s), {cluster.get('CPU', 0):g} CPU, {cluster.get('GPU', 0):g} GPU",
        "plan": plan.describe(),
        "versions": {"python": platform.python_version(), "ray": ray.__version__, "torch": str(torch.__version__), "optuna": optuna.__version__},
    }


def optuna_path(folder: results.ResultsFolder, name: str) -> Path:
    """The Optuna study's SQLite file: in the results folder, or locally when that is a URI."""
    return Path(folder.path if folder.is_local else Path("results") / name) / "optuna.db"


def plan_for_this_machine(spec: StudySpec) -> ResourcePlan:
    """The plan a local run would use, without starting Ray (for --dry-run)."""
    import torch

    return study_plan(spec.resolve(check_paths=False), float(os.cpu_count() or 1), float(torch.cuda.device_count()))
