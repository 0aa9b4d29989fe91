"""Pareto fronts over a polars frame: non-dominated filtering, ranks, and 2-D hypervolume.

Objectives are a mapping {column: "min" | "max"}. Internally every objective is turned into one to
minimise (max columns are negated). Rows with a NaN or null objective never enter a front (rank
null); ±inf are ordinary, extreme values. Values of one objective that agree within
raygap.tolerance.RELATIVE of their magnitude are equal (`tolerance.snap`), so two configurations
whose seed means differ only in how a machine rounded them never dominate one another.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from raygap import tolerance


def _costs(frame: pl.DataFrame, objectives: dict[str, str]) -> np.ndarray:
    """(n, k) float array to minimise, each column snapped (`tolerance.snap`); NaN where an objective is missing."""
    for column, direction in objectives.items():
        if column not in frame.columns:
            raise KeyError(f"objective {column!r} is not a column; columns: {frame.columns}")
        if direction not in ("min", "max"):
            raise ValueError(f"objective {column!r}: direction must be 'min' or 'max', got {direction!r}")
    columns = [tolerance.snap(frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()) for c in objectives]
    signs = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
    return np.stack(columns, axis=1) * signs if columns else np.empty((frame.height, 0))


def _nondominated(costs: np.ndarray) -> np.ndarray:
    """Mask of rows that no other row dominates (≤ in every objective and < in one)."""
    n = len(costs)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = (costs <= costs[i]).all(axis=1)
        better = (costs < costs[i]).any(axis=1)
        keep[i] = not (no_worse & better).any()
    return keep


def pareto_ranks(frame: pl.DataFrame, objectives: dict[str, str]) -> pl.Series:
    """Non-dominated sorting: rank 1 is the front, rank 2 the front once rank 1 is removed, …

    Two objectives (the usual case) take an O(n log n) sweep (`_ranks_2d`); more build the
    domination matrix once and peel fronts by counting each row's dominators (Deb's fast
    non-dominated sort), O(n²) in time and memory.
    """
    costs = _costs(frame, objectives)
    ranks = np.zeros(len(costs), dtype=np.int64)
    valid = np.flatnonzero(~np.isnan(costs).any(axis=1))
    points = costs[valid]
    if points.shape[1] == 2:
        ranks[valid] = _ranks_2d(points)
        return pl.Series("rank", ranks, dtype=pl.Int64).replace(0, None)
    no_worse = np.ones((len(points), len(points)), dtype=bool)
    better = np.zeros_like(no_worse)
    for column in points.T:  # dominates[i, j]: row i is ≤ row j everywhere and < somewhere
        no_worse &= column[:, None] <= column[None, :]
        better |= column[:, None] < column[None, :]
    dominates = no_worse & better
    dominators = dominates.sum(axis=0)
    remaining = np.ones(len(points), dtype=bool)
    rank = 1
    while remaining.any():
        front = remaining & (dominators == 0)
        ranks[valid[front]] = rank
        remaining &= ~front
        dominators -= dominates[front].sum(axis=0)
        dominators[~remaining] = -1  # never picked again
        rank += 1
    return pl.Series("rank", ranks, dtype=pl.Int64).replace(0, None)


def _ranks_2d(points: np.ndarray) -> np.ndarray:
    """Non-dominated sorting of (n, 2) costs in O(n log n), the same ranks as the general sweep: in
    order of (x, y), every point seen before a distinct point p has x ≤ p.x, so p's dominators are
    the earlier points with y ≤ p.y, and its rank is one past the highest rank among them. The
    least y of each rank never decreases with the rank, so a binary search finds it. Equal points
    share a rank (neither dominates the other)."""
    import bisect

    order = np.lexsort((points[:, 1], points[:, 0]))
    ranks = np.zeros(len(points), dtype=np.int64)
    least_y: list[float] = []  # least y of the points given rank r + 1 so far
    previous, previous_rank = None, 0
    for i in order:
        point = (points[i, 0], points[i, 1])
        if point != previous:
            r = bisect.bisect_right(least_y, point[1])
            if r == len(least_y):
                least_y.append(point[1])
            else:
                least_y[r] = point[1]
            previous, previous_rank = point, r + 1
        ranks[i] = previous_rank
    return ranks


def pareto_front(frame: pl.DataFrame, objectives: dict[str, str]) -> pl.DataFrame:
    """The non-dominated rows of `frame`."""
    return frame.filter(pareto_ranks(frame, objectives) == 1)


def hypervolume_2d(frame: pl.DataFrame, objectives: dict[str, str], reference: tuple[float, float]) -> float:
    """Area dominated by the rows and bounded by `reference` (given in the objectives' own units).

    Points that do not improve on the reference in both objectives add nothing.
    """
    if len(objectives) != 2:
        raise ValueError(f"hypervolume_2d needs exactly two objectives, got {list(objectives)}")
    signs = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
    return _area(_costs(frame, objectives), np.asarray(reference, dtype=float) * signs)


def _area(costs: np.ndarray, ref: np.ndarray) -> float:
    """The 2-D hypervolume of (n, 2) costs against the reference `ref`, both to minimise."""
    costs = costs[~np.isnan(costs).any(axis=1)]
    costs = costs[(costs < ref).all(axis=1)]
    if not len(costs):
        return 0.0
    front = costs[_nondominated(costs)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    area, best_y = 0.0, ref[1]
    # Sweep in order of the first objective: each point adds the band [x, ref_x] × [y, best y so far].
    for x, y in front:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def summarize_trials(trials: pl.DataFrame, objectives: dict[str, str], metrics: list[str]) -> pl.DataFrame:
    """One row per configuration (trial_id) over its completed seeds: mean and std of `metrics`,
    the configuration's `param.*` values, the seed count, and its Pareto rank on the means. A
    configuration with a failed or pruned seed is left out, its finished seeds too (Optuna hears it
    failed or was pruned, and its seed means would rest on a subset of its seeds)."""
    ended = trials.filter(pl.col("status") != "completed")["trial_id"]
    done = trials.filter((pl.col("status") == "completed") & ~pl.col("trial_id").is_in(ended.to_list()))
    params = [c for c in trials.columns if c.startswith("param.") and c != "param.train.seed"]
    if done.is_empty():  # every seed failed or was pruned: no configuration, no front
        return pl.DataFrame()
    present = [m for m in dict.fromkeys([*objectives, *metrics]) if m in done.columns]
    summary = done.group_by("trial_id", maintain_order=True).agg(
        pl.len().alias("seeds"),
        *[pl.col(p).first() for p in params],
        *[pl.col(m).mean().alias(m) for m in present],
        *[pl.col(m).std().alias(f"{m}_std") for m in present],
    )
    return summary.with_columns(pareto_ranks(summary, objectives)).sort("rank", nulls_last=True)


class RunningFront:
    """The front of configurations added one at a time: each `add` compares with the current front
    only (O(front)), not with every configuration so far. Same rule as `pareto_ranks`: a point with
    a NaN objective never enters; equal points (within `tolerance.equal`) are all on the front."""

    def __init__(self, objectives: dict[str, str]):
        self.signs = {column: 1.0 if direction == "min" else -1.0 for column, direction in objectives.items()}
        self.front: dict[str, tuple[float, ...]] = {}

    def add(self, key: str, values: dict[str, float]) -> bool:
        """Add a configuration's objective values; whether it is on the front now."""
        costs = tuple(float(values[c]) * s if values.get(c) is not None else float("nan") for c, s in self.signs.items())
        if any(c != c for c in costs):  # NaN
            return False
        if any(_dominates(other, costs) for other in self.front.values()):
            return False
        self.front = {k: other for k, other in self.front.items() if not _dominates(costs, other)}
        self.front[key] = costs
        return True

    def __len__(self) -> int:
        return len(self.front)

    def hypervolume(self, reference: tuple[float, float]) -> float:
        """The front's 2-D hypervolume against `reference` (in the objectives' own units), as
        `hypervolume_2d` gives it for all the configurations added so far."""
        signs = np.array(list(self.signs.values()))
        costs = np.array(list(self.front.values()), dtype=float).reshape(-1, 2)
        return _area(costs, np.asarray(reference, dtype=float) * signs)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """a is no worse than b in every objective and better in one; values that are `tolerance.equal` tie."""
    no_worse = all(x <= y or tolerance.equal(x, y) for x, y in zip(a, b))
    return no_worse and any(x < y and not tolerance.equal(x, y) for x, y in zip(a, b))
