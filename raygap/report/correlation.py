"""The correlation analysis (the paper's Figures 6–7): across every configuration of one or several
studies, the modality gap and the uniformity against each downstream metric, as Pearson's r and
Spearman's ρ with percentile bootstrap confidence intervals (configurations resampled with
replacement). Pure numbers: the figure and the table read them.

Values that agree within raygap.tolerance.RELATIVE of their magnitude are equal (`tolerance.snap`):
they tie in Spearman's ranks, and a side whose values all agree is constant, so its r and ρ are NaN
rather than a rounding error's correlation."""

from __future__ import annotations

import numpy as np
import polars as pl

from raygap import tolerance
from raygap.report.studies import Study, configurations

EMBEDDING = (
    "modality_gap",
    "uniformity",
    "instance_gap",
    "relative_gap",
    "alignment",
    "uniformity_loss",
    "image_cone",
    "text_cone",
    "gap_dimensions",
    "modality_separability",
)
DOWNSTREAM = ("zero_shot_top1", "linear_probe_top1", "image_to_text_r1", "text_to_image_r1", "mean_r1", "mmvp_accuracy")
NAN = float("nan")
MIN_CONFIGURATIONS = 6
"""Fewer configurations give no coefficient: a bootstrap over 3 points reads −1.00 [−1.00, −1.00]."""


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair of two (B, n) arrays; NaN where a row is constant
    (`tolerance.constant_rows`: its mean's rounding would otherwise make a correlation of ±1)."""
    dx, dy = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    denominator = np.sqrt((dx * dx).sum(1) * (dy * dy).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(1) / denominator
    defined = ~tolerance.constant_rows(x) & ~tolerance.constant_rows(y) & (denominator > 0)
    return np.where(defined, np.clip(r, -1.0, 1.0), NAN)


def average_ranks(values: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """The ranks (1-based, ties averaged) of each row of values[samples] within its row, for a
    (B, n) index array `samples`: counted per distinct value, so B resamples cost one pass."""
    distinct, codes = np.unique(values, return_inverse=True)
    drawn = codes[samples]
    rows, width = samples.shape[0], len(distinct)
    flat = (np.arange(rows)[:, None] * width + drawn).ravel()
    counts = np.bincount(flat, minlength=rows * width).reshape(rows, width).astype(float)
    below = np.cumsum(counts, axis=1) - counts
    return np.take_along_axis(below + (counts + 1.0) / 2.0, drawn, axis=1)


def correlation(x: np.ndarray, y: np.ndarray, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """r and ρ of paired values (rows with a NaN dropped) and their bootstrap intervals. NaN with
    fewer than MIN_CONFIGURATIONS pairs or a constant side (no correlation is defined); resamples that come out
    constant are left out of the interval. Values are snapped first (`tolerance.snap`)."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = tolerance.snap(np.asarray(x, float)[keep]), tolerance.snap(np.asarray(y, float)[keep])
    n = len(x)
    out = {"n": n, "pearson": NAN, "pearson_low": NAN, "pearson_high": NAN, "spearman": NAN, "spearman_low": NAN, "spearman_high": NAN}
    if n < MIN_CONFIGURATIONS:
        return out
    whole = np.arange(n)[None, :]
    samples = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    tail = (1 - level) / 2 * 100
    for name, statistic in (
        ("pearson", lambda s: pearson_rows(x[s], y[s])),
        ("spearman", lambda s: pearson_rows(average_ranks(x, s), average_ranks(y, s))),
    ):
        out[name] = float(statistic(whole)[0])
        boot = statistic(samples)
        boot = boot[np.isfinite(boot)]
        if np.isfinite(out[name]) and len(boot):
            out[f"{name}_low"], out[f"{name}_high"] = (float(v) for v in np.percentile(boot, [tail, 100 - tail]))
    return out


def bootstrap_resamples(n: int) -> int:
    """1,000 resamples, fewer above 2,000 configurations (200 from 10,000): the work grows with
    resamples × n, and the interval of a large set is narrow either way."""
    return max(200, min(1000, 2_000_000 // max(n, 1)))


def correlation_table(configurations: pl.DataFrame, resamples: int | None = None, seed: int = 0) -> pl.DataFrame:
    """One row per (embedding metric, downstream metric) both present: n, r and ρ with their
    intervals, over the rows of `configurations` (seed means, one row per configuration);
    `resamples` defaults to bootstrap_resamples of the number of configurations."""
    resamples = resamples or bootstrap_resamples(configurations.height)
    rows = []
    for embedding in EMBEDDING:
        for downstream in DOWNSTREAM:
            if embedding not in configurations.columns or downstream not in configurations.columns:
                continue
            x = configurations[embedding].cast(pl.Float64).fill_null(NAN).to_numpy()
            y = configurations[downstream].cast(pl.Float64).fill_null(NAN).to_numpy()
            if not (np.isfinite(x) & np.isfinite(y)).any():
                continue
            rows.append(
                {"embedding": embedding, "downstream": downstream, "resamples": resamples, **correlation(x, y, resamples, seed=seed)}
            )
    return pl.DataFrame(rows)


def study_correlations(studies: list[Study]) -> pl.DataFrame:
    """`correlation_table` over every configuration of the studies pooled."""
    frames = [configurations(study) for study in studies]
    frames = [f for f in frames if not f.is_empty()]
    return correlation_table(pl.concat(frames, how="diagonal_relaxed")) if frames else pl.DataFrame()
