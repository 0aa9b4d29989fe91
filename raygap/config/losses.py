"""The `loss:` section: which contrastive loss a trial trains with (raygap.clip.loss builds it).

`clip` is the paper's; the others come from the papers after it (docs/losses.md cites each). Every
kind combines with every `temperature:` (τ = 1/T multiplies the similarities) and `swap:`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from raygap.config.base import PositiveFloat, Strict

NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class ClipLossSpec(Strict):
    """CLIP's symmetric cross-entropy over the rows and columns of τ·X·Yᵀ (the paper's loss)."""

    kind: Literal["clip"] = "clip"


class SigLipLossSpec(Strict):
    """SigLIP's pairwise sigmoid loss (Zhai et al., ICCV 2023): −(1/n) Σ_ij log σ(z_ij(τ⟨x_i, y_j⟩ + b)),
    z_ii = 1, z_ij = −1, exactly open_clip's SigLipLoss. With no `temperature:` section the trial's T
    starts at 0.1 (learned), as SigLIP's."""

    kind: Literal["siglip"] = "siglip"
    bias_init: Annotated[float, Field(allow_inf_nan=False)] = -10.0
    """The bias b at step 0 (SigLIP: −10, so that the many negatives start with a small loss)."""
    learn_bias: bool = True
    """Learn b (no weight decay, the model's learning rate); false keeps it at bias_init."""


class CyClipLossSpec(Strict):
    """CyCLIP (Goel et al., NeurIPS 2022): CLIP plus λ₁ times the in-modal consistency term
    Σ_jk (⟨x_j, x_k⟩ − ⟨y_j, y_k⟩)² / n and λ₂ times the cross-modal term Σ_jk (⟨x_j, y_k⟩ − ⟨x_k, y_j⟩)² / n
    (n the batch), as the authors' code scales them (a mean over the n² pairs, times n)."""

    kind: Literal["cyclip"] = "cyclip"
    in_modal: NonNegativeFloat = 0.25
    """λ₁, the in-modal consistency weight (the authors': 0.25)."""
    cross_modal: NonNegativeFloat = 0.25
    """λ₂, the cross-modal consistency weight (the authors': 0.25)."""


class InModalitySeparationSpec(Strict):
    """AlignCLIP's in-modality separation (Eslami & de Melo, ICLR 2025): α · (CE(τXYᵀ) + CE(τYXᵀ)) +
    β · (CE(τXXᵀ) + CE(τYYᵀ)), diagonal targets, as the authors' ClipInModalityLoss sums them: the
    images (and the captions) of different pairs are pushed apart. Its semantic variant reweights by
    a pretrained sentence encoder's distances, which raygap cannot download: not built."""

    kind: Literal["inmodal_separation"] = "inmodal_separation"
    weight: NonNegativeFloat = 0.5
    """β, the in-modality term's weight (the authors': 0.5)."""
    clip_weight: NonNegativeFloat = 1.0
    """α, the cross-modal term's weight (the authors': 1)."""


class M3MixLossSpec(Strict):
    """Geodesic multimodal mixup (Oh et al., NeurIPS 2023; their code's m²-mix term, the multimodal
    part of m³-mix): CLIP plus `weight` × a contrastive term whose negatives are each pair's image and
    caption mixed along the sphere's geodesic, (sin(λθ) x + sin((1−λ)θ) y) / sin θ, one λ ~ Beta(α, α) a
    step (drawn from train.seed + 2). Needs unit features (model.normalize true)."""

    kind: Literal["m3mix"] = "m3mix"
    weight: NonNegativeFloat = 0.01
    """The mixup term's weight (the authors' default, mmmix = 0.01)."""
    alpha: PositiveFloat = 0.5
    """α of λ ~ Beta(α, α) (the authors' m²-mix script: 0.5); small α puts λ near 0 or 1."""


LossSpec = Annotated[
    Union[ClipLossSpec, SigLipLossSpec, CyClipLossSpec, InModalitySeparationSpec, M3MixLossSpec],
    Field(discriminator="kind"),
]
