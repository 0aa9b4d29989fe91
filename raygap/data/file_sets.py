"""A file-backed source's FileSet → ImageTextSet: images decoded per batch through open_clip's
transform, or read from a copy decoded once (`decoded_cache`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from raygap.data import cache
from raygap.data.images import TensorImages
from raygap.data.index import FileImages, FileSet
from raygap.data.sets import ImageTextSet, ModelInputs, tokenize_unique


def decode(found: FileSet, decoded_cache: Path | bool, bundle: ModelInputs, train: bool) -> ImageTextSet:
    """The set's images as `bundle`'s model sees them (random crops when `train`), captions tokenized;
    `decoded_cache` is the source's setting (true: the per-user cache folder, off: every epoch)."""
    folder = cache.folder_for(decoded_cache)
    images: TensorImages | FileImages
    if folder is not None:
        from open_clip import AugmentationCfg

        pixels = cache.decoded_pixels(found.images, bundle.preprocess, folder)
        # open_clip trains on random crops of 90–100 % of the area; here of the decoded copy, on the device.
        images = TensorImages(pixels, bundle.preprocess.mean, bundle.preprocess.std, crop_scale=AugmentationCfg().scale if train else None)
    else:
        from open_clip.transform import image_transform_v2

        images = found.images
        images.transform = image_transform_v2(bundle.preprocess, is_train=train)
    return ImageTextSet(
        images=images,
        tokens=tokenize_unique(found.captions, bundle.tokenize),
        caption_image=torch.from_numpy(np.asarray(found.caption_image, dtype=np.int64)),
        labels=torch.from_numpy(np.asarray(found.labels, dtype=np.int64)) if found.labels is not None else None,
        class_names=found.class_names,
    )
