"""A file-backed source as read from its index (table, annotations, shards, folders), before any
image is decoded. Nothing here imports torch: Tune's head process reads these indexes to check a
study's sources before it starts, and stays small."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


class FileImages:
    """Images decoded from disk through open_clip's transform, one per index."""

    def __init__(self, paths: list[str], transform: Callable | None = None):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def open(self, index: int) -> Image.Image:
        return Image.open(self.paths[index])

    def files(self) -> list[str]:
        """The files on disk the images live in (a change to any of them changes the set)."""
        return self.paths

    def subset(self, keep: list[int]) -> FileImages:
        return FileImages([self.paths[i] for i in keep], self.transform)

    def batch(self, indices) -> torch.Tensor:
        import torch  # only where images are decoded for a model, never where an index is checked

        if self.transform is None:
            raise RuntimeError("file images have no transform yet: a set is decoded for a model first (raygap.data.file_sets)")
        out = []
        for i in torch.as_tensor(indices).tolist():
            with self.open(i) as image:
                out.append(self.transform(image.convert("RGB")))
        return torch.stack(out)


@dataclass
class FileSet:
    """A file-backed source's images, captions, each caption's image, and labels where it has them."""

    images: FileImages
    captions: list[str]
    caption_image: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    skipped: list[str] = field(default_factory=list)
    """Images left out as unreadable (bad_images: skip)."""


def template_captions(template: str, labels: np.ndarray, class_names: list[str]) -> list[str]:
    """Each labelled image's caption: `template` filled with its class name."""
    return [template.format(label=class_names[label]) for label in labels.tolist()]


_UNREADABLE: dict[tuple, list[int]] = {}


def unreadable(store: FileImages) -> list[int]:
    """Indices of images PIL cannot identify (a header check; remembered for the later trials that
    a reused trial process runs on the same set)."""
    from PIL import UnidentifiedImageError

    key = (type(store).__name__, tuple(store.paths))
    if key not in _UNREADABLE:
        bad = []
        for i in range(len(store)):
            try:
                with store.open(i) as image:
                    image.verify()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                bad.append(i)
        if len(_UNREADABLE) >= 8:
            _UNREADABLE.clear()
        _UNREADABLE[key] = bad
    return _UNREADABLE[key]
