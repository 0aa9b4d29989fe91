"""How training batches reach the device: resident (gathered on the GPU), streamed (a thread and a
side CUDA stream) or a DataLoader. All three give the same batches in the same order for a sampler.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from raygap.data.images import TensorImages
from raygap.data.sets import ImageTextSet


class PairDataset(Dataset):
    """Caption j with its image: the unit a training batch is drawn from. Fetches whole batches.

    With `raw_pixels`, in-memory images come as uint8 for the consumer to normalize on its device
    (`normalize_on_device`); images decoded from files come normalized either way.
    """

    def __init__(self, data: ImageTextSet, raw_pixels: bool = False):
        self.data = data
        self.raw_images = data.images if raw_pixels and isinstance(data.images, TensorImages) else None

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        captions = torch.as_tensor(indices)
        image_index = self.data.caption_image[captions]
        images = self.raw_images.raw(image_index) if self.raw_images is not None else self.data.images.batch(image_index)
        return images, self.data.tokens[captions]

    def normalize_on_device(self, images: torch.Tensor) -> torch.Tensor:
        return self.raw_images.normalize(images) if self.raw_images is not None else images


def keep_batch(batch):
    """collate_fn for PairDataset: batches arrive already stacked."""
    return batch


class ResidentPairs:
    """In-memory pairs copied once to the training device, each batch gathered there: the same
    batches in the same order as a DataLoader over PairDataset with the same sampler, with no
    loader processes and no per-step host-to-device copy."""

    def __init__(self, data: ImageTextSet, sampler, batch_size: int, device: torch.device):
        self.images, self.sampler, self.batch_size, self.device = in_memory(data), sampler, batch_size, device
        self.pixels = self.images.pixels.to(device)
        self.tokens, self.owners = data.tokens.to(device), data.caption_image.to(device)

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
        self.images, self.sampler, self.batch_size, self.device, self.depth = in_memory(data), sampler, batch_size, device, depth
        self.tokens, self.owners = data.tokens, data.caption_image

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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


def in_memory(data: ImageTextSet) -> TensorImages:
    """The set's images as held in memory; the resident and streamed pipelines read nothing else."""
    if not isinstance(data.images, TensorImages):
        raise TypeError(f"in-memory images expected, got {type(data.images).__name__}")
    return data.images


class LoadedPairs:
    """Batches from a DataLoader over PairDataset, moved to the device (normalized there if raw)."""

    def __init__(self, loader, device: torch.device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        pairs = self.loader.dataset
        for images, tokens in self.loader:
            yield pairs.normalize_on_device(images.to(self.device, non_blocking=True)), tokens.to(self.device, non_blocking=True)


def training_batches(
    data: ImageTextSet, sampler, batch_size: int, device: torch.device, pipeline: str, loader_workers: int
) -> ResidentPairs | StreamedPairs | LoadedPairs:
    """The batches of one worker's share of an epoch, on `device`, by the spec's `data.pipeline`."""
    images_in_memory = isinstance(data.images, TensorImages)
    on_gpu = device.type == "cuda"
    if pipeline == "auto":
        pipeline = "resident" if fits_on_device(data, device) else "streamed" if images_in_memory else "loader"
    if pipeline in ("resident", "streamed") and not images_in_memory:
        raise ValueError(f"data.pipeline: {pipeline} needs images in memory (image files with decoded_cache on)")
    if pipeline == "resident":
        # No loader processes, pinning thread or per-step copy: each batch is gathered where it is used.
        return ResidentPairs(data, sampler, batch_size, device)
    if pipeline == "streamed" and on_gpu:
        return StreamedPairs(data, sampler, batch_size, device)
    # In-memory images travel as uint8 from pinned memory and are normalized on the GPU.
    loader = DataLoader(
        PairDataset(data, raw_pixels=on_gpu),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        collate_fn=keep_batch,
        num_workers=loader_workers,
        persistent_workers=loader_workers > 0,
        pin_memory=on_gpu,
    )
    return LoadedPairs(loader, device)


def fits_on_device(data: ImageTextSet, device: torch.device, fraction: float = 0.25) -> bool:
    """In-memory images small enough to keep on the GPU (uint8, at most `fraction` of its free memory)."""
    if device.type != "cuda" or not isinstance(data.images, TensorImages):
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return data.images.pixels.nbytes + data.tokens.nbytes < fraction * free
