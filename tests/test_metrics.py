import math

import numpy as np
import pytest
import scipy.linalg
import torch

from raygap import metrics

E = torch.eye(3, dtype=torch.float64)


def features_with_similarity(similarity: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Image/text features whose normalized cosine matrix is `similarity / C` for one constant C.

    Images are one-hot; each text is a column of the matrix padded with one extra coordinate so
    that every text has the same norm C (so normalization preserves every ranking).
    """
    n_images, n_texts = similarity.shape
    c = np.linalg.norm(similarity, axis=0).max() + 1
    image = np.zeros((n_images, n_images + 1))
    image[:, :n_images] = np.eye(n_images)
    text = np.zeros((n_texts, n_images + 1))
    text[:, :n_images] = similarity.T
    text[:, n_images] = np.sqrt(c**2 - (similarity**2).sum(0))
    return torch.tensor(image), torch.tensor(text)


# 4 images × 8 captions (two each), ranks worked out by hand in the comments.
SIMILARITY = np.array(
    [
        [0.9, 0.1, 0.5, 0.2, 0.3, 0.0, 0.1, 0.2],  # own 0.9 → rank 0
        [0.8, 0.3, 0.2, 0.1, 0.4, 0.5, 0.6, 0.7],  # own best 0.2 → rank 6
        [0.1, 0.2, 0.3, 0.4, 0.35, 0.9, 0.0, 0.0],  # own best 0.9 → rank 0
        [0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.45, 0.2],  # own best 0.45 → rank 1
    ]
)
OWNER = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
# text→image ranks per caption (column): [0, 2, 2, 2, 1, 0, 1, 1]; ties never count against.


def test_recall_hand_table():
    image, text = features_with_similarity(SIMILARITY)
    got = metrics.recall_at_k(image, text, OWNER, ks=(1, 2, 5, 10))
    assert got == pytest.approx(
        {
            "image_to_text_r1": 2 / 4,
            "image_to_text_r2": 3 / 4,
            "image_to_text_r5": 3 / 4,
            "image_to_text_r10": 4 / 4,
            "text_to_image_r1": 2 / 8,
            "text_to_image_r2": 5 / 8,
            "text_to_image_r5": 8 / 8,
            "text_to_image_r10": 8 / 8,
        }
    )


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
