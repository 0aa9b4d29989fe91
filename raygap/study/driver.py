"""A Tune trial (the "driver"): its seeds one after the other, each reported to Tune as it finishes,
with checkpoints so that a restarted trial continues where it stopped. A one-worker trial trains in
this process (`worker.run_seed`); a trial of several workers in one Ray Train worker group for all
its seeds (`worker_group`)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import ray.train
from ray import tune

from raygap.config import StudySpec, TrialConfig
from raygap.seed_record import SeedRecord
from raygap.study import messages
from raygap.study.continuation import continued_checkpoint, read_trial_checkpoint
from raygap.study.messages import Kind
from raygap.study.plan import ResourcePlan
from raygap.study.space import CONTINUES, recorded_params
from raygap.study.worker import run_seed
from raygap.study.worker_group import GroupJob, latest_progress, run_group, seed_means


def drive_trial(
    params: dict, *, spec_path: str, spec_raw: dict, plan: ResourcePlan, repeats: int, storage: str, results_location: str
) -> None:
    """A Tune trial: its seeds one after the other; each seed's results go to Tune as they finish.

    Every report is one of raygap.study.messages: the evaluation points as they are measured, a
    seed's record when it ends, checkpoints, and the seed means last (what Optuna is told).
    A failed seed ends the trial without raising, so Tune restarts only trials whose process died;
    a restarted trial continues from its last checkpoint (finished seeds and the training state).
    In a resumed study, a trial that runs a stopped trial's configuration again (`space.CONTINUES`)
    continues from that trial's last checkpoint, its finished seeds reported again as its own.
    """
    continues = params.get(CONTINUES)
    params = {k: v for k, v in params.items() if k != CONTINUES}
    spec = StudySpec(Path(spec_path), spec_raw)
    base = spec.resolve(params, check_paths=False)
    seeds = [_with_seed(base, base.train.seed + repeat, repeat) for repeat in range(repeats)]
    trial_id = tune.get_context().get_trial_id()
    if plan.in_trial or base.theory is not None:
        restored = _restore_trial() or continued_checkpoint(results_location, continues or [])
        _drive_in_trial(seeds, params, plan, restored, results_location, trial_id)
    else:
        job = GroupJob(
            trial_id,
            recorded_params(params),
            [cfg.model_dump(mode="json") for cfg in seeds],
            first=0,
            last=repeats,
            held=plan.held(),
            threads=plan.threads_per_worker,
            artifacts_to=(results_location, trial_id),
        )
        # A continued trial's groups keep the runs of the first trial in the chain.
        _drive_groups(job, plan, storage, base.train.max_restarts, base.search.objectives, runs_of=(continues or [trial_id])[-1])


def _drive_groups(job: GroupJob, plan: ResourcePlan, storage: str, max_restarts: int, objectives, runs_of: str) -> None:
    """The trial's seeds in one worker group (or one group per seed, `resources.worker_group_per:
    seed`), whose runs are named after `runs_of` (this trial, or the stopped one it continues); the
    group reports each seed and the means itself. A seed that fails past its restarts is recorded
    as failed here and ends the trial."""
    whole = plan.group_per == "trial"
    spans = [(0, len(job.seeds))] if whole else [(r, r + 1) for r in range(len(job.seeds))]
    finals: list[dict] = []
    for first, last in spans:
        name = f"{runs_of}-seeds" if whole else f"{runs_of}-seed{job.seed_config(first).train.seed}"
        try:
            progress = run_group(dataclasses.replace(job, first=first, last=last, finals_before=finals), plan, storage, name, max_restarts)
        except Exception as exc:
            stopped = latest_progress(storage, name)
            if stopped is None or stopped.next < last:  # a seed failed: record why; NaN objectives tell Optuna the trial failed
                index = max(stopped.next if stopped else first, first)
                error = f"{type(exc).__name__}: {exc}"
                failed = SeedRecord(job.trial_id, job.seed_config(index).train.seed, job.params, job.seeds[index], "failed", error=error)
                _report(messages.seed_result(failed, objectives))
                return
            progress = stopped  # the group failed after its seeds had finished: they stand
            if last == len(job.seeds):  # and perhaps before the means reached Tune (the head counts them once)
                _report(messages.done_result(seed_means(progress.finals)))
        finals = progress.finals


def _drive_in_trial(
    seeds: list[TrialConfig], params: dict, plan: ResourcePlan, restored: dict | None, results_location: str, trial_id: str
) -> None:
    """Seeds trained in this process (one worker, or a theory simulation), each reported as it ends;
    a checkpoint after each seed but the last, and the training state mid-seed. `restored`: the
    checkpoint to continue from (this trial's after a restart, or a stopped trial's)."""
    objectives = list(seeds[0].search.objectives)
    held = plan.held()  # for CPU/GPU-hours in reports
    first, finals = (restored["repeat"], restored["finals"]) if restored else (0, [])
    records = []
    for record in restored["records"] if restored else []:
        records.append(_own(record, trial_id, objectives))
    for repeat in range(first, len(seeds)):
        cfg = seeds[repeat]
        started, started_at = time.perf_counter(), time.time()
        record = SeedRecord(trial_id, cfg.train.seed, recorded_params(params), cfg.model_dump(mode="json"), "completed")

        def save(state: dict, repeat=repeat) -> None:
            trial_state = {"repeat": repeat, "finals": finals, "records": records}
            _report(messages.carrier(Kind.CHECKPOINT, objectives, step=state["step"]), trial_state, state)

        try:
            resume_from = restored["state"] if restored and repeat == first else None
            outcome = run_seed(
                cfg, plan, save if cfg.train.checkpoint_interval else None, resume_from, artifacts_to=(results_location, trial_id)
            )
        except Exception as exc:  # the seed failed: record why; the NaN objectives tell Optuna the trial failed
            failed = dataclasses.replace(record, status="failed", error=f"{type(exc).__name__}: {exc}")
            _report(messages.seed_result(failed, objectives))
            return
        final = {**outcome["final"], "wall_seconds": time.perf_counter() - started, "seed_started_at": started_at, **held}
        finals.append(final)
        completed = dataclasses.replace(record, final=final, history=outcome["history"])
        records.append(dataclasses.asdict(completed))
        # A checkpoint past the seed when another follows, so a restart never runs it again. Not
        # after the last: Tune saves its whole experiment state (O(study)) at every checkpoint, and
        # a restart in the moment before "done" repeats a seed the recorder has kept once already.
        _report(
            messages.seed_result(completed, objectives),
            {"repeat": repeat + 1, "finals": finals, "records": records} if repeat + 1 < len(seeds) else None,
        )
    tune.report(messages.done_result(seed_means(finals)))


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
    """The restarted trial's last checkpoint: {"repeat", "finals", "records", "state"}; None on a first start."""
    checkpoint = tune.get_checkpoint()
    return read_trial_checkpoint(checkpoint) if checkpoint is not None else None


def _own(record: dict, trial_id: str, objectives) -> dict:
    """A finished seed's record from a stopped trial's checkpoint, reported again as this trial's
    (that trial's rows were dropped when the study resumed); this trial's own records as they are."""
    if record["trial_id"] != trial_id:
        record = {**record, "trial_id": trial_id}
        _report(messages.seed_result(SeedRecord(**record), objectives))
    return record


def _with_seed(base: TrialConfig, seed: int, repeat: int) -> TrialConfig:
    update: dict[str, Any] = {"train": base.train.model_copy(update={"seed": seed})}
    if base.theory is not None:
        update["theory"] = base.theory.model_copy(update={"seed": base.theory.seed + repeat})
    return base.model_copy(update=update)
