"""The optimizer's parameter groups and the learning-rate schedule (warmup, then cosine), with the
temperature's own scale (SLRT) kept through both."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from raygap.clip.temperature import Temperature
from raygap.config import TrialConfig


def lr_multiplier(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at the last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, temperature: Temperature, loss: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decayed weights, undecayed gains/biases (as open_clip) with the loss's learned
    parameters (SigLIP's bias, undecayed as open_clip's logit_bias), and θ at lr × lr_scale."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
        (no_decay if exclude else decay).append(p)
    no_decay += [p for p in loss.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    if temperature.learned:
        groups.append({"params": list(temperature.parameters()), "weight_decay": 0.0, "lr_scale": temperature.lr_scale})
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    return groups


def set_lr(optimizer: torch.optim.Optimizer, lr: float, multiplier: float) -> None:
    # Per group: θ's scale (SLRT) survives warmup and decay instead of being overwritten.
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"] * multiplier


def total_steps_for(cfg: TrialConfig, n_pairs: int) -> int:
    if cfg.train.steps is not None:
        return cfg.train.steps
    assert cfg.train.epochs is not None  # steps or epochs, checked by the config
    return max(1, math.ceil(cfg.train.epochs * (n_pairs // cfg.train.batch_size)))


def warmup_steps_for(cfg: TrialConfig, n_pairs: int) -> int:
    """train.warmup_steps, or train.warmup_epochs of a training set of `n_pairs` in steps."""
    if cfg.train.warmup_epochs is None:
        return cfg.train.warmup_steps
    return math.ceil(cfg.train.warmup_epochs * (n_pairs // cfg.train.batch_size))
