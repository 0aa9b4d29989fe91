"""Bad input through `raygap study run`: the exact message (file, key, expectation), exit code 2,
nothing written and no Ray cluster started. The spec-level cases of test_spec run here too."""

import pytest
import ray
from PIL import Image

from raygap.cli import main
from test_spec import BROKEN

BASE = "data: {train: {kind: files, table: TABLE}}\nsearch: {trials: 1}\n"


def table(tmp_path, text: str, images: list[str] = ()) -> str:
    (tmp_path / "img").mkdir(exist_ok=True)
    for name in images:  # a real image, or a corrupt one for names that start with "bad"
        if name.startswith("bad"):
            (tmp_path / "img" / name).write_bytes(b"not an image")
        else:
            Image.new("RGB", (8, 8)).save(tmp_path / "img" / name)
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    return str(path)


# (study text, pairs.csv text or None, images to create, expected message after "<file>: ")
STUDY_CASES = [
    ("resources: {workers_per_trial: 0}", None, [], "resources.workers_per_trial: Input should be greater than or equal to 1 (got 0)"),
    ("resources: {use_gpu: true}", None, [], "resources: a trial needs 1 GPUs but the cluster has 0"),
    ("resources: {placement: SIDEWAYS}", None, [], "resources.placement: Input should be 'PACK', 'SPREAD', 'STRICT_PACK' or 'STRICT_SPREAD'"),
    ("search: {trials: 0}", None, [], "search.trials: Input should be greater than or equal to 1 (got 0)"),
    ("search: {objectives: {modality_gapp: min}}", None, [], "search: unknown objective(s) ['modality_gapp']; metrics: modality_gap, uniformity"),
    (BASE, "filepath,caption\nimg/a.png,a cat\n", ["a.png"], "data.train: {table}: missing column(s) ['title']; the table has ['filepath', 'caption']"),
    (BASE, "filepath,title\n", [], "data.train: {table}: the table has no rows"),
    (BASE, "filepath,title\nimg/a.png,a cat\nimg/b.png,a dog\n", ["a.png"], "data.train: {table}: 1 image file(s) not found, e.g. "),
    (BASE, "filepath,title\n../../etc/passwd,a secret\n", [], "data.train: {table}: image path '../../etc/passwd' leads outside the root folder"),
    (BASE, "filepath,title\nimg/a.png,a cat\nimg/bad.png,a dog\n", ["a.png", "bad.png"],
     "data.train: {table}: 1 image file(s) cannot be read as images, e.g. "),
    (BASE.replace("TABLE", "TABLE, bad_images: skip"), "filepath,title\nimg/bad.png,a dog\n", ["bad.png"],
     "data.train: {table}: none of its 1 image file(s) can be read as images"),
    (BASE.replace("TABLE", "TABLE, bad_images: ignore"), "filepath,title\nimg/a.png,a cat\n", ["a.png"],
     "data.train.bad_images: Input should be 'fail' or 'skip' (got 'ignore')"),
]


def run_cli(tmp_path, study_text: str, capsys) -> tuple[int, str, str]:
    spec = tmp_path / "study.yaml"
    spec.write_text(study_text)
    out = tmp_path / "results"
    code = main(["study", "run", str(spec), "--results", str(out), "--no-dashboard"])
    assert not out.exists(), "a rejected study wrote to its results folder"
    assert not ray.is_initialized(), "a rejected study started Ray"
    return code, capsys.readouterr().err, str(spec)


@pytest.mark.parametrize("text,expected", BROKEN, ids=[e.split(":")[0] for _, e in BROKEN])
def test_broken_study_files(tmp_path, capsys, text, expected):
    code, err, spec = run_cli(tmp_path, text, capsys)
    assert code == 2 and f"{spec}: {expected}" in err


@pytest.mark.parametrize("text,csv,images,expected", STUDY_CASES, ids=[c[3].split(":")[0] + str(i) for i, c in enumerate(STUDY_CASES)])
def test_broken_studies_and_data(tmp_path, capsys, text, csv, images, expected):
    if csv is not None:
        text = text.replace("TABLE", table(tmp_path, csv, images))
    code, err, spec = run_cli(tmp_path, text, capsys)
    assert code == 2
    assert f"{spec}: {expected.format(table=tmp_path / 'pairs.csv')}" in err, err


def test_existing_results_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "trials.parquet").write_bytes(b"PAR1 previous study")
    spec = tmp_path / "study.yaml"
    spec.write_text("search: {trials: 1}")
    assert main(["study", "run", str(spec), "--results", str(out)]) == 2
    assert "already holds a study; pass --resume to continue it, --overwrite to replace it" in capsys.readouterr().err
    assert (out / "trials.parquet").read_bytes() == b"PAR1 previous study" and [p.name for p in out.iterdir()] == ["trials.parquet"]
    assert not ray.is_initialized()
