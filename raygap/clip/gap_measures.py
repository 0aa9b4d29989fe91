"""Measures of the modality gap from the literature beyond the paper's centroid distance, as pure
functions on torch tensors (the same rules as raygap.clip.metrics: unit rows in float64, NaN for
undefined input, plain Python numbers back). Which way each is better lives in the catalogue.

- instance gap L2I and relative modality gap RMG: Schrodi et al., "Two effects, one trigger"
  (ICLR 2025), as their analysis/gap_precompute.py computes them, every caption paired with its image;
- alignment and uniformity loss: Wang & Isola (ICML 2020), t = 2;
- cone: Liang et al., "Mind the Gap" (NeurIPS 2022), the mean cosine between distinct embeddings of
  one modality;
- gap dimensions: how many coordinates carry 90 % of the squared centroid gap ‖Δ‖², largest first;
- separability: how well a linear classifier tells image embeddings from text embeddings;
- post-hoc changes that need no training (Liang et al.): shifting both modalities along the gap
  vector, and centring each modality.
"""

from __future__ import annotations

import math

import torch

from raygap import tolerance
from raygap.clip.metrics import NAN, linear_probe_accuracy, unit_rows

RMG_FLOOR = 1e-3
"""The matched dissimilarity's floor in the authors' RMG (a perfect match would make RMG 0/0 on
collapsed towers); collapsed towers then score RMG = 1, the worst."""


def _captioned(image: torch.Tensor, text: torch.Tensor, caption_image) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    x, y = unit_rows(image), unit_rows(text)
    owner = torch.as_tensor(caption_image, dtype=torch.long)
    if x is None or y is None or len(x) == 0 or len(y) == 0 or owner.shape != (len(y),):
        return None
    return x, y, owner


def instance_gap(image: torch.Tensor, text: torch.Tensor, caption_image) -> float:
    """L2I: the mean over captions of the distance between a caption and its image."""
    found = _captioned(image, text, caption_image)
    if found is None:
        return NAN
    x, y, owner = found
    return float(torch.linalg.vector_norm(x[owner] - y, dim=1).mean())


def _mean_off_diagonal(z: torch.Tensor) -> float:
    """Mean cosine over ordered pairs of distinct rows: (‖Σ z‖² − n) / (n(n − 1)) for unit rows."""
    n = len(z)
    total = z.sum(0)
    return float((total @ total - n) / (n * (n - 1)))


def relative_gap(image: torch.Tensor, text: torch.Tensor, caption_image) -> float:
    """RMG = m / (m + (a + b)/2) with dissimilarity s = 1 − (cos + 1)/2: m over (caption, its
    image), a over distinct images, b over distinct captions (captions of one image included, as
    the authors' code has it); m floored at RMG_FLOOR. NaN below two images or two captions."""
    found = _captioned(image, text, caption_image)
    if found is None or len(found[0]) < 2 or len(found[1]) < 2:
        return NAN
    x, y, owner = found
    matched = max(1 - (float((x[owner] * y).sum(1).mean()) + 1) / 2, RMG_FLOOR)
    images = 1 - (_mean_off_diagonal(x) + 1) / 2
    texts = 1 - (_mean_off_diagonal(y) + 1) / 2
    return matched / (matched + (images + texts) / 2)


def alignment(image: torch.Tensor, text: torch.Tensor) -> float:
    """Wang–Isola alignment: the mean squared distance of matched pairs (lower is better)."""
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) == 0 or x.shape != y.shape:
        return NAN
    return float(((x - y) ** 2).sum(1).mean())


def uniformity_loss(image: torch.Tensor, text: torch.Tensor, t: float = 2.0, block: int = 1024) -> float:
    """Wang–Isola uniformity: log of the mean over distinct pairs of exp(−t‖z_i − z_j‖²), over the
    pooled image and text embeddings; 0 when they all coincide (the worst), lower is more uniform.
    Summed `block` rows at a time, so memory grows with the rows, not with the pairs."""
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) + len(y) < 2:
        return NAN
    z = torch.cat([x, y])
    n, total = len(z), torch.tensor(-math.inf, dtype=torch.float64)
    for start in range(0, n, block):
        rows = z[start : start + block]
        squared = (2 - 2 * (rows @ z.T)).clamp_min(0)  # ‖a − b‖² of unit rows
        later = torch.arange(n)[None, :] > torch.arange(start, start + len(rows))[:, None]  # pairs j > i, each once
        total = torch.logaddexp(total, torch.logsumexp(torch.where(later, -t * squared, -math.inf).flatten(), 0))
    return float(total - math.log(n * (n - 1) / 2))


def cone(features: torch.Tensor) -> float:
    """The mean cosine between distinct embeddings of one modality: about 0 when they spread
    over the sphere, 1 when they all point one way. NaN below two rows."""
    z = unit_rows(features)
    if z is None or len(z) < 2:
        return NAN
    return _mean_off_diagonal(z)


def gap_dimensions(image: torch.Tensor, text: torch.Tensor, share: float = 0.9) -> float:
    """The fewest coordinates, taken by |Δ_k| largest first, whose Δ_k² add up to `share` of
    ‖Δ‖² (Δ the centroid difference): few means a gap carried by a handful of dimensions.
    NaN when there is no gap to share out (Δ = 0) or the input is undefined."""
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) == 0 or len(y) == 0:
        return NAN
    squares = (x.mean(0) - y.mean(0)) ** 2
    total = float(squares.sum())
    if total <= 0:
        return NAN
    carried = torch.cumsum(squares.sort(descending=True).values, 0)
    # a share met up to rounding counts as met: no extra coordinate for a last-bit difference
    return float(int((carried < share * total - tolerance.RELATIVE * total).sum()) + 1)


def separability(image: torch.Tensor, text: torch.Tensor, seed: int = 0) -> float:
    """Held-out accuracy of a logistic regression telling image from text embeddings (0.5: the
    modalities are indistinguishable, 1: a hyperplane splits them). Pairs are split in halves by a
    seeded permutation, a pair's image and text on the same side, so no pair is seen on both; the
    probe is raygap's linear probe (raygap.clip.metrics.linear_probe_accuracy). NaN below 2 pairs."""
    if image.ndim != 2 or image.shape != text.shape or len(image) < 2:
        return NAN
    order = torch.randperm(len(image), generator=torch.Generator().manual_seed(seed))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]

    def stacked(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.cat([torch.zeros(len(rows), dtype=torch.long), torch.ones(len(rows), dtype=torch.long)])
        return torch.cat([image[rows], text[rows]]), labels

    return linear_probe_accuracy(*stacked(train), *stacked(test))


def shifted(image: torch.Tensor, text: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Liang et al.'s shift: x' = normalize(x − λΔ), y' = normalize(y + λΔ), Δ the centroid gap of
    the unit embeddings; λ = 0.5 meets in the middle (before renormalizing), λ < 0 widens the gap."""
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None:
        raise ValueError("embeddings with a NaN, an infinity or a zero row cannot be shifted")
    delta = x.mean(0) - y.mean(0)
    return torch.nn.functional.normalize(x - shift * delta, dim=1), torch.nn.functional.normalize(y + shift * delta, dim=1)


def centred(image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each modality minus its own mean, renormalized: the gap's offset removed outright."""
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None:
        raise ValueError("embeddings with a NaN, an infinity or a zero row cannot be centred")
    return torch.nn.functional.normalize(x - x.mean(0), dim=1), torch.nn.functional.normalize(y - y.mean(0), dim=1)
