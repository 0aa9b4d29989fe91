"""Embedding-space metrics: pure functions on torch tensors.

Every function L2-normalizes its feature inputs itself, works in float64 for stable sums, and
returns plain Python numbers. Formulas follow DESIGN.md ("Metrics").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _unit(features: torch.Tensor) -> torch.Tensor:
    return F.normalize(features.detach().to(torch.float64), dim=-1)


def _check_pairs(image: torch.Tensor, text: torch.Tensor) -> None:
    if image.ndim != 2 or image.shape != text.shape:
        raise ValueError(f"expected paired features of equal shape (n, m), got {tuple(image.shape)} and {tuple(text.shape)}")


def modality_gap(image: torch.Tensor, text: torch.Tensor) -> float:
    """Distance between the centroids of the image and text embeddings (Liang et al. 2022)."""
    x, y = _unit(image), _unit(text)
    return float(torch.linalg.vector_norm(x.mean(0) - y.mean(0)))


def uniformity(image: torch.Tensor, text: torch.Tensor) -> float:
    """−W₂ between the stacked features and N(0, I/m) (Fang et al.); 0 is perfectly uniform.

    W₂² = ‖μ‖² + 1 + tr(Σ) − (2/√m)·tr(Σ^½), μ and Σ (divided by N) over all 2n features.
    """
    z = torch.cat([_unit(image), _unit(text)])
    m = z.shape[1]
    mu = z.mean(0)
    centred = z - mu
    cov = centred.T @ centred / z.shape[0]
    # Σ is symmetric PSD: tr(Σ^½) is the sum of the square roots of its eigenvalues.
    sqrt_trace = torch.linalg.eigvalsh(cov).clamp_min(0).sqrt().sum()
    w2_squared = mu @ mu + 1 + torch.trace(cov) - 2 / math.sqrt(m) * sqrt_trace
    return -math.sqrt(max(float(w2_squared), 0.0))


def recall_at_k(
    image: torch.Tensor,
    text: torch.Tensor,
    text_to_image: torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Retrieval recall@k in both directions.

    `image` is (n_images, m), `text` is (n_texts, m) and `text_to_image[j]` is the index of caption
    j's image. An image is an image→text hit when any of its captions ranks within the top k. A
    rank counts only strictly higher scores, so ties favour the correct item.
    """
    x, y = _unit(image), _unit(text)
    owner = torch.as_tensor(text_to_image, dtype=torch.long)
    if owner.shape != (y.shape[0],):
        raise ValueError(f"text_to_image must have one entry per caption ({y.shape[0]}), got shape {tuple(owner.shape)}")
    n_images = x.shape[0]

    # image -> text: the best-scoring correct caption of each image against all captions.
    i2t_rank = torch.empty(n_images, dtype=torch.long)
    for start in range(0, n_images, chunk_size):
        sim = x[start : start + chunk_size] @ y.T
        rows = torch.arange(start, start + sim.shape[0])
        is_own = owner[None, :] == rows[:, None]
        best_own = sim.masked_fill(~is_own, -math.inf).max(1).values
        i2t_rank[start : start + sim.shape[0]] = (sim > best_own[:, None]).sum(1)

    # text -> image: the caption's own image against all images.
    t2i_rank = torch.empty(y.shape[0], dtype=torch.long)
    for start in range(0, y.shape[0], chunk_size):
        sim = y[start : start + chunk_size] @ x.T
        own = sim.gather(1, owner[start : start + sim.shape[0], None])
        t2i_rank[start : start + sim.shape[0]] = (sim > own).sum(1)

    out = {}
    for k in ks:
        out[f"image_to_text_r{k}"] = float((i2t_rank < k).double().mean())
        out[f"text_to_image_r{k}"] = float((t2i_rank < k).double().mean())
    return out


def pair_margins(image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Per pair i: ⟨x_i, y_i⟩ − max_{j≠i} ⟨x_i, y_j⟩ (negative when another text is closer)."""
    _check_pairs(image, text)
    x, y = _unit(image), _unit(text)
    sim = x @ y.T
    own = sim.diagonal().clone()
    return own - sim.fill_diagonal_(-math.inf).max(1).values


def mismatch_fraction(image: torch.Tensor, text: torch.Tensor) -> float:
    """Fraction of pairs i with some text y_j (j ≠ i) closer to x_i than its own y_i."""
    return float((pair_margins(image, text) < 0).double().mean())


def pair_cosine(image: torch.Tensor, text: torch.Tensor) -> float:
    """Mean cosine similarity of matched pairs."""
    _check_pairs(image, text)
    return float((_unit(image) * _unit(text)).sum(1).mean())


def zero_shot_accuracy(image: torch.Tensor, class_text: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of classifying each image as its most similar class embedding.

    `class_text` is (n_classes, m): one (template-averaged) text embedding per class.
    """
    predicted = (_unit(image) @ _unit(class_text).T).argmax(1)
    return float((predicted == torch.as_tensor(labels)).double().mean())


def linear_probe_accuracy(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    l2: float = 1e-4,
    max_iter: int = 200,
) -> float:
    """Top-1 test accuracy of a multinomial logistic regression on frozen, normalized features.

    Full-batch L-BFGS in float64 from zero weights: deterministic for given inputs.
    """
    x_train, x_test = _unit(train_feats), _unit(test_feats)
    y_train = torch.as_tensor(train_labels, dtype=torch.long)
    n_classes = int(max(y_train.max(), torch.as_tensor(test_labels).max())) + 1
    weight = torch.zeros(x_train.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x_train @ weight + bias, y_train) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    predicted = (x_test @ weight.detach() + bias.detach()).argmax(1)
    return float((predicted == torch.as_tensor(test_labels)).double().mean())
