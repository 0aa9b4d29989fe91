"""The study's searcher (`make_searcher`): Ray Tune's OptunaSearch, told about failed trials, with
each Optuna trial's Tune trial id, its final metrics as user attributes and the objectives' names
(what optuna-dashboard shows)."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Mapping

import optuna
from ray.tune.search.optuna import OptunaSearch

from raygap import catalog
from raygap.config import StudySpec
from raygap.config.search import SearchSpec
from raygap.study import library_internals
from raygap.study.folder import TUNE_TRIAL_ID, optuna_storage
from raygap.study.space import CONTINUES, make_sampler, suggest_params


class FailureAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna a trial failed when it ended with NaN objectives (a failed
    seed ends its trial without raising, so that Tune restarts only trials whose process died),
    that it was pruned when the early-stopping scheduler put it in `stopped`, and records each
    Optuna trial's Tune trial id."""

    def __init__(self, *args, stopped: Mapping[str, int] | None = None, continues: list[list[str] | None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stopped = stopped if stopped is not None else {}  # the scheduler's record (trial id → step), read here
        # The points to evaluate wait in the Optuna study in their order, and Optuna asks the
        # oldest first: each waiting trial's number names the stopped trial it continues.
        waiting = library_internals.optuna_study(self).get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        numbers = sorted(t.number for t in waiting)[-len(continues) :] if continues else []
        self.continues = {number: old for number, old in zip(numbers, continues or []) if old}

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        study = library_internals.optuna_study(self)
        if study.metric_names is None:  # optuna-dashboard labels the objectives by these
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # experimental in optuna: its warning is noise here
                study.set_metric_names(self.metric if isinstance(self.metric, list) else [self.metric])
        if trial := library_internals.optuna_trial(self, trial_id):  # a resume matches Optuna's trial to the rows Tune's trial wrote
            trial.set_user_attr(TUNE_TRIAL_ID, trial_id)
            if params is not None and trial.number in self.continues:  # the driver continues those trials' checkpoints
                params[CONTINUES] = self.continues[trial.number]
                trial.set_user_attr(CONTINUES, self.continues[trial.number])  # for a later resume of this one
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id in self.stopped:  # OptunaSearch tells no result and no error as PRUNED
            super().on_trial_complete(trial_id, None, False)
            return
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        if result and any(not isinstance(result.get(m), (int, float)) or math.isnan(result[m]) for m in metrics):
            result, error = None, True
        trial = library_internals.optuna_trial(self, trial_id)
        if result and trial:  # every final metric beside the objectives in optuna-dashboard
            for name in catalog.METRICS:
                if isinstance(result.get(name), (int, float)) and math.isfinite(result[name]):
                    trial.set_user_attr(name, float(result[name]))
        super().on_trial_complete(trial_id, result, error)


def make_searcher(
    spec: StudySpec,
    search: SearchSpec,
    optuna_file: Path,
    rerun: list[dict],
    stopped: Mapping[str, int] | None = None,
    continues: list[list[str] | None] | None = None,
) -> FailureAwareOptunaSearch:
    """The study's search: Optuna over the spec's space, persisted in the file `optuna_file` (an
    existing study there continues), the parameters in `rerun` (search.first's, or a resume's unfinished trials) suggested
    first, each continuing the stopped trials `continues` names; trials in `stopped` are PRUNED."""
    objectives = search.objectives
    return FailureAwareOptunaSearch(
        space=functools.partial(suggest_params, raw=spec.raw, file=str(spec.path)),
        metric=list(objectives),
        mode=list(objectives.values()),
        sampler=make_sampler(spec, search),
        study_name=spec.name,
        storage=optuna_storage(optuna_file),
        points_to_evaluate=rerun or None,
        stopped=stopped,
        continues=continues,
    )
