"""Study files: typed models, search distributions, and errors that name the file and the key.

A study file is YAML. Any numeric or categorical leaf may instead be a search distribution, a
one-key mapping: `{loguniform: [lo, hi]}`, `{uniform: [lo, hi]}`, `{int: [lo, hi]}`,
`{choice: [...]}` or `{grid: [...]}`. `load_spec` validates the whole file before anything runs:
every choice and grid value and both ends of every range are substituted in turn and checked
against the same models a trial uses, so a study cannot fail half-way on a bad value.

`StudySpec.resolve(params)` turns sampled values (keyed by dotted path) into a `TrialConfig`, the
fully concrete configuration one trial runs with; `StudySpec.defaults()` resolves every
distribution to its default value (see `Distribution.default`).
"""

from __future__ import annotations

import copy
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from raygap import catalog

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(ge=1)]

BUILTIN_MODELS = ("tiny-vit", "small-vit")


class SpecError(ValueError):
    """A study file (or an override) that cannot run; the message names the file and the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------- data
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


class ImageFileOptions(Strict):
    """Options of the sources whose images are files that PIL decodes."""

    bad_images: Literal["fail", "skip"] = "fail"
    """An image PIL cannot open: fail before any work starts, or leave it and its captions out (counted)."""
    decoded_cache: Path | None = None
    """A folder for a copy of the images decoded once at the model's resolution (uint8, memory-mapped):
    every later epoch and trial reads it instead of decoding the files; training crops are then
    drawn on the training device."""


class FilesSource(ImageFileOptions):
    """A table (CSV, TSV or Parquet) of image paths and captions; open_clip's CSV layout works."""

    kind: Literal["files"] = "files"
    table: Path
    """The table file."""
    root: Path | None = None
    """Folder that relative image paths start from; default: the table's folder."""
    image_column: str = "filepath"
    caption_column: str = "title"
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
        if _check_paths(info) and not table.is_file():
            raise ValueError(f"data table not found: {table}")
        return table

    @field_validator("root")
    @classmethod
    def _root_exists(cls, root: Path | None, info: ValidationInfo) -> Path | None:
        if root is not None and _check_paths(info) and not root.is_dir():
            raise ValueError(f"image root folder not found: {root}")
        return root


def _check_paths(info: ValidationInfo) -> bool:
    """Paths are checked unless validation runs with context check_paths=False (dry runs)."""
    return not info.context or info.context.get("check_paths", True)


def _must_exist(field: str, what: Literal["file", "folder"]):
    """A validator for a path field that must name an existing file or folder (unless dry)."""

    def check(cls, path: Path, info: ValidationInfo) -> Path:
        found = path.is_file() if what == "file" else path.is_dir()
        if _check_paths(info) and not found:
            raise ValueError(f"{what} not found: {path}")
        return path

    return field_validator(field)(classmethod(check))


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

    _annotations_exist = _must_exist("annotations", what="file")
    _images_exist = _must_exist("images", what="folder")


class WebDatasetSource(ImageFileOptions):
    """Tar shards of <key>.jpg|png|webp + <key>.txt samples, read in place (never unpacked)."""

    kind: Literal["webdataset"] = "webdataset"
    shards: str
    """A glob (data/*.tar) or a brace range (data/{000..099}.tar)."""
    caption_ext: str = "txt"
    limit: PositiveInt | None = None
    """Use only the first `limit` samples."""


class LabelledSource(Strict):
    """Base of labelled image sets: each image's caption is `template` filled with its class name."""

    template: str = "a photo of a {label}."
    limit: PositiveInt | None = None
    """Use only the first `limit` images."""


class ImageFolderSource(LabelledSource, ImageFileOptions):
    """One sub-folder per class, images inside (png, jpg, jpeg, bmp, webp)."""

    kind: Literal["imagefolder"] = "imagefolder"
    root: Path

    _root_exists = _must_exist("root", what="folder")


class Cifar10Source(LabelledSource):
    """CIFAR-10 in torchvision's layout (cifar-10-batches-py/ under root); never downloaded."""

    kind: Literal["cifar10"] = "cifar10"
    root: Path
    split: Literal["train", "test"] = "test"

    _root_exists = _must_exist("root", what="folder")


