"""The study's Tune schedulers: FIFO over the trials that have not ended, and early stopping
(`search.early_stop`). The early stoppers read the live evaluation points (`worker.live_result`) and
record the trials they stopped, with the step, in `stopped`: the recorder writes them as pruned and
the searcher tells Optuna PRUNED."""

from __future__ import annotations

import polars as pl
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from raygap.config.search import EarlyStopSpec
from raygap.study import messages
from raygap.study.messages import Kind
from raygap.study.pareto_rule import ParetoRule, SeedCurves

ASHA_UNBOUNDED = 2**62
"""ASHA's max_t for a trial that trains by epochs: its length is known only to its seeds."""


class LiveTrialsFIFO(FIFOScheduler):
    """Tune's FIFO order, chosen among the trials that have not ended (kept from the scheduler's
    hooks) instead of every trial of the study: Tune's own FIFO scans them all at every step, a
    sixth of the head's time by 6,000 trials."""

    def __init__(self):
        super().__init__()
        self.live: dict[Trial, None] = {}  # insertion order: Tune's
        self.stopped: dict[str, int] = {}  # trial id → step, for the early stoppers; FIFO stops none

    def on_trial_add(self, tune_controller, trial) -> None:
        self.live[trial] = None

    def on_trial_error(self, tune_controller, trial) -> None:  # a requeued trial is added again
        self.live.pop(trial, None)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self.live.pop(trial, None)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.live.pop(trial, None)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in self.live:
                if trial.status == status:
                    return trial
        return None


class ParetoStopper(LiveTrialsFIFO):
    """Stops a trial whose objectives at an evaluation point are beaten beyond seed noise by a
    finished trial's on the same seeds (raygap.study.pareto_rule.ParetoRule); finished trials join the
    rule as they end."""

    def __init__(self, rule: ParetoRule, max_steps: int | None):
        super().__init__()
        self.rule, self.max_steps = rule, max_steps
        self.curves: dict[str, dict[int, dict[str, tuple[list, list]]]] = {}

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if messages.kind_of(result) is not Kind.EVAL:
            return TrialScheduler.CONTINUE
        point = messages.EvalPoint.read(result, self.rule.objectives)
        step = point.step
        seeds = self.curves.setdefault(trial.trial_id, {})
        curves = seeds.setdefault(point.seed, {name: ([], []) for name in self.rule.objectives})
        for name, (steps, values) in curves.items():
            while steps and steps[-1] >= step:  # a restarted trial repeats points after its checkpoint
                steps.pop()
                values.pop()
            steps.append(step)
            values.append(point.objectives[name])
        if self.rule.should_stop(seeds, step, point.steps or self.max_steps):
            self.stopped[trial.trial_id] = step
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        super().on_trial_complete(tune_controller, trial, result)
        seeds = self.curves.pop(trial.trial_id, None)
        if seeds and trial.trial_id not in self.stopped and messages.kind_of(result) is Kind.DONE:
            self.rule.add_finished(seeds)


class EvalPointASHA(ASHAScheduler):
    """Tune's ASHA on the first objective over training steps, fed evaluation points only. Its
    rungs remember a trial's first pass, so a repeated trial is judged on its first seed's curve."""

    def __init__(self, objective: str, direction: str, grace_steps: int, reduction_factor: float, max_steps: int | None):
        super().__init__(
            time_attr="step",
            metric=objective,
            mode=direction,
            grace_period=max(grace_steps, 1),
            reduction_factor=reduction_factor,
            max_t=max_steps or ASHA_UNBOUNDED,  # only caps the rungs; each seed's own last step is read off its points
            stop_last_trials=False,
        )
        self.stopped: dict[str, int] = {}
        self.objective = objective

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if messages.kind_of(result) is not Kind.EVAL:
            return TrialScheduler.CONTINUE
        point = messages.EvalPoint.read(result, [self.objective])
        if point.step >= (point.steps or self._max_t):  # the seed's last point: it is trained already
            return TrialScheduler.CONTINUE
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            self.stopped[trial.trial_id] = result["step"]
        return action


def make_scheduler(early_stop: EarlyStopSpec, objectives: dict[str, str], max_steps: int | None) -> FIFOScheduler:
    """The scheduler for `search.early_stop`; FIFO (nothing stopped) for kind none. `max_steps` is
    train.steps (None for a trial that trains by epochs); neither stops a seed at its last step,
    the length its evaluation points report (or `max_steps`), where it has finished training."""
    if early_stop.kind == "pareto":
        return ParetoStopper(ParetoRule(objectives, early_stop.grace_steps, early_stop.margin, early_stop.min_finished), max_steps)
    if early_stop.kind == "asha":
        first, direction = next(iter(objectives.items()))
        return EvalPointASHA(first, direction, early_stop.grace_steps, early_stop.reduction_factor, max_steps)
    return LiveTrialsFIFO()


def finished_curves(history: pl.DataFrame, objectives: dict[str, str]) -> list[SeedCurves]:
    """Per trial in `history` (rows of finished trials), its seeds' objective curves."""
    trials: list[SeedCurves] = []
    for _, rows in history.sort("trial_id", "seed", "step").group_by("trial_id", maintain_order=True):
        trials.append(
            {
                seed: {name: (seed_rows["step"].to_list(), seed_rows[name].to_list()) for name in objectives}
                for (seed,), seed_rows in rows.group_by("seed", maintain_order=True)
            }
        )
    return trials
