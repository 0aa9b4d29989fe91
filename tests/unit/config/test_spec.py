import math
from pathlib import Path

import pytest

from raygap.config import SpecError, load_spec

STUDIES = Path(__file__).resolve().parents[3] / "studies"


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_smoke_study_loads_with_concrete_values():
    spec = load_spec(STUDIES / "smoke.yaml")
    cfg = spec.defaults()
    assert spec.space == {}
    assert cfg.name == "smoke" and cfg.model.name == "tiny-vit" and cfg.temperature.kind == "learned"


def test_empty_file_gets_defaults_and_the_file_name(tmp_path):
    cfg = load_spec(write(tmp_path, "", "quick.yaml")).defaults()
    assert cfg.name == "quick" and cfg.train.steps == 300 and cfg.swap.kind == "none"


def test_broken_specs_name_file_key_and_expectation(tmp_path, broken):
    text, expected = broken  # conftest's BROKEN, one run each
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert f"{path}: {expected}" in str(error.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(SpecError, match=r"missing.yaml: cannot read study file"):
        load_spec(tmp_path / "missing.yaml")


def test_search_space_defaults_and_resolve(tmp_path):
    path = write(
        tmp_path,
        "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}\n"
        "swap: {kind: hard, p: {grid: [1.0, 0.1, 0.01]}}\n"
        "train: {steps: {int: [10, 21]}, lr: {uniform: [0.001, 0.003]}}\n",
    )
    spec = load_spec(path)
    assert set(spec.space) == {"temperature.value", "swap.p", "train.steps", "train.lr"}
    cfg = spec.defaults()
    assert cfg.temperature.value == pytest.approx(math.sqrt(0.01 * 0.4))  # geometric midpoint
    assert cfg.swap.p == 1.0  # first grid value
    assert cfg.train.steps == 15 and cfg.train.lr == pytest.approx(0.002)
    resolved = spec.resolve({"temperature.value": 0.2, "swap.p": 0.01})
    assert resolved.temperature.value == 0.2 and resolved.swap.p == 0.01 and resolved.train.steps == 15


def test_conditional_choice_of_whole_sections(tmp_path):
    path = write(
        tmp_path,
        "temperature: {choice: [{kind: fixed, value: {loguniform: [0.01, 0.4]}}, {kind: schedule, start: 0.01, end: 0.05}]}\n",
    )
    spec = load_spec(path)
    assert spec.defaults().temperature.kind == "fixed"
    assert spec.resolve({"temperature": {"kind": "schedule", "start": 0.01, "end": 0.03}}).temperature.end == 0.03
    bad = write(tmp_path, "temperature: {choice: [{kind: fixed, value: 0.1}, {kind: schedule, start: 0.01}]}\n", "bad.yaml")
    with pytest.raises(SpecError, match=r"bad.yaml: temperature.end: required key is missing"):
        load_spec(bad)


def test_overrides(tmp_path):
    path = write(tmp_path, "temperature: {kind: learned}\n")
    cfg = load_spec(path, ["temperature.kind=fixed", "temperature.value=0.04", "train.steps=7"]).defaults()
    assert cfg.temperature.kind == "fixed" and cfg.temperature.value == 0.04 and cfg.train.steps == 7
    with pytest.raises(SpecError, match=r"--set expects key.path=value, got 'train.steps'"):
        load_spec(path, ["train.steps"])
    with pytest.raises(SpecError, match=r"study.yaml: train.stepz: unknown key"):
        load_spec(path, ["train.stepz=3"])
    # a whole section replaced at once (switching kinds drops the old kind's keys)
    learned = write(tmp_path, "temperature: {kind: learned, init: 0.05}\n", "learned.yaml")
    with pytest.raises(SpecError, match=r"temperature.init: unknown key; expected one of kind, value"):
        load_spec(learned, ["temperature.kind=fixed", "temperature.value=0.04"])
    assert load_spec(learned, ["temperature={kind: fixed, value: 0.04}"]).defaults().temperature.value == 0.04


def test_dry_validation_can_skip_missing_data(tmp_path):
    path = write(tmp_path, "data: {train: {kind: files, table: /nowhere/pairs.csv}}\n")
    with pytest.raises(SpecError):
        load_spec(path)
    assert str(load_spec(path, check_paths=False).resolve(check_paths=False).data.train.table) == "/nowhere/pairs.csv"


def test_extends_merges_a_base_file(tmp_path):
    write(tmp_path, "train: {steps: 50, lr: 0.003}\ntemperature: {kind: learned, init: 0.05}\nswap: {kind: hard, p: 0.5}\n", "base.yaml")
    path = write(
        tmp_path,
        "extends: base.yaml\nname: child\ntrain: {steps: 7}\ntemperature: {kind: fixed, value: 0.1}\n"
        "swap: {kind: hard, p: {grid: [0.1, 1.0]}}\n",
    )
    spec = load_spec(path)
    cfg = spec.defaults()
    assert (cfg.name, cfg.train.steps, cfg.train.lr) == ("child", 7, 0.003)  # merged key by key
    assert cfg.temperature.kind == "fixed"  # another kind replaces the section (no stray init)
    assert set(spec.space) == {"swap.p"} and cfg.swap.p == 0.1


def test_extends_errors_name_the_file(tmp_path):
    path = write(tmp_path, "extends: missing.yaml\n")
    with pytest.raises(SpecError, match=r"study.yaml: extends: base study file not found: .*missing.yaml"):
        load_spec(path)
    loop = write(tmp_path, "extends: study.yaml\n")
    with pytest.raises(SpecError, match=r"extends: study.yaml includes itself"):
        load_spec(loop)


def test_relative_data_paths_start_from_the_study_file_and_set_values_from_the_working_folder(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    for folder in (project / "studies", project / "data", project / "shared", elsewhere / "mine"):
        folder.mkdir(parents=True)
    for table in (project / "data" / "a.csv", project / "data" / "b.csv", elsewhere / "mine" / "eval.csv"):
        table.write_text("filepath,title\n")
    write(project / "shared", "data: {probe: null, mmvp: {kind: mmvp, root: ../data}}\n", "base.yaml")
    study = write(
        project / "studies",
        "extends: ../shared/base.yaml\ndata: {train: {kind: files, table: {choice: [../data/a.csv, ../data/b.csv]}, root: ../data}}\n",
    )
    monkeypatch.chdir(elsewhere)
    spec = load_spec(study, ["data.eval={kind: files, table: mine/eval.csv}"])
    cfg = spec.defaults()
    assert cfg.data.train.table == project / "data" / "a.csv"
    assert cfg.data.train.root == project / "data"
    assert cfg.data.mmvp.root == project / "data"  # a base file's paths start from the base
    assert cfg.data.eval.table == elsewhere / "mine" / "eval.csv"
    assert [variant.data.train.table.name for variant in spec.data_variants()] == ["a.csv", "b.csv"]
    # what the results folder keeps (spec.yaml) reads the same files from anywhere
    monkeypatch.chdir(tmp_path)
    assert (
        load_spec(study, ["data.eval={kind: files, table: elsewhere/mine/eval.csv}"]).defaults().data.eval.table
        == elsewhere / "mine" / "eval.csv"
    )


def test_every_path_key_of_every_source_is_anchored():
    import typing

    from raygap.config.data import PATH_KEYS, DataSource, MmvpSource

    sources = [*typing.get_args(typing.get_args(DataSource)[0]), MmvpSource]
    for source in sources:
        kind = source.model_fields["kind"].default
        paths = {name for name, info in source.model_fields.items() if "Path" in str(info.annotation) and name != "decoded_cache"}
        expected = paths | ({"shards"} if kind == "webdataset" else set())
        assert set(PATH_KEYS.get(kind, ())) == expected, kind