class FashionMnistSource(LabelledSource):
    """Fashion-MNIST IDX files (optionally .gz), as Debian's dataset-fashion-mnist installs them."""

    kind: Literal["fashion-mnist"] = "fashion-mnist"
    root: Path = Path("/usr/share/datasets/fashion-mnist")
    split: Literal["train", "test"] = "test"

    _root_exists = _must_exist("root", what="folder")


class DigitsSource(LabelledSource):
    """scikit-learn's bundled 8×8 digits (1,797 images, installed with the package); every 5th
    image is the test split, the rest the train split."""

    kind: Literal["digits"] = "digits"
    split: Literal["train", "test"] = "test"
    template: str = "a photo of the number {label}."


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


class ProbeSpec(Strict):
    """A labelled set for zero-shot (on `test`) and the linear probe (`train` → `test`)."""

    train: DataSource = SyntheticSource(size=2048, seed=2)
    test: DataSource = SyntheticSource(size=1024, seed=3)


class DataSpec(Strict):
    train: DataSource = SyntheticSource(size=4096, seed=0)
    eval: DataSource = SyntheticSource(size=512, seed=1)
    probe: ProbeSpec | None = ProbeSpec()
    """Set to null to skip zero-shot and linear probe."""
    loader_workers: Annotated[int, Field(ge=0)] = 0
    """DataLoader processes for image files; in-memory synthetic data needs none."""
    pipeline: Literal["auto", "resident", "streamed", "loader"] = "auto"
    """How training batches reach a GPU. resident: in-memory images copied to the GPU once, batches
    gathered there; streamed: batches gathered in pinned memory by a thread and copied while the
    previous step runs; loader: a DataLoader (needed for images decoded from files). auto: resident
    when the images take under a quarter of the GPU's free memory, else streamed, files through
    the loader. On a CPU every choice but resident is the loader."""

    @model_validator(mode="after")
    def _pipeline_needs_memory(self) -> DataSpec:
        decoded_each_epoch = isinstance(self.train, ImageFileOptions) and self.train.decoded_cache is None
        if self.pipeline in ("resident", "streamed") and decoded_each_epoch:
            raise ValueError(f"pipeline {self.pipeline} needs the training images in memory; data.train is decoded from its files every epoch (set its decoded_cache)")
        return self


