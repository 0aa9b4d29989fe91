"""Labelled image sets from local files (zero-shot and linear probe; never downloaded).

- imagefolder: root/<class>/<image>
- cifar10: torchvision's python layout, root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
- fashion-mnist: IDX files (optionally gzipped), as Debian's dataset-fashion-mnist installs them
- digits: scikit-learn's bundled 8×8 digits
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from raygap.data.index import FileImages, FileSet, template_captions

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
FASHION_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def read_imagefolder(root: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(image paths, labels, class names) with classes in sorted folder order."""
    classes = sorted(p.name for p in Path(root).iterdir() if p.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        for image in sorted((Path(root) / name).iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(str(image))
                labels.append(label)
    if not paths:
        raise ValueError(f"{root}: no images found in class folders (expected {root}/<class>/<image>)")
    return paths, np.array(labels), classes


def read_imagefolder_set(source) -> FileSet:
    """An `imagefolder` source's index, each image captioned by its class in the template."""
    paths, labels, classes = read_imagefolder(source.root)
    paths, labels = paths[: source.limit], labels[: source.limit]
    return FileSet(FileImages(paths), template_captions(source.template, labels, classes), np.arange(len(paths)), labels, classes)


def read_cifar10(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 [n, 3, 32, 32], labels, class names)."""
    folder = Path(root) / "cifar-10-batches-py"
    if not folder.is_dir():
        folder = Path(root)
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in [*names, "batches.meta"] if not (folder / n).is_file()]
    if missing:
        raise ValueError(
            f"{folder}: CIFAR-10 files missing: {missing} (raygap never downloads; place torchvision's cifar-10-batches-py there)"
        )
    pixels, labels = [], []
    for name in names:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        pixels.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[b"labels"])
    with open(folder / "batches.meta", "rb") as handle:
        classes = [name.decode() for name in pickle.load(handle, encoding="bytes")[b"label_names"]]
    return np.concatenate(pixels), np.array(labels), classes


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def read_fashion_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 [n, 1, 28, 28], labels, class names)."""
    prefix = "train" if split == "train" else "t10k"
    found: dict[str, Path] = {}
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [Path(root) / f"{prefix}-{kind}{suffix}" for suffix in ("", ".gz")]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise ValueError(f"{root}: {prefix}-{kind}[.gz] not found (Debian: apt-get install dataset-fashion-mnist)")
        found[kind] = file
    images, labels = _read_idx(found["images-idx3-ubyte"]), _read_idx(found["labels-idx1-ubyte"])
    if len(images) != len(labels):
        raise ValueError(f"{root}: {len(images)} images but {len(labels)} labels")
    return images[:, None], labels.astype(np.int64), list(FASHION_CLASSES)


def read_digits(root: None, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 [n, 1, 8, 8], labels, class names); every 5th image is the test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    is_test = np.arange(len(digits.target)) % 5 == 0
    keep = is_test if split == "test" else ~is_test
    pixels = np.round(digits.images[keep] * (255 / 16)).astype(np.uint8)[:, None]
    return pixels, digits.target[keep].astype(np.int64), [str(d) for d in range(10)]
