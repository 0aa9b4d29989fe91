"""What a finite sample of pairs can and cannot tell: the gap without its finite-sample bias and
an interval for it, the recall a random ranking scores, and whether a model is degenerate (collapsed
or retrieving at chance), so that none of them is taken for the best. Pure functions on torch
tensors and numbers, in the conventions of raygap.clip.metrics."""

from __future__ import annotations

import math
import statistics

import torch

from raygap.clip.metrics import NAN, check_pairs, unit_rows


def corrected_gap(image: torch.Tensor, text: torch.Tensor, level: float = 0.95) -> dict[str, float]:
    """The centroid gap without its finite-sample bias, and an interval for it.

    With d_i = x_i − y_i over n matched pairs and S_d their sample covariance, E‖d̄‖² = ‖μ_d‖² +
    tr(Σ_d)/n, so G = ‖d̄‖² − tr(S_d)/n is unbiased for the true squared gap ‖μ_d‖². It is reported
    as a root with its sign kept (`modality_gap_corrected`: negative when the pairs' spread exceeds
    their mean offset, i.e. no gap is detectable), so a healthy model with no true gap scores about
    0 where the plain gap shows √(tr Σ_d / n). The interval (`modality_gap_low`/`_high`) is G ±
    z·σ with Var G ≈ 4 μᵀΣμ/n + 2 tr(Σ²)/n² (plug-in: d̄ and S_d), mapped through the same signed
    root. (A percentile bootstrap would be centred on G + tr(S_d)/n: resampling re-adds the bias.)
    NaN for fewer than two pairs or features with a NaN/inf entry or a zero-norm row.
    """
    check_pairs(image, text)
    nan = {"modality_gap_corrected": NAN, "modality_gap_low": NAN, "modality_gap_high": NAN}
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) < 2:
        return nan
    d = x - y
    n = len(d)
    mean = d.mean(0)
    centred = d - mean
    trace = float((centred * centred).sum()) / (n - 1)  # tr(S_d)
    squared = float(mean @ mean) - trace / n
    gram = centred @ centred.T  # tr(S²) = ‖D Dᵀ‖²_F / (n − 1)²: an n × n product, whatever m is
    variance = 4 * float((centred @ mean).square().sum()) / (n - 1) / n + 2 * float(gram.square().sum()) / (n - 1) ** 2 / n**2
    z = statistics.NormalDist().inv_cdf((1 + level) / 2)

    def signed_root(value: float) -> float:
        return math.copysign(math.sqrt(abs(value)), value)

    spread = z * math.sqrt(variance)
    return {
        "modality_gap_corrected": signed_root(squared),
        "modality_gap_low": signed_root(squared - spread),
        "modality_gap_high": signed_root(squared + spread),
    }


def chance_r1(captions_per_image: torch.Tensor) -> float:
    """Mean recall@1 of a random ranking: text→image 1/n_images; image→text, an image with c of the
    n_texts captions, c/n_texts."""
    counts = torch.as_tensor(captions_per_image, dtype=torch.float64)
    return float((counts.mean() / counts.sum() + 1 / len(counts)) / 2)


# A degenerate model: collapsed (W₂ uniformity within this of its worst, −√2), or retrieval within
# this many standard errors of a random ranking's mean recall@1.
COLLAPSED_UNIFORMITY = 0.01
CHANCE_STANDARD_ERRORS = 3.0


def degenerate(uniformity_value: float, mean_r1: float, chance: float, n_images: int) -> float:
    """1.0 when a model's embeddings collapsed or its retrieval is indistinguishable from chance
    (mean R@1 ≤ chance + 3 standard errors of a random ranking over n_images queries), else 0.0;
    undefined features (NaN uniformity) count as degenerate, so they are never taken for the best."""
    if math.isnan(uniformity_value) or uniformity_value <= -math.sqrt(2) + COLLAPSED_UNIFORMITY:
        return 1.0
    if math.isnan(mean_r1):
        return 0.0  # too few items to ask (recall NaN); the embeddings themselves are not collapsed
    standard_error = math.sqrt(chance * (1 - chance) / max(n_images, 1))
    return float(mean_r1 <= chance + CHANCE_STANDARD_ERRORS * standard_error)
