"""WebDataset tar shards (open_clip's large-scale format): samples `<key>.<image ext>` + `<key>.txt`.

The shards are indexed once (each member's place in its tar) and read in place: images are
decoded straight from the tar by offset, never unpacked to disk.
"""

from __future__ import annotations

import glob
import io
import tarfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from raygap.data.index import FileImages, FileSet

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def shard_paths(pattern: str) -> list[str]:
    """Shards named by a glob or an explicit list in braces: data/{000..002}.tar or data/*.tar."""
    if "{" in pattern and ".." in pattern:
        head, rest = pattern.split("{", 1)
        span, tail = rest.split("}", 1)
        first, last = span.split("..")
        paths = [f"{head}{i:0{len(first)}d}{tail}" for i in range(int(first), int(last) + 1)]
    else:
        paths = sorted(glob.glob(pattern))
    return paths


def index_shards(paths: list[str], caption_ext: str = "txt") -> tuple[list[tuple[str, int, int]], list[str]]:
    """([(shard, offset, size) of each sample's image], [its caption]) for complete samples."""
    images, captions = [], []
    for path in paths:
        samples: dict[str, dict] = {}
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")
                sample = samples.setdefault(key, {})
                if ext.lower() in IMAGE_EXTENSIONS:
                    sample["image"] = (path, member.offset_data, member.size)
                elif ext == caption_ext:
                    caption = tar.extractfile(member)
                    assert caption is not None  # a regular file (isfile above) always extracts
                    sample["caption"] = caption.read().decode("utf-8").strip()
        for sample in samples.values():
            if "image" in sample and "caption" in sample:
                images.append(sample["image"])
                captions.append(sample["caption"])
    return images, captions


class TarImages(FileImages):
    """Images read from tar shards by offset, through open_clip's transform."""

    def __init__(self, members: list[tuple[str, int, int]], transform: Callable | None = None):
        super().__init__([f"{path}@{offset}" for path, offset, _ in members], transform)
        self.members = members

    def files(self) -> list[str]:
        return sorted({path for path, _, _ in self.members})

    def subset(self, keep: list[int]) -> TarImages:
        return TarImages([self.members[i] for i in keep], self.transform)

    def open(self, index: int) -> Image.Image:
        path, offset, size = self.members[index]
        with open(path, "rb") as handle:
            handle.seek(offset)
            return Image.open(io.BytesIO(handle.read(size)))


def read_webdataset(source) -> tuple[list[tuple[str, int, int]], list[str]]:
    paths = shard_paths(str(source.shards))
    if not paths:
        raise ValueError(f"data shards: no tar shard matches {source.shards}")
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ValueError(f"data shards: {len(missing)} shard(s) not found, e.g. {missing[0]}")
    images, captions = index_shards(paths, source.caption_ext)
    if not images:
        raise ValueError(f"{paths[0]}: no complete samples (<key>.jpg|png|webp with <key>.{source.caption_ext})")
    if source.limit:
        images, captions = images[: source.limit], captions[: source.limit]
    return images, captions


def read_set(source) -> FileSet:
    """A `webdataset` source's index (one caption per sample), images not yet decoded."""
    members, captions = read_webdataset(source)
    return FileSet(TarImages(members), captions, np.arange(len(captions)))
