"""The literature's other measures of the gap (raygap.clip.gap_measures): a case worked out by
hand, a slow loop over pairs written from each formula, collapsed and undefined inputs, and
invariants under row order, dtype and one-ulp nudges."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from raygap.clip import gap_measures as gm

E = torch.eye(3, dtype=torch.float64)


def test_a_case_by_hand():
    # images e1, e2; captions e1 (of image 0), e3 (of image 1)
    x, y, owner = torch.stack([E[0], E[1]]), torch.stack([E[0], E[2]]), [0, 1]
    assert gm.instance_gap(x, y, owner) == pytest.approx(math.sqrt(2) / 2)  # (0 + √2) / 2
    # m = 1 − (0.5 + 1)/2 = 0.25; a = b = 1 − (0 + 1)/2 = 0.5 → 0.25 / (0.25 + 0.5)
    assert gm.relative_gap(x, y, owner) == pytest.approx(1 / 3)
    assert gm.alignment(x, y) == pytest.approx(1.0)  # (0 + 2) / 2
    # pooled e1, e2, e1, e3: squared distances 2, 0, 2, 2, 2, 2 → log((1 + 5e⁻⁴) / 6)
    assert gm.uniformity_loss(x, y) == pytest.approx(math.log((1 + 5 * math.exp(-4)) / 6))
    assert gm.cone(x) == pytest.approx(0.0) and gm.cone(y) == pytest.approx(0.0)
    # Δ = (e2 − e3)/2: squares 0, 0.25, 0.25; 90 % of 0.5 needs both nonzero coordinates
    assert gm.gap_dimensions(x, y) == 2.0
    # a share met exactly (up to rounding) is met: Δ = (0.3, 0.1, 0) puts exactly 90 % of ‖Δ‖² in one coordinate
    w = math.sqrt(1 - 0.15**2 - 0.05**2)
    image, text = torch.tensor([[0.15, 0.05, w]], dtype=torch.float64), torch.tensor([[-0.15, -0.05, w]], dtype=torch.float64)
    assert gm.gap_dimensions(image, text, share=0.9) == 1.0
    assert gm.gap_dimensions(image, text, share=0.95) == 2.0


def slow(x: np.ndarray, y: np.ndarray, owner: list[int]) -> dict:
    """Every measure from its formula, one pair at a time (rows already unit)."""
    n, c = len(x), len(y)
    cos = lambda a, b: float(np.dot(a, b))  # noqa: E731
    s = lambda a, b: 1 - (cos(a, b) + 1) / 2  # noqa: E731
    matched = max(sum(s(x[owner[k]], y[k]) for k in range(c)) / c, 1e-3)
    a = sum(s(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    b = sum(s(y[i], y[j]) for i in range(c) for j in range(c) if i != j) / (c * (c - 1))
    first = [owner.index(i) for i in range(n)]
    pairs = [(x[i], y[first[i]]) for i in range(n)]
    pooled = [*x, *(y[k] for k in first)]
    potentials = [math.exp(-2 * float(np.sum((pooled[i] - pooled[j]) ** 2))) for i in range(len(pooled)) for j in range(i + 1, len(pooled))]
    return {
        "instance_gap": sum(float(np.linalg.norm(x[owner[k]] - y[k])) for k in range(c)) / c,
        "relative_gap": matched / (matched + (a + b) / 2),
        "alignment": sum(float(np.sum((p - q) ** 2)) for p, q in pairs) / n,
        "uniformity_loss": math.log(sum(potentials) / len(potentials)),
        "image_cone": sum(cos(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1)),
    }


def test_every_measure_matches_a_slow_loop_with_several_captions_per_image():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5)) + 0.8
    owner = [0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6]
    y = rng.normal(size=(len(owner), 5)) - 0.3
    x, y = x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(y, axis=1, keepdims=True)
    expected = slow(x, y, owner)
    tx, ty = torch.tensor(x), torch.tensor(y)
    first = [owner.index(i) for i in range(len(x))]
    assert gm.instance_gap(tx, ty, owner) == pytest.approx(expected["instance_gap"], abs=1e-12)
    assert gm.relative_gap(tx, ty, owner) == pytest.approx(expected["relative_gap"], abs=1e-12)
    assert gm.alignment(tx, ty[first]) == pytest.approx(expected["alignment"], abs=1e-12)
    assert gm.uniformity_loss(tx, ty[first]) == pytest.approx(expected["uniformity_loss"], abs=1e-12)
    for block in (1, 3, 64):  # summed in blocks of rows: the same number whatever the block
        assert gm.uniformity_loss(tx, ty[first], block=block) == pytest.approx(expected["uniformity_loss"], abs=1e-12)
    assert gm.cone(tx) == pytest.approx(expected["image_cone"], abs=1e-12)


def test_collapsed_towers_never_look_like_a_closed_gap_by_rmg_or_a_uniform_space():
    v = torch.tensor([[0.6, 0.8, 0.0]] * 6)
    owner = list(range(6))
    assert gm.relative_gap(v, v, owner) == pytest.approx(1.0, abs=1e-9)  # the worst, not 0
    assert gm.uniformity_loss(v, v) == pytest.approx(0.0, abs=1e-12)  # the worst value
    assert gm.cone(v) == pytest.approx(1.0)
    assert math.isnan(gm.gap_dimensions(v, v))  # no gap to share out
    # centroid-like measures read 0 for towers collapsed onto one point: the degenerate flag says why
    assert gm.instance_gap(v, v, owner) == 0.0 and gm.alignment(v, v) == 0.0


def test_undefined_inputs_give_nan():
    good = torch.eye(3)
    bad = good.clone()
    bad[1, 1] = float("nan")
    zero = good.clone()
    zero[2] = 0
    for features in (bad, zero):
        assert math.isnan(gm.instance_gap(features, good, [0, 1, 2]))
        assert math.isnan(gm.relative_gap(good, features, [0, 1, 2]))
        assert math.isnan(gm.alignment(features, good)) and math.isnan(gm.uniformity_loss(good, features))
        assert math.isnan(gm.cone(features)) and math.isnan(gm.gap_dimensions(features, good))
    one = torch.eye(3)[:1]
    assert math.isnan(gm.relative_gap(one, one, [0])) and math.isnan(gm.cone(one))
    assert math.isnan(gm.instance_gap(good, good, [0, 1]))  # a caption without its image index


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(2, 8), st.integers(0, 2**31 - 1))
def test_ranges_row_order_dtype_and_an_ulp(n, m, seed):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(n, m)))
    y = torch.tensor(rng.normal(size=(n, m)) + rng.normal(size=m))
    owner = list(range(n))
    values = {
        "instance_gap": gm.instance_gap(x, y, owner),
        "relative_gap": gm.relative_gap(x, y, owner),
        "alignment": gm.alignment(x, y),
        "uniformity_loss": gm.uniformity_loss(x, y),
        "cone": gm.cone(x),
        "gap_dimensions": gm.gap_dimensions(x, y),
    }
    assert 0 <= values["instance_gap"] <= 2 and 0 < values["relative_gap"] <= 1 and 0 <= values["alignment"] <= 4
    assert -8 <= values["uniformity_loss"] <= 1e-12 and -1 / (n - 1) - 1e-12 <= values["cone"] <= 1 + 1e-12
    assert 1 <= values["gap_dimensions"] <= m
    order = torch.tensor(rng.permutation(n))
    nudged = torch.nextafter(x, torch.full_like(x, math.inf))
    for other_x, other_y in ((x[order], y[order]), (x.float(), y.float()), (nudged, y)):
        assert gm.instance_gap(other_x, other_y, owner) == pytest.approx(values["instance_gap"], abs=1e-6)
        assert gm.relative_gap(other_x, other_y, owner) == pytest.approx(values["relative_gap"], abs=1e-6)
        assert gm.uniformity_loss(other_x, other_y) == pytest.approx(values["uniformity_loss"], abs=1e-6)
        assert gm.cone(other_x) == pytest.approx(values["cone"], abs=1e-6)
    assert gm.gap_dimensions(nudged, y) == values["gap_dimensions"]  # a count, decided with a tolerance


def test_separability_is_chance_for_one_point_and_certain_for_two():
    same = torch.tensor([[0.6, 0.8, 0.0]] * 10)
    assert gm.separability(same, same) == 0.5  # constant features: the probe's majority rate of a balanced split
    images, texts = torch.tensor([[1.0, 0.0, 0.0]] * 10), torch.tensor([[0.0, 1.0, 0.0]] * 10)
    assert gm.separability(images, texts) == 1.0
    # overlapping clouds: between the two, and the same for the same seed
    rng = np.random.default_rng(3)
    x, y = torch.tensor(rng.normal(size=(40, 6))), torch.tensor(rng.normal(size=(40, 6)) + 0.4)
    assert 0.5 < gm.separability(x, y, seed=1) < 1.0 and gm.separability(x, y, seed=1) == gm.separability(x, y, seed=1)
    bad = same.clone()
    bad[0, 0] = float("nan")
    assert math.isnan(gm.separability(bad, same)) and math.isnan(gm.separability(same[:1], same[:1]))


def test_the_shift_by_hand_and_centring():
    x, y = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    # Δ = (1, −1): half of it brings both to (1, 1)/√2
    for side in gm.shifted(x, y, 0.5):
        assert side[0].tolist() == pytest.approx([2**-0.5, 2**-0.5])
    same_x, same_y = gm.shifted(x, y, 0.0)
    assert torch.equal(same_x, x) and torch.equal(same_y, y)
    # centring removes each modality's mean: the gap of centred embeddings is 0 up to rounding
    rng = np.random.default_rng(4)
    image, text = torch.tensor(rng.normal(size=(30, 5)) + 2.0), torch.tensor(rng.normal(size=(30, 5)) - 1.0)
    from raygap.clip.metrics import modality_gap

    assert modality_gap(image, text) > 1.0 and modality_gap(*gm.centred(image, text)) < 0.5
    # a shift toward the middle closes the gap, away from it widens it
    gaps = [modality_gap(*gm.shifted(image, text, shift)) for shift in (-0.25, 0.0, 0.25, 0.5)]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
    with pytest.raises(ValueError, match="cannot be shifted"):
        gm.shifted(torch.zeros(2, 3), text[:2, :3], 0.5)
