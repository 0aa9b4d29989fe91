"""StudySpec → Optuna search space (define-by-run) and sampler; sampled values → trial params.

A distribution at `temperature.value` becomes the Optuna parameter `temperature.value`. A choice
whose options are whole sections (`temperature: {choice: [{kind: fixed, ...}, {kind: learned}]}`)
is a categorical over the options' labels (their `kind`); the distributions inside the chosen
option are suggested next, so each trial only has the parameters of its own branch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import optuna

from raygap.config import Distribution, SpecError, StudySpec, find_distributions
from raygap.config.search import SearchSpec


def describe_option(option: Any) -> Any:
    """A section option as a short label: its kind and settings, e.g. exp_k(init=0.07, k=2)."""
    if not isinstance(option, dict):
        return option
    settings = []
    for key, value in option.items():
        if key != "kind":
            dist = next(iter(value)) if isinstance(value, dict) and len(value) == 1 else None
            settings.append(f"{key}~{dist}" if dist else f"{key}={value}")
    return f"{option.get('kind', 'section')}({', '.join(settings)})" if settings else option.get("kind", "section")


def option_labels(dist: Distribution) -> list:
    """Categorical labels for Optuna: plain values as they are, sections by `describe_option`."""
    labels: list = []
    for i, option in enumerate(dist.args):
        label = describe_option(option)
        labels.append(f"{label}#{i}" if label in labels else label)
    return labels


def suggest_params(trial: optuna.trial.BaseTrial, raw: dict, file: str = "<spec>") -> dict[str, Any]:
    """Define-by-run: suggest every distribution of `raw`; returns {dotted path: value}.

    A chosen section option appears as its dict at its path, followed by the values sampled
    inside it at their own paths (StudySpec.resolve applies them in that order).
    """
    params: dict[str, Any] = {}
    for path, dist in find_distributions(raw, file).items():
        params.update(_suggest(trial, path, dist, file))
    return params


def _suggest(trial: optuna.trial.BaseTrial, path: str, dist: Distribution, file: str) -> dict[str, Any]:
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


def first_points(spec: StudySpec, search: SearchSpec) -> list[dict[str, Any]]:
    """search.first as Optuna parameters (a chosen section by its label, the values inside it by
    their paths), for the searcher to run first. A setting that is not searched (restating one the
    file fixes is allowed), or a value the search space cannot take, is a SpecError naming
    `search.first[i]` and the key."""
    points = []
    file = str(spec.path)
    for index, tree in enumerate(search.first):
        where = f"{file}: search.first[{index}]"
        point, used = _fixed_values(find_distributions(spec.raw, file), tree, where, file)
        for path in _leaf_paths(tree):
            restated = _at(spec.raw, path)
            if not any(path == u or path.startswith(u + ".") for u in used) and (restated is _ABSENT or restated != _at(tree, path)):
                searched = ", ".join(find_distributions(spec.raw, file)) or "none"
                raise SpecError(f"{where}.{path}: not a searched setting of this study; searched: {searched}")
        points.append(point)
    return points


def _fixed_values(dists: dict[str, Distribution], tree: dict, where: str, file: str) -> tuple[dict[str, Any], set[str]]:
    point: dict[str, Any] = {}
    used: set[str] = set()
    for path, dist in dists.items():
        given = _at(tree, path)
        if given is _ABSENT:
            continue
        used.add(path)
        if dist.kind in ("uniform", "loguniform", "int"):
            low, high = dist.args
            wrong_type = isinstance(given, bool) or not isinstance(given, int if dist.kind == "int" else (int, float))
            if wrong_type or not low <= given <= high:
                raise SpecError(f"{where}.{path}: {given!r} is outside the searched {dist.kind} [{low}, {high}]")
            point[path] = given
            continue
        labels = option_labels(dist)
        plain = [i for i, option in enumerate(dist.args) if not isinstance(option, dict) and option == given]
        if plain:
            point[path] = labels[plain[0]]
            continue
        chosen = _matching_option(dist.args, given, path, tree, where, file)
        if chosen is None:
            raise SpecError(f"{where}.{path}: {given!r} matches none of the searched options: {', '.join(map(str, labels))}")
        index, inner = chosen
        point[path] = labels[index]
        point.update(inner)
    return point, used


def _matching_option(options: tuple, given: Any, path: str, tree: dict, where: str, file: str) -> tuple[int, dict] | None:
    """The first section option of the same kind whose fixed settings `given` does not contradict,
    that has every setting `given` names, and whose searched ranges take `given`'s values: its index
    and those values as parameters. A value outside every candidate's range raises the first's error."""
    if not isinstance(given, dict):
        return None
    first_error = None
    for index, option in enumerate(options):
        if not isinstance(option, dict) or option.get("kind") != given.get("kind") or not set(given) <= set(option) | {"kind"}:
            continue
        searched = find_distributions(option, file)
        if not all(
            key in searched or any(s.startswith(key + ".") for s in searched) or given.get(key, value) == value
            for key, value in option.items()
        ):
            continue
        try:
            inner, _ = _fixed_values(find_distributions(option, file, prefix=f"{path}."), tree, where, file)
        except SpecError as error:
            first_error = first_error or error
            continue
        return index, inner
    if first_error is not None:
        raise first_error
    return None


_ABSENT = object()


def _at(tree: dict, path: str) -> Any:
    node: Any = tree
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return _ABSENT
        node = node[key]
    return node


def _leaf_paths(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict) or not tree:
        return [prefix] if prefix else []
    return [leaf for key, value in tree.items() for leaf in _leaf_paths(value, f"{prefix}.{key}" if prefix else key)]


CONTINUES = "continues_trials"
"""The key a resumed study adds to a trial's Tune config (and to its Optuna trial's attributes): the
stopped trial whose checkpoints it continues, then the trials that one continued, newest first."""


def recorded_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as stored in trials.parquet: a chosen section is recorded by its label."""
    return {k: describe_option(v) for k, v in params.items() if k != CONTINUES}


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


