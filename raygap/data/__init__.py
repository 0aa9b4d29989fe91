"""Image–caption sets for training and evaluation, one module per source.

Every source becomes an `ImageTextSet`: images addressable by index, tokenized captions, and for
each caption the index of its image (several captions per image are grouped, so retrieval counts
any of them). Labelled sources also carry a class per image (zero-shot, linear probe).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from raygap.data import cache, coco, files, labelled, synthetic, webdataset
from raygap.data.images import FileImages, TensorImages, unreadable
from raygap.model import ClipBundle


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


class StreamedPairs:
    """In-memory (or memory-mapped) pairs too large to keep on the GPU: a thread gathers each batch
    into pinned memory and copies it to the GPU on a side stream while the previous steps run.
    The same batches in the same order as ResidentPairs, with no loader processes (they would
    copy every batch twice more, into shared memory and then into pinned memory)."""

    def __init__(self, data: ImageTextSet, sampler, batch_size: int, device: torch.device, depth: int = 3):
        self.images, self.sampler, self.batch_size, self.device, self.depth = data.images, sampler, batch_size, device, depth
        self.tokens, self.owners = data.tokens, data.caption_image

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        import queue
        import threading

        order = torch.tensor(list(self.sampler))
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stream, stop = torch.cuda.Stream(self.device), threading.Event()

        def offer(item) -> bool:
            """Queue an item unless the consumer has gone (it stopped iterating half-way)."""
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.5)
                    return True
                except queue.Full:
                    pass
            return False

        def produce() -> None:
            try:
                pixels = self.images.pixels
                for start in range(0, len(self) * self.batch_size, self.batch_size):
                    captions = order[start : start + self.batch_size]
                    host = torch.empty((len(captions), *pixels.shape[1:]), dtype=pixels.dtype, pin_memory=True)
                    torch.index_select(pixels, 0, self.owners[captions], out=host)
                    with torch.cuda.stream(stream):  # the pinned block is reused only after this copy ends
                        images = host.to(self.device, non_blocking=True)
                        tokens = self.tokens[captions].pin_memory().to(self.device, non_blocking=True)
                        copied = torch.cuda.Event()
                        copied.record(stream)
                    if not offer((images, tokens, copied)):
                        return
                offer(None)
            except BaseException as error:  # raised again in the training loop
                offer(error)

        thread = threading.Thread(target=produce, daemon=True, name="raygap-stream")
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                images, tokens, copied = item
                current = torch.cuda.current_stream(self.device)
                current.wait_event(copied)
                images.record_stream(current)  # allocated on the side stream, used on this one
                tokens.record_stream(current)
                yield self.images.normalize(images), tokens
        finally:
            stop.set()
            thread.join()


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


def training_batches(data: ImageTextSet, sampler, batch_size: int, device: torch.device, pipeline: str, loader_workers: int):
    """The batches of one worker's share of an epoch, on `device`, by the spec's `data.pipeline`."""
    in_memory = isinstance(data.images, TensorImages)
    on_gpu = device.type == "cuda"
    if pipeline == "auto":
        pipeline = "resident" if fits_on_device(data, device) else "streamed" if in_memory else "loader"
    if pipeline in ("resident", "streamed") and not in_memory:
        raise ValueError(f"data.pipeline: {pipeline} needs images in memory (a decoded_cache for image files)")
    if pipeline == "resident":
        # No loader processes, pinning thread or per-step copy: each batch is gathered where it is used.
        return ResidentPairs(data, sampler, batch_size, device)
    if pipeline == "streamed" and on_gpu:
        return StreamedPairs(data, sampler, batch_size, device)
    # In-memory images travel as uint8 from pinned memory and are normalized on the GPU.
    loader = DataLoader(PairDataset(data, raw_pixels=on_gpu), batch_size=batch_size, sampler=sampler, drop_last=True, collate_fn=keep_batch,
                        num_workers=loader_workers, persistent_workers=loader_workers > 0, pin_memory=on_gpu)  # fmt: skip
    return LoadedPairs(loader, device)


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


@dataclass
class FileSet:
    """A file-backed source as read from its index (table, annotations, shards, folders), before
    any image is decoded."""

    images: FileImages
    captions: list[str]
    caption_image: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    skipped: list[str] = field(default_factory=list)
    """Images left out as unreadable (bad_images: skip)."""


def read_file_source(source) -> FileSet:
    """Read a file-backed source's index and apply its bad-image policy. Errors name the file."""
    if source.kind == "files":
        table = files.read_table(source)
        found = FileSet(FileImages(table.image_paths), table.captions, table.caption_image, table.labels, table.class_names)
        where = source.table
    elif source.kind == "coco":
        paths, captions, caption_image = coco.read_coco(source)
        found, where = FileSet(FileImages(paths), captions, caption_image), source.images
    elif source.kind == "webdataset":
        members, captions = webdataset.read_webdataset(source)
        found, where = FileSet(webdataset.TarImages(members), captions, np.arange(len(captions))), source.shards
    elif source.kind == "imagefolder":
        paths, labels, classes = labelled.read_imagefolder(source.root)
        paths, labels = paths[: source.limit], labels[: source.limit]
        found = FileSet(FileImages(paths), template_captions(source.template, labels, classes), np.arange(len(paths)), labels, classes)
        where = source.root
    else:
        raise ValueError(f"{source.kind} is not a file-backed source")
    return drop_unreadable(found, source.bad_images, where)


