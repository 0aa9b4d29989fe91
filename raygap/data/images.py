"""Image stores: a batch of model-ready tensors from a list of indices."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image


class TensorImages:
    """Images held in memory as uint8 [n, 3, H, W]; normalized per batch with the model's mean/std."""

    def __init__(self, pixels: np.ndarray, mean: tuple, std: tuple):
        self.pixels = torch.from_numpy(pixels)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.pixels)

    def batch(self, indices) -> torch.Tensor:
        return self.normalize(self.raw(indices))

    def raw(self, indices) -> torch.Tensor:
        """uint8 pixels: a quarter of the bytes to move to a GPU, normalized there."""
        return self.pixels[indices]

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(pixels.device), self.std.to(pixels.device)
        return (pixels.float() / 255 - mean) / std


class FileImages:
    """Images decoded from disk through open_clip's transform, one per index."""

    def __init__(self, paths: list[str], transform: Callable):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def open(self, index: int) -> Image.Image:
        return Image.open(self.paths[index])

    def batch(self, indices) -> torch.Tensor:
        out = []
        for i in torch.as_tensor(indices).tolist():
            with self.open(i) as image:
                out.append(self.transform(image.convert("RGB")))
        return torch.stack(out)
