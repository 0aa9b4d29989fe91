"""When two computed numbers count as equal: the one rule behind every tie, "constant" and
dominance decision raygap makes, so that no result depends on the last bit a CPU's kernels give.

Two kinds of numbers are compared:
- Scores (cosines of unit features, logits): two scores tie when they differ by at most
  `score_tolerance`, the most that changing every feature entry by one unit in the last place of its
  dtype, plus rounding the float64 dot product of length m, can move a score. Below that the order
  of two scores is decided by rounding, not by the model: a collapsed model's rows give cosines
  that differ in the last bit by the BLAS block a row falls in.
- Results (metrics, seed means, objectives): two values are equal when they agree to within
  `RELATIVE` of their magnitude (at least 1), about 4,000 float64 units in the last place, which
  covers sums and means of thousands of terms summed in any order.
Pure: numpy only.
"""

from __future__ import annotations

import math

import numpy as np

FLOAT64_EPS = float(np.finfo(np.float64).eps)
RELATIVE = 2.0**12 * FLOAT64_EPS  # ≈ 9.1e-13


def score_tolerance(feature_eps: float, dim: int, scale: float = 1.0) -> float:
    """The half-width of a tie between two scores computed in float64 from features held with
    machine epsilon `feature_eps` (float32: 1.19e-7) in `dim` dimensions.

    A one-ulp change of every entry moves a unit vector by at most ε (relative ε/2 per entry, again
    after renormalizing), so a cosine by at most 2ε; twice that for the pair of scores compared, plus
    the float64 dot product's rounding bound (dim + 2)·ε₆₄. `scale` bounds the scores' size for
    scores that are not cosines (a linear probe's logits). Float32 features at m = 512: 4.8e-7.
    """
    return scale * (4.0 * feature_eps + (dim + 2) * FLOAT64_EPS)


def magnitude_tolerance(values: np.ndarray) -> float:
    """The tolerance of `equal` for a set of values: RELATIVE × max(1, their largest |value|)."""
    finite = np.abs(values[np.isfinite(values)])
    return RELATIVE * max(1.0, float(finite.max()) if finite.size else 1.0)


def snap(values: np.ndarray) -> np.ndarray:
    """`values` with each run of sorted values whose neighbours differ by at most
    `magnitude_tolerance` replaced by the run's smallest value, so that later exact comparisons
    (sorting, dominance, distinct counts) see equal results as equal. NaN stays NaN; ±inf stay."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size < 2:
        return out
    order = finite[np.argsort(values[finite], kind="stable")]
    sorted_values = values[order]
    starts_run = np.concatenate([[True], np.diff(sorted_values) > magnitude_tolerance(values)])
    run_first = np.maximum.accumulate(np.where(starts_run, np.arange(len(order)), 0))
    out[order] = sorted_values[run_first]
    return out


def equal(a: float, b: float) -> bool:
    """Whether two results agree within RELATIVE of their magnitude (NaN equals nothing; an
    infinity equals only itself)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return bool(abs(a - b) <= RELATIVE * max(1.0, abs(a), abs(b)))


def constant_rows(values: np.ndarray) -> np.ndarray:
    """For a (B, n) array: whether each row's values all agree within RELATIVE of the row's magnitude."""
    values = np.asarray(values, dtype=float)
    scale = np.maximum(1.0, np.abs(values).max(axis=1))
    return (values.max(axis=1) - values.min(axis=1)) <= RELATIVE * scale
