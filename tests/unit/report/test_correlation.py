"""The correlation analysis: r and ρ against scipy, the bootstrap intervals against a slow loop
over the same resamples, degenerate inputs, and the report's table and figure."""

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from raygap.report.correlation import average_ranks, correlation, correlation_table


def test_r_and_rho_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    for case in range(20):
        n = int(rng.integers(6, 40))
        x = rng.integers(0, 6, size=n).astype(float)  # many ties
        y = x * rng.normal() + rng.normal(size=n)
        got = correlation(x, y, resamples=10)
        if np.ptp(x) == 0:
            assert math.isnan(got["pearson"]) and math.isnan(got["spearman"])
            continue
        assert got["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12), case
        assert got["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12), case


def test_the_bootstrap_interval_is_the_percentiles_of_the_resampled_statistics():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 8, size=25).astype(float)
    y = x + rng.normal(size=25)
    got = correlation(x, y, resamples=200, seed=3)
    samples = np.random.default_rng(3).integers(0, 25, size=(200, 25))  # the resamples `correlation` draws
    for name, statistic in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        values = []
        for s in samples:
            if np.ptp(x[s]) > 0 and np.ptp(y[s]) > 0:
                values.append(statistic(x[s], y[s]).statistic)
        low, high = np.percentile(values, [2.5, 97.5])
        assert (got[f"{name}_low"], got[f"{name}_high"]) == pytest.approx((low, high), abs=1e-12)
        assert got[f"{name}_low"] <= got[name] <= got[f"{name}_high"]


def test_average_ranks_of_resamples_by_hand():
    values = np.array([3.0, 1.0, 3.0, 2.0])
    # Resample [0, 0, 1, 3]: values 3, 3, 1, 2 → ranks 3.5, 3.5, 1, 2.
    assert average_ranks(values, np.array([[0, 0, 1, 3]])).tolist() == [[3.5, 3.5, 1.0, 2.0]]
    assert average_ranks(values, np.array([[0, 1, 2, 3]])).tolist() == [[3.5, 1.0, 3.5, 2.0]]


def test_degenerate_inputs_give_nan_never_a_perfect_correlation():
    constant = correlation(np.ones(10), np.arange(10.0))
    assert all(math.isnan(constant[k]) for k in ("pearson", "spearman", "pearson_low", "spearman_high"))
    # Five perfectly ordered configurations still get no coefficient: below MIN_CONFIGURATIONS (6)
    too_few = correlation(np.arange(5.0), -np.arange(5.0))
    assert too_few["n"] == 5 and all(math.isnan(too_few[k]) for k in ("pearson", "pearson_low", "spearman", "spearman_high"))
    with_nan = correlation(
        np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0, 6.0, 7.0]), np.array([2.0, 4.0, 1.0, 6.0, math.inf, 10.0, 12.0, 14.0])
    )
    assert with_nan["n"] == 6 and with_nan["pearson"] == pytest.approx(1.0)


def test_the_table_covers_the_metrics_present():
    frame = pl.DataFrame(
        {
            "modality_gap": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, None],
            "uniformity": [-1.2, -1.1, -1.3, -1.0, -1.1, -1.0, -1.1],
            "mean_r1": [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.9],
            "zero_shot_top1": [None] * 7,
        },
        schema_overrides={"zero_shot_top1": pl.Float64},
    )
    table = correlation_table(frame, resamples=50)
    assert table.select("embedding", "downstream").rows() == [("modality_gap", "mean_r1"), ("uniformity", "mean_r1")]
    gap = table.row(0, named=True)
    assert gap["n"] == 6 and gap["pearson"] == pytest.approx(-1.0) and gap["spearman"] == pytest.approx(-1.0)
