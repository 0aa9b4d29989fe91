"""Image–caption sets for training and evaluation, one module per source.

Every source becomes an `ImageTextSet`: images addressable by index, tokenized captions, and for
each caption the index of its image (several captions per image are grouped, so retrieval counts
any of them). Labelled sources also carry a class per image (zero-shot, linear probe).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from raygap.data import coco, files, labelled, synthetic, webdataset
from raygap.data.images import FileImages, TensorImages
from raygap.model import ClipBundle


@dataclass
class ImageTextSet:
    images: TensorImages | FileImages | webdataset.TarImages
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
        first = torch.full((len(self.images),), -1, dtype=torch.long)
        order = torch.arange(len(self.caption_image) - 1, -1, -1)
        first[self.caption_image.flip(0)] = order
        return first


class PairDataset(Dataset):
    """Caption j with its image: the unit a training batch is drawn from. Fetches whole batches.

    With `raw_pixels`, in-memory images come as uint8 for the consumer to normalize on its device
    (`normalize_on_device`); images decoded from files come normalized either way.
    """

    def __init__(self, data: ImageTextSet, raw_pixels: bool = False):
        self.data = data
        self.raw_pixels = raw_pixels and isinstance(data.images, TensorImages)

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        captions = torch.as_tensor(indices)
        image_index = self.data.caption_image[captions]
        images = self.data.images.raw(image_index) if self.raw_pixels else self.data.images.batch(image_index)
        return images, self.data.tokens[captions]

    def normalize_on_device(self, images: torch.Tensor) -> torch.Tensor:
        return self.data.images.normalize(images) if self.raw_pixels else images


class ResidentPairs:
    """In-memory pairs copied once to the training device, each batch gathered there: the same
    batches in the same order as a DataLoader over PairDataset with the same sampler, with no
    loader processes and no per-step host-to-device copy."""

    def __init__(self, data: ImageTextSet, sampler, batch_size: int, device: torch.device):
        self.images, self.sampler, self.batch_size, self.device = data.images, sampler, batch_size, device
        self.pixels = data.images.pixels.to(device)
        self.tokens, self.owners = data.tokens.to(device), data.caption_image.to(device)

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        order = torch.tensor(list(self.sampler), device=self.device)  # one copy per epoch
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            captions = order[start : start + self.batch_size]
            yield self.images.normalize(self.pixels[self.owners[captions]]), self.tokens[captions]


class LoadedPairs:
    """Batches from a DataLoader over PairDataset, moved to the device (normalized there if raw)."""

    def __init__(self, loader, device: torch.device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        pairs = self.loader.dataset
        for images, tokens in self.loader:
            yield pairs.normalize_on_device(images.to(self.device, non_blocking=True)), tokens.to(self.device, non_blocking=True)


def fits_on_device(data: ImageTextSet, device: torch.device, fraction: float = 0.25) -> bool:
    """In-memory images small enough to keep on the GPU (uint8, at most `fraction` of its free memory)."""
    if device.type != "cuda" or not isinstance(data.images, TensorImages):
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return data.images.pixels.nbytes + data.tokens.nbytes < fraction * free


def keep_batch(batch):
    """collate_fn for PairDataset: batches arrive already stacked."""
    return batch


def tokenize_unique(captions: list[str], tokenize: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """Tokenize each distinct caption once (captions repeat across templates and noise)."""
    unique, inverse = np.unique(np.array(captions, dtype=object), return_inverse=True)
    return tokenize(list(unique))[torch.from_numpy(inverse.reshape(-1))]


def load_source(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    """An ImageTextSet from a validated data-source spec, preprocessed for `bundle`'s model."""
    return SOURCES[source.kind](source, bundle, train)


# A study's trials (in reused trial processes) and the bench draw the same synthetic sets again
# and again; drawing 1,024 images at 224 px takes seconds. Nothing downstream writes into them.
_generate_synthetic = functools.lru_cache(maxsize=4)(synthetic.generate)


