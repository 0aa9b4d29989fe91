import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from raygap.clip import metrics

E = torch.eye(3, dtype=torch.float64)


def four_squares(r: int) -> tuple[int, int, int, int]:
    """Four non-negative integers whose squares sum to r (Lagrange: always possible)."""
    for a in range(math.isqrt(r) + 1):
        for b in range(a, math.isqrt(r - a * a) + 1):
            for c in range(b, math.isqrt(r - a * a - b * b) + 1):
                d = math.isqrt(r - a * a - b * b - c * c)
                if a * a + b * b + c * c + d * d == r:
                    return a, b, c, d
    raise AssertionError(r)


def features_with_scores(scores: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Image/text features whose normalized cosine matrix is exactly `scores / C` (C a power of two).

    `scores` is an integer (n_images, n_texts) matrix. Images are one-hot; each text is a column of
    the matrix padded with four integer coordinates so that every text's norm is exactly C. Every
    normalized entry is then a dyadic fraction, so cosines are exact and equal scores tie exactly
    (within a row and across columns), which the tie conventions need.
    """
    scores = np.asarray(scores)
    assert np.issubdtype(scores.dtype, np.integer)
    n_images, n_texts = scores.shape
    c = 1 << math.ceil(math.log2(np.linalg.norm(scores, axis=0).max() + 1))
    image = np.zeros((n_images, n_images + 4))
    image[:, :n_images] = np.eye(n_images)
    text = np.zeros((n_texts, n_images + 4))
    text[:, :n_images] = scores.T
    for j in range(n_texts):
        text[j, n_images:] = four_squares(c * c - int((scores[:, j] ** 2).sum()))
    return torch.tensor(image), torch.tensor(text)


# 4 images × 8 captions (two each), scores in twentieths; ranks worked out by hand in the comments.
SIMILARITY = np.array(
    [
        [18, 2, 10, 4, 6, 0, 2, 4],  # own 18 → nothing above
        [16, 6, 4, 2, 8, 10, 12, 14],  # own best 4 → 6 above
        [2, 4, 6, 8, 7, 18, 0, 0],  # own best 18 → nothing above
        [10, 2, 2, 2, 2, 2, 9, 4],  # own best 9 → 1 above (10)
    ]
)
OWNER = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
# text→image per caption (column): (g images above, t others tied with the own image):
# (0,0) (2,1) (2,0) (2,1) (1,0) (0,0) (1,0) (1,1); P(hit@k) = clip((k − g)/(t + 1), 0, 1):
# k=1: 1 0 0 0 0 1 0 0 → 2/8;  k=2: 1 0 0 0 1 1 1 ½ → 4.5/8;  k=3: 1 ½ 1 ½ 1 1 1 1 → 7/8.
# image→text has no ties here: hit ranks 0, 6, 0, 1.


def test_recall_hand_table():
    image, text = features_with_scores(SIMILARITY)
    got = metrics.recall_at_k(image, text, OWNER, ks=(1, 2, 3, 5, 6, 7, 10))
    assert got == pytest.approx(
        {
            "image_to_text_r1": 2 / 4,
            "image_to_text_r2": 3 / 4,
            "image_to_text_r3": 3 / 4,
            "image_to_text_r5": 3 / 4,
            "image_to_text_r6": 3 / 4,
            # every image has 2 of the 8 captions: its best is at worst rank 6, so k ≥ 7 is trivial.
            "image_to_text_r7": math.nan,
            "image_to_text_r10": math.nan,
            "text_to_image_r1": 2 / 8,
            "text_to_image_r2": 4.5 / 8,
            "text_to_image_r3": 7 / 8,
            # 4 images: k ≥ 4 always hits.
            "text_to_image_r5": math.nan,
            "text_to_image_r6": math.nan,
            "text_to_image_r7": math.nan,
            "text_to_image_r10": math.nan,
        },
        nan_ok=True,
    )


# Ties in both directions, several own captions tied with each other; owner [0, 0, 1, 1, 2, 2].
TIES = np.array(
    [
        [2, 2, 2, 1, 2, 0],  # s* = 2, o = 2 (captions 0, 1), t = 2 (captions 2, 4), g = 0
        [3, 0, 1, 1, 1, 1],  # s* = 1, o = 2 (captions 2, 3), t = 2 (captions 4, 5), g = 1
        [1, 1, 1, 1, 1, 0],  # s* = 1, o = 1 (caption 4),    t = 4 (captions 0–3), g = 0
    ]
)
TIES_OWNER = torch.tensor([0, 0, 1, 1, 2, 2])
# image→text: P(hit@k) = 1 − C(t, k−g)/C(t+o, k−g):
#   image 0: k=1 1−2/4 = ½, k=2 1−1/6 = ⅚, k≥3 1;  image 1: k=1 0, k=2 ½, k=3 ⅚, k=4 1;
#   image 2: k/5 (o = 1).  The worst rank is 6 − 2 = 4, so k ≥ 5 is trivial (NaN).
# text→image per caption (g, t): (1,0) (0,0) (1,1) (0,2) (1,1) (1,1):
#   k=1: 0 1 0 ⅓ 0 0 → (4/3)/6;  k=2: 1 1 ½ ⅔ ½ ½ → (25/6)/6;  3 images, so k ≥ 3 is NaN.


@pytest.mark.parametrize("chunk_size", [1, 2, 1024])
def test_recall_hand_table_with_ties(chunk_size):
    image, text = features_with_scores(TIES)
    got = metrics.recall_at_k(image, text, TIES_OWNER, ks=(1, 2, 3, 4, 5), chunk_size=chunk_size)
    assert got == pytest.approx(
        {
            "image_to_text_r1": (1 / 2 + 0 + 1 / 5) / 3,
            "image_to_text_r2": (5 / 6 + 1 / 2 + 2 / 5) / 3,
            "image_to_text_r3": (1 + 5 / 6 + 3 / 5) / 3,
            "image_to_text_r4": (1 + 1 + 4 / 5) / 3,
            "image_to_text_r5": math.nan,
            "text_to_image_r1": (4 / 3) / 6,
            "text_to_image_r2": (25 / 6) / 6,
            "text_to_image_r3": math.nan,
            "text_to_image_r4": math.nan,
            "text_to_image_r5": math.nan,
        },
        nan_ok=True,
    )


def ranks_with_tie_order(sim: np.ndarray, key: np.ndarray) -> np.ndarray:
    """rank[q, c]: position of candidate c in query q's list sorted by descending score, equal scores
    ordered by `key` (a permutation of the candidates): one deterministic tie-breaking."""
    order = np.lexsort((np.broadcast_to(key, sim.shape), -sim), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(sim.shape[1])[None, :], axis=1)
    return ranks


def recall_over_tie_orders(sim, owner, ks, caption_keys, image_keys) -> dict[str, float]:
    """Recall@k averaged over the given tie-breaking orders of the captions and of the images."""
    is_own = owner[None, :] == np.arange(sim.shape[0])[:, None]
    i2t = [np.where(is_own, ranks_with_tie_order(sim, key), np.inf).min(1) for key in caption_keys]
    t2i = [ranks_with_tie_order(sim.T, key)[np.arange(len(owner)), owner] for key in image_keys]
    out = {}
    for k in ks:
        out[f"image_to_text_r{k}"] = float(np.mean([(r < k).mean() for r in i2t]))
        out[f"text_to_image_r{k}"] = float(np.mean([(r < k).mean() for r in t2i]))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recall_equals_exact_average_over_all_tie_orders(seed):
    # Small integer score matrices with many ties; the reference averages over all 7! caption and
    # 4! image orders.
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, size=(4, 7))
    owner = np.concatenate([np.arange(4), rng.integers(0, 4, size=3)])[rng.permutation(7)]
    expected = recall_over_tie_orders(
        scores.astype(float),
        owner,
        (1, 2, 3),
        map(np.array, itertools.permutations(range(7))),
        map(np.array, itertools.permutations(range(4))),
    )
    image, text = features_with_scores(scores)
    got = metrics.recall_at_k(image, text, torch.tensor(owner), ks=(1, 2, 3), chunk_size=3)
    assert got == pytest.approx(expected, abs=1e-12)


def test_recall_matches_monte_carlo_tie_breaking():
    # Features drawn from six prototypes with dyadic unit entries: cosines are exact and tie a lot.
    prototypes = (
        np.array(
            [
                [2, 0, 0, 0, 0, 0, 0, 0],
                [0, 2, 0, 0, 0, 0, 0, 0],
                [0, 0, 0, 0, 0, 0, 0, 2],
                [1, 1, 1, 1, 0, 0, 0, 0],
                [0, 0, 0, 0, 1, 1, -1, 1],
                [1, -1, 0, 0, 1, 1, 0, 0],
            ],
            dtype=float,
        )
        / 2
    )
    rng = np.random.default_rng(5)
    kind = rng.integers(0, 6, size=24)
    owner = np.repeat(np.arange(24), 3)[rng.permutation(72)]
    text_kind = np.where(rng.random(72) < 0.5, kind[owner], rng.integers(0, 6, size=72))
    image, text = prototypes[kind] * rng.uniform(0.5, 2, size=(24, 1)), prototypes[text_kind]
    image_unit = image / np.linalg.norm(image, axis=1, keepdims=True)
    sim = image_unit @ prototypes[text_kind].T
    expected = recall_over_tie_orders(
        sim, owner, (1, 5, 10), [rng.permutation(72) for _ in range(3000)], [rng.permutation(24) for _ in range(3000)]
    )
    for chunk_size in (5, 1024):
        got = metrics.recall_at_k(torch.tensor(image), torch.tensor(text), torch.tensor(owner), ks=(1, 5, 10), chunk_size=chunk_size)
        assert got == pytest.approx(expected, abs=0.01)


def slow_recall(image: np.ndarray, text: np.ndarray, owner: np.ndarray, k: int) -> tuple[float, float]:
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    sim = image @ text.T
    i2t = []
    for i in range(len(image)):
        order = np.argsort(-sim[i], kind="stable")
        first_own = next(pos for pos, j in enumerate(order) if owner[j] == i)
        i2t.append(first_own < k)
    t2i = []
    for j in range(len(text)):
        order = np.argsort(-sim[:, j], kind="stable")
        t2i.append(list(order).index(owner[j]) < k)
    return float(np.mean(i2t)), float(np.mean(t2i))


@pytest.mark.parametrize("chunk_size", [3, 1024])
def test_recall_matches_slow_reference(chunk_size):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, 6))
    owner = np.repeat(np.arange(40), 3)[rng.permutation(120)]  # 3 captions per image, shuffled
    text = image[owner] + rng.normal(scale=1.5, size=(120, 6))
    got = metrics.recall_at_k(torch.tensor(image), torch.tensor(text), torch.tensor(owner), ks=(1, 5, 10), chunk_size=chunk_size)
    for k in (1, 5, 10):
        i2t, t2i = slow_recall(image, text, owner, k)
        assert got[f"image_to_text_r{k}"] == pytest.approx(i2t)
        assert got[f"text_to_image_r{k}"] == pytest.approx(t2i)
    assert 0 < got["image_to_text_r1"] < 1  # the data is neither trivial nor hopeless


# Degenerate inputs: a collapsed model must score chance (k/n), never "perfect".
N = 200


def random_features(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_recall_of_all_equal_features_is_chance(chunk_size):
    got = metrics.recall_at_k(torch.ones(N, 16), torch.ones(N, 16), torch.arange(N), ks=(1, 5, 10), chunk_size=chunk_size)
    for k in (1, 5, 10):
        for direction in ("image_to_text", "text_to_image"):
            assert got[f"{direction}_r{k}"] == pytest.approx(k / N, rel=1e-12)
            assert got[f"{direction}_r{k}"] <= k / N + 1e-15
    # Four captions per image: an image hits when any of its 4 captions lands in a random top k.
    owner = torch.arange(50).repeat_interleave(4)
    got = metrics.recall_at_k(torch.ones(50, 8), torch.ones(N, 8), owner, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert got[f"image_to_text_r{k}"] == pytest.approx(1 - math.comb(N - 4, k) / math.comb(N, k), rel=1e-12)
        assert got[f"text_to_image_r{k}"] == pytest.approx(k / 50, rel=1e-12)
    assert got["image_to_text_r1"] == pytest.approx(4 / N)


def test_recall_of_a_constant_text_tower_is_chance():
    image = random_features(N, 0)
    text = random_features(1, 1).expand(N, 16)  # every caption the same vector
    got = metrics.recall_at_k(image, text, torch.arange(N), ks=(1, 5, 10))
    # image→text: all captions tie; text→image: every caption sees the same image ranking, in
    # which exactly k images are within the top k.
    assert got == pytest.approx({f"{d}_r{k}": k / N for k in (1, 5, 10) for d in ("image_to_text", "text_to_image")}, rel=1e-12)


def test_recall_of_a_constant_image_tower_is_chance():
    image = random_features(1, 2).expand(N, 16)
    text = random_features(N, 3)
    got = metrics.recall_at_k(image, text, torch.arange(N), ks=(1, 5, 10))
    assert got == pytest.approx({f"{d}_r{k}": k / N for k in (1, 5, 10) for d in ("image_to_text", "text_to_image")}, rel=1e-12)


def test_recall_is_nan_when_k_reaches_the_candidates():
    # 3 images with one caption each: recall@3 and @5 would be 1 for any model.
    got = metrics.recall_at_k(random_features(3, 4), random_features(3, 5), torch.arange(3), ks=(1, 2, 3, 5))
    assert 0 <= got["image_to_text_r2"] <= 1 and 0 <= got["text_to_image_r2"] <= 1
    for k in (3, 5):
        assert math.isnan(got[f"image_to_text_r{k}"]) and math.isnan(got[f"text_to_image_r{k}"])


@pytest.mark.parametrize("bad", ["nan", "inf", "zero"])
@pytest.mark.parametrize("side", ["image", "text"])
def test_recall_of_undefined_features_is_nan(bad, side):
    image, text = random_features(20, 6), random_features(20, 7)
    (image if side == "image" else text)[3] = {"nan": math.nan, "inf": math.inf, "zero": 0.0}[bad]
    got = metrics.recall_at_k(image, text, torch.arange(20), ks=(1, 5))
    assert len(got) == 4 and all(math.isnan(v) for v in got.values())


def test_recall_rejects_bad_owners():
    with pytest.raises(ValueError, match="every image needs a caption"):
        metrics.recall_at_k(random_features(3, 0), random_features(3, 1), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="must index"):
        metrics.recall_at_k(random_features(3, 0), random_features(3, 1), torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="positive integers"):
        metrics.recall_at_k(random_features(3, 0), random_features(3, 1), torch.arange(3), ks=(0,))


def test_gap_hand_values():
    # Two orthogonal unit vectors: centroids e1 and e2, distance √2; scale does not matter.
    assert metrics.modality_gap(E[:1] * 5, E[1:2]) == pytest.approx(math.sqrt(2))
    assert metrics.modality_gap(E[:2], E[[1, 0]]) == pytest.approx(0.0)
    # Centroids (1/2, 1/2, 0) and (0, 0, 1): distance √(1/4 + 1/4 + 1).
    assert metrics.modality_gap(E[:2], E[[2, 2]]) == pytest.approx(math.sqrt(1.5))


def test_uniformity_hand_value():
    # z = {e1, e2} in m=2: ‖μ‖² = 1/2, Σ = [[¼,−¼],[−¼,¼]], tr Σ = ½, tr Σ^½ = √½ → W₂² = 1.
    assert metrics.uniformity(E[:1, :2], E[1:2, :2]) == pytest.approx(-1.0)


def test_uniformity_of_uniform_sphere_is_near_zero():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20000, 8, generator=g), torch.randn(20000, 8, generator=g)
    assert metrics.uniformity(x, y) == pytest.approx(0.0, abs=0.02)
    # All features at one point: μ unit, Σ = 0 → W₂² = 2.
    assert metrics.uniformity(E[[0, 0]], E[[0, 0]]) == pytest.approx(-math.sqrt(2))


def test_uniformity_matches_scipy_sqrtm():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 5)) + 1.0, rng.normal(size=(50, 5))
    z = np.concatenate([x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(y, axis=1, keepdims=True)])
    mu = z.mean(0)
    cov = (z - mu).T @ (z - mu) / len(z)
    w2 = mu @ mu + 1 + np.trace(cov) - 2 / np.sqrt(5) * np.trace(scipy.linalg.sqrtm(cov).real)
    assert metrics.uniformity(torch.tensor(x), torch.tensor(y)) == pytest.approx(-np.sqrt(w2), rel=1e-9)


def test_mismatch_fraction_and_pair_cosine_hand_values():
    x = E
    y = torch.stack([(E[0] + E[1]) / math.sqrt(2), E[0], E[2]])
    # pair 0: own cos √½ < cos(x0, y1) = 1 → mismatched; pair 1: own 0 < √½ → mismatched; pair 2: own 1.
    assert metrics.mismatch_fraction(x, y) == pytest.approx(2 / 3)
    assert metrics.pair_cosine(x, y) == pytest.approx((math.sqrt(0.5) + 0 + 1) / 3)
    assert metrics.mismatch_fraction(x, x) == 0.0


def test_paired_metrics_reject_unpaired_shapes():
    with pytest.raises(ValueError, match="paired features"):
        metrics.pair_cosine(E, E[:2])


def test_zero_shot_hand_value():
    class_text = E[:2, :2]
    image = torch.tensor([[2.0, 1.0], [0.1, 3.0], [1.0, 1.5]])
    # predictions: 0, 1, 1 against labels 0, 1, 0
    assert metrics.zero_shot_accuracy(image, class_text, torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)


def test_linear_probe_separable_and_deterministic():
    rng = np.random.default_rng(2)
    centres = np.eye(4) * 3
    train_labels = np.repeat(np.arange(4), 30)
    train = centres[train_labels] + rng.normal(scale=0.3, size=(120, 4))
    test_labels = np.array([0, 1, 2, 3])
    test = centres[[0, 1, 2, 2]]  # the last test point sits in class 2's cluster but is labelled 3
    args = (torch.tensor(train), torch.tensor(train_labels), torch.tensor(test), torch.tensor(test_labels))
    assert metrics.linear_probe_accuracy(*args) == pytest.approx(3 / 4)
    assert metrics.linear_probe_accuracy(*args) == metrics.linear_probe_accuracy(*args)


def undefined(features: torch.Tensor, bad: str) -> torch.Tensor:
    """A copy of `features` with row 1 made undefined: a NaN entry, an inf entry or all zeros."""
    out = features.clone().to(torch.float64)
    if bad == "zero":
        out[1] = 0.0
    else:
        out[1, 0] = math.nan if bad == "nan" else math.inf
    return out


BAD = ["nan", "inf", "zero"]


@pytest.mark.parametrize("bad", BAD)
def test_paired_metrics_of_undefined_features_are_nan(bad):
    x, y = random_features(10, 8), random_features(10, 9)
    for metric in (metrics.modality_gap, metrics.uniformity, metrics.pair_cosine, metrics.mismatch_fraction):
        assert math.isnan(metric(undefined(x, bad), y)), metric.__name__
        assert math.isnan(metric(x, undefined(y, bad))), metric.__name__
    assert metrics.pair_margins(undefined(x, bad), y).isnan().all()


def test_paired_metrics_of_empty_features_are_nan():
    empty = torch.zeros(0, 4)
    for metric in (metrics.modality_gap, metrics.uniformity, metrics.pair_cosine, metrics.mismatch_fraction):
        assert math.isnan(metric(empty, empty)), metric.__name__


def test_uniformity_of_fully_collapsed_features_is_minus_root_two():
    # Rows of different lengths on one ray still normalize to one point: μ unit, Σ ≈ 0, W₂² = 2.
    scale = torch.linspace(0.5, 3, 200, dtype=torch.float64)[:, None]
    v = random_features(1, 10)
    assert metrics.uniformity(scale * v, scale.flip(0) * v) == pytest.approx(-math.sqrt(2), abs=1e-7)
    assert metrics.uniformity(torch.ones(N, 16), torch.ones(N, 16)) == pytest.approx(-math.sqrt(2), abs=1e-7)


def test_mismatch_counts_ties_as_mismatched():
    # Pairs 0 and 1 are identical: each sees the other's text exactly as close as its own (margin
    # 0 → mismatched); pair 2 has margin 1.
    x = E[[0, 0, 1]]
    assert metrics.pair_margins(x, x).tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert metrics.mismatch_fraction(x, x) == pytest.approx(2 / 3)
    # Collapsed features: every pair ties with every other → all mismatched, never "0 mismatched".
    assert metrics.mismatch_fraction(torch.ones(N, 16), torch.ones(N, 16)) == 1.0


def test_mismatch_of_a_single_pair_is_nan():
    assert metrics.pair_margins(E[:1], E[1:2]).tolist() == [math.inf]  # no other text to be closer
    assert math.isnan(metrics.mismatch_fraction(E[:1], E[1:2]))


def test_zero_shot_ties_are_broken_at_random():
    # Image 0 is equidistant from classes 0 and 1 (½ expected), image 1 is class 0 (right), image 2
    # is class 2 but labelled 1 (wrong).
    class_text = E
    image = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert metrics.zero_shot_accuracy(image, class_text, torch.tensor([1, 0, 1])) == pytest.approx((1 / 2 + 1 + 0) / 3)
    # All class embeddings equal: chance 1/C, not the frequency of class 0 (here 1).
    same = torch.ones(4, 16)
    assert metrics.zero_shot_accuracy(random_features(50, 11), same, torch.zeros(50, dtype=torch.long)) == pytest.approx(1 / 4)


@pytest.mark.parametrize("bad", BAD)
def test_zero_shot_of_undefined_features_is_nan(bad):
    image, labels = random_features(10, 12), torch.arange(10) % 3
    class_text = random_features(3, 13)
    assert math.isnan(metrics.zero_shot_accuracy(undefined(image, bad), class_text, labels))
    assert math.isnan(metrics.zero_shot_accuracy(image, undefined(class_text, bad), labels))


def test_zero_shot_with_one_class_is_nan_and_labels_are_checked():
    assert math.isnan(metrics.zero_shot_accuracy(random_features(10, 14), random_features(1, 15), torch.zeros(10, dtype=torch.long)))
    with pytest.raises(ValueError, match="must lie in"):
        metrics.zero_shot_accuracy(random_features(4, 14), random_features(3, 15), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="one label per row"):
        metrics.zero_shot_accuracy(random_features(4, 14), random_features(3, 15), torch.tensor([0, 1, 2]))


def test_linear_probe_on_constant_features_scores_chance():
    constant = torch.ones(50, 4, dtype=torch.float64)
    test = torch.ones(10, 4, dtype=torch.float64) * 3
    test_labels = torch.tensor([0] * 6 + [1] * 2 + [2] * 2)
    # Only the biases can learn: the probe predicts the training majority class (60 % of the test).
    imbalanced = torch.tensor([0] * 30 + [1] * 10 + [2] * 10)
    assert metrics.linear_probe_accuracy(constant, imbalanced, test, test_labels) == pytest.approx(0.6)
    # Balanced classes: every logit ties, so 1/3 in expectation, not the test frequency of class 0.
    balanced = torch.arange(48) % 3
    assert metrics.linear_probe_accuracy(constant[:48], balanced, test, test_labels) == pytest.approx(1 / 3)


@pytest.mark.parametrize("bad", BAD)
def test_linear_probe_undefined_cases_are_nan(bad):
    train, labels = random_features(20, 16), torch.arange(20) % 2
    test, test_labels = random_features(6, 17), torch.arange(6) % 2
    assert math.isnan(metrics.linear_probe_accuracy(undefined(train, bad), labels, test, test_labels))
    assert math.isnan(metrics.linear_probe_accuracy(train, labels, undefined(test, bad), test_labels))
    # One training class: nothing to learn, trivially right on a test set of that class.
    assert math.isnan(metrics.linear_probe_accuracy(train, torch.zeros(20, dtype=torch.long), test, torch.zeros(6, dtype=torch.long)))


def test_the_swept_probe_picks_a_strong_penalty_for_noise_and_a_weak_one_for_separable_data():
    from raygap.clip.metrics import swept_linear_probe

    rng = np.random.default_rng(0)
    # separable: the label is the sign of the first coordinate, with a margin
    x = rng.normal(size=(300, 8))
    x[:, 0] = np.where(rng.random(300) < 0.5, -1.0, 1.0) * (0.5 + rng.random(300))
    labels = torch.tensor((x[:, 0] > 0).astype(int))
    accuracy, chosen = swept_linear_probe(torch.tensor(x[:200]), labels[:200], torch.tensor(x[200:]), labels[200:])
    assert accuracy == 1.0 and chosen <= 1e-1
    # noise: labels drawn apart from the features, 70 % one class; a weak penalty fits the noise
    noise = rng.normal(size=(300, 32))
    labels = torch.tensor((rng.random(300) < 0.3).astype(int))
    accuracy, chosen = swept_linear_probe(torch.tensor(noise[:200]), labels[:200], torch.tensor(noise[200:]), labels[200:])
    assert chosen >= 1e1
    assert accuracy == pytest.approx(float((labels[200:] == 0).double().mean()), abs=0.05)  # about the majority rate
    # one class in the fitting part: nothing to choose
    one = torch.zeros(10, dtype=torch.long)
    assert all(math.isnan(v) for v in swept_linear_probe(torch.randn(10, 4), one, torch.randn(4, 4), one[:4]))
