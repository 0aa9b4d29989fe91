"""The one table of data sources: a spec's `kind` → the source's reader.

`load_source`, `read_file_source` and `check_tables` all dispatch through `SOURCES`. Adding a
source = its reader module + one line here + its model in raygap/config/data.py + its test.
In-memory loaders are named, not imported: the table (and every file-backed source's index reader)
loads without torch, so Tune's head process can check a study's sources and stay small.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from raygap.data import coco, files, labelled, mmvp, webdataset
from raygap.data.bad_images import drop_unreadable
from raygap.data.index import FileSet

if TYPE_CHECKING:
    from raygap.data.sets import ImageTextSet, ModelInputs


@dataclass(frozen=True)
class InMemory:
    """A source generated or read whole into memory at the model's size."""

    loader: str
    """`module:function` under raygap.data, imported when a trial loads the source."""

    def load(self, source, bundle: ModelInputs, train: bool) -> ImageTextSet:
        module, name = self.loader.split(":")
        return getattr(importlib.import_module(f"raygap.data.{module}"), name)(source, bundle, train)


@dataclass(frozen=True)
class FileBacked:
    """A source whose images are files: its index is read (and checked, so a spec fails before any
    work starts) apart from decoding its images."""

    read: Callable[[Any], FileSet]
    where: str
    """The source's field that names it in errors (its table, image folder or shards)."""

    def load(self, source, bundle: ModelInputs, train: bool) -> ImageTextSet:
        return load_file_source(source, bundle, train)


SOURCES: dict[str, InMemory | FileBacked] = {
    "synthetic": InMemory("synthetic:load"),
    "files": FileBacked(files.read_set, where="table"),
    "coco": FileBacked(coco.read_set, where="images"),
    "webdataset": FileBacked(webdataset.read_set, where="shards"),
    "imagefolder": FileBacked(labelled.read_imagefolder_set, where="root"),
    "cifar10": InMemory("arrays:load_cifar10"),
    "fashion-mnist": InMemory("arrays:load_fashion_mnist"),
    "digits": InMemory("arrays:load_digits"),
    "mmvp": FileBacked(mmvp.read_set, where="root"),
}


def load_source(source, bundle: ModelInputs, train: bool) -> ImageTextSet:
    """An ImageTextSet from a validated data-source spec, preprocessed for `bundle`'s model."""
    return SOURCES[source.kind].load(source, bundle, train)


def is_file_backed(source) -> bool:
    return isinstance(SOURCES.get(source.kind), FileBacked)


def read_file_source(source) -> FileSet:
    """Read a file-backed source's index and apply its bad-image policy. Errors name the file."""
    reader = SOURCES.get(source.kind)
    if not isinstance(reader, FileBacked):
        raise ValueError(f"{source.kind} is not a file-backed source")
    return drop_unreadable(reader.read(source), source.bad_images, getattr(source, reader.where))


def load_file_source(source, bundle: ModelInputs, train: bool) -> ImageTextSet:
    """A file-backed source read, checked and decoded for `bundle`'s model."""
    from raygap.data import file_sets

    return file_sets.decode(read_file_source(source), source.decoded_cache, bundle, train)