def _load_synthetic(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    pixels, captions, caption_image, labels = _generate_synthetic(
        size=source.size,
        image_size=bundle.image_size,
        seed=source.seed,
        captions_per_image=source.captions_per_image,
        caption_noise=source.caption_noise,
        max_objects=source.max_objects,
        label=source.label,
    )
    return ImageTextSet(
        images=TensorImages(pixels, bundle.preprocess.mean, bundle.preprocess.std),
        tokens=tokenize_unique(captions, bundle.tokenize),
        caption_image=torch.from_numpy(caption_image),
        labels=torch.from_numpy(labels),
        class_names=synthetic.class_names(source.label),
    )


def _load_files(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    from open_clip.transform import image_transform_v2

    table = files.read_table(source)
    transform = image_transform_v2(bundle.preprocess, is_train=train)
    labels = torch.from_numpy(table.labels) if table.labels is not None else None
    return ImageTextSet(
        images=FileImages(table.image_paths, transform),
        tokens=tokenize_unique(table.captions, bundle.tokenize),
        caption_image=torch.from_numpy(table.caption_image),
        labels=labels,
        class_names=table.class_names,
    )


def _load_coco(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    from open_clip.transform import image_transform_v2

    paths, captions, caption_image = coco.read_coco(source)
    return ImageTextSet(
        images=FileImages(paths, image_transform_v2(bundle.preprocess, is_train=train)),
        tokens=tokenize_unique(captions, bundle.tokenize),
        caption_image=torch.from_numpy(caption_image),
    )


def _load_webdataset(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    from open_clip.transform import image_transform_v2

    members, captions = webdataset.read_webdataset(source)
    return ImageTextSet(
        images=webdataset.TarImages(members, image_transform_v2(bundle.preprocess, is_train=train)),
        tokens=tokenize_unique(captions, bundle.tokenize),
        caption_image=torch.arange(len(captions)),
    )


def _labelled_set(images, labels: np.ndarray, class_names: list[str], template: str, bundle: ClipBundle) -> ImageTextSet:
    """A labelled set whose caption per image is `template` filled with its class name."""
    captions = [template.format(label=class_names[label]) for label in labels.tolist()]
    return ImageTextSet(
        images=images,
        tokens=tokenize_unique(captions, bundle.tokenize),
        caption_image=torch.arange(len(captions)),
        labels=torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        class_names=class_names,
    )


def _resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """uint8 [n, c, h, w] → uint8 [n, 3, size, size] (grey images get three equal channels)."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    if tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1)
    if tensor.shape[-1] != size or tensor.shape[-2] != size:
        tensor = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return tensor.round().clamp(0, 255).to(torch.uint8).numpy()


def _load_imagefolder(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    from open_clip.transform import image_transform_v2

    paths, labels, classes = labelled.read_imagefolder(source.root)
    paths, labels = paths[: source.limit], labels[: source.limit]
    images = FileImages(paths, image_transform_v2(bundle.preprocess, is_train=train))
    return _labelled_set(images, labels, classes, source.template, bundle)


def _load_pixels(reader):
    def load(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
        pixels, labels, classes = reader(getattr(source, "root", None), source.split)  # digits has no root
        pixels, labels = pixels[: source.limit], labels[: source.limit]
        images = TensorImages(_resized(pixels, bundle.image_size), bundle.preprocess.mean, bundle.preprocess.std)
        return _labelled_set(images, labels, classes, source.template, bundle)

    return load


SOURCES = {
    "synthetic": _load_synthetic,
    "files": _load_files,
    "coco": _load_coco,
    "webdataset": _load_webdataset,
    "imagefolder": _load_imagefolder,
    "cifar10": _load_pixels(labelled.read_cifar10),
    "fashion-mnist": _load_pixels(labelled.read_fashion_mnist),
    "digits": _load_pixels(labelled.read_digits),
}


def check_tables(cfg, file: str) -> None:
    """Read every `files` table of a trial now, so that a missing column, an empty table or an
    absent image fails with the file and key before any work starts (and not inside a worker)."""
    from raygap.spec import SpecError

    sources = {"data.train": cfg.data.train, "data.eval": cfg.data.eval}
    if cfg.data.probe is not None:
        sources.update({"data.probe.train": cfg.data.probe.train, "data.probe.test": cfg.data.probe.test})
    for key, source in sources.items():
        if source.kind == "files":
            try:
                table = files.read_table(source)
            except ValueError as error:
                raise SpecError(f"{file}: {key}: {error}") from None
            if table.skipped_images:
                bad = table.skipped_images
                print(f"{file}: {key}: leaving out {len(bad)} unreadable image(s) (bad_images: skip), e.g. {bad[0]}", file=sys.stderr)
