"""The study engine: Ray Tune + Optuna search over a study file, one trial per configuration.

Shape of a study:
- the head process (`run_study`) runs a Tuner whose search algorithm is OptunaSearch (multi-objective,
  SQLite-persisted) and whose callback (`StudyRecorder`) is the single writer of the results folder;
- each Tune trial is a light driver (`driver.drive_trial`) that runs its seeds one after the other
  (in the trial's own process for one worker, `worker.run_seed`; in one TorchTrainer worker group
  for several, `worker_group`); each seed's final metrics and history go to Tune as it ends, then
  the seed means as the trial's final result;
- each Train worker calls the Ray-free `raygap.clip.train.train` with its rank and world size.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import optuna
import polars as pl
import ray
import yaml
from ray import tune

from raygap import results
from raygap.config import SpecError, StudySpec
from raygap.study import folder as study_folder
from raygap.study import integrity, preflight, tracking
from raygap.study.cluster import (
    CLUSTER_RECORD,
    check_cluster_fits,
    dashboard_line,
    plan_for_this_machine,
    record_cluster,
    start_ray,
    stop_stale_cluster,
    wait_for_nodes,
)
from raygap.study.driver import drive_trial
from raygap.study.folder import optuna_path
from raygap.study.optuna_search import make_searcher
from raygap.study.plan import ResourcePlan, study_plan
from raygap.study.recorder import StudyRecorder
from raygap.study.resume import prepare_resume
from raygap.study.schedulers import ParetoStopper, finished_curves, make_scheduler
from raygap.study.space import first_points, number_of_trials, recorded_params


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
    nodes: int | None = None,
) -> pl.DataFrame:
    """Run the study to the end; return the per-configuration summary with Pareto ranks.

    A folder that holds a study is refused unless `resume` (the same spec only) or `overwrite`.
    With `resume`, the folder's finished trials are kept, its unfinished ones are dropped and run
    again with the same parameters, and the Optuna study continues where it stopped. Bad data
    (tables, images) and a trial that cannot fit this machine fail here, before Ray starts.
    `nodes`: with `address`, wait until the cluster has that many nodes before the first trial.
    """
    cfg = spec.resolve(check_paths=True)
    folder = folder if isinstance(folder, results.ResultsFolder) else results.ResultsFolder(folder)
    study_folder.check_writable(folder)  # before the claim, which is the first write
    optuna_file = optuna_path(folder, spec.name)
    made = _missing_folders(optuna_file.parent) + ([] if optuna_file.exists() else [optuna_file])
    # Claimed before any check: of two commands started on one new folder, only one runs.
    with study_folder.claimed(optuna_file.parent):
        _check_before_ray(spec, cfg, folder, address, resume, overwrite)
        return _run_claimed(spec, cfg, folder, optuna_file, made, address, echo, dashboard, num_cpus, resume, overwrite, nodes)


def _run_claimed(
    spec: StudySpec,
    cfg,
    folder: results.ResultsFolder,
    optuna_file: Path,
    made: list[Path],
    address: str | None,
    echo: Callable[[str], None],
    dashboard: bool,
    num_cpus: int | None,
    resume: bool,
    overwrite: bool,
    nodes: int | None,
) -> pl.DataFrame:
    """run_study once the folder is claimed and checked."""
    total = number_of_trials(spec, cfg.search)
    cluster_record = optuna_file.parent / CLUSTER_RECORD
    stop_stale_cluster(cluster_record, echo)
    if overwrite:
        study_folder.clear(folder, optuna_file)
    folder.sweep_temporaries()
    resumed = prepare_resume(folder, optuna_file, spec, cfg.search.objectives, cfg.search.repeats, echo) if resume else None
    finished, rerun, continues = resumed if resumed else (0, [], [])
    remaining = max(total - finished, 0)
    if resume and remaining == 0:
        echo(f"{spec.name}: all {total} trial(s) already finished; nothing to resume")
        return folder.read(results.PARETO) if folder.exists(results.PARETO) else pl.DataFrame()
    # Local Ray processes inherit the trackers' variables.
    with (
        tracking.environment(tracking.tracker_environment(cfg.tracking)),
        _no_trace_of_a_failed_start(folder, made, resume),
    ):
        started_here = not ray.is_initialized()
        if started_here:
            url, session = start_ray(address, dashboard=dashboard, num_cpus=num_cpus)
            if not address:
                record_cluster(cluster_record, session)
            echo(dashboard_line(url))
            if address and nodes:
                wait_for_nodes(nodes, echo)
        try:
            cluster = ray.cluster_resources()
            plan = study_plan(cfg, cluster.get("CPU", 0), cluster.get("GPU", 0))
            if address:  # a local cluster was checked before it started
                check_cluster_fits(cfg, plan)
            echo(f"{spec.name}: {remaining} trial(s) × {cfg.search.repeats} seed(s); {plan.describe()}")
            for line in tracking.where_to_look(cfg.tracking, spec.name, folder):
                echo(line)
            folder.write_text(results.SPEC, yaml.safe_dump(spec.raw, sort_keys=False))
            run_record = {**_run_record(cluster, plan), **study_folder.spec_record(spec.raw)}
            folder.write_text(results.RUN, yaml.safe_dump(run_record, sort_keys=False))

            scheduler = _early_stopper(cfg, folder, resume)
            stopped = scheduler.stopped  # written by the scheduler alone; the recorder and the searcher read it
            recorder = StudyRecorder(folder, cfg.search.objectives, total, echo, finished=finished, stopped=stopped, held=plan.held())
            first = rerun if resume else first_points(spec, cfg.search)
            searcher = make_searcher(spec, cfg.search, optuna_file, first[:remaining], stopped, continues[:remaining])
            with tracking.quiet_tune():
                try:
                    _make_tuner(
                        spec, cfg, folder, plan, searcher, recorder, remaining, resume, scheduler
                    ).fit()  # Ctrl-C: Tune stops the trials and returns
                finally:
                    recorder.ledger.close()  # pareto.parquet, and the parts compacted
        finally:
            if started_here:
                ray.shutdown()
                cluster_record.unlink(missing_ok=True)
    if recorder.finished < total:
        raise StudyStopped(recorder.finished, total)
    return folder.read(results.PARETO) if folder.exists(results.PARETO) else pl.DataFrame()


def _check_before_ray(spec: StudySpec, cfg, folder: results.ResultsFolder, address: str | None, resume: bool, overwrite: bool) -> None:
    """The folder rules, the study's settings (preflight) and, for a local cluster, whether a
    trial fits this machine: each a SpecError before Ray starts."""
    study_folder.check_folder(folder, spec, resume, overwrite)
    if resume:
        optuna_file = optuna_path(folder, spec.name)
        if found := integrity.disagreements(folder, optuna_file, spec.name, history=False):
            raise SpecError(f"{folder}: cannot resume, the study's files disagree: " + "; ".join(found))
    preflight.check_study(spec, cfg)
    if not address and not ray.is_initialized():  # a local cluster is this machine
        try:
            plan_for_this_machine(cfg)
        except SpecError as error:
            raise SpecError(f"{spec.path}: {error}") from None


def _missing_folders(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first (what a run makes)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


@contextmanager
def _no_trace_of_a_failed_start(folder: results.ResultsFolder, made: list[Path], resume: bool):
    """A study that fails before it recorded a trial (a tracker refusing its settings once Tune
    starts, say) removes what it wrote, and the Optuna file and folders it made, so that a rerun
    needs no --overwrite. A resumed study's folder holds an earlier study: it is kept."""
    try:
        yield
    except Exception:
        if not resume and not folder.exists(results.TRIALS):
            folder.remove(*study_folder.STUDY_FILES)
            for path in sorted(made, key=lambda p: len(p.parts), reverse=True):  # the file, then its folders
                if path.is_file():
                    path.unlink()
                elif path.is_dir():
                    try:
                        path.rmdir()
                    except OSError:  # not empty: something else lives there
                        break
        raise


