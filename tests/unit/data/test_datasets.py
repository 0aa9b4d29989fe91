"""Loaders for local datasets, on small files these tests create."""

import gzip
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from raygap.clip.model import build_model
from raygap.config import Cifar10Source, CocoSource, FashionMnistSource, ImageFolderSource
from raygap.data import PairDataset, load_source


@pytest.fixture(scope="module")
def bundle():
    return build_model("tiny-vit")


def save_image(path, value=100, size=(40, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)


def test_coco_official_groups_five_captions(tmp_path, bundle):
    images = tmp_path / "val2017"
    for i in (7, 3):
        save_image(images / f"{i:012d}.jpg", value=10 * i)
    annotations = [{"image_id": 3 if k % 2 else 7, "id": k, "caption": f"caption {k} "} for k in range(10)]
    (tmp_path / "captions_val2017.json").write_text(
        json.dumps(
            {"images": [{"id": 7, "file_name": "000000000007.jpg"}, {"id": 3, "file_name": "000000000003.jpg"}], "annotations": annotations}
        )
    )
    data = load_source(CocoSource(annotations=tmp_path / "captions_val2017.json", images=images), bundle, train=False)
    assert len(data.images) == 2 and len(data) == 10
    assert data.caption_image.tolist() == [0] * 5 + [1] * 5  # five captions per image, grouped
    batch, tokens = PairDataset(data).__getitems__([0, 9])
    assert batch.shape == (2, 3, 32, 32) and tokens.shape == (2, 24)
    assert not torch.equal(batch[0], batch[1])  # caption 9 belongs to the other image


def test_coco_karpathy_split(tmp_path, bundle):
    for folder, name in (("val2014", "a.jpg"), ("train2014", "b.jpg"), ("val2014", "c.jpg")):
        save_image(tmp_path / folder / name)
    entries = [
        {"filepath": "val2014", "filename": "a.jpg", "split": "test", "sentences": [{"raw": "one"}, {"raw": "two"}]},
        {"filepath": "train2014", "filename": "b.jpg", "split": "train", "sentences": [{"raw": "three"}]},
        {"filepath": "val2014", "filename": "c.jpg", "split": "test", "sentences": [{"raw": "four"}]},
    ]
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": entries}))
    source = CocoSource(annotations=tmp_path / "dataset_coco.json", images=tmp_path, split="test")
    data = load_source(source, bundle, train=False)
    assert len(data.images) == 2 and data.caption_image.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match=r"dataset_coco.json: Karpathy's split file needs a split"):
        load_source(CocoSource(annotations=tmp_path / "dataset_coco.json", images=tmp_path), bundle, train=False)


