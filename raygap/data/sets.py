"""The set every source becomes, what a source needs of the model, and caption tokenizing.

An `ImageTextSet` is what training and evaluation read: images addressable by index, tokenized
captions, and for each caption the index of its image (several captions per image are grouped, so
retrieval counts any of them). Labelled sources also carry a class per image (zero-shot, linear
probe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np
import torch

from raygap.data.images import TensorImages
from raygap.data.index import FileImages

if TYPE_CHECKING:
    from open_clip.transform import PreprocessCfg


class ModelInputs(Protocol):
    """What a source needs of the model it feeds: its tokenizer and its image preprocessing
    (raygap.clip.model.ClipBundle is one). Data never imports the model."""

    @property
    def tokenize(self) -> Callable[[list[str]], torch.Tensor]: ...

    @property
    def preprocess(self) -> PreprocessCfg: ...

    @property
    def image_size(self) -> int: ...


@dataclass
class ImageTextSet:
    images: TensorImages | FileImages
    tokens: torch.Tensor
    """[n_captions, context_length]"""
    caption_image: torch.Tensor
    """[n_captions]: index of each caption's image."""
    labels: torch.Tensor | None = None
    """[n_images] class index, for labelled sets."""
    class_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def first_captions(self) -> torch.Tensor:
        """Index of the first caption of every image: one matched pair per image."""
        return first_captions(self.caption_image, len(self.images))

    def classes(self) -> tuple[torch.Tensor, list[str]]:
        """The labels and class names of a labelled set (a probe split, MMVP's pairs)."""
        if self.labels is None or self.class_names is None:
            raise ValueError("this set has no labels: a labelled source was expected (data.probe, data.mmvp)")
        return self.labels, self.class_names


def first_captions(caption_image: torch.Tensor, n_images: int) -> torch.Tensor:
    """Index of the first caption of each of `n_images` images (-1 for an image without one)."""
    caption_image = torch.as_tensor(caption_image, dtype=torch.long)
    first = torch.full((n_images,), -1, dtype=torch.long)
    order = torch.arange(len(caption_image) - 1, -1, -1)
    first[caption_image.flip(0)] = order
    return first


def tokenize_unique(captions: list[str], tokenize: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """Tokenize each distinct caption once (captions repeat across templates and noise)."""
    unique, inverse = np.unique(np.array(captions, dtype=object), return_inverse=True)
    return tokenize(list(unique))[torch.from_numpy(inverse.reshape(-1))]