# --------------------------------------------------------------------------------------- model
class ModelSpec(Strict):
    name: str = "tiny-vit"
    """A built-in CPU config (tiny-vit, small-vit) or any open_clip model name; always random init."""
    normalize: bool = True
    """False is the no-norm method: features enter the logits unnormalized (pair it with a fixed T)."""

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name in BUILTIN_MODELS:
            return name
        import open_clip  # only for names that are not built in: the import takes seconds

        if name not in open_clip.list_models():
            close = difflib.get_close_matches(name, [*BUILTIN_MODELS, *open_clip.list_models()], n=3)
            raise ValueError(f"unknown model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
        return name


# --------------------------------------------------------------------------------------- train
class TrainSpec(Strict):
    steps: PositiveInt | None = None
    """Optimizer steps; give this or `epochs` (default: 300 steps)."""
    epochs: PositiveFloat | None = None
    batch_size: Annotated[int, Field(ge=2)] = 128
    lr: PositiveFloat = 1e-3
    warmup_steps: Annotated[int, Field(ge=0)] = 20
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.1
    eval_interval: Annotated[int, Field(ge=0)] = 100
    """Evaluate on the eval split every this many steps (0: only at the end)."""
    checkpoint_interval: Annotated[int, Field(ge=0)] = 0
    """In a study, save the trial's full state every this many steps, so a killed worker resumes
    from there instead of from scratch (0: no checkpoints)."""
    max_restarts: Annotated[int, Field(ge=0)] = 2
    """In a study, how often a trial whose process died is restarted (from its last checkpoint)."""
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 autocast applies on CUDA only; CPU runs in fp32."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = False
    """Images and weights in channels-last layout on CUDA: faster convolutions (ResNet towers)."""

    @model_validator(mode="after")
    def _length(self) -> TrainSpec:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either steps or epochs, not both")
        if self.steps is None and self.epochs is None:
            self.steps = 300
        return self


# --------------------------------------------------------------------------------- temperature
class LearnedTemperature(Strict):
    """Baseline: τ = exp(θ), learned, capped at max_tau."""

    kind: Literal["learned"] = "learned"
    init: PositiveFloat = 0.07
    """Initial temperature T₀ (τ₀ = 1/T₀)."""
    max_tau: PositiveFloat = 100.0
    lr_scale: PositiveFloat = 1.0
    """SLRT: θ's learning rate is lr × lr_scale at every step, warmup and cosine included."""


class SoftplusTemperature(LearnedTemperature):
    """TR: τ = softplus(θ), learned."""

    kind: Literal["softplus"] = "softplus"


class ExpKTemperature(LearnedTemperature):
    """TR: τ = exp(θ/k), learned."""

    kind: Literal["exp_k"] = "exp_k"
    k: PositiveFloat


class FixedTemperature(Strict):
    """FLT: T constant."""

    kind: Literal["fixed"] = "fixed"
    value: PositiveFloat


class ScheduleTemperature(Strict):
    """TS: T linear from start (first step) to end (last step)."""

    kind: Literal["schedule"] = "schedule"
    start: PositiveFloat
    end: PositiveFloat


class CosineTemperature(Strict):
    """TS-cos: T alternates low → high → low along a cosine of `period` steps."""

    kind: Literal["cosine"] = "cosine"
    low: PositiveFloat
    high: PositiveFloat
    period: PositiveInt


TemperatureSpec = Annotated[
    Union[
        LearnedTemperature,
        SoftplusTemperature,
        ExpKTemperature,
        FixedTemperature,
        ScheduleTemperature,
        CosineTemperature,
    ],
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------------------------------- swap
class NoSwapSpec(Strict):
    kind: Literal["none"] = "none"


class HardSwapSpec(Strict):
    """HS: per-coordinate exchange on a fraction p of steps (the result is not renormalized)."""

    kind: Literal["hard"] = "hard"
    p: Probability = 1.0


class HardRowSwapSpec(HardSwapSpec):
    """HS-row: whole-pair exchange on a fraction p of steps."""

    kind: Literal["hard_row"] = "hard_row"


class SoftSwapSpec(HardSwapSpec):
    """SS: λ-mixing of each pair on a fraction p of steps (the result is not renormalized)."""

    kind: Literal["soft"] = "soft"
    per: Literal["pair", "coordinate"] = "pair"
    """pair: one λ_i ~ U[0,1] per pair, shared by all its coordinates (x̂_i = λ_i x_i + (1−λ_i) y_i);
    coordinate: an independent λ_ij per coordinate j of each pair i (x̂_ij = λ_ij x_ij + (1−λ_ij) y_ij),
    the soft counterpart of HS's per-coordinate exchange. The paper's wording ("swaps entries in a
    soft way", λ sampled independently, like HS's entries) suggests coordinate; the default pair
    keeps the meaning of existing studies and of DESIGN.md's SS row."""


SwapSpec = Annotated[Union[NoSwapSpec, HardSwapSpec, HardRowSwapSpec, SoftSwapSpec], Field(discriminator="kind")]


# ------------------------------------------------------------------------- eval, search, resources
class EvalSpec(Strict):
    templates: list[str] = ["a photo of a {label}."]
    """Zero-shot prompt templates; each class embedding is the mean over templates."""
    batch_size: PositiveInt = 512
    gap_pairs: PositiveInt | None = 512
    """The gap is measured on this many random eval pairs (all when the split has fewer; null: all).
    A centroid distance from n samples is biased upwards by noise of order 1/√n, so gaps compare
    only at equal gap_pairs; the count used is stored in the gap_pairs column."""
    seed: int = 0
    """Seed of the random choice of gap pairs (the same pairs at every evaluation)."""

    @model_validator(mode="after")
    def _templates_have_label(self) -> EvalSpec:
        if not self.templates or any("{label}" not in t for t in self.templates):
            raise ValueError("every template must contain '{label}'")
        return self


class SearchSpec(Strict):
    sampler: Literal["tpe", "nsga2", "random", "grid"] = "tpe"
    """grid runs every combination of the grid/choice values exactly once (trials is ignored)."""
    trials: PositiveInt = 8
    repeats: PositiveInt = 1
    """Seeds per sampled configuration (train.seed, +1, …); objectives are the seed means."""
    seed: int = 0
    """Seed of the Optuna sampler."""
    objectives: dict[str, Literal["min", "max"]] = catalog.DEFAULT_OBJECTIVES
    """Metric → min or max, in the metric's better direction (raygap.catalog); a list of metric
    names takes each one's better direction."""

    @field_validator("objectives", mode="before")
    @classmethod
    def _directions_from_the_catalogue(cls, objectives: Any) -> Any:
        return catalog.objectives_from(objectives) if isinstance(objectives, list) else objectives

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, objectives: dict[str, str]) -> dict[str, str]:
        catalog.check_objectives(objectives)
        return objectives


class ResourcesSpec(Strict):
    workers_per_trial: PositiveInt = 1
    use_gpu: bool | None = None
    """None: use GPUs when the cluster has them."""
    cpus_per_worker: PositiveFloat | None = None
    gpus_per_worker: PositiveFloat | None = None
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    """Ray placement strategy for a trial's workers (SPREAD puts them on different nodes)."""
    worker_group: Literal["auto", "always"] = "auto"
    """auto: a one-worker trial trains inside its Tune trial process (no Ray Train worker group,
    which costs seconds per trial); always: every trial gets a TorchTrainer worker group."""


class TheorySpec(Strict):
    """Makes the trial a gradient-flow simulation of the paper's theory model (raygap.theory)
    instead of CLIP training; the `temperature` section drives it, data/model/train are unused."""

    n: Annotated[int, Field(ge=2)] = 8
    """Pairs."""
    d: Annotated[int, Field(ge=3)] = 16
    """Embedding dimension."""
    delta: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    """Initial offset δ₀ (the matched-pair gap is 2δ)."""
    init: Literal["matched", "random"] = "matched"
    time: PositiveFloat = 100.0
    dt: PositiveFloat = 0.05
    records: Annotated[int, Field(ge=2)] = 100
    seed: int = 0

    @model_validator(mode="after")
    def _steps(self) -> TheorySpec:
        if self.init == "matched" and self.n > self.d - 1:
            raise ValueError(f"matched init needs n ≤ d − 1, got n={self.n}, d={self.d}")
        if self.time / self.dt > 1_000_000:
            raise ValueError(f"time / dt = {self.time / self.dt:.0f} steps; at most 1,000,000")
        return self


class TrialConfig(Strict):
    """One trial's fully concrete configuration (no search distributions left)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    results: str | None = None
    """Results folder or URI; default results/<name>."""
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    temperature: TemperatureSpec = LearnedTemperature()
    swap: SwapSpec = NoSwapSpec()
    eval: EvalSpec = EvalSpec()
    search: SearchSpec = SearchSpec()
    resources: ResourcesSpec = ResourcesSpec()
    theory: TheorySpec | None = None
    """Set to simulate the theory model instead of training CLIP."""


# ------------------------------------------------------------------------------- distributions
DISTRIBUTION_KINDS = ("loguniform", "uniform", "int", "choice", "grid")


@dataclass(frozen=True)
class Distribution:
    """A searchable leaf. `default()` is what `raygap train` uses: the first choice or grid
    value, the midpoint of a uniform or int range, the geometric midpoint of a loguniform one."""

    kind: str
    args: tuple

    def default(self) -> Any:
        if self.kind in ("choice", "grid"):
            return self.args[0]
        low, high = self.args
        if self.kind == "loguniform":
            return math.sqrt(low * high)
        if self.kind == "int":
            return (low + high) // 2
        return (low + high) / 2

    def candidates(self) -> tuple:
        """Values that validation tries: every option, or both ends of a range."""
        return self.args


def _parse_distribution(node: Any, where: str) -> Distribution | None:
    if not (isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DISTRIBUTION_KINDS):
        return None
    kind, args = next(iter(node.items()))
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise SpecError(f"{where}: {kind} needs a non-empty list of values, got {args!r}")
        return Distribution(kind, tuple(args))
    is_number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if not (isinstance(args, list) and len(args) == 2 and all(map(is_number, args)) and args[0] < args[1]):
        raise SpecError(f"{where}: {kind} needs [low, high] with low < high, got {args!r}")
    if kind == "loguniform" and args[0] <= 0:
        raise SpecError(f"{where}: loguniform needs 0 < low < high, got {args!r}")
    if kind == "int" and not all(isinstance(v, int) for v in args):
        raise SpecError(f"{where}: int needs two integers, got {args!r}")
    return Distribution(kind, tuple(args))


def find_distributions(raw: Any, file: str, prefix: str = "") -> dict[str, Distribution]:
    """Dotted path → Distribution for every search leaf in a raw study tree (outermost only)."""
    found: dict[str, Distribution] = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
            path = f"{prefix}{key}"
            dist = _parse_distribution(value, f"{file}: {path}")
            if dist is not None:
                found[path] = dist
            else:
                found.update(find_distributions(value, file, path + "."))
    return found


def set_path(raw: dict, path: str, value: Any) -> None:
    """Set `value` at a dotted path, creating intermediate mappings (validation catches typos)."""
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value


# ------------------------------------------------------------------------------------- loading
@dataclass
class StudySpec:
    """A validated study file: its raw tree (overrides applied) and its search space."""

    path: Path
    raw: dict
    space: dict[str, Distribution] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.raw["name"]

    def resolve(self, params: dict[str, Any] | None = None, check_paths: bool = True) -> TrialConfig:
        """A concrete TrialConfig: `params` (dotted path → value) first, defaults for the rest."""
        return _resolve(self.raw, params or {}, str(self.path), check_paths)

    def defaults(self) -> TrialConfig:
        return self.resolve({})


def _resolve(raw: dict, params: dict[str, Any], file: str, check_paths: bool) -> TrialConfig:
    tree = copy.deepcopy(raw)
    for path, value in params.items():
        # A chosen section is shared with the raw spec: copy it so filling its defaults cannot leak back.
        set_path(tree, path, copy.deepcopy(value))
    # Distributions inside a chosen option (conditional spaces) resolve on the next pass.
    while dists := find_distributions(tree, file):
        for path, dist in dists.items():
            set_path(tree, path, dist.default())
    return _validate(tree, file, check_paths)


def _validate(tree: dict, file: str, check_paths: bool = True) -> TrialConfig:
    try:
        cfg = TrialConfig.model_validate(tree, context={"check_paths": check_paths})
    except ValidationError as error:
        raise SpecError(_format_errors(error, tree, file)) from None
    train_pairs = _known_size(cfg.data.train)
    if cfg.theory is None and train_pairs is not None and train_pairs < cfg.train.batch_size:
        raise SpecError(f"{file}: train.batch_size: {cfg.train.batch_size} is larger than data.train, which holds at most {train_pairs} pairs")
    return cfg


def _known_size(source) -> int | None:
    """Pairs a source holds at most, where the study file alone tells (tables are counted when read)."""
    if isinstance(source, SyntheticSource):
        return source.size * source.captions_per_image
    return getattr(source, "limit", None)


def _check_space(raw: dict, file: str, check_paths: bool) -> None:
    """Validate with every candidate value of every distribution, one at a time."""
    dists = find_distributions(raw, file)
    if not dists:
        _validate(raw, file, check_paths)
        return
    base = copy.deepcopy(raw)
    for path, dist in dists.items():
        set_path(base, path, dist.default())
    _check_space(base, file, check_paths)
    for path, dist in dists.items():
        for value in dist.candidates():
            if value != dist.default():
                trial = copy.deepcopy(base)
                set_path(trial, path, value)
                _check_space(trial, file, check_paths)


def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value` → (path, YAML-parsed value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise SpecError(f"--set expects key.path=value, got {text!r}")
    try:
        return key.strip(), _safe_load(value)
    except SpecError as error:
        raise SpecError(f"--set {key}: {error}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"--set {key}: value is not valid YAML: {error}") from None


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A study file as a dict, with its `extends:` base file (relative to it) merged underneath."""
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise SpecError(f"{file}: cannot read study file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise SpecError(f"{file}: line {line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the study file as UTF-8") from None
    try:
        raw = _safe_load(text)
    except SpecError as error:
        raise SpecError(f"{file}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(f"{file}: {where}invalid YAML: {getattr(error, 'problem', None) or error}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{file}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise SpecError(f"{file}: extends: expected the path of a base study file, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen or base_path == path.resolve():
        raise SpecError(f"{file}: extends: {base} includes itself")
    if not base_path.is_file():
        raise SpecError(f"{file}: extends: base study file not found: {base_path}")
    return _merge(_read_yaml(base_path, (*seen, path.resolve())), raw)


def _safe_load(text: str) -> Any:
    """yaml.safe_load, except that a key given twice in one mapping is an error naming its path
    and both lines (plain YAML keeps the last silently: `{modality_gap: min, modality_gap: max}`
    would be one objective)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        _check_unique_keys(node, [])
    return yaml.safe_load(text)


def _check_unique_keys(node: yaml.Node, path: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key in first_line:
                where = ".".join([*path, key])
                raise SpecError(f"{where}: key given twice, on line {first_line[key]} and on line {line}")
            first_line.setdefault(key, line)
            _check_unique_keys(value_node, [*path, key])
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_unique_keys(item, [*path, str(index)])


def _merge(base: dict, override: dict) -> dict:
    """Deep merge of mappings; a section with a different `kind` replaces the base's whole."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        same_kind = isinstance(old, dict) and isinstance(value, dict) and old.get("kind") == value.get("kind")
        merged[key] = _merge(old, value) if same_kind and not _parse_distribution(value, "") else value
    return merged


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = (), check_paths: bool = True) -> StudySpec:
    """Read, override and fully validate a study file. Raises SpecError before any work starts."""
    path = Path(path)
    file = str(path)
    raw = _read_yaml(path)
    raw.setdefault("name", path.stem)
    for item in overrides:
        key, value = parse_override(item)
        set_path(raw, key, value)
    _check_space(raw, file, check_paths)
    return StudySpec(path=path, raw=raw, space=find_distributions(raw, file))


# ------------------------------------------------------------------------------ error messages
def _format_errors(error: ValidationError, tree: dict, file: str) -> str:
    lines = []
    for item in error.errors():
        path = _yaml_path(item["loc"], tree)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            known = _known_keys(path[:-1], tree)
            close = difflib.get_close_matches(str(path[-1]), known, n=1)
            message = f"unknown key; expected one of {', '.join(sorted(known))}" if known else "unknown key"
            if close:
                message += f" (did you mean {close[0]!r}?)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif not isinstance(item.get("input"), (dict, list)) and item["type"] not in ("union_tag_invalid", "value_error"):
            message += f" (got {item['input']!r})"
        lines.append(f"{file}: {'.'.join(map(str, path)) or '<top level>'}: {message}")
    return "\n".join(lines)


def _yaml_path(loc: tuple, tree: Any) -> list:
    """Pydantic's location without the union tags it inserts, i.e. the path as written in YAML."""
    path, node = [], tree
    for key in loc:
        if isinstance(node, dict) and key in node:
            path.append(key)
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int):
            path.append(key)
            node = node[key] if key < len(node) else None
        elif not (isinstance(node, dict) and node.get("kind") == key):  # else: a union tag, not a key
            path.append(key)
            node = None
    return path


def _known_keys(path: list, tree: dict) -> list[str]:
    """Field names of the model that the mapping at `path` is validated against."""
    cls: type[BaseModel] | None = TrialConfig
    node: Any = tree
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        field_info = cls.model_fields.get(key) if cls else None
        cls = _model_for(field_info.annotation, node) if field_info else None
    return list(cls.model_fields) if cls else []


def _model_for(annotation: Any, node: Any) -> type[BaseModel] | None:
    models = [t for t in _flatten(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
    if len(models) == 1:
        return models[0]
    kind = node.get("kind") if isinstance(node, dict) else None
    for model in models:
        if kind in typing.get_args(model.model_fields["kind"].annotation):
            return model
    return None


def _flatten(annotation: Any) -> list:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _flatten(arg)]
    return [annotation]