def drop_unreadable(found: FileSet, policy: str, where) -> FileSet:
    """Fail on images PIL cannot open, or (policy skip) leave them and their captions out."""
    bad = unreadable(found.images)
    if not bad:
        return found
    names = [found.images.paths[i] for i in bad]
    if policy == "fail":
        raise ValueError(f"{where}: {len(bad)} image file(s) cannot be read as images, e.g. {names[0]}; set bad_images: skip to leave them out")
    if len(bad) == len(found.images):
        raise ValueError(f"{where}: none of its {len(bad)} image file(s) can be read as images")
    keep = np.setdiff1d(np.arange(len(found.images)), bad)
    new_index = np.full(len(found.images), -1)
    new_index[keep] = np.arange(len(keep))
    kept_captions = np.flatnonzero(new_index[found.caption_image] >= 0)
    labels, class_names = found.labels, found.class_names
    if labels is not None:  # classes that only the skipped images had go with them
        present = np.unique(labels[keep])
        class_names = [class_names[c] for c in present]
        labels = np.searchsorted(present, labels[keep])
    return FileSet(
        images=found.images.subset(keep.tolist()),
        captions=[found.captions[i] for i in kept_captions],
        caption_image=new_index[found.caption_image[kept_captions]],
        labels=labels,
        class_names=class_names,
        skipped=names,
    )


def _load_file_source(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
    found = read_file_source(source)
    if source.decoded_cache is not None:
        from open_clip import AugmentationCfg

        pixels = cache.decoded_pixels(found.images, bundle.preprocess, source.decoded_cache)
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


def template_captions(template: str, labels: np.ndarray, class_names: list[str]) -> list[str]:
    """Each labelled image's caption: `template` filled with its class name."""
    return [template.format(label=class_names[label]) for label in labels.tolist()]


def _labelled_set(images, labels: np.ndarray, class_names: list[str], template: str, bundle: ClipBundle) -> ImageTextSet:
    """A labelled set whose caption per image is `template` filled with its class name."""
    captions = template_captions(template, labels, class_names)
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


def _load_pixels(reader):
    def load(source, bundle: ClipBundle, train: bool) -> ImageTextSet:
        pixels, labels, classes = reader(getattr(source, "root", None), source.split)  # digits has no root
        pixels, labels = pixels[: source.limit], labels[: source.limit]
        images = TensorImages(_resized(pixels, bundle.image_size), bundle.preprocess.mean, bundle.preprocess.std)
        return _labelled_set(images, labels, classes, source.template, bundle)

    return load


SOURCES = {
    "synthetic": _load_synthetic,
    "files": _load_file_source,
    "coco": _load_file_source,
    "webdataset": _load_file_source,
    "imagefolder": _load_file_source,
    "cifar10": _load_pixels(labelled.read_cifar10),
    "fashion-mnist": _load_pixels(labelled.read_fashion_mnist),
    "digits": _load_pixels(labelled.read_digits),
}


FILE_SOURCES = ("files", "coco", "webdataset", "imagefolder")


def check_tables(cfg, file: str) -> None:
    """Read the index of every file-backed source of a trial now, so that a missing column, an
    empty table, an absent or unreadable image fails with the file and key before any work starts
    (and not inside a worker)."""
    from raygap.spec import SpecError

    sources = {"data.train": cfg.data.train, "data.eval": cfg.data.eval}
    if cfg.data.probe is not None:
        sources.update({"data.probe.train": cfg.data.probe.train, "data.probe.test": cfg.data.probe.test})
    for key, source in sources.items():
        if source.kind in FILE_SOURCES:
            try:
                found = read_file_source(source)
            except ValueError as error:
                raise SpecError(f"{file}: {key}: {error}") from None
            if found.skipped:
                bad = found.skipped
                print(f"{file}: {key}: leaving out {len(bad)} unreadable image(s) (bad_images: skip), e.g. {bad[0]}", file=sys.stderr)
            if key.startswith("data.probe") and found.labels is None:
                raise SpecError(f"{file}: {key}: a probe split needs a class label per image; name the table's label column (label_column)")
            if key == "data.train" and cfg.theory is None and len(found.captions) < cfg.train.batch_size:
                raise SpecError(f"{file}: train.batch_size: {cfg.train.batch_size} is larger than data.train, which holds {len(found.captions)} pairs")
