"""Reading a study file: YAML (UTF-8, no key twice), `extends:`, `--set` overrides, and validation
of every value the search space can take."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from raygap.config.base import SpecError
from raygap.config.data import SyntheticSource, anchor_paths, anchor_value
from raygap.config.distributions import Distribution, find_distributions, parse_distribution, set_path
from raygap.config.errors import format_errors
from raygap.config.sections import TrialConfig


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

    def data_variants(self) -> list[TrialConfig]:
        """The defaults, and one configuration per other value of each search leaf under `data`
        (a `choice` of tables, say): what the data checks before a study must read."""
        variants: dict[str, TrialConfig] = {}
        for path, dist in [("", None), *find_distributions(self.raw, str(self.path)).items()]:
            if dist is not None and path != "data" and not path.startswith("data."):
                continue
            for value in dist.candidates() if dist is not None else [None]:
                cfg = self.resolve({path: value} if dist is not None else {}, check_paths=False)
                variants.setdefault(cfg.data.model_dump_json(), cfg)
        return list(variants.values())


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
        raise SpecError(format_errors(error, tree, file)) from None
    train_pairs = _known_size(cfg.data.train)
    if cfg.theory is None and train_pairs is not None and train_pairs < cfg.train.batch_size:
        raise SpecError(
            f"{file}: train.batch_size: {cfg.train.batch_size} is larger than data.train, which holds at most {train_pairs} pairs"
        )
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


def _anchor(raw: dict, folder: Path) -> dict:
    """The data sources' relative paths and model.pretrained made absolute against `folder`."""
    raw = anchor_paths(raw, folder)
    model = raw.get("model")
    if isinstance(model, dict) and model.get("pretrained") is not None:
        raw["model"] = {**model, "pretrained": anchor_value(model["pretrained"], folder)}
    return raw


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A study file as a dict, with its `extends:` base file (relative to it) merged underneath."""
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise SpecError(f"{file}: cannot read study file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise SpecError(
            f"{file}: line {line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the study file as UTF-8"
        ) from None
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
    # Data paths are relative to the file that names them, wherever the command or a trial runs.
    raw = _anchor(raw, path.parent.absolute())
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
        size = _expanded_size(node, {})
        if size > MAX_VALUES:
            raise SpecError(f"YAML aliases expand the file to {size:,} values, more than the {MAX_VALUES:,} a study file may hold")
        _check_unique_keys(node, [], set())
    return yaml.safe_load(text)


# A study file is a few hundred values; aliases (&a / *a) could make a tiny file expand without
# bound, and validation walks the expanded tree.
MAX_VALUES = 100_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes the tree holds once every alias is expanded; each node counted once (memoized,
    an alias is the same node object), so the walk is linear in the file, whatever it expands to."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a cycle counts once; PyYAML refuses recursive safe-loaded structures later
    if isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        total = 1
    sizes[id(node)] = total
    return total


def _check_unique_keys(node: yaml.Node, path: list[str], seen: set[int]) -> None:
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key in first_line:
                where = ".".join([*path, key])
                raise SpecError(f"{where}: key given twice, on line {first_line[key]} and on line {line}")
            first_line.setdefault(key, line)
            _check_unique_keys(value_node, [*path, key], seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_unique_keys(item, [*path, str(index)], seen)


def _merge(base: dict, override: dict) -> dict:
    """Deep merge of mappings; a section with a different `kind` replaces the base's whole."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and old.get("kind") == value.get("kind") and not parse_distribution(value, ""):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
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
    raw = _anchor(raw, Path.cwd())  # what is still relative came from --set
    _check_space(raw, file, check_paths)
    return StudySpec(path=path, raw=raw, space=find_distributions(raw, file))
