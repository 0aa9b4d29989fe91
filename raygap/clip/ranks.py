"""Counting ranks under ties, the parts of raygap.clip.metrics.recall_at_k: which candidates score
above or tie with each query's own item, chunked so a similarity matrix never has to fit whole, and
the probability of a hit when ties are broken uniformly at random.

Two scores tie when they differ by at most `tol` (raygap.tolerance.score_tolerance): the same
features give cosines that differ in the last bit depending on the BLAS kernel and the block a row
falls in, and an exact comparison would turn that into rank."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def tied_hit_probability(above: torch.Tensor, tied_other: torch.Tensor, tied_own: torch.Tensor, k: int) -> torch.Tensor:
    """P(above + J < k), J the number of tied non-own items before the first own one in a uniformly
    random order of the `tied_other` + `tied_own` (≥ 1) items tied at the best own score.

    With j = k − above: P(J ≥ j) = C(t, j) / C(t + o, j) = ∏_{i<j} (t − i)/(t + o − i) (the first j
    tied items are all non-own), so P(hit) = 1 − that product, 0 when j ≤ 0 and 1 when j > t.
    For o = 1 it telescopes to clip(j / (t + 1), 0, 1), computed that way (one rounding, so a
    collapsed model's recall is k/n to the last bit).
    """
    j = k - above
    t, o = tied_other.to(torch.float64), tied_own.to(torch.float64)
    miss = torch.ones(len(above), dtype=torch.float64)
    # Factors with i > t are never needed: the factor at i = t is already 0 for every row with j > t.
    for i in range(min(k, int(tied_other.max()) + 1) if len(above) else 0):
        factor = (t - i).clamp_min(0) / (t + o - i).clamp_min(1)
        miss = torch.where(i < j, miss * factor, miss)
    return torch.where(tied_own == 1, (j / (t + 1)).clamp(0, 1), 1 - miss)


def retrieval_owner(
    image: torch.Tensor, text: torch.Tensor, text_to_image: torch.Tensor, ks: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`text_to_image` as a long tensor and each image's caption count, after refusing inputs for
    which recall is not a question (bad ks, mismatched shapes, an out-of-range or captionless image)."""
    if any(int(k) != k or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    owner = torch.as_tensor(text_to_image, dtype=torch.long)
    if image.ndim != 2 or text.ndim != 2 or owner.shape != (text.shape[0],):
        raise ValueError(
            f"expected image (n_images, m), text (n_texts, m) and one text_to_image entry per caption, "
            f"got {tuple(image.shape)}, {tuple(text.shape)} and {tuple(owner.shape)}"
        )
    n_images, n_texts = image.shape[0], text.shape[0]
    if n_texts and (int(owner.min()) < 0 or int(owner.max()) >= n_images):
        raise ValueError(f"text_to_image must index the {n_images} images, got values from {int(owner.min())} to {int(owner.max())}")
    captions_per_image = torch.bincount(owner, minlength=n_images)
    if n_images and int(captions_per_image.min()) == 0:
        raise ValueError(f"every image needs a caption; image {int(captions_per_image.argmin())} has none")
    return owner, captions_per_image


def captions_of(owner: torch.Tensor, captions_per_image: torch.Tensor) -> torch.Tensor:
    """(n_images, most captions) table whose row i lists image i's captions, padded with -1, so that
    own-caption scores can be gathered for a whole chunk of images at once."""
    by_image = torch.argsort(owner, stable=True)
    slot = torch.arange(len(owner)) - (torch.cumsum(captions_per_image, 0) - captions_per_image)[owner[by_image]]
    captions_of = torch.full((len(captions_per_image), int(captions_per_image.max())), -1, dtype=torch.long)
    captions_of[owner[by_image], slot] = by_image
    return captions_of


def image_to_text_counts(x: torch.Tensor, y: torch.Tensor, captions_of: torch.Tensor, chunk_size: int, tol: float) -> torch.Tensor:
    """(3, n_images): captions above (by more than `tol`), non-own tied with (within `tol`) and own
    tied at each image's best-scoring own caption; chunked so the similarity matrix never needs to
    fit whole."""
    n_images = x.shape[0]
    counts = torch.empty(3, n_images, dtype=torch.long)
    for start in range(0, n_images, chunk_size):
        sim = x[start : start + chunk_size] @ y.T
        rows = slice(start, start + sim.shape[0])
        own_index = captions_of[rows]
        own_sim = sim.gather(1, own_index.clamp_min(0)).masked_fill(own_index < 0, -math.inf)
        best_own = own_sim.max(1, keepdim=True).values
        tied_own = (own_sim >= best_own - tol).sum(1)
        # Own captions are never above their best; int32 sums are markedly faster than int64 ones.
        above = (sim > best_own + tol).sum(1, dtype=torch.int32)
        counts[0, rows] = above
        counts[1, rows] = (sim >= best_own - tol).sum(1, dtype=torch.int32) - above - tied_own
        counts[2, rows] = tied_own
    return counts


def text_to_image_counts(x: torch.Tensor, y: torch.Tensor, owner: torch.Tensor, chunk_size: int, tol: float) -> torch.Tensor:
    """(2, n_texts): other images above (by more than `tol`) and tied with (within `tol`) each
    caption's own image; chunked so the similarity matrix never needs to fit whole."""
    n_texts = y.shape[0]
    counts = torch.empty(2, n_texts, dtype=torch.long)
    for start in range(0, n_texts, chunk_size):
        sim = y[start : start + chunk_size] @ x.T
        rows = slice(start, start + sim.shape[0])
        own = sim.gather(1, owner[rows, None])
        above = (sim > own + tol).sum(1, dtype=torch.int32)
        counts[0, rows] = above
        counts[1, rows] = (sim >= own - tol).sum(1, dtype=torch.int32) - above - 1
    return counts
