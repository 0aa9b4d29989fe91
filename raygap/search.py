"""StudySpec → Optuna search space (define-by-run) and sampler; sampled values → trial params.

A distribution at `temperature.value` becomes the Optuna parameter `temperature.value`. A choice
whose options are whole sections (`temperature: {choice: [{kind: fixed, ...}, {kind: learned}]}`)
is a categorical over the options' labels (their `kind`); the distributions inside the chosen
option are suggested next, so each trial only has the parameters of its own branch.
"""

from __future__ import annotations

import itertools
from typing import Any

import optuna

from raygap.spec import Distribution, SpecError, StudySpec, find_distributions


def option_labels(dist: Distribution) -> list:
    """Categorical labels: scalar options as they are, section options by their kind (or index)."""
    labels: list = []
    for i, option in enumerate(dist.args):
        label = option.get("kind", f"option{i}") if isinstance(option, dict) else option
        # A kind that repeats (e.g. learned, and learned with an lr_scale) gets its position.
        labels.append(f"{label}#{i}" if isinstance(option, dict) and label in labels else label)
    return labels


def suggest_params(trial: optuna.Trial, raw: dict, file: str = "<spec>") -> dict[str, Any]:
    """Define-by-run: suggest every distribution of `raw`; returns {dotted path: value}.

    A chosen section option appears as its dict at its path, followed by the values sampled
    inside it at their own paths (StudySpec.resolve applies them in that order).
    """
    params: dict[str, Any] = {}
    for path, dist in find_distributions(raw, file).items():
        params.update(_suggest(trial, path, dist, file))
    return params


def _suggest(trial: optuna.Trial, path: str, dist: Distribution, file: str) -> dict[str, Any]:
    if dist.kind in ("uniform", "loguniform"):
        return {path: trial.suggest_float(path, *dist.args, log=dist.kind == "loguniform")}
    if dist.kind == "int":
        return {path: trial.suggest_int(path, *dist.args)}
    labels = option_labels(dist)
    label = trial.suggest_categorical(path, labels)
    option = dist.args[labels.index(label)]
    out = {path: option}
    if isinstance(option, dict):
        for sub, nested in find_distributions(option, file, prefix=f"{path}.").items():
            out.update(_suggest(trial, sub, nested, file))
    return out


def recorded_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as stored in trials.parquet: a chosen section is recorded by its kind."""
    return {k: (v.get("kind", "section") if isinstance(v, dict) else v) for k, v in params.items()}


def grid_space(spec: StudySpec) -> dict[str, list]:
    """Optuna GridSampler space: every distribution must be a grid or a choice of plain values."""
    space = {}
    for path, dist in spec.space.items():
        if dist.kind not in ("grid", "choice"):
            raise SpecError(f"{spec.path}: {path}: search.sampler 'grid' needs grid or choice values, got {dist.kind}")
        if any(isinstance(opt, dict) and find_distributions(opt, str(spec.path)) for opt in dist.args):
            raise SpecError(f"{spec.path}: {path}: search.sampler 'grid' cannot search inside a chosen section")
        space[path] = option_labels(dist)
    if not space:
        raise SpecError(f"{spec.path}: search.sampler 'grid' needs at least one grid or choice value")
    return space


def grid_points(spec: StudySpec) -> list[dict[str, Any]]:
    """Every configuration of a grid study, as params for StudySpec.resolve."""
    space = grid_space(spec)
    points = []
    for combo in itertools.product(*space.values()):
        point = {}
        for (path, labels), label in zip(space.items(), combo):
            point[path] = spec.space[path].args[labels.index(label)]
        points.append(point)
    return points


def number_of_trials(spec: StudySpec) -> int:
    """search.trials; for the grid sampler the number of grid configurations (each runs once);
    1 when nothing is searched (search.repeats still gives several seeds)."""
    search = spec.resolve(check_paths=False).search
    if not spec.space:
        return 1
    return len(grid_points(spec)) if search.sampler == "grid" else search.trials


class TellableGridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask/tell use. Optuna's calls `study.stop()` after the last grid point, which
    raises outside `study.optimize` before that trial's values are stored; Ray Tune's `num_samples`
    (the grid size) ends a grid study instead."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    search = spec.resolve(check_paths=False).search
    if search.sampler == "grid":
        return TellableGridSampler(grid_space(spec), seed=search.seed)
    return {
        "tpe": optuna.samplers.TPESampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "random": optuna.samplers.RandomSampler,
    }[search.sampler](seed=search.seed)
