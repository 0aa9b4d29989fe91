"""A one-time decoded copy of a file-backed image set at the model's resolution.

Decoding JPEGs is what every epoch over image files costs (COCO: 118,287 JPEGs of about 640×480
per epoch). The copy holds each image as open_clip's evaluation transform leaves it before
ToTensor (shortest side resized to the model's size, centre-cropped) as uint8 [n, 3, S, S] in one
.npy file that every trial memory-maps. Evaluation sets read from it give exactly the tensors
that decoding the files gives; training sets draw their random crops from it on the training
device. The file's name is a hash of the image list, the files' sizes and modification times and
the preprocessing: a changed dataset or model resolution gets a new copy, never a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from raygap import local_files
from raygap.data.index import FileImages

VERSION = 1  # part of the hash: bump when the decoding changes


SPARE_BYTES = 1 << 30  # left free on the cache's disk after a copy is built


def default_folder() -> Path:
    """Where `decoded_cache: true` (the default) keeps its copies: $RAYGAP_CACHE_DIR, else
    $XDG_CACHE_HOME/raygap/decoded, else ~/.cache/raygap/decoded. On a cluster each node has its own."""
    if os.environ.get("RAYGAP_CACHE_DIR"):
        return Path(os.environ["RAYGAP_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "raygap", "decoded")


def folder_for(setting: Path | bool) -> Path | None:
    """A source's `decoded_cache` setting → the folder of its copy, or None to decode every epoch."""
    if setting is False:
        return None
    return default_folder() if setting is True else Path(setting)


def unusable(setting: Path | bool) -> str | None:
    """Why the folder of a `decoded_cache` setting could not hold a copy, or None; creates nothing."""
    folder = folder_for(setting)
    why = local_files.unwritable(folder) if folder is not None else None
    return f"{why} (the decoded copy's folder is {folder}); {_OTHER_FOLDER}" if why else None


def decoded_pixels(store: FileImages, preprocess, folder: Path, threads: int | None = None, echo=None) -> np.ndarray:
    """The store's images decoded as uint8 [n, 3, S, S], memory-mapped; built on first use.

    Processes that ask at once (trials starting together) wait on a lock while one builds it; the
    file appears under its final name only when complete, so a kill mid-build leaves nothing
    that a later run would read. A disk without room for the copy is an error before decoding.
    """
    size = preprocess.size if isinstance(preprocess.size, int) else preprocess.size[0]
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"decoded_cache: cannot make the folder for the decoded copy ({error}); {_OTHER_FOLDER}") from None
    path = folder / f"decoded-{fingerprint(store, preprocess)[:20]}-{len(store)}x{size}px.npy"
    if not path.exists():
        with _locked(path.with_suffix(".lock")):
            if not path.exists():
                _check_room(folder, len(store) * 3 * size * size)
                _build(store, preprocess, size, path, threads or len(os.sched_getaffinity(0)), echo or _stderr)
    pixels = np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, never written back
    if pixels.shape != (len(store), 3, size, size):
        raise ValueError(f"{path}: holds {pixels.shape}, expected {(len(store), 3, size, size)}; delete it to rebuild")
    return pixels


def fingerprint(store: FileImages, preprocess) -> str:
    digest = hashlib.sha256()
    settings = {
        "version": VERSION,
        "size": preprocess.size,
        "interpolation": preprocess.interpolation,
        "resize_mode": preprocess.resize_mode,
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update("\n".join(store.paths).encode())
    for file in store.files():
        stat = os.stat(file)
        digest.update(f"{file}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def decoder(preprocess):
    """open_clip's evaluation transform without its last two steps (to tensor, normalize): PIL in,
    PIL at the model's size out."""
    from open_clip.transform import image_transform_v2

    steps = image_transform_v2(preprocess, is_train=False).transforms
    if [type(step).__name__ for step in steps[-2:]] != ["MaybeToTensor", "Normalize"]:
        raise RuntimeError(f"open_clip's evaluation transform changed shape: {steps}")
    head = steps[:-2]

    def decode(image):
        image = image.convert("RGB")
        for step in head:
            image = step(image)
        return image

    return decode


def _build(store: FileImages, preprocess, size: int, path: Path, threads: int, echo) -> None:
    decode = decoder(preprocess)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(store), 3, size, size))

    def decode_one(index: int) -> None:
        try:
            with store.open(index) as image:
                out[index] = np.asarray(decode(image)).transpose(2, 0, 1)
        except Exception as error:
            raise ValueError(f"{store.paths[index]}: cannot be decoded: {error}") from None

    started = last = time.perf_counter()
    echo(f"decoding {len(store)} images once at {size} px into {path} ({threads} threads)")
    try:
        with ThreadPoolExecutor(threads) as pool:  # PIL decodes and resizes without the GIL
            for done, _ in enumerate(pool.map(decode_one, range(len(store))), 1):
                now = time.perf_counter()
                if now - last > 10 or done == len(store):
                    rate = done / (now - started)
                    echo(f"  {done}/{len(store)} decoded, {rate:.0f} images/s, {(len(store) - done) / rate:.0f} s left")
                    last = now
        out.flush()  # then renamed: the mapping can stay open, it is the same file
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


_OTHER_FOLDER = "set the source's decoded_cache to another folder (or RAYGAP_CACHE_DIR), or to off to decode the files every epoch"


def _check_room(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed + SPARE_BYTES > free:
        raise OSError(
            f"decoded_cache: the decoded copy needs {needed / 1e9:.1f} GB in {folder} and {SPARE_BYTES / 2**30:.0f} GiB left free "
            f"after it, but the disk has {free / 1e9:.1f} GB free; {_OTHER_FOLDER}"
        )


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
