from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from raygap.clip.model import build_model
from raygap.config import FilesSource, SyntheticSource
from raygap.data import ImageTextSet, PairDataset, TensorImages, keep_batch, load_source, read_file_source, synthetic


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
    data = ImageTextSet(
        images=TensorImages(np.zeros((3, 3, 2, 2), np.uint8), (0,) * 3, (1,) * 3),
        tokens=torch.zeros(5, 4),
        caption_image=torch.tensor([2, 0, 2, 1, 0]),
    )
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


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "latin.csv",
            b"filepath,title\na.png,caf\xe9\n",
            r"latin.csv: cannot read the table \(invalid utf-8 sequence\); expected UTF-8 text",
        ),
        (
            "quote.csv",
            b'filepath,title\na.png,"unterminated\n',
            r"quote.csv: cannot read the table \(.*\); expected UTF-8 text with a header row",
        ),
        ("garbage.parquet", b"not parquet", r"garbage.parquet: cannot read the table \(.*\); expected a Parquet file"),
        (
            "caption.csv",
            b"filepath,title\na.png,\na.png,x\na.png,  \n",
            r"caption.csv: column 'title' is empty in 2 data row\(s\) \(1, 3\)",
        ),
        ("path.csv", b"filepath,title\n,hello\n", r"path.csv: column 'filepath' is empty in 1 data row\(s\) \(1\)"),
    ],
)
def test_a_table_polars_cannot_read_or_with_empty_cells_names_the_file_and_rows(tmp_path, name, content, message):
    make_table(tmp_path, ["a.png,x,y"])  # writes a.png
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_file_source(FilesSource(table=tmp_path / name))


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


def test_decoded_cache_gives_the_tensors_of_decoding_the_files_and_is_built_once(tmp_path, save_jpegs, bundle, capsys):
    table = save_jpegs(tmp_path / "data", [(50, 70), (64, 40), (32, 32), (90, 45)])
    cache = tmp_path / "cache"
    every_time = load_source(FilesSource(table=table, decoded_cache=False), bundle, train=False)
    cached = load_source(FilesSource(table=table, decoded_cache=cache), bundle, train=False)
    assert isinstance(cached.images, TensorImages) and cached.images.pixels.shape == (4, 3, 32, 32)
    assert "decoding 4 images once at 32 px" in capsys.readouterr().err
    indices = list(range(4))
    assert torch.allclose(cached.images.batch(indices), every_time.images.batch(indices), atol=1e-6)
    (built,) = cache.glob("*.npy")
    stamp = built.stat().st_mtime_ns

    again = load_source(FilesSource(table=table, decoded_cache=cache), bundle, train=False)
    assert "decoding" not in capsys.readouterr().err and built.stat().st_mtime_ns == stamp
    assert torch.equal(again.images.pixels, cached.images.pixels)

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "data" / "2.jpg")  # the dataset changes
    changed = load_source(FilesSource(table=table, decoded_cache=cache), bundle, train=False)
    assert len(list(cache.glob("*.npy"))) == 2 and int(changed.images.pixels[2].max()) == 0
    assert torch.equal(changed.images.pixels[[0, 1, 3]], cached.images.pixels[[0, 1, 3]])
    assert not list(cache.glob("*.partial"))