def _early_stopper(cfg, folder: results.ResultsFolder, resume: bool):
    """The scheduler of `search.early_stop` (None: none); a resumed Pareto rule starts from the
    curves of the trials the folder finished."""
    objectives = cfg.search.objectives
    # train.steps is None for a trial by epochs: its evaluation points report each seed's length.
    scheduler = make_scheduler(cfg.search.early_stop, objectives, cfg.train.steps)
    if resume and isinstance(scheduler, ParetoStopper) and folder.exists(results.HISTORY):
        trials = folder.read(results.TRIALS)
        whole = trials.group_by("trial_id").agg((pl.col("status") == "completed").all().alias("whole")).filter("whole")["trial_id"]
        for curves in finished_curves(folder.read(results.HISTORY).filter(pl.col("trial_id").is_in(whole.to_list())), objectives):
            scheduler.rule.add_finished(curves)
    return scheduler


def _make_tuner(
    spec: StudySpec, cfg, folder: results.ResultsFolder, plan: ResourcePlan, searcher, recorder, trials: int, resume: bool, scheduler
):
    """A Tuner whose trials are drivers (`driver.drive_trial`) with the plan's resources."""
    driver = tune.with_parameters(
        drive_trial,
        spec_path=str(spec.path),
        spec_raw=spec.raw,
        plan=plan,
        repeats=cfg.search.repeats,
        storage=folder.uri("ray/train"),
        results_location=folder.location,
    )
    return tune.Tuner(
        tune.with_resources(driver, plan.trial_resources()),
        # Reused trial processes keep torch and open_clip imported: seconds saved per trial.
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=trials,
            max_concurrent_trials=plan.max_concurrent,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=lambda trial: f"trial-{trial.trial_id}",  # no spaces or commas in paths
        ),
        run_config=tune.RunConfig(
            name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}" if resume else "tune",
            storage_path=folder.uri("ray"),
            callbacks=[recorder, *tracking.logger_callbacks(cfg.tracking, spec.name)],
            # A trial whose process died restarts from its last checkpoint; only the latest is kept.
            failure_config=tune.FailureConfig(max_failures=cfg.train.max_restarts),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )


def _trial_name(trial) -> str:
    """What the dashboard and the trackers call a trial: its id and searched values."""
    values = ", ".join(
        f"{key.split('.')[-1]}={value:.4g}" if isinstance(value, float) else f"{key.split('.')[-1]}={value}"
        for key, value in recorded_params(trial.config).items()
    )
    return f"{trial.trial_id} {values}".strip()


class StudyStopped(Exception):
    """The study ended before all its trials did (Ctrl-C); what finished is kept for a resume."""

    def __init__(self, finished: int, total: int):
        super().__init__(f"stopped after {finished} of {total} trial(s)")
        self.finished, self.total = finished, total


def _run_record(cluster: dict, plan: ResourcePlan) -> dict:
    """run.yaml: what the report's header says about where and when the study ran."""
    import platform
    from importlib.metadata import version

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cluster": f"{nodes} node(s), {cluster.get('CPU', 0):g} CPU, {cluster.get('GPU', 0):g} GPU",
        "plan": plan.describe(),
        "versions": {"python": platform.python_version(), "ray": ray.__version__, "torch": version("torch"), "optuna": optuna.__version__},
    }