def test_coco_missing_image_is_named(tmp_path, bundle):
    (tmp_path / "images").mkdir()
    (tmp_path / "c.json").write_text(
        json.dumps({"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [{"image_id": 1, "caption": "c"}]})
    )
    with pytest.raises(ValueError, match=r"1 of 1 COCO images not found, e\.g\. .*x\.jpg"):
        load_source(CocoSource(annotations=tmp_path / "c.json", images=tmp_path / "images"), bundle, train=False)


def test_imagefolder(tmp_path, bundle):
    for cls, n in (("cat", 2), ("dog", 3)):
        for i in range(n):
            save_image(tmp_path / cls / f"{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_source(ImageFolderSource(root=tmp_path, template="a {label}."), bundle, train=False)
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 0, 1, 1, 1]
    assert torch.equal(data.tokens[0], bundle.tokenize(["a cat."])[0])
    assert len(load_source(ImageFolderSource(root=tmp_path, limit=3), bundle, train=False).images) == 3


def test_cifar10_python_batches(tmp_path, bundle):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    pixels = np.arange(4 * 3072, dtype=np.uint32).astype(np.uint8).reshape(4, 3072)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": pixels, b"labels": [3, 1, 0, 3]}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, handle)
    data = load_source(Cifar10Source(root=tmp_path), bundle, train=False)
    assert data.labels.tolist() == [3, 1, 0, 3] and data.class_names[3] == "c3"
    # 32 px images at the tiny model's 32 px pass through unchanged (then normalized)
    assert torch.equal(data.images.pixels[1], torch.from_numpy(pixels[1].reshape(3, 32, 32)))
    with pytest.raises(ValueError, match=r"CIFAR-10 files missing: \['data_batch_1'"):
        load_source(Cifar10Source(root=tmp_path, split="train"), bundle, train=False)


def write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_idx(tmp_path, bundle, gz):
    suffix = ".gz" if gz else ""
    images = np.zeros((3, 28, 28), np.uint8)
    images[1] = 255
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", np.array([9, 0, 5]), gz)
    data = load_source(FashionMnistSource(root=tmp_path), bundle, train=False)
    assert data.labels.tolist() == [9, 0, 5] and data.class_names[9] == "ankle boot"
    assert data.images.pixels.shape == (3, 3, 32, 32)  # grey 28 px → RGB 32 px
    assert int(data.images.pixels[1].min()) == 255 and int(data.images.pixels[0].max()) == 0


def test_fashion_mnist_absent(tmp_path, bundle):
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\[\.gz\] not found \(Debian: apt-get install dataset-fashion-mnist\)"):
        load_source(FashionMnistSource(root=tmp_path), bundle, train=False)


def write_shard(path, samples):
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for key, value, caption in samples:
            image = value if isinstance(value, bytes) else png_bytes(value)  # bytes: a broken image
            files = [(f"{key}.png", image)] + ([(f"{key}.txt", caption.encode())] if caption else [])
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def png_bytes(value):
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_webdataset_shards_read_in_place(tmp_path, bundle):
    from raygap.config import WebDatasetSource

    write_shard(tmp_path / "000.tar", [("a", 10, "dark square"), ("b", 200, "light square"), ("c", 90, None)])
    write_shard(tmp_path / "001.tar", [("d", 120, "grey square")])
    data = load_source(WebDatasetSource(shards=str(tmp_path / "{000..001}.tar")), bundle, train=False)
    assert len(data) == 3  # sample c has no caption: skipped
    images, tokens = PairDataset(data).__getitems__([0, 1, 2])
    assert images.shape == (3, 3, 32, 32)
    assert images[0].mean() < images[2].mean() < images[1].mean()  # the right pixels for each caption
    assert torch.equal(tokens[1], bundle.tokenize(["light square"])[0])
    glob_data = load_source(WebDatasetSource(shards=str(tmp_path / "*.tar"), limit=2), bundle, train=False)
    assert len(glob_data) == 2
    with pytest.raises(ValueError, match=r"1 shard\(s\) not found, e\.g\. .*002\.tar"):
        load_source(WebDatasetSource(shards=str(tmp_path / "{001..002}.tar")), bundle, train=False)


def test_digits_from_scikit_learn(bundle):
    from raygap.config import DigitsSource

    test = load_source(DigitsSource(split="test"), bundle, train=False)
    train = load_source(DigitsSource(split="train"), bundle, train=False)
    assert len(test.images) == 360 and len(train.images) == 1437  # 1,797 split 1:4
    assert test.class_names == [str(d) for d in range(10)] and set(test.labels.tolist()) == set(range(10))
    assert torch.equal(test.tokens[0], bundle.tokenize([f"a photo of the number {test.labels[0].item()}."])[0])
    assert test.images.pixels.shape[1:] == (3, 32, 32) and int(test.images.pixels.max()) > 200


def test_unreadable_images_in_coco_webdataset_and_imagefolder_follow_the_policy(tmp_path, bundle):
    """bad_images works for every file-backed source: fail names the file; skip drops the image
    and its captions and keeps each remaining caption with its own image."""
    from raygap.config import WebDatasetSource

    images = tmp_path / "coco"
    save_image(images / "1.jpg", value=30)
    (images / "2.jpg").write_bytes(b"not a jpeg")
    save_image(images / "3.jpg", value=200)
    annotations = [{"image_id": k % 3 + 1, "id": k, "caption": f"caption of {k % 3 + 1}"} for k in range(6)]
    entries = [{"id": i, "file_name": f"{i}.jpg"} for i in (1, 2, 3)]
    (tmp_path / "c.json").write_text(json.dumps({"images": entries, "annotations": annotations}))
    with pytest.raises(ValueError, match=r"coco: 1 image file\(s\) cannot be read as images, e\.g\. .*2\.jpg; set bad_images: skip"):
        load_source(CocoSource(annotations=tmp_path / "c.json", images=images), bundle, train=False)
    coco = load_source(CocoSource(annotations=tmp_path / "c.json", images=images, bad_images="skip"), bundle, train=False)
    assert len(coco.images) == 2 and len(coco) == 4 and coco.caption_image.tolist() == [0, 0, 1, 1]
    assert torch.equal(coco.tokens[2], bundle.tokenize(["caption of 3"])[0])

    write_shard(tmp_path / "000.tar", [("a", 10, "dark"), ("b", b"\x89PNG broken", "broken"), ("c", 200, "light")])
    with pytest.raises(ValueError, match=r"000\.tar: 1 image file\(s\) cannot be read as images, e\.g\. .*000\.tar@"):
        load_source(WebDatasetSource(shards=str(tmp_path / "000.tar")), bundle, train=False)
    shards = load_source(WebDatasetSource(shards=str(tmp_path / "000.tar"), bad_images="skip"), bundle, train=False)
    assert len(shards) == 2 and torch.equal(shards.tokens[1], bundle.tokenize(["light"])[0])

    for cls in ("cat", "dog"):
        save_image(tmp_path / "folder" / cls / "0.png")
    (tmp_path / "folder" / "cat" / "1.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"folder: 1 image file\(s\) cannot be read as images, e\.g\. .*cat/1\.png"):
        load_source(ImageFolderSource(root=tmp_path / "folder"), bundle, train=False)
    folder = load_source(ImageFolderSource(root=tmp_path / "folder", bad_images="skip"), bundle, train=False)
    assert folder.labels.tolist() == [0, 1] and folder.class_names == ["cat", "dog"]
