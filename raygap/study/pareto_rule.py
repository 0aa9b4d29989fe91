"""The Pareto early-stopping rule (`search.early_stop.kind: pareto`). Pure: no ray, no torch.

A running trial is judged at an evaluation point (training step s) of its running seed, but never
at step 0 (the untrained model: its metrics depend on the seed alone) nor at the seed's last step
(the seed is trained by then, so stopping saves nothing and would discard a finished result).

It is compared like with like: with each finished trial on the same seeds. Both sides are means
over the seeds the running trial has reached (each seed's value at s; a finished curve read by
linear interpolation between its evaluation points), so a seed's own luck (its initialization,
its batches) is on both sides. The trial stops when some finished trial is better in every
objective by more than `margin` plus the noise of that difference: a one-sided Student t bound
on the seed spread that such a comparison leaves, measured on the finished trials at s (what
neither their configuration nor their seed explains: seed × trial residuals), at level LEVEL
split evenly over the finished trials compared (Bonferroni). A configuration that is no worse
than the finished ones, with seed noise alone, is then stopped rarely (tests/unit/study/test_pareto_rule.py
simulates it: at most 5 %). The spread needs two finished trials of two seeds; with one seed per
trial it cannot be measured and only `margin` guards against noise.

A gain within raygap.tolerance.RELATIVE (of the values' size, at least 1) of its bound is a tie
(the rule every result comparison in raygap follows), and ties never stop a trial; nor does NaN:
a running trial with an unmeasured objective at s goes on, and a finished trial's NaN points are
left out of its curve.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

from raygap.tolerance import RELATIVE

Curve = tuple[Sequence[float], Sequence[float]]
"""(steps, values) of one objective over one seed, in step order."""
SeedCurves = Mapping[int, Mapping[str, Curve]]
"""seed → objective → curve."""

LEVEL = 0.01
"""How often a finished trial that is truly no better would beat a running one at one evaluation
point, by seed noise alone, before the split over the finished trials compared."""


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


def seed_values(seeds: SeedCurves, name: str, step: float) -> dict[int, float]:
    """Each seed's finite value of objective `name` at `step`."""
    values = {seed: value_at(curves[name], step) for seed, curves in seeds.items() if name in curves}
    return {seed: v for seed, v in values.items() if math.isfinite(v)}


def seed_spread(trials: Sequence[Mapping[int, float]]) -> tuple[float, int]:
    """The noise left in a comparison on the same seeds, as a standard deviation with its degrees
    of freedom: each value's residual from its trial's mean plus its seed's mean (minus the grand
    mean) over the seeds every trial has, trials (each a seed → value mapping) of one seed left out.
    A seed that is lucky in every trial (its initialization, its batches) cancels in such a
    comparison and adds nothing here; independent noise stays whole. (NaN, 0) with fewer than two
    trials of two shared seeds."""
    trials = [values for values in trials if len(values) > 1]
    seeds = sorted(set.intersection(*(set(values) for values in trials))) if trials else []
    if len(trials) < 2 or len(seeds) < 2:
        return math.nan, 0
    trial_means = [sum(values[k] for k in seeds) / len(seeds) for values in trials]
    seed_means = {k: sum(values[k] for values in trials) / len(trials) for k in seeds}
    grand = sum(trial_means) / len(trials)
    squares = sum((values[k] - mean - seed_means[k] + grand) ** 2 for values, mean in zip(trials, trial_means) for k in seeds)
    df = (len(trials) - 1) * (len(seeds) - 1)
    return math.sqrt(squares / df), df


def t_upper_tail(t: float, df: int) -> float:
    """P(T > t) for Student's t with integer `df` ≥ 1 and t ≥ 0, in closed form (Abramowitz and
    Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:
        term, series = math.cos(theta), 0.0
        for j in range(1, (df - 1) // 2 + 1):
            series += term
            term *= cos2 * 2 * j / (2 * j + 1)
        inside = 2 / math.pi * (theta + sin * series)
    else:
        term, series = 1.0, 0.0
        for j in range(1, df // 2 + 1):
            series += term
            term *= cos2 * (2 * j - 1) / (2 * j)
        inside = sin * series
    return max(0.0, (1 - inside) / 2)


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """The t with P(T > t) = p (0 < p < 1/2) for Student's t with `df` degrees of freedom: bisection
    on the closed form up to 100, the Cornish–Fisher expansion about the normal quantile beyond
    (its error there is below 1e-3 for p ≥ 1e-7)."""
    z = NormalDist().inv_cdf(1 - p)
    if df > 100:
        return (
            z
            + (z**3 + z) / (4 * df)
            + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * df**4)
        )
    low, high = z, 2 * z  # t's quantile lies above the normal's
    while t_upper_tail(high, df) > p:
        low, high = high, 2 * high
    for _ in range(200):
        middle = (low + high) / 2
        if high - low <= 1e-12 * high:
            break
        low, high = (middle, high) if t_upper_tail(middle, df) > p else (low, middle)
    return high


class ParetoRule:
    """The rule with its finished trials: `add_finished` as trials end, `should_stop` at each
    evaluation point of a running one."""

    def __init__(
        self, objectives: Mapping[str, str], grace_steps: int = 0, margin: float = 0.0, min_finished: int = 3, level: float = LEVEL
    ):
        self.objectives, self.grace_steps, self.margin, self.min_finished = dict(objectives), grace_steps, margin, min_finished
        self.level = level
        self.finished: list[SeedCurves] = []

    def add_finished(self, seeds: SeedCurves) -> None:
        self.finished.append(seeds)

    def should_stop(self, seeds: SeedCurves, step: float, last_step: float | None) -> bool:
        """Whether a running trial whose seeds so far have `seeds` curves stops at `step` of its
        running seed, whose last step is `last_step` (None when unknown: then it goes on)."""
        if last_step is None or not 0 < step < last_step or step < self.grace_steps or len(self.finished) < self.min_finished:
            return False
        mine = {name: seed_values(seeds, name, step) for name in self.objectives}
        if not all(mine.values()):
            return False
        done = [{name: seed_values(trial, name, step) for name in self.objectives} for trial in self.finished]
        compared = [theirs for theirs in done if all(mine[name].keys() & theirs[name].keys() for name in self.objectives)]
        if not compared:
            return False
        noise = {}  # per objective: the spread's one-sided quantile, None without a spread
        for name in self.objectives:
            spread, df = seed_spread([theirs[name] for theirs in done])
            noise[name] = spread * t_quantile(self.level / len(compared), df) if df else None
        return any(self._beats(theirs, mine, noise) for theirs in compared)

    def _beats(self, theirs: Mapping[str, Mapping[int, float]], mine: Mapping[str, Mapping[int, float]], noise: Mapping) -> bool:
        """A finished trial beats the running one on their shared seeds, in every objective, by more
        than margin + √(2/n) · noise (the bound on a difference of two means of n seeds). Without a
        spread only a positive margin can decide."""
        for name, direction in self.objectives.items():
            if noise[name] is None and self.margin <= 0:
                return False
            shared = mine[name].keys() & theirs[name].keys()
            a = sum(theirs[name][s] for s in shared) / len(shared)
            b = sum(mine[name][s] for s in shared) / len(shared)
            gain = a - b if direction == "max" else b - a
            threshold = self.margin + (noise[name] * math.sqrt(2 / len(shared)) if noise[name] is not None else 0.0)
            if not gain - threshold > RELATIVE * max(1.0, abs(a), abs(b)):
                return False
        return True
