"""Ties decided from the data, not by the last bit a CPU's kernels give: metrics, fronts and
correlations give the same answer when inputs move by one ulp, are chunked differently or come in
another dtype; property-based checks (hypothesis) of their invariants."""

import math

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from raygap import pareto, tolerance
from raygap.clip import metrics
from raygap.report import correlation

N = 200


def ulp_nudged(rows: int, dim: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    """`rows` copies of one random vector, each entry moved up or down by one ulp of `dtype` at random:
    a collapsed tower as a real kernel hands it over, equal up to rounding."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(1, dim, generator=generator, dtype=dtype).expand(rows, dim)
    step = torch.randint(-1, 2, (rows, dim), generator=generator)
    up = torch.nextafter(base, torch.tensor(math.inf, dtype=dtype))
    down = torch.nextafter(base, torch.tensor(-math.inf, dtype=dtype))
    return torch.where(step > 0, up, torch.where(step < 0, down, base))


def chance(k: int, n: int = N) -> dict[str, float]:
    return {f"{d}_r{k}": k / n for d in ("image_to_text", "text_to_image")}


@pytest.mark.parametrize("chunk_size", [7, 64, 1024])
@pytest.mark.parametrize("dim", [16, 512])
def test_recall_of_towers_collapsed_up_to_one_ulp_is_chance(chunk_size, dim):
    # Both towers collapsed onto one direction, each entry one ulp off: chance, never "perfect".
    image, text = ulp_nudged(N, dim, seed=0), ulp_nudged(N, dim, seed=0)
    got = metrics.recall_at_k(image, text, torch.arange(N), ks=(1, 5, 10), chunk_size=chunk_size)
    assert got == pytest.approx({**chance(1), **chance(5), **chance(10)}, rel=1e-12)
    text = ulp_nudged(N, dim, seed=1)  # the text tower collapsed elsewhere
    got = metrics.recall_at_k(image, text, torch.arange(N), ks=(1, 5), chunk_size=chunk_size)
    assert got == pytest.approx({**chance(1), **chance(5)}, rel=1e-12)


def test_recall_of_one_tower_collapsed_up_to_one_ulp_is_chance():
    healthy = torch.randn(N, 64, generator=torch.Generator().manual_seed(3))
    collapsed = ulp_nudged(N, 64, seed=4)
    for image, text in ((healthy, collapsed), (collapsed, healthy)):
        got = metrics.recall_at_k(image, text, torch.arange(N), ks=(1, 5))
        assert got == pytest.approx({**chance(1), **chance(5)}, rel=1e-12)


@pytest.mark.parametrize("n_classes, dim", [(100, 512), (10, 16)])
def test_zero_shot_against_classes_equal_up_to_one_ulp_is_chance(n_classes, dim):
    images = torch.randn(512, dim, generator=torch.Generator().manual_seed(5))
    labels = torch.arange(512) % n_classes
    classes = ulp_nudged(n_classes, dim, seed=6)
    assert metrics.zero_shot_accuracy(images, classes, labels) == pytest.approx(1 / n_classes, rel=1e-12)


def test_mismatch_and_mmvp_of_features_equal_up_to_one_ulp_score_chance():
    image, text = ulp_nudged(N, 32, seed=7), ulp_nudged(N, 32, seed=7)
    assert metrics.mismatch_fraction(image, text) == 1.0  # every pair ties with the others
    per_group, mean = metrics.mmvp_scores(image, text, torch.arange(N) // 2 % 3, 3)
    assert per_group == pytest.approx([0.25] * 3) and mean == pytest.approx(0.25)


def test_metrics_agree_across_dtypes_and_chunkings():
    # Healthy features (no near-ties): float32 and float64 inputs, any chunking, the same answer.
    generator = torch.Generator().manual_seed(8)
    image = torch.randn(300, 48, generator=generator)
    owner = torch.arange(300).repeat_interleave(2)
    text = image[owner] + 4.0 * torch.randn(600, 48, generator=generator)
    reference = metrics.recall_at_k(image.double(), text.double(), owner, chunk_size=1024)
    assert 0.05 < reference["image_to_text_r1"] < 0.95
    for dtype in (torch.float32, torch.float64):
        for chunk_size in (1, 17, 256):
            got = metrics.recall_at_k(image.to(dtype), text.to(dtype), owner, chunk_size=chunk_size)
            assert got == pytest.approx(reference, abs=1e-12)
    # Collapsed towers in either dtype: chance in both.
    for dtype in (torch.float32, torch.float64):
        collapsed = ulp_nudged(N, 48, seed=9, dtype=dtype)
        assert metrics.recall_at_k(collapsed, collapsed, torch.arange(N), ks=(1,)) == pytest.approx(chance(1), rel=1e-12)


def test_score_tolerance_is_small_against_real_differences():
    # Float32 features at m = 512: ties within 5e-7 of cosine, far below a trained model's margins.
    assert tolerance.score_tolerance(torch.finfo(torch.float32).eps, 512) == pytest.approx(4.77e-7, rel=0.01)
    assert tolerance.score_tolerance(torch.finfo(torch.float64).eps, 512) < 2e-13


# Fronts and correlations: results that agree up to rounding are equal.


def test_configurations_equal_up_to_one_ulp_share_the_front():
    gap = 0.1
    frame = pl.DataFrame({"modality_gap": [gap, np.nextafter(gap, 1.0), 0.3], "mean_r1": [0.5, 0.5, 0.4]})
    objectives = {"modality_gap": "min", "mean_r1": "max"}
    assert pareto.pareto_ranks(frame, objectives).to_list() == [1, 1, 2]
    three = frame.with_columns(pl.col("mean_r1").alias("uniformity"))
    assert pareto.pareto_ranks(three, {**objectives, "uniformity": "max"}).to_list() == [1, 1, 2]
    front = pareto.RunningFront(objectives)
    assert front.add("a", {"modality_gap": gap, "mean_r1": 0.5})
    assert front.add("b", {"modality_gap": np.nextafter(gap, 1.0), "mean_r1": 0.5})
    assert len(front) == 2


def test_a_constant_side_has_no_correlation():
    assert np.isnan(correlation.pearson_rows(np.array([[0.1, 0.1, 0.1]]), np.array([[1.0, 2.0, 3.0]]))[0])
    constant = np.full(12, 0.1)
    constant[[3, 8]] = np.nextafter(0.1, 1.0), np.nextafter(0.1, 0.0)  # a constant metric, rounded on two machines
    out = correlation.correlation(constant, np.arange(12.0), resamples=200)
    assert all(math.isnan(out[key]) for key in ("pearson", "pearson_low", "pearson_high", "spearman"))


# Property-based invariants.

small_features = hnp.arrays(np.float64, st.tuples(st.integers(3, 12), st.just(4)), elements=st.integers(-3, 3).map(float))


@settings(max_examples=60, deadline=None)
@given(small_features, st.randoms(use_true_random=False))
def test_recall_does_not_depend_on_the_order_of_pairs(features, random):
    image = torch.tensor(features)
    image[:, 0] += 0.5  # no zero-norm row
    text = image.roll(1, dims=0) + torch.tensor(features[::-1].copy())
    text[:, 1] += 0.25
    order = list(range(len(image)))
    random.shuffle(order)
    perm = torch.tensor(order)
    n = len(image)
    ks = tuple(k for k in (1, 2) if k < n)
    got = metrics.recall_at_k(image, text, torch.arange(n), ks=ks)
    permuted = metrics.recall_at_k(image[perm], text[perm], torch.arange(n), ks=ks, chunk_size=2)
    assert permuted == pytest.approx(got, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(4, 40), st.integers(2, 16)), elements=st.floats(-4, 4, width=32)), st.data())
def test_a_constant_tower_scores_chance(other, data):
    other = torch.tensor(other)
    other[:, 0] += 9.0  # keep every row's norm away from 0
    n, dim = other.shape
    constant = torch.tensor(data.draw(hnp.arrays(np.float32, dim, elements=st.floats(0.5, 2, width=32)))).expand(n, dim)
    for image, text in ((other, constant), (constant, other)):
        got = metrics.recall_at_k(image, text, torch.arange(n), ks=(1, 2))
        assert got == pytest.approx({**chance(1, n), **chance(2, n)}, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=st.floats(-10, 10) | st.just(math.nan)))
def test_nan_never_ranks(costs):
    frame = pl.DataFrame({"modality_gap": costs[:, 0], "mean_r1": costs[:, 1]}, nan_to_null=False)
    ranks = pareto.pareto_ranks(frame, {"modality_gap": "min", "mean_r1": "max"})
    has_nan = np.isnan(costs).any(axis=1)
    assert all((r is None) == bool(bad) for r, bad in zip(ranks.to_list(), has_nan))
    # Rows without NaN are ranked as if the NaN rows were not there.
    clean = frame.filter(pl.Series(~has_nan))
    assert pareto.pareto_ranks(clean, {"modality_gap": "min", "mean_r1": "max"}).to_list() == [r for r in ranks.to_list() if r is not None]


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, st.integers(3, 30), elements=st.integers(-1000, 1000)), st.integers(0, 2**16))
def test_a_monotone_transform_does_not_change_spearman(values, seed):
    x = values.astype(float)
    y = np.random.default_rng(seed).normal(size=len(x)) + 0.01 * x
    base = correlation.correlation(x, y, resamples=50, seed=seed)
    for transformed in (np.tanh(x / 700.0), x**3 + x, 5.0 * x - 2.0):
        out = correlation.correlation(transformed, y, resamples=50, seed=seed)
        for key in ("spearman", "spearman_low", "spearman_high"):
            assert (math.isnan(out[key]) and math.isnan(base[key])) or out[key] == pytest.approx(base[key], abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 25), st.just(2)), elements=st.floats(0, 1)), st.randoms(use_true_random=False))
def test_fronts_do_not_move_when_results_move_by_one_ulp(costs, random):
    objectives = {"modality_gap": "min", "mean_r1": "max"}
    frame = pl.DataFrame({"modality_gap": costs[:, 0], "mean_r1": costs[:, 1]})
    nudged = costs.copy()
    for index in np.ndindex(*costs.shape):
        nudged[index] = np.nextafter(costs[index], random.choice((-1.0, 2.0)))
    nudged_frame = pl.DataFrame({"modality_gap": nudged[:, 0], "mean_r1": nudged[:, 1]})
    assert pareto.pareto_ranks(frame, objectives).to_list() == pareto.pareto_ranks(nudged_frame, objectives).to_list()
