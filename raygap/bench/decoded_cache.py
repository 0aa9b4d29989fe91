"""4b. Image files: an epoch decoding every JPEG against an epoch over the one-time decoded copy."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch.utils.data import RandomSampler

from raygap.bench.common import Stopwatch

if TYPE_CHECKING:
    from open_clip.transform import PreprocessCfg


@dataclass(frozen=True)
class DataInputs:
    """What loading a source reads of a model (raygap.data.sets.ModelInputs), with no model: only the data path is timed."""

    tokenize: Callable[[list[str]], torch.Tensor]
    preprocess: PreprocessCfg
    image_size: int


def write_photos(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` JPEGs of COCO's typical size (640×480, quality 90: shapes on a background, blurred
    by the upscale, with sensor-like noise) and a files table naming them."""
    import numpy as np
    from PIL import Image

    from raygap.data import synthetic

    rng = np.random.default_rng(seed)
    pixels = synthetic.generate(count, 160, seed=seed)[0]
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(pixels):
        photo = np.asarray(Image.fromarray(image.transpose(1, 2, 0)).resize((640, 480), Image.Resampling.BICUBIC), dtype=np.int16)
        photo = np.clip(photo + rng.integers(-8, 9, photo.shape), 0, 255).astype(np.uint8)
        Image.fromarray(photo).save(folder / f"{i:06d}.jpg", quality=90)
    table = folder / "pairs.csv"
    table.write_text("filepath,title\n" + "".join(f"{i:06d}.jpg,photo {i}\n" for i in range(count)))
    return table


def epoch_samples_per_s(data, batch: int, device: torch.device, workers: int) -> float:
    """samples/s of the second epoch through the training DataLoader (its processes already started)."""
    from raygap.data import training_batches

    loaded = training_batches(data, RandomSampler(data), batch, device, "loader", workers)
    for _ in loaded:
        pass
    samples = 0
    with Stopwatch(device) as clock:
        for images, _ in loaded:
            samples += len(images)
    return samples / clock.seconds


def decoded_cache_speedup(count: int, batch: int, device: torch.device, echo, image_size: int = 224) -> dict:
    """An epoch over JPEG files (decoded and cropped by open_clip's training transform every epoch)
    against an epoch over raygap's one-time decoded copy (crops drawn on the training device), at
    the paper's 224 px; the copy's one-time build is timed too."""
    from open_clip.transform import PreprocessCfg

    from raygap.config import FilesSource
    from raygap.data import load_source

    workers = min(8, len(os.sched_getaffinity(0)))
    bundle = DataInputs(
        tokenize=lambda texts: torch.zeros(len(texts), 8, dtype=torch.long),
        preprocess=PreprocessCfg(size=image_size),
        image_size=image_size,
    )
    with tempfile.TemporaryDirectory() as scratch:
        echo(f"  writing {count} 640×480 JPEGs")
        table = write_photos(Path(scratch, "photos"), count)
        files_rate = epoch_samples_per_s(
            load_source(FilesSource(table=table, decoded_cache=False), bundle, train=True), batch, device, workers
        )
        started = time.perf_counter()
        cached = load_source(FilesSource(table=table, decoded_cache=Path(scratch, "cache")), bundle, train=True)
        build_seconds = time.perf_counter() - started
        cached_rate = epoch_samples_per_s(cached, batch, device, workers)
    epoch_saving = count / files_rate - count / cached_rate
    row = {
        "images": count,
        "image_size": image_size,
        "loader_workers": workers,
        "jpeg_samples_per_s": files_rate,
        "cached_samples_per_s": cached_rate,
        "cache_speedup": cached_rate / files_rate,
        "cache_build_seconds": build_seconds,
        "cache_pays_back_after_epochs": build_seconds / epoch_saving,
    }
    echo(
        f"  JPEG files {files_rate:.0f} samples/s, decoded copy {cached_rate:.0f} samples/s ({row['cache_speedup']:.1f}×); "
        f"built once in {build_seconds:.1f} s, repaid after {row['cache_pays_back_after_epochs']:.2f} epochs"
    )
    return row
