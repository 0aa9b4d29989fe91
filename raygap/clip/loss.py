"""The contrastive losses a run can train with (the study file's `loss:` section), one class each.

A loss scores this worker's rows of the global batch against the whole global batch. With
`world_size > 1` each worker gathers every worker's features (keeping the gradient of its own
shard, as open_clip's `local_loss=True, gather_with_grad=True`): the mean over workers of their
losses, which DDP's gradient averaging takes, is then the loss of one big batch, and so are its
gradients. Each loss is written as `local` rows (n) against `every` row (N = n · world_size), the
local rows being every[offset : offset + n].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import TypeAdapter
from torch import nn

from raygap.config.losses import LossSpec

_SECTION: TypeAdapter = TypeAdapter(LossSpec)


def gather_with_grad(features: torch.Tensor, world_size: int) -> torch.Tensor:
    """Every worker's features stacked in rank order; the gradient flows back to each worker's own."""
    if world_size == 1:
        return features
    import torch.distributed.nn as dist_nn  # needs an initialised process group

    return torch.cat(dist_nn.all_gather(features), dim=0)


class Loss(nn.Module):
    """Base: `forward(image, text, tau, rank, world_size)` is this worker's share of the batch's loss
    (`image`, `text`: its (n, m) features; `tau`: the logit scale). `logged()` are the numbers an
    evaluation point records besides the temperature (SigLIP's bias)."""

    def forward(self, image: torch.Tensor, text: torch.Tensor, tau: torch.Tensor | float, rank: int = 0, world_size: int = 1):
        every_image, every_text = gather_with_grad(image, world_size), gather_with_grad(text, world_size)
        return self.local(image, text, every_image, every_text, tau, rank * image.shape[0])

    def local(self, image, text, every_image, every_text, tau, offset: int) -> torch.Tensor:
        raise NotImplementedError

    def logged(self) -> dict[str, float]:
        return {}


def _diagonal(n: int, offset: int, device) -> torch.Tensor:
    return torch.arange(n, device=device) + offset


def clip_loss(image, text, every_image, every_text, tau, offset: int) -> torch.Tensor:
    """Mean of the cross-entropies over the rows and the columns of τ·X·Yᵀ, targets on the diagonal."""
    labels = _diagonal(image.shape[0], offset, image.device)
    return (F.cross_entropy(tau * image @ every_text.T, labels) + F.cross_entropy(tau * text @ every_image.T, labels)) / 2


class Clip(Loss):
    """CLIP's symmetric InfoNCE (the paper's loss)."""

    def local(self, image, text, every_image, every_text, tau, offset):
        return clip_loss(image, text, every_image, every_text, tau, offset)


class SigLip(Loss):
    """SigLIP's sigmoid loss: −(1/n) Σ_ij log σ(z_ij (τ⟨x_i, y_j⟩ + b)), z = +1 on the pairs, −1 elsewhere."""

    def __init__(self, bias_init: float = -10.0, learn_bias: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(bias_init)), requires_grad=learn_bias)

    def local(self, image, text, every_image, every_text, tau, offset):
        logits = tau * image @ every_text.T + self.bias
        signs = -torch.ones_like(logits)
        rows = torch.arange(image.shape[0], device=image.device)
        signs[rows, rows + offset] = 1.0
        return -F.logsigmoid(signs * logits).sum() / image.shape[0]

    def logged(self) -> dict[str, float]:
        return {"logit_bias": float(self.bias.detach())}


class CyClip(Loss):
    """CLIP + λ₁ · in-modal + λ₂ · cross-modal consistency (Goel et al. 2022), each the mean over the
    batch's pairs (j, k) of a squared difference of similarities, times the batch size N, as the
    authors' code; this worker's share is its rows j against every k."""

    def __init__(self, in_modal: float = 0.25, cross_modal: float = 0.25):
        super().__init__()
        self.in_modal, self.cross_modal = in_modal, cross_modal

    def local(self, image, text, every_image, every_text, tau, offset):
        batch = every_image.shape[0]
        in_modal = (image @ every_image.T - text @ every_text.T).square().mean() * batch
        cross_modal = (image @ every_text.T - (every_image @ text.T).T).square().mean() * batch
        return clip_loss(image, text, every_image, every_text, tau, offset) + self.in_modal * in_modal + self.cross_modal * cross_modal