# Optuna's GridSampler lists every combination in memory, and a dry run walks them.
MAX_GRID_POINTS = 1_000_000


def grid_size(spec: StudySpec) -> int:
    """How many configurations a grid study has: the product of its value counts, not enumerated."""
    return math.prod(len(labels) for labels in grid_space(spec).values())


def grid_points(spec: StudySpec, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The configurations of a grid study (the first `limit`), as params for StudySpec.resolve."""
    space = grid_space(spec)
    options = {path: dict(zip(labels, spec.space[path].args)) for path, labels in space.items()}
    for combo in itertools.islice(itertools.product(*space.values()), limit):
        yield {path: options[path][label] for path, label in zip(space, combo)}


def number_of_trials(spec: StudySpec, search: SearchSpec) -> int:
    """search.trials; for the grid sampler the number of grid configurations (each runs once; at
    most MAX_GRID_POINTS); 1 when nothing is searched (search.repeats still gives several seeds).
    `search` is the study's resolved `search:` section."""
    if not spec.space:
        return 1
    if search.sampler != "grid":
        return search.trials
    size = grid_size(spec)
    if size > MAX_GRID_POINTS:
        raise SpecError(
            f"{spec.path}: search.sampler 'grid': {size:,} configurations, more than the {MAX_GRID_POINTS:,} a study can hold; "
            "give fewer grid values, or search the space with tpe, nsga2 or random and search.trials"
        )
    return size


class TellableGridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask/tell use. Optuna's calls `study.stop()` after the last grid point, which
    raises outside `study.optimize` before that trial's values are stored; Ray Tune's `num_samples`
    (the grid size) ends a grid study instead."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


SeededSamplerKind = type[optuna.samplers.TPESampler] | type[optuna.samplers.NSGAIISampler] | type[optuna.samplers.RandomSampler]
"""The samplers a trial seeds (each takes `seed=`)."""


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler whose draws for trial number n depend on (seed, n) and the study's trials only,
    not on how many draws this process has made before: each trial is sampled by its own
    `kind(seed=trial_seed(seed, n))`. So a resumed study (a fresh process, a fresh sampler, the
    same search.seed) draws for its new trial numbers what an uninterrupted study would have drawn,
    instead of replaying the draws of trials 0, 1, … (the same configurations again).

    Only public sampler API is used (constructor seeds, the BaseSampler hooks); the samplers keep
    nothing between trials that the study's storage does not hold (TPE, NSGA-II and random)."""

    def __init__(self, kind: SeededSamplerKind, seed: int) -> None:
        self.kind, self.seed = kind, seed
        self._samplers: dict[int, optuna.samplers.BaseSampler] = {}  # trial number → its sampler, until told

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.kind.__name__}, seed={self.seed})"

    def _sampler(self, trial: optuna.trial.FrozenTrial) -> optuna.samplers.BaseSampler:
        if trial.number not in self._samplers:
            self._samplers[trial.number] = self.kind(seed=trial_seed(self.seed, trial.number))
        return self._samplers[trial.number]

    def before_trial(self, study, trial) -> None:
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)

    def reseed_rng(self) -> None:
        pass  # trials already draw from different seeds (their numbers differ)


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` of a study with search.seed `seed`."""
    return int(np.random.SeedSequence([seed % 2**64, number]).generate_state(1)[0])


def make_sampler(spec: StudySpec, search: SearchSpec) -> optuna.samplers.BaseSampler:
    """The study's sampler. Its draws for a trial depend on search.seed, the trial's number and the
    finished trials, so a resumed study suggests what an uninterrupted one would have, never the
    configurations of its first trials again. The grid sampler needs no such care: its grid order
    comes from the seed, trial n < grid size takes grid point n, and later trials take a point no
    finished or running trial has (Optuna reads both from the study's storage). `search` is the
    study's resolved `search:` section."""
    if search.sampler == "grid" and spec.space:
        return TellableGridSampler(grid_space(spec), seed=search.seed)
    kinds: dict[str, SeededSamplerKind] = {
        "tpe": optuna.samplers.TPESampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "random": optuna.samplers.RandomSampler,
    }
    return TrialSeededSampler(kinds[search.sampler if spec.space else "random"], search.seed)  # one configuration: any will do
