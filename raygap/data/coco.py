"""MSCOCO captions from local files: the official captions_*.json or Karpathy's dataset_coco.json.

Each image's captions (five in COCO) are grouped, so image→text recall counts any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from raygap.data.index import FileImages, FileSet


def read_coco(source) -> tuple[list[str], list[str], np.ndarray]:
    """(image paths, captions, caption_image). Errors name the file and what is wrong with it."""
    path = Path(source.annotations)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read COCO annotations: {error}") from None
    root = Path(source.images)
    if "annotations" in data:  # official format: images [{id, file_name}], annotations [{image_id, caption}]
        if source.split is not None:
            raise ValueError(f"{path}: the official COCO captions file has no Karpathy splits; remove data split={source.split!r}")
        images = data["images"][: source.limit] if source.limit else data["images"]
        index = {image["id"]: i for i, image in enumerate(images)}
        paths = [str(root / image["file_name"]) for image in images]
        pairs = [(index[a["image_id"]], a["caption"].strip()) for a in data["annotations"] if a["image_id"] in index]
        pairs.sort(key=lambda pair: pair[0])
    elif data.get("images") and "sentences" in data["images"][0]:  # Karpathy's dataset_coco.json
        if source.split is None:
            raise ValueError(f"{path}: Karpathy's split file needs a split (train, val, test or restval)")
        images = [image for image in data["images"] if image["split"] == source.split]
        images = images[: source.limit] if source.limit else images
        paths = [str(root / image.get("filepath", "") / image["filename"]) for image in images]
        pairs = [(i, sentence["raw"].strip()) for i, image in enumerate(images) for sentence in image["sentences"]]
    else:
        raise ValueError(f"{path}: neither COCO captions (images + annotations) nor Karpathy's format (images with sentences)")
    if not pairs:
        raise ValueError(f"{path}: no captions" + (f" in split {source.split!r}" if source.split else ""))
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise ValueError(f"{root}: {len(absent)} of {len(paths)} COCO images not found, e.g. {absent[0]}")
    captions = [caption for _, caption in pairs]
    return paths, captions, np.array([i for i, _ in pairs])


def read_set(source) -> FileSet:
    """A `coco` source's index, images not yet decoded."""
    paths, captions, caption_image = read_coco(source)
    return FileSet(FileImages(paths), captions, caption_image)
