"""The symmetric contrastive (CLIP) loss, with negatives gathered across workers.

With `world_size > 1` each worker gathers every worker's features (keeping the gradient of its own
shard, as open_clip's `local_loss=True, gather_with_grad=True`) and scores its local pairs against
the global batch, which gives the same loss and gradients as one big batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    import torch.distributed.nn as dist_nn  # needs an initialised process group

    return torch.cat(dist_nn.all_gather(features), dim=0)


def contrastive_loss(
    image: torch.Tensor,
    text: torch.Tensor,
    tau: torch.Tensor | float,
    rank: int = 0,
    world_size: int = 1,
) -> torch.Tensor:
    """Mean of the cross-entropies over the rows and the columns of S = τ·X·Yᵀ, targets on the diagonal.

    `image` and `text` are this worker's (n, m) features; normalization is the caller's choice.
    """
    if world_size > 1:
        all_image, all_text = _gather_with_grad(image), _gather_with_grad(text)
    else:
        all_image, all_text = image, text
    logits_per_image = tau * image @ all_text.T
    logits_per_text = tau * text @ all_image.T
    labels = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