class InModalitySeparation(Loss):
    """α · (CE(τ·X·Yᵀ) + CE(τ·Y·Xᵀ)) + β · (CE(τ·X·Xᵀ) + CE(τ·Y·Yᵀ)), diagonal targets: sums, without
    CLIP's ½, as AlignCLIP's ClipInModalityLoss (its non-semantic branch) returns them."""

    def __init__(self, weight: float = 0.5, clip_weight: float = 1.0):
        super().__init__()
        self.weight, self.clip_weight = weight, clip_weight

    def local(self, image, text, every_image, every_text, tau, offset):
        labels = _diagonal(image.shape[0], offset, image.device)
        separation = F.cross_entropy(tau * image @ every_image.T, labels) + F.cross_entropy(tau * text @ every_text.T, labels)
        return self.clip_weight * 2 * clip_loss(image, text, every_image, every_text, tau, offset) + self.weight * separation


def geodesic_mix(a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """The point a fraction λ of the way from b to a along the unit sphere's great circle, row by row:
    (sin(λθ) a + sin((1−λ)θ) b) / sin θ, θ = arccos⟨a, b⟩ (the authors' sph_inter), for the rows'
    directions: a hard or soft swap leaves rows off the sphere, and the mixture stays on it."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    cos = (a * b).sum(dim=1, keepdim=True).clamp(-1 + 1e-6, 1 - 1e-6)  # arccos is NaN past ±1, its gradient infinite at ±1
    theta = torch.arccos(cos)
    return (torch.sin(lam * theta) * a + torch.sin((1 - lam) * theta) * b) / torch.sin(theta)


class BetaStream:
    """λ ~ Beta(α, α), one draw per step, from a seeded stream whose state a checkpoint keeps (the
    same on every worker: they seed it alike and draw once a step)."""

    def __init__(self, alpha: float, seed: int):
        self.alpha, self.rng = alpha, np.random.default_rng(seed)

    def draw(self) -> float:
        return float(self.rng.beta(self.alpha, self.alpha))

    def get_state(self) -> dict:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


class M3Mix(Loss):
    """CLIP + weight · (CE(A) + CE(B)): the multimodal geodesic mixup term of Oh et al. (their
    `mmmix`): with m_j = geodesic_mix(x_j, y_j, λ), one λ ~ Beta(α, α) a step, A_ii = τ⟨x_i, y_i⟩,
    A_ij = τ⟨x_i, m_j⟩ and B_ii = τ⟨y_i, x_i⟩, B_ij = τ⟨y_i, m_j⟩ (j ≠ i): the mixtures replace the
    negatives of each row, the positive stays the real pair. τ is the run's (their code can give
    the term its own). Their m³-mix adds unimodal mixups on top; those are not built."""

    def __init__(self, weight: float = 0.01, alpha: float = 0.5, seed: int = 0):
        super().__init__()
        self.weight = weight
        self.generator = BetaStream(alpha, seed)

    def local(self, image, text, every_image, every_text, tau, offset):
        mixup = mixup_term(image, text, every_image, every_text, tau, offset, self.generator.draw())
        return clip_loss(image, text, every_image, every_text, tau, offset) + self.weight * mixup


def mixup_term(image, text, every_image, every_text, tau, offset: int, lam: float) -> torch.Tensor:
    """CE(A) + CE(B) of M3Mix for one λ (this worker's rows against every pair's mixture)."""
    mixed = geodesic_mix(every_image, every_text, lam)
    n = image.shape[0]
    labels = _diagonal(n, offset, image.device)
    positives = torch.zeros(n, every_image.shape[0], dtype=torch.bool, device=image.device)
    positives[torch.arange(n, device=image.device), labels] = True
    paired = (image * text).sum(dim=1, keepdim=True)
    a = torch.where(positives, paired, image @ mixed.T)
    b = torch.where(positives, paired, text @ mixed.T)
    return F.cross_entropy(tau * a, labels) + F.cross_entropy(tau * b, labels)


LOSSES: dict[str, type[Loss]] = {
    "clip": Clip,
    "siglip": SigLip,
    "cyclip": CyClip,
    "inmodal_separation": InModalitySeparation,
    "m3mix": M3Mix,
}


def build_loss(section: LossSpec | dict, seed: int = 0) -> Loss:
    """A loss from the spec's `loss` section (a dict is validated as the study file is); `seed` seeds
    the draws of a loss that has any (m3mix's λ)."""
    options = _SECTION.validate_python(section).model_dump() if isinstance(section, dict) else section.model_dump()
    cls = LOSSES[options.pop("kind")]
    return cls(**options, seed=seed) if cls is M3Mix else cls(**options)
