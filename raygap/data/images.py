"""Images held in memory as tensors, and the random crop applied to a training batch (file-backed
images are raygap.data.index.FileImages)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


class TensorImages:
    """Images held in memory (or memory-mapped) as uint8 [n, 3, H, W]; normalized per batch with
    the model's mean/std. With `crop_scale`, every batch is first cropped at random (training)."""

    def __init__(self, pixels: np.ndarray, mean: tuple, std: tuple, crop_scale: tuple[float, float] | None = None):
        self.pixels = torch.from_numpy(pixels)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.crop_scale = crop_scale

    def __len__(self) -> int:
        return len(self.pixels)

    def batch(self, indices) -> torch.Tensor:
        return self.normalize(self.raw(indices))

    def raw(self, indices) -> torch.Tensor:
        """uint8 pixels: a quarter of the bytes to move to a GPU, normalized there."""
        return self.pixels[indices]

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(pixels.device), self.std.to(pixels.device)
        pixels = pixels.float()
        if self.crop_scale is not None:
            pixels = random_resized_crop(pixels, self.crop_scale)
        return (pixels / 255 - mean) / std


def random_resized_crop(pixels: torch.Tensor, scale: tuple[float, float]) -> torch.Tensor:
    """torchvision's RandomResizedCrop, drawn for each image of a batch and applied where the batch is."""
    return resized_crop(pixels, crop_boxes(len(pixels), scale))


def crop_boxes(n: int, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10) -> torch.Tensor:
    """[n, 4] boxes (left, top, width, height) as fractions of a square image's side, drawn as
    RandomResizedCrop draws them: `scale` of the area, log-uniform aspect in `ratio`, the first of
    `tries` draws that fits, else the whole image. Drawn on the CPU generator, so they follow
    torch.manual_seed and a checkpoint's random state whatever the device."""
    area = torch.empty(n, tries).uniform_(*scale)
    aspect = torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1])).exp()
    width, height = (area * aspect).sqrt(), (area / aspect).sqrt()
    fits = (width <= 1) & (height <= 1)
    first = fits.float().argmax(1, keepdim=True)
    any_fit = fits.any(1)
    width = torch.where(any_fit, width.gather(1, first)[:, 0], 1.0)
    height = torch.where(any_fit, height.gather(1, first)[:, 0], 1.0)
    left, top = torch.rand(n) * (1 - width), torch.rand(n) * (1 - height)
    return torch.stack([left, top, width, height], 1)


def resized_crop(pixels: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Each image's box resized back to the image's size, bilinear, in one batched kernel."""
    left, top, width, height = boxes.unbind(1)
    theta = torch.zeros(len(boxes), 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width, 2 * left + width - 1  # output x ∈ [-1, 1] → the box's x
    theta[:, 1, 1], theta[:, 1, 2] = height, 2 * top + height - 1
    grid = F.affine_grid(theta.to(pixels.device, pixels.dtype), list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
