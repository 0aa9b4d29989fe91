"""The `data` section: one model per source kind (its reader lives in raygap.data), probe splits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from raygap.config.base import PositiveInt, Probability, Strict, check_paths, must_exist

# The keys of each source kind that name files or folders: relative ones are anchored once, when
# the study file is read (raygap.config.loading), so a trial reads the same files in any folder.
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "files": ("table", "root"),
    "coco": ("annotations", "images"),
    "webdataset": ("shards",),
    "imagefolder": ("root",),
    "cifar10": ("root",),
    "fashion-mnist": ("root",),
    "mmvp": ("root",),
}


def anchor_paths(tree: Any, folder: Path) -> Any:
    """`tree` with every relative path of a data source (`PATH_KEYS`, `~` expanded) made absolute
    against `folder`; sources inside search distributions (a `choice` of tables) too."""
    if isinstance(tree, list):
        return [anchor_paths(item, folder) for item in tree]
    if not isinstance(tree, dict):
        return tree
    kind = tree.get("kind")
    keys = PATH_KEYS.get(kind, ()) if isinstance(kind, str) else ()
    return {key: anchor_value(value, folder) if key in keys else anchor_paths(value, folder) for key, value in tree.items()}


def anchor_value(value: Any, folder: Path) -> Any:
    """A path (or a search distribution over paths) made absolute against `folder` where relative."""
    if isinstance(value, str):
        path = Path(value).expanduser()
        return os.path.abspath(folder / path)  # abspath: `..` folded, as a shell would show it
    if isinstance(value, (list, dict)):  # a search distribution over paths
        items = value.items() if isinstance(value, dict) else enumerate(value)
        anchored = {key: anchor_value(item, folder) for key, item in items}
        return anchored if isinstance(value, dict) else list(anchored.values())
    return value


class SyntheticSource(Strict):
    """Procedural image–caption pairs (raygap.data.synthetic), generated in memory."""

    kind: Literal["synthetic"] = "synthetic"
    size: PositiveInt = 4096
    """Number of images."""
    captions_per_image: PositiveInt = 1
    """Captions written for each image (different templates); retrieval counts any of them."""
    caption_noise: Probability = 0.0
    """Fraction of captions replaced by another image's caption (mismatched pairs)."""
    max_objects: Annotated[int, Field(ge=1, le=3)] = 3
    """Each image shows 1..max_objects objects; the first one is the labelled main object."""
    label: Literal["color", "shape"] = "color"
    """The class of an image for zero-shot and linear probe: its main object's colour (9 classes)
    or shape (6 classes; the tiny model learns shape slowly, so its probes stay near chance)."""
    seed: int = 0
    """Seed of the random scenes (the images), their captions and the caption noise."""


class ImageFileOptions(Strict):
    """Options of the sources whose images are files that PIL decodes."""

    bad_images: Literal["fail", "skip"] = "fail"
    """An image PIL cannot open: fail before any work starts, or leave it and its captions out (counted)."""
    decoded_cache: Path | bool = True
    """A copy of the images decoded once at the model's resolution (uint8, memory-mapped) that every
    later epoch and trial reads instead of decoding the files; training crops are then drawn on the
    training device. true: in the per-user cache folder (raygap.data.cache.default_folder); an
    absolute folder: there; off (or null): decode the files every epoch."""

    @field_validator("decoded_cache", mode="before")
    @classmethod
    def _on_off_or_folder(cls, value):
        # YAML reads `off`/`on` as booleans; a string from JSON or code says the same. null kept
        # its old meaning (no copy). Any other word must be an absolute folder: a typo never
        # becomes a folder in whatever directory the trial runs in.
        if value is None:
            return False
        if isinstance(value, (str, Path)):
            words = {"off": False, "false": False, "no": False, "on": True, "true": True, "yes": True}
            if str(value).lower() in words:
                return words[str(value).lower()]
            folder = Path(value).expanduser()
            if not folder.is_absolute():
                raise ValueError(f"expected true, off or an absolute folder, got {str(value)!r}")
            return folder
        return value


