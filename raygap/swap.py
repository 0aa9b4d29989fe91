"""Modality swaps: on a fraction `p` of steps, exchange information between paired embeddings.

Applied to the (normalized) features of each pair before the logits, as DESIGN.md defines them.
Whether a step swaps, and how, is drawn from the swap's own seeded generator, so a run is
reproducible and independent of the model's random stream.
"""

from __future__ import annotations

import torch


class Swap:
    """Base: `__call__(x, y)` returns the (possibly swapped) pair of feature batches."""

    def __init__(self, p: float = 1.0, seed: int = 0):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Draw on every step, active or not, so the stream does not depend on earlier outcomes.
        active = torch.rand((), generator=self.generator).item() < self.p
        return self.swap(x, y) if active else (x, y)

    def swap(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _coin(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return (torch.rand(shape, generator=self.generator) < 0.5).to(like.device)


class NoSwap(Swap):
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y


class HardSwap(Swap):
    """HS: each coordinate j of each pair i is exchanged x_ij ↔ y_ij with probability ½."""

    def swap(self, x, y):
        mask = self._coin(tuple(x.shape), x)
        return torch.where(mask, y, x), torch.where(mask, x, y)


class HardRowSwap(Swap):
    """HS-row: whole pairs x_i ↔ y_i are exchanged with probability ½."""

    def swap(self, x, y):
        mask = self._coin((x.shape[0], 1), x)
        return torch.where(mask, y, x), torch.where(mask, x, y)


class SoftSwap(Swap):
    """SS: λ_i ~ U[0,1]; x̂_i = λ_i x_i + (1−λ_i) y_i, ŷ_i = λ_i y_i + (1−λ_i) x_i."""

    def swap(self, x, y):
        lam = torch.rand((x.shape[0], 1), generator=self.generator).to(device=x.device, dtype=x.dtype)
        return lam * x + (1 - lam) * y, lam * y + (1 - lam) * x


SWAPS: dict[str, type[Swap]] = {"none": NoSwap, "hard": HardSwap, "hard_row": HardRowSwap, "soft": SoftSwap}


def build_swap(options: dict, seed: int) -> Swap:
    """A swap from the spec's `swap` section (a dict with `kind` and, except for none, `p`)."""
    options = dict(options)
    return SWAPS[options.pop("kind")](seed=seed, **options)
