"""Labelled image arrays read whole (CIFAR-10, Fashion-MNIST, digits) → an ImageTextSet at the
model's size, each image's caption its class name in the source's template."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from raygap.data import labelled
from raygap.data.images import TensorImages
from raygap.data.index import template_captions
from raygap.data.sets import ImageTextSet, ModelInputs, tokenize_unique

ArrayReader = Callable[[Any, str], tuple[np.ndarray, np.ndarray, list[str]]]
"""(root, split) → (uint8 [n, c, h, w], labels, class names); the root is a Path, None for digits."""


def loader(read: ArrayReader) -> Callable[..., ImageTextSet]:
    """A source's load function from its array reader."""

    def load(source, bundle: ModelInputs, train: bool) -> ImageTextSet:
        pixels, labels, classes = read(getattr(source, "root", None), source.split)  # digits has no root
        pixels, labels = pixels[: source.limit], labels[: source.limit]
        images = TensorImages(resized(pixels, bundle.image_size), bundle.preprocess.mean, bundle.preprocess.std)
        return labelled_set(images, labels, classes, source.template, bundle)

    return load


load_cifar10 = loader(labelled.read_cifar10)
load_fashion_mnist = loader(labelled.read_fashion_mnist)
load_digits = loader(labelled.read_digits)


def resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """uint8 [n, c, h, w] → uint8 [n, 3, size, size] (grey images get three equal channels)."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    if tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1)
    if tensor.shape[-1] != size or tensor.shape[-2] != size:
        tensor = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return tensor.round().clamp(0, 255).to(torch.uint8).numpy()


def labelled_set(images: TensorImages, labels: np.ndarray, class_names: list[str], template: str, bundle: ModelInputs) -> ImageTextSet:
    """A labelled set whose caption per image is `template` filled with its class name."""
    captions = template_captions(template, labels, class_names)
    return ImageTextSet(
        images=images,
        tokens=tokenize_unique(captions, bundle.tokenize),
        caption_image=torch.arange(len(captions)),
        labels=torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        class_names=class_names,
    )
