"""A Tune trial (the "driver"): its seeds one after the other, each reported to Tune as it finishes,
with checkpoints so that a restarted trial continues where it stopped."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import ray.train
from ray import tune

from raygap.config import StudySpec, TrialConfig
from raygap.results import SeedRecord
from raygap.study import messages
from raygap.study.messages import Kind
from raygap.study.plan import ResourcePlan
from raygap.study.space import recorded_params
from raygap.study.worker import run_seed


def drive_trial(
    params: dict, *, spec_path: str, spec_raw: dict, plan: ResourcePlan, repeats: int, storage: str, results_location: str
) -> None:
    """A Tune trial: its seeds one after the other; each seed's results go to Tune as they finish.

    Every report is one of raygap.study.messages: the evaluation points as they are measured, a
    seed's record when it ends, checkpoints, and the seed means last (what Optuna is told).
    A failed seed ends the trial without raising, so Tune restarts only trials whose process died;
    a restarted trial continues from its last checkpoint (finished seeds and the training state).
    """
    spec = StudySpec(Path(spec_path), spec_raw)
    base = spec.resolve(params, check_paths=False)
    objectives = list(base.search.objectives)
    trial_id = tune.get_context().get_trial_id()
    held = plan.held()  # for CPU/GPU-hours in reports
    restored = _restore_trial()
    first, finals = (restored["repeat"], restored["finals"]) if restored else (0, [])
    for repeat in range(first, repeats):
        seed = base.train.seed + repeat
        cfg = _with_seed(base, seed, repeat)
        started, started_at = time.perf_counter(), time.time()
        record = SeedRecord(trial_id, seed, recorded_params(params), cfg.model_dump(mode="json"), "completed")

        def save(state: dict, repeat=repeat) -> None:
            _report(messages.carrier(Kind.CHECKPOINT, objectives, step=state["step"]), {"repeat": repeat, "finals": finals}, state)

        try:
            resume_from = restored["state"] if restored and repeat == first else None
            outcome = run_seed(
                cfg,
                plan,
                storage,
                f"{trial_id}-seed{seed}",
                save if cfg.train.checkpoint_interval else None,
                resume_from,
                live=True,
                artifacts_to=(results_location, trial_id),
            )
        except Exception as exc:  # the seed failed: record why; the NaN objectives tell Optuna the trial failed
            failed = dataclasses.replace(record, status="failed", error=f"{type(exc).__name__}: {exc}")
            _report(messages.seed_result(failed, objectives))
            return
        final = {**outcome["final"], "wall_seconds": time.perf_counter() - started, "seed_started_at": started_at, **held}
        finals.append(final)
        completed = dataclasses.replace(record, final=final, history=outcome["history"])
        # A checkpoint past the seed when another follows, so a restart never runs it again. Not
        # after the last: Tune saves its whole experiment state (O(study)) at every checkpoint, and
        # a restart in the moment before "done" repeats a seed the recorder has kept once already.
        _report(
            messages.seed_result(completed, objectives),
            {"repeat": repeat + 1, "finals": finals} if repeat + 1 < repeats else None,
        )
    means = {k: sum(f[k] for f in finals) / len(finals) for k, v in finals[0].items() if isinstance(v, (int, float))}
    tune.report(messages.done_result(means))


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