class FilesSource(ImageFileOptions):
    """A table (CSV, TSV or Parquet) of image paths and captions; open_clip's CSV layout works."""

    kind: Literal["files"] = "files"
    table: Path
    """The table file."""
    root: Path | None = None
    """Folder that relative image paths start from; default: the table's folder."""
    image_column: str = "filepath"
    """Column of image paths, resolved against `root`; rows naming the same image are grouped."""
    caption_column: str = "title"
    """Column of captions; a table with `label_column` and without this column is captioned by `template`."""
    label_column: str | None = None
    """Class label per image, needed when the source is a probe split."""
    template: str = "a photo of a {label}."
    """With a label column and no caption column: each row's caption is this filled with its label."""
    separator: str | None = None
    """Column separator for text tables; default: tab for .tsv, comma for .csv."""
    limit: PositiveInt | None = None
    """Use only the first `limit` rows."""
    allow_outside_root: bool = False
    """Image paths (absolute, or with ..) may lead outside the root folder."""

    @field_validator("table")
    @classmethod
    def _table_exists(cls, table: Path, info: ValidationInfo) -> Path:
        if table.suffix.lower() not in (".csv", ".tsv", ".parquet"):
            raise ValueError(f"expected a .csv, .tsv or .parquet file, got {table.name}")
        if check_paths(info) and not table.is_file():
            raise ValueError(f"data table not found: {table}")
        return table

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: Path | None, info: ValidationInfo) -> Path | None:
        if root is not None and check_paths(info) and not root.is_dir():
            raise ValueError(f"image root folder not found: {root}")
        return root


class CocoSource(ImageFileOptions):
    """MSCOCO captions: the official captions_*.json, or Karpathy's dataset_coco.json with a split."""

    kind: Literal["coco"] = "coco"
    annotations: Path
    """captions_train2017.json / captions_val2017.json, or Karpathy's dataset_coco.json."""
    images: Path
    """The image folder (train2017/, val2017/); for Karpathy's JSON the folder holding train2014/ and val2014/."""
    split: Literal["train", "val", "test", "restval"] | None = None
    """Karpathy split to read (required with dataset_coco.json, not allowed with the official files)."""
    limit: PositiveInt | None = None
    """Use only the first `limit` images."""

    _annotations_exist = must_exist("annotations", what="file")
    _images_exist = must_exist("images", what="folder")


class WebDatasetSource(ImageFileOptions):
    """Tar shards of <key>.jpg|png|webp + <key>.txt samples, read in place (never unpacked)."""

    kind: Literal["webdataset"] = "webdataset"
    shards: str
    """A glob (data/*.tar) or a brace range (data/{000..099}.tar)."""
    caption_ext: str = "txt"
    """Extension of each sample's caption member (<key>.txt by default); samples without one are left out."""
    limit: PositiveInt | None = None
    """Use only the first `limit` samples."""


class LabelledSource(Strict):
    """Base of labelled image sets: each image's caption is `template` filled with its class name."""

    template: str = "a photo of a {label}."
    """Each image's caption: this with `{label}` replaced by its class name (zero-shot prompts are eval.templates)."""
    limit: PositiveInt | None = None
    """Use only the first `limit` images."""


class ImageFolderSource(LabelledSource, ImageFileOptions):
    """One sub-folder per class, images inside (png, jpg, jpeg, bmp, webp)."""

    kind: Literal["imagefolder"] = "imagefolder"
    root: Path
    """Folder with one sub-folder per class; the class names are the sub-folders' names, in sorted order."""

    _root_exists = must_exist("root", what="folder")


class Cifar10Source(LabelledSource):
    """CIFAR-10 in torchvision's layout (cifar-10-batches-py/ under root); never downloaded."""

    kind: Literal["cifar10"] = "cifar10"
    root: Path
    """Folder holding cifar-10-batches-py/ (or its files directly)."""
    split: Literal["train", "test"] = "test"
    """test: test_batch; train: data_batch_1 to data_batch_5."""

    _root_exists = must_exist("root", what="folder")


class FashionMnistSource(LabelledSource):
    """Fashion-MNIST IDX files (optionally .gz), as Debian's dataset-fashion-mnist installs them."""

    kind: Literal["fashion-mnist"] = "fashion-mnist"
    root: Path = Path("/usr/share/datasets/fashion-mnist")
    """Folder of the IDX files (train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte, optionally .gz)."""
    split: Literal["train", "test"] = "test"
    """test: the t10k-* files; train: the train-* files."""

    _root_exists = must_exist("root", what="folder")


