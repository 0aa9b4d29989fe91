"""Modality swaps: on a fraction `p` of steps, exchange information between paired embeddings.

Applied to the (normalized) features of each pair before the logits, as the paper defines them (the method table of docs/study-file.md).
Whether a step swaps, and how, is drawn from the swap's own seeded generator, so a run is
reproducible and independent of the model's random stream.

Across workers (`world_size > 1`) each worker holds `n` rows of a global batch of
`n * world_size` pairs and swaps its rows before the loss gathers them. Every worker draws the
randomness of the whole global batch from the same seeded generator (the same stream on every
rank) and keeps rows `rank * n : (rank + 1) * n`, so the per-step "swap or not" decision, the
masks and the λ are those of one big batch of the same seed, and the generators stay in step
(a checkpoint of any rank's generator state resumes every rank). With one worker the stream is
the one a single big batch draws.

Swapped features are not renormalized: a per-coordinate exchange (HS) or a λ-mix (SS) of two
unit vectors is in general not a unit vector, and the logits use the features as they come out.
"""

from __future__ import annotations

import torch


class Swap:
    """Base: `__call__(x, y)` returns the (possibly swapped) pair of feature batches.

    `x` and `y` are this worker's (n, m) rows of the global batch; every worker passes the same n.
    """

    def __init__(self, p: float = 1.0, seed: int = 0, rank: int = 0, world_size: int = 1):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank} of world_size {world_size}")
        self.p = float(p)
        self.rank = rank
        self.world_size = world_size
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Draw on every step, active or not, so the stream does not depend on earlier outcomes.
        active = torch.rand((), generator=self.generator).item() < self.p
        return self.swap(x, y) if active else (x, y)

    def swap(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _uniform(self, columns: int, like: torch.Tensor) -> torch.Tensor:
        """U[0,1) draws of shape (n, columns) for this worker's n rows: the global batch's
        (n * world_size, columns) draw, sliced to rows rank * n : (rank + 1) * n."""
        n = like.shape[0]
        draw = torch.rand((n * self.world_size, columns), generator=self.generator)
        return draw[self.rank * n : (self.rank + 1) * n].to(like.device)

    def _coin(self, columns: int, like: torch.Tensor) -> torch.Tensor:
        return self._uniform(columns, like) < 0.5


class NoSwap(Swap):
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y


class HardSwap(Swap):
    """HS: each coordinate j of each pair i is exchanged x_ij ↔ y_ij with probability ½.

    Not renormalized: a row that mixes coordinates of x_i and y_i is in general not a unit vector.
    """

    def swap(self, x, y):
        mask = self._coin(x.shape[1], x)
        return torch.where(mask, y, x), torch.where(mask, x, y)


class HardRowSwap(Swap):
    """HS-row: whole pairs x_i ↔ y_i are exchanged with probability ½ (norms are unchanged;
    nothing is renormalized)."""

    def swap(self, x, y):
        mask = self._coin(1, x)
        return torch.where(mask, y, x), torch.where(mask, x, y)


class SoftSwap(Swap):
    """SS: x̂ = λ x + (1−λ) y, ŷ = λ y + (1−λ) x with λ ~ U[0,1].

    `per="pair"`: one λ_i per pair i, shared by its coordinates (the SS row of the method table in docs/study-file.md).
    `per="coordinate"`: an independent λ_ij for each coordinate j of each pair i, the soft
    counterpart of HS's per-coordinate exchange.
    Not renormalized: a mix of two unit vectors is shorter than unit length unless they coincide.
    """

    def __init__(self, p: float = 1.0, seed: int = 0, rank: int = 0, world_size: int = 1, per: str = "pair"):
        super().__init__(p=p, seed=seed, rank=rank, world_size=world_size)
        if per not in ("pair", "coordinate"):
            raise ValueError(f"per must be 'pair' or 'coordinate', got {per!r}")
        self.per = per

    def swap(self, x, y):
        lam = self._uniform(1 if self.per == "pair" else x.shape[1], x).to(dtype=x.dtype)
        return lam * x + (1 - lam) * y, lam * y + (1 - lam) * x


SWAPS: dict[str, type[Swap]] = {"none": NoSwap, "hard": HardSwap, "hard_row": HardRowSwap, "soft": SoftSwap}


def build_swap(options: dict, seed: int, rank: int = 0, world_size: int = 1) -> Swap:
    """A swap from the spec's `swap` section (a dict with `kind` and, except for none, `p`; soft
    also `per`), for worker `rank` of `world_size` (see the module docstring)."""
    options = dict(options)
    return SWAPS[options.pop("kind")](seed=seed, rank=rank, world_size=world_size, **options)
