"""Pareto fronts over a polars frame: non-dominated filtering, ranks, and 2-D hypervolume.

Objectives are a mapping {column: "min" | "max"}. Internally every objective is turned into one to
minimise (max columns are negated). Rows with a NaN or null objective never enter a front (rank
null); ±inf are ordinary, extreme values.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def _costs(frame: pl.DataFrame, objectives: dict[str, str]) -> np.ndarray:
    """(n, k) float array to minimise; NaN where an objective is missing."""
    for column, direction in objectives.items():
        if column not in frame.columns:
            raise KeyError(f"objective {column!r} is not a column; columns: {frame.columns}")
        if direction not in ("min", "max"):
            raise ValueError(f"objective {column!r}: direction must be 'min' or 'max', got {direction!r}")
    columns = [frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in objectives]
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

    The domination matrix is built once and fronts are peeled by counting each row's dominators
    (Deb's fast non-dominated sort): a study's front is recomputed after every trial.
    """
    costs = _costs(frame, objectives)
    ranks = np.zeros(len(costs), dtype=np.int64)
    valid = np.flatnonzero(~np.isnan(costs).any(axis=1))
    points = costs[valid]
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


def pareto_front(frame: pl.DataFrame, objectives: dict[str, str]) -> pl.DataFrame:
    """The non-dominated rows of `frame`."""
    return frame.filter(pareto_ranks(frame, objectives) == 1)


def hypervolume_2d(frame: pl.DataFrame, objectives: dict[str, str], reference: tuple[float, float]) -> float:
    """Area dominated by the rows and bounded by `reference` (given in the objectives' own units).

    Points that do not strictly improve on the reference in both objectives add nothing.
    """
    if len(objectives) != 2:
        raise ValueError(f"hypervolume_2d needs exactly two objectives, got {list(objectives)}")
    signs = np.array([1.0 if d == "min" else -1.0 for d in objectives.values()])
    ref = np.asarray(reference, dtype=float) * signs
    costs = _costs(frame, objectives)
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
    configuration that early stopping pruned is left out, its finished seeds too."""
    pruned = trials.filter(pl.col("status") == "pruned")["trial_id"]
    done = trials.filter((pl.col("status") == "completed") & ~pl.col("trial_id").is_in(pruned.to_list()))
    params = [c for c in trials.columns if c.startswith("param.") and c != "param.train.seed"]
    present = [m for m in dict.fromkeys([*objectives, *metrics]) if m in done.columns]
    summary = done.group_by("trial_id", maintain_order=True).agg(
        pl.len().alias("seeds"),
        *[pl.col(p).first() for p in params],
        *[pl.col(m).mean().alias(m) for m in present],
        *[pl.col(m).std().alias(f"{m}_std") for m in present],
    )
    return summary.with_columns(pareto_ranks(summary, objectives)).sort("rank", nulls_last=True)
