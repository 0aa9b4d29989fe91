"""The Pareto early-stopping rule (`search.early_stop.kind: pareto`). Pure: no ray, no torch.

At an evaluation point (training step s) of a running trial, its objectives at s (the mean over
its seeds so far, each seed's value at s) are compared with every finished trial's objectives at s
(the mean over its seeds, each read off the seed's curve by linear interpolation between
evaluation points). The trial stops when some finished trial is better by at least `margin` in
every objective there; with margin 0 that is Pareto dominance (no worse in any, better in one).
NaN never stops a trial: a running trial with an unmeasured objective at s goes on, and a finished
trial's NaN points are left out of its curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Curve = tuple[Sequence[float], Sequence[float]]
"""(steps, values) of one objective over one seed, in step order."""
SeedCurves = Mapping[int, Mapping[str, Curve]]
"""seed → objective → curve."""


def value_at(curve: Curve, step: float) -> float:
    """The curve's value at `step`: linear between its finite points, the nearest end's value
    outside them, NaN when it has none."""
    points = [(s, v) for s, v in zip(*curve) if v is not None and math.isfinite(v)]
    if not points:
        return math.nan
    if step <= points[0][0]:
        return points[0][1]
    for (s0, v0), (s1, v1) in zip(points, points[1:]):
        if step <= s1:
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0) if s1 > s0 else v1
    return points[-1][1]


def objectives_at(seeds: SeedCurves, objectives: Mapping[str, str], step: float) -> dict[str, float]:
    """Each objective's mean over the seeds at `step` (a seed without a finite value there is left
    out; NaN when no seed has one)."""
    means = {}
    for name in objectives:
        values = [value_at(curves[name], step) for curves in seeds.values() if name in curves]
        finite = [v for v in values if math.isfinite(v)]
        means[name] = sum(finite) / len(finite) if finite else math.nan
    return means


def dominates(better: Mapping[str, float], worse: Mapping[str, float], objectives: Mapping[str, str], margin: float) -> bool:
    """`better` beats `worse` by at least `margin` in every objective (margin 0: no worse in any
    and better in at least one). False whenever a value is NaN."""
    gains = []
    for name, direction in objectives.items():
        a, b = better[name], worse[name]
        if not (math.isfinite(a) and math.isfinite(b)):
            return False
        gains.append(b - a if direction == "min" else a - b)
    if margin > 0:
        return all(gain >= margin for gain in gains)
    return all(gain >= 0 for gain in gains) and any(gain > 0 for gain in gains)


class ParetoRule:
    """The rule with its finished trials: `add_finished` as trials end, `should_stop` at each
    evaluation point of a running one."""

    def __init__(self, objectives: Mapping[str, str], grace_steps: int = 0, margin: float = 0.0, min_finished: int = 3):
        self.objectives, self.grace_steps, self.margin, self.min_finished = dict(objectives), grace_steps, margin, min_finished
        self.finished: list[SeedCurves] = []

    def add_finished(self, seeds: SeedCurves) -> None:
        self.finished.append(seeds)

    def should_stop(self, seeds: SeedCurves, step: float) -> bool:
        """Whether a running trial whose seeds so far have `seeds` curves stops at `step`."""
        if step < self.grace_steps or len(self.finished) < self.min_finished:
            return False
        mine = objectives_at(seeds, self.objectives, step)
        return any(dominates(objectives_at(done, self.objectives, step), mine, self.objectives, self.margin) for done in self.finished)