class DigitsSource(LabelledSource):
    """scikit-learn's bundled 8×8 digits (1,797 images, installed with the package); every 5th
    image is the test split, the rest the train split."""

    kind: Literal["digits"] = "digits"
    split: Literal["train", "test"] = "test"
    """test: every 5th image (index divisible by 5); train: the rest."""
    template: str = "a photo of the number {label}."
    """Each image's caption: this with `{label}` replaced by its digit (0 to 9)."""


DataSource = Annotated[
    Union[
        SyntheticSource,
        FilesSource,
        CocoSource,
        WebDatasetSource,
        ImageFolderSource,
        Cifar10Source,
        FashionMnistSource,
        DigitsSource,
    ],
    Field(discriminator="kind"),
]


class MmvpSource(ImageFileOptions):
    """MMVP-VLM from a local copy in its published layout: `root`/Questions.csv and
    `root`/MLLM_VLM Images/<Type>/<Question ID>.jpg (raygap.data.mmvp)."""

    kind: Literal["mmvp"] = "mmvp"
    root: Path
    """Folder of the local copy: Questions.csv and the image folder (`MLLM_VLM Images` or `MMVP_VLM_Images`)."""
    bad_images: Literal["fail"] = "fail"
    """Always fail: the benchmark scores pairs, and a pair cannot lose an image."""

    _root_exists = must_exist("root", what="folder")


class ProbeSpec(Strict):
    """A labelled set for zero-shot (on `test`) and the linear probe (`train` → `test`)."""

    train: DataSource = SyntheticSource(size=2048, seed=2)
    """Labelled set the linear probe is fitted on (default: 2,048 synthetic images, seed 2)."""
    test: DataSource = SyntheticSource(size=1024, seed=3)
    """Labelled set that zero-shot and the linear probe are scored on (default: 1,024 synthetic images, seed 3)."""


class DataSpec(Strict):
    train: DataSource = SyntheticSource(size=4096, seed=0)
    """The training image–caption pairs (default: 4,096 synthetic images, seed 0)."""
    eval: DataSource = SyntheticSource(size=512, seed=1)
    """Held-out pairs measured at every evaluation point: gap, retrieval and the other embedding metrics
    (default: 512 synthetic images, seed 1)."""
    probe: ProbeSpec | None = ProbeSpec()
    """Set to null to skip zero-shot and linear probe."""
    mmvp: MmvpSource | None = None
    """MMVP-VLM, scored once a seed has trained (mmvp_accuracy and a column per group); none by default."""
    loader_workers: Annotated[int, Field(ge=0)] = 0
    """DataLoader processes per worker, where batches come through the DataLoader: on a GPU for
    images decoded every epoch (`decoded_cache: off`) or `pipeline: loader`; on a CPU for every
    pipeline but resident. The resource plan counts each as a core."""
    pipeline: Literal["auto", "resident", "streamed", "loader"] = "auto"
    """How training batches reach a GPU. resident: in-memory images copied to the GPU once, batches
    gathered there; streamed: batches gathered in pinned memory by a thread and copied while the
    previous step runs; loader: a DataLoader (needed for images decoded from files every epoch).
    auto: resident when the images (image files: their decoded copy) take under a quarter of the
    GPU's free memory, else streamed; files decoded every epoch through the loader. On a CPU every
    choice but resident is the loader."""

    @property
    def decoded_each_epoch(self) -> bool:
        """The training images are image files decoded every epoch (no decoded copy)."""
        return isinstance(self.train, ImageFileOptions) and self.train.decoded_cache is False

    def loader_runs(self, on_gpu: bool) -> bool:
        """Whether a trial's batches come through the DataLoader, so its loader processes start."""
        if on_gpu:
            return self.pipeline == "loader" or self.decoded_each_epoch
        return self.pipeline != "resident"

    @model_validator(mode="after")
    def _pipeline_needs_memory(self) -> DataSpec:
        if self.pipeline in ("resident", "streamed") and self.decoded_each_epoch:
            raise ValueError(
                f"pipeline {self.pipeline} needs the training images in memory; "
                "data.train is decoded from its files every epoch (decoded_cache: off)"
            )
        return self
