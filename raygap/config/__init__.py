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

from raygap.config.base import SpecError, Strict
from raygap.config.data import (
    Cifar10Source,
    CocoSource,
    DataSource,
    DataSpec,
    DigitsSource,
    FashionMnistSource,
    FilesSource,
    ImageFileOptions,
    ImageFolderSource,
    LabelledSource,
    MmvpSource,
    ProbeSpec,
    SyntheticSource,
    WebDatasetSource,
)
from raygap.config.distributions import DISTRIBUTION_KINDS, Distribution, find_distributions, set_path
from raygap.config.loading import StudySpec, load_spec, parse_override
from raygap.config.model import BUILTIN_MODELS, ModelSpec
from raygap.config.search import SearchSpec
from raygap.config.sections import EvalSpec, ResourcesSpec, SoftSwapSpec, SwapSpec, TheorySpec, TrainSpec, TrialConfig
from raygap.config.temperature import TemperatureSpec

__all__ = [
    "BUILTIN_MODELS",
    "DISTRIBUTION_KINDS",
    "Cifar10Source",
    "CocoSource",
    "DataSource",
    "DataSpec",
    "DigitsSource",
    "Distribution",
    "EvalSpec",
    "FashionMnistSource",
    "FilesSource",
    "ImageFileOptions",
    "ImageFolderSource",
    "LabelledSource",
    "MmvpSource",
    "ModelSpec",
    "ProbeSpec",
    "ResourcesSpec",
    "SearchSpec",
    "SoftSwapSpec",
    "SpecError",
    "Strict",
    "StudySpec",
    "SwapSpec",
    "SyntheticSource",
    "TemperatureSpec",
    "TheorySpec",
    "TrainSpec",
    "TrialConfig",
    "WebDatasetSource",
    "find_distributions",
    "load_spec",
    "parse_override",
    "set_path",
]