def test_a_decoded_cache_that_fails_half_way_leaves_nothing(tmp_path, save_jpegs, bundle):
    table = save_jpegs(tmp_path / "data", [(40, 40)] * 3)
    whole = (tmp_path / "data" / "1.jpg").read_bytes()
    (tmp_path / "data" / "1.jpg").write_bytes(whole[: len(whole) // 2])  # a header PIL accepts, pixels it cannot finish
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"1\.jpg: cannot be decoded"):
        load_source(FilesSource(table=table, decoded_cache=cache), bundle, train=False)
    assert [p.suffix for p in cache.iterdir()] == [".lock"]  # no .npy, no partial file


def test_image_files_use_the_per_user_decoded_copy_unless_it_is_off(tmp_path, save_jpegs, bundle, monkeypatch):
    from raygap.data import cache

    table = save_jpegs(tmp_path / "data", [(40, 56)] * 3)
    monkeypatch.setenv("RAYGAP_CACHE_DIR", str(tmp_path / "mine"))
    data = load_source(FilesSource(table=table), bundle, train=False)  # the default: true
    assert isinstance(data.images, TensorImages) and len(list((tmp_path / "mine").glob("*.npy"))) == 1
    monkeypatch.delenv("RAYGAP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_folder() == tmp_path / "xdg" / "raygap" / "decoded"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.default_folder() == Path.home() / ".cache" / "raygap" / "decoded"
    for off in (False, "off", "OFF", "false"):
        source = FilesSource(table=table, decoded_cache=off)
        assert source.decoded_cache is False and cache.folder_for(source.decoded_cache) is None
    assert not isinstance(load_source(FilesSource(table=table, decoded_cache="off"), bundle, train=False).images, TensorImages)
    assert FilesSource(table=table, decoded_cache=str(tmp_path / "c")).decoded_cache == tmp_path / "c"
    assert FilesSource(table=table, decoded_cache=None).decoded_cache is False  # null kept its meaning
    assert FilesSource(table=table, decoded_cache="~/c").decoded_cache == Path.home() / "c"
    for word in ("flase", "cache", "./cache"):  # a typo or a relative folder is never a folder
        with pytest.raises(ValueError, match=f"decoded_cache\n.*expected true, off or an absolute folder, got '{word}'"):
            FilesSource(table=table, decoded_cache=word)


def test_a_decoded_copy_without_room_on_its_disk_is_an_error_before_decoding(tmp_path, save_jpegs, bundle, monkeypatch):
    from raygap.data import cache

    table = save_jpegs(tmp_path / "data", [(40, 40)] * 2)
    monkeypatch.setattr(cache, "SPARE_BYTES", 1 << 62)  # more than any disk has free
    with pytest.raises(
        OSError,
        match=r"decoded_cache: the decoded copy needs 0.0 GB in .*/cache and .* GiB left free after it, "
        r"but the disk has .* GB free; .* or to off",
    ):
        load_source(FilesSource(table=table, decoded_cache=tmp_path / "cache"), bundle, train=False)
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".lock"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(
        OSError, match=r"decoded_cache: cannot make the folder for the decoded copy \(.*a-file/copies.*\); set the source's"
    ):
        load_source(FilesSource(table=table, decoded_cache=tmp_path / "a-file" / "copies"), bundle, train=False)


def test_training_reads_random_crops_of_the_decoded_copy(tmp_path, save_jpegs, bundle):
    table = save_jpegs(tmp_path / "data", [(48, 64)] * 6)
    train = load_source(FilesSource(table=table, decoded_cache=tmp_path / "cache"), bundle, train=True)
    test = load_source(FilesSource(table=table, decoded_cache=tmp_path / "cache"), bundle, train=False)
    assert train.images.crop_scale == (0.9, 1.0) and test.images.crop_scale is None
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # one copy serves both
    torch.manual_seed(0)
    first = train.images.batch(list(range(6)))
    torch.manual_seed(0)
    assert torch.equal(train.images.batch(list(range(6))), first)  # the crops follow the seed
    assert first.shape == (6, 3, 32, 32) and not torch.allclose(first, test.images.batch(list(range(6))))


def test_crop_boxes_are_drawn_as_random_resized_crop_draws_them():
    from raygap.data.images import crop_boxes

    torch.manual_seed(0)
    left, top, width, height = crop_boxes(20_000, (0.5, 0.9)).unbind(1)
    area, aspect = width * height, width / height
    assert area.min() >= 0.5 - 1e-6 and area.max() <= 0.9 + 1e-6
    assert aspect.min() >= 3 / 4 - 1e-6 and aspect.max() <= 4 / 3 + 1e-6
    assert left.min() >= 0 and top.min() >= 0 and (left + width).max() <= 1 + 1e-6 and (top + height).max() <= 1 + 1e-6
    # The same distribution as torchvision's own draws (on a 1000-pixel image): large areas at a
    # far-from-square aspect do not fit and are drawn again, which pulls the mean area down.
    from torchvision.transforms import RandomResizedCrop

    image = torch.zeros(1, 1000, 1000)
    theirs = torch.tensor([RandomResizedCrop.get_params(image, [0.5, 0.9], [3 / 4, 4 / 3])[2:] for _ in range(20_000)]) / 1000
    assert float(area.mean()) == pytest.approx(float(theirs.prod(1).mean()), abs=0.004)
    assert float(aspect.log().std()) == pytest.approx(float((theirs[:, 1] / theirs[:, 0]).log().std()), abs=0.005)
    # Areas near the whole image rarely fit at a far-from-square aspect: the whole image is the fallback.
    whole = crop_boxes(1000, (1.0, 1.0))
    assert torch.allclose(whole[:, 2:], torch.ones(1000, 2)) and torch.allclose(whole[:, :2], torch.zeros(1000, 2), atol=1e-6)


def test_resized_crop_matches_bilinear_sampling_by_hand():
    from raygap.data.images import resized_crop

    torch.manual_seed(1)
    pixels = torch.rand(2, 3, 8, 8) * 255
    boxes = torch.tensor([[0.25, 0.125, 0.5, 0.75], [0.0, 0.0, 1.0, 1.0]])
    out = resized_crop(pixels, boxes)
    assert torch.allclose(out[1], pixels[1], atol=1e-4)  # the whole image comes back unchanged

    def bilinear(image, y, x):  # coordinates in pixels (centres at integers), clamped at the border
        y, x = min(max(y, 0.0), 7.0), min(max(x, 0.0), 7.0)
        y0, x0 = min(int(y), 6), min(int(x), 6)
        dy, dx = y - y0, x - x0
        return (
            image[:, y0, x0] * (1 - dy) * (1 - dx)
            + image[:, y0, x0 + 1] * (1 - dy) * dx
            + image[:, y0 + 1, x0] * dy * (1 - dx)
            + image[:, y0 + 1, x0 + 1] * dy * dx
        )

    left, top, width, height = boxes[0].tolist()
    for i in range(8):
        for j in range(8):
            x = (left + (j + 0.5) / 8 * width) * 8 - 0.5
            y = (top + (i + 0.5) / 8 * height) * 8 - 0.5
            assert torch.allclose(out[0, :, i, j], bilinear(pixels[0], y, x), atol=1e-3)


def test_the_pipeline_setting_picks_how_batches_arrive(tmp_path, save_jpegs, bundle):
    from torch.utils.data import DistributedSampler

    from raygap.data import LoadedPairs, ResidentPairs, training_batches

    cpu = torch.device("cpu")
    data = load_source(SyntheticSource(size=64, seed=4), bundle, train=True)
    sampler = DistributedSampler(range(len(data)), num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    assert isinstance(training_batches(data, sampler, 16, cpu, "resident", 0), ResidentPairs)
    for pipeline in ("auto", "streamed", "loader"):  # on a CPU these are the loader
        assert isinstance(training_batches(data, sampler, 16, cpu, pipeline, 0), LoadedPairs)
    files = load_source(FilesSource(table=save_jpegs(tmp_path, [(40, 40)] * 4), decoded_cache=False), bundle, train=True)
    with pytest.raises(ValueError, match="data.pipeline: resident needs images in memory"):
        training_batches(files, sampler, 2, cpu, "resident", 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_streamed_pairs_give_the_resident_batches_on_a_gpu(bundle):
    import threading

    from torch.utils.data import DistributedSampler

    from raygap.data import ResidentPairs, StreamedPairs

    device = torch.device("cuda")
    data = load_source(SyntheticSource(size=300, seed=4, captions_per_image=2), bundle, train=True)
    sampler = DistributedSampler(range(len(data)), num_replicas=1, rank=0, shuffle=True, seed=3, drop_last=True)
    resident, streamed = ResidentPairs(data, sampler, 64, device), StreamedPairs(data, sampler, 64, device)
    assert len(streamed) == len(resident) == 9
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        got, want = list(streamed), list(resident)
        assert len(got) == 9
        for (images, tokens), (want_images, want_tokens) in zip(got, want):
            assert images.device.type == "cuda" and torch.equal(images, want_images) and torch.equal(tokens, want_tokens)
    batches = iter(streamed)
    next(batches)
    batches.close()  # a loop that stops half-way (the last step inside an epoch) ends the thread
    assert not any(t.name == "raygap-stream" for t in threading.enumerate())


def test_the_registry_reads_every_kind_the_spec_accepts():
    """One reader per spec kind; the file-backed ones are the sources with image-file options."""
    import typing

    from raygap.config import DataSource, ImageFileOptions, MmvpSource
    from raygap.data import SOURCES
    from raygap.data.registry import FileBacked

    models = (*typing.get_args(typing.get_args(DataSource)[0]), MmvpSource)  # data.mmvp has a kind of its own
    assert [model.model_fields["kind"].default for model in models] == list(SOURCES)
    for model in models:
        file_backed = isinstance(SOURCES[model.model_fields["kind"].default], FileBacked)
        assert file_backed == issubclass(model, ImageFileOptions), model.__name__


def test_an_eval_split_whose_images_share_captions_is_warned_about(tmp_path, tiny, capsys):
    from raygap.data.checks import check_tables, shared_captions

    rows = ["a.png,a grey square", "b.png,A grey  square", "c.png,a ball", "a.png,grey again", "d.png,a ball", "e.png,alone"]
    table = make_table(tmp_path, rows, header="filepath,title")
    found = read_file_source(FilesSource(table=table))
    # a and b share "a grey square" (case and spaces aside), c and d "a ball"; a's second caption and e's are their own
    assert shared_captions(found).startswith("4 of 5 images share a caption with another image (2 caption(s) shared, 4 distinct in all)")
    (tmp_path / "unique").mkdir()
    unique = make_table(tmp_path / "unique", ["a.png,one", "b.png,two"], "filepath,title")
    assert shared_captions(read_file_source(FilesSource(table=unique))) is None
    cfg = tiny(data={"eval": {"kind": "files", "table": str(table)}, "probe": None})
    check_tables(cfg, "own.yaml")
    assert "own.yaml: data.eval: warning: 4 of 5 images share a caption" in capsys.readouterr().err
