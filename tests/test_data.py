import numpy as np
import pytest
import torch
from PIL import Image

from raygap.data import ImageTextSet, PairDataset, TensorImages, keep_batch, load_source, synthetic
from raygap.model import build_model
from raygap.spec import FilesSource, SyntheticSource


@pytest.fixture(scope="module")
def bundle():
    return build_model("tiny-vit")


def test_synthetic_is_deterministic_by_seed():
    a = synthetic.generate(64, 32, seed=5, captions_per_image=2)
    b = synthetic.generate(64, 32, seed=5, captions_per_image=2)
    c = synthetic.generate(64, 32, seed=6, captions_per_image=2)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])
    images, captions, caption_image, labels = a
    assert images.shape == (64, 3, 32, 32) and images.dtype == np.uint8
    assert len(captions) == 128 and caption_image.tolist() == [i // 2 for i in range(128)]
    assert set(labels.tolist()) <= set(range(len(synthetic.COLORS)))


def test_captions_describe_the_main_object():
    _, captions, caption_image, shapes = synthetic.generate(200, 32, seed=0, max_objects=1, label="shape")
    _, _, _, colours = synthetic.generate(200, 32, seed=0, max_objects=1, label="color")
    colour_names = list(synthetic.COLORS)
    for caption, image in zip(captions, caption_image):
        shape = synthetic.SHAPES[shapes[image]]
        assert any(word in caption for word in synthetic.SHAPE_WORDS[shape]), caption
        assert colour_names[colours[image]] in caption, caption
    assert synthetic.class_names("color")[0] == "red shape" and synthetic.class_names("shape")[0] == "circle"


def test_caption_noise_replaces_that_fraction_with_other_images_captions():
    clean = synthetic.generate(2000, 16, seed=1)
    noisy = synthetic.generate(2000, 16, seed=1, caption_noise=0.3)
    assert np.array_equal(clean[0], noisy[0])  # images are untouched
    changed = np.array([a != b for a, b in zip(clean[1], noisy[1])])
    assert changed.mean() == pytest.approx(0.3, abs=0.04)
    assert set(noisy[1]) <= set(clean[1])  # every noisy caption is some image's real caption


def test_images_show_the_objects_colour_and_background():
    images, _, _, _ = synthetic.generate(50, 32, seed=2, max_objects=1)
    for image in images:
        colours = {tuple(px) for px in image.reshape(3, -1).T}
        assert 2 <= len(colours) <= 2  # one background and one object colour


def test_synthetic_source_is_normalized_for_the_model(bundle):
    data = load_source(SyntheticSource(size=16, seed=0, captions_per_image=3), bundle, train=True)
    assert len(data) == 48 and len(data.images) == 16
    images, tokens = PairDataset(data).__getitems__([0, 5, 47])
    assert images.shape == (3, 3, 32, 32) and tokens.shape == (3, 24)
    assert images.dtype == torch.float32 and images.min() < -1 and images.max() > 1  # mean/std applied
    assert data.first_captions().tolist() == [3 * i for i in range(16)]
    # The GPU path: uint8 pixels in the batch, normalized by the consumer to the same tensor.
    raw = PairDataset(data, raw_pixels=True)
    pixels, raw_tokens = raw.__getitems__([0, 5, 47])
    assert pixels.dtype == torch.uint8 and torch.equal(raw_tokens, tokens)
    assert torch.equal(raw.normalize_on_device(pixels), images)
    by_hand = (pixels[1, 0, 0, 0].item() / 255 - bundle.preprocess.mean[0]) / bundle.preprocess.std[0]
    assert images[1, 0, 0, 0].item() == pytest.approx(by_hand, rel=1e-6)


def test_first_captions_with_unordered_owners():
    data = ImageTextSet(images=TensorImages(np.zeros((3, 3, 2, 2), np.uint8), (0,) * 3, (1,) * 3), tokens=torch.zeros(5, 4), caption_image=torch.tensor([2, 0, 2, 1, 0]))
    assert data.first_captions().tolist() == [1, 3, 0]


def make_table(tmp_path, rows, header="filepath,title,label"):
    for name in {r.split(",")[0] for r in rows}:
        Image.fromarray(np.full((40, 48, 3), 100, np.uint8)).save(tmp_path / name)
    table = tmp_path / "pairs.csv"
    table.write_text("\n".join([header, *rows]) + "\n")
    return table


def test_files_source_groups_captions_per_image(tmp_path, bundle):
    table = make_table(tmp_path, ["a.png,a grey square,box", "b.png,another one,ball", "a.png,grey again,box", "c.png,third,box"])
    data = load_source(FilesSource(table=table, label_column="label"), bundle, train=False)
    assert len(data.images) == 3 and len(data) == 4
    assert data.caption_image.tolist() == [0, 1, 0, 2]
    assert data.class_names == ["ball", "box"] and data.labels.tolist() == [1, 0, 1]
    images, _ = PairDataset(data).__getitems__([0, 1])
    assert images.shape == (2, 3, 32, 32)  # open_clip's transform resized to the model's size


def test_files_source_errors_name_table_and_column(tmp_path, bundle):
    table = make_table(tmp_path, ["a.png,x,y"], header="path,caption,label")
    with pytest.raises(ValueError, match=r"pairs.csv: missing column\(s\) \['filepath', 'title'\]"):
        load_source(FilesSource(table=table), bundle, train=False)
    (tmp_path / "a.png").unlink()
    source = FilesSource(table=table, image_column="path", caption_column="caption")
    with pytest.raises(ValueError, match=r"pairs.csv: 1 image file\(s\) not found"):
        load_source(source, bundle, train=False)


def test_resident_pairs_give_the_loaders_batches_in_its_order(bundle):
    """Images kept on the training device yield exactly the DataLoader's batches (normalized)."""
    from torch.utils.data import DataLoader, DistributedSampler

    from raygap.data import LoadedPairs, ResidentPairs

    data = load_source(SyntheticSource(size=40, seed=4, captions_per_image=2), bundle, train=True)
    pairs = PairDataset(data, raw_pixels=True)
    sampler = DistributedSampler(pairs, num_replicas=1, rank=0, shuffle=True, seed=3, drop_last=True)
    loader = LoadedPairs(DataLoader(pairs, batch_size=16, sampler=sampler, drop_last=True, collate_fn=keep_batch), torch.device("cpu"))
    resident = ResidentPairs(data, sampler, 16, torch.device("cpu"))
    assert len(resident) == len(loader) == 5  # 80 captions, last partial batch dropped
    firsts = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        got, want = list(resident), list(loader)
        assert len(got) == 5
        for (images, tokens), (want_images, want_tokens) in zip(got, want):
            assert torch.equal(images, want_images) and torch.equal(tokens, want_tokens)
        firsts.append(got[0][0])
    assert not torch.equal(firsts[0], firsts[1])  # each epoch reshuffles, in both


def test_unreadable_images_are_skipped_and_counted_when_the_spec_says_so(tmp_path, bundle):
    table = make_table(tmp_path, ["a.png,a grey square,box", "b.png,broken,ball", "a.png,grey again,box", "c.png,third,box"])
    (tmp_path / "b.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match=r"pairs.csv: 1 image file\(s\) cannot be read as images, e.g. .*b.png; set bad_images: skip"):
        load_source(FilesSource(table=table), bundle, train=False)
    data = load_source(FilesSource(table=table, bad_images="skip", label_column="label"), bundle, train=False)
    assert len(data.images) == 2 and len(data) == 3 and data.caption_image.tolist() == [0, 0, 1]
    assert data.class_names == ["box"]  # the skipped image's class went with it
