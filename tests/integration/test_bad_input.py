"""Bad input through `raygap study run`: the exact message (file, key, expectation), exit code 2,
nothing written and no Ray cluster started. The spec-level cases of test_spec run here too."""

import os
import subprocess
import sys

import pytest
import ray
from PIL import Image

from raygap.cli import main

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
    (
        "resources: {placement: SIDEWAYS}",
        None,
        [],
        "resources.placement: Input should be 'PACK', 'SPREAD', 'STRICT_PACK' or 'STRICT_SPREAD'",
    ),
    ("search: {trials: 0}", None, [], "search.trials: Input should be greater than or equal to 1 (got 0)"),
    (
        "search: {objectives: {modality_gapp: min}}",
        None,
        [],
        "search.objectives: unknown objective 'modality_gapp'; metrics: modality_gap, uniformity",
    ),
    (
        BASE,
        "filepath,caption\nimg/a.png,a cat\n",
        ["a.png"],
        "data.train: {table}: missing column(s) ['title']; the table has ['filepath', 'caption']",
    ),
    (BASE, "filepath,title\n", [], "data.train: {table}: the table has no rows"),
    (BASE, "filepath,title\nimg/a.png,a cat\nimg/b.png,a dog\n", ["a.png"], "data.train: {table}: 1 image file(s) not found, e.g. "),
    (
        BASE,
        "filepath,title\n../../etc/passwd,a secret\n",
        [],
        "data.train: {table}: image path '../../etc/passwd' leads outside the root folder",
    ),
    (
        BASE,
        "filepath,title\nimg/a.png,a cat\nimg/bad.png,a dog\n",
        ["a.png", "bad.png"],
        "data.train: {table}: 1 image file(s) cannot be read as images, e.g. ",
    ),
    (
        BASE.replace("TABLE", "TABLE, bad_images: skip"),
        "filepath,title\nimg/bad.png,a dog\n",
        ["bad.png"],
        "data.train: {table}: none of its 1 image file(s) can be read as images",
    ),
    (
        BASE.replace("TABLE", "TABLE, bad_images: ignore"),
        "filepath,title\nimg/a.png,a cat\n",
        ["a.png"],
        "data.train.bad_images: Input should be 'fail' or 'skip' (got 'ignore')",
    ),
]


def run_cli(tmp_path, study_text: str, capsys) -> tuple[int, str, str]:
    spec = tmp_path / "study.yaml"
    spec.write_text(study_text)
    out = tmp_path / "results"
    code = main(["study", "run", str(spec), "--results", str(out), "--no-dashboard"])
    assert not out.exists(), "a rejected study wrote to its results folder"
    assert not ray.is_initialized(), "a rejected study started Ray"
    return code, capsys.readouterr().err, str(spec)


def test_broken_study_files(tmp_path, capsys, broken):
    text, expected = broken  # conftest's BROKEN, one run each
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


@pytest.mark.parametrize("uri", ["file:/tmp/mlruns", "./mlruns", "/tmp/mlruns"])
def test_mlflow_file_store_is_refused_before_ray(tmp_path, capsys, monkeypatch, uri):
    """MLflow 3 refuses its file store once Tune sets up its logger; raygap says so first."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    code, err, spec = run_cli(tmp_path, f"search: {{trials: 1}}\ntracking: {{mlflow: {{tracking_uri: '{uri}'}}}}", capsys)
    assert code == 2
    assert (
        f"{spec}: tracking.mlflow.tracking_uri: {uri!r} is MLflow's file store, which MLflow refuses unless MLFLOW_ALLOW_FILE_STORE=true"
        in err
    )


def test_mlflow_file_store_passes_where_mlflow_allows_it(monkeypatch):
    from raygap.config.tracking import TrackingSpec
    from raygap.study.preflight import check_tracking

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_tracking(TrackingSpec(mlflow={"tracking_uri": "file:/tmp/mlruns"}), "study.yaml")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    for uri in ("sqlite:///mlflow.db", "http://127.0.0.1:5000", "databricks"):
        check_tracking(TrackingSpec(mlflow={"tracking_uri": uri}), "study.yaml")


def test_a_study_file_that_is_not_utf8(tmp_path, capsys):
    spec = tmp_path / "study.yaml"
    spec.write_bytes("search: {trials: 1}\nname: caf".encode() + b"\xe9\n")
    out = tmp_path / "results"
    assert main(["study", "run", str(spec), "--results", str(out), "--no-dashboard"]) == 2
    assert f"{spec}: line 2: not UTF-8 text (byte 0xe9); save the study file as UTF-8" in capsys.readouterr().err
    assert not out.exists() and not ray.is_initialized()


def test_a_key_given_twice(tmp_path, capsys):
    text = "search:\n  trials: 1\n  objectives: {modality_gap: min,\n               modality_gap: max}\n"
    code, err, spec = run_cli(tmp_path, text, capsys)
    assert code == 2 and f"{spec}: search.objectives.modality_gap: key given twice, on line 3 and on line 4" in err


@pytest.mark.parametrize(
    "data,expected",
    [
        ("{train: {kind: synthetic, size: 100}}", "train.batch_size: 128 is larger than data.train, which holds at most 100 pairs"),
        (
            "{train: {kind: synthetic, size: 60, captions_per_image: 2}}",
            "train.batch_size: 128 is larger than data.train, which holds at most 120 pairs",
        ),
        ("{train: {kind: files, table: TABLE}}", "train.batch_size: 128 is larger than data.train, which holds 2 pairs"),
    ],
    ids=["synthetic", "captions", "table"],
)
def test_a_batch_larger_than_the_training_data(tmp_path, capsys, data, expected):
    data = data.replace("TABLE", table(tmp_path, "filepath,title\nimg/a.png,a cat\nimg/b.png,a dog\n", ["a.png", "b.png"]))
    code, err, spec = run_cli(tmp_path, f"data: {data}\nsearch: {{trials: 1}}\n", capsys)
    assert code == 2 and f"{spec}: {expected}" in err, err


def test_a_labelled_table_needs_no_caption_column(tmp_path, capsys):
    from raygap.config import FilesSource, load_spec
    from raygap.data import check_tables, read_file_source

    labelled = table(tmp_path, "filepath,label\nimg/a.png,cat\nimg/b.png,dog\n", ["a.png", "b.png"])
    found = read_file_source(FilesSource(table=labelled, label_column="label"))
    assert found.captions == ["a photo of a cat.", "a photo of a dog."] and found.class_names == ["cat", "dog"]
    # As probe splits it passes the checks that run before Ray starts.
    probe = (
        f"{{train: {{kind: files, table: {labelled}, label_column: label}}, test: {{kind: files, table: {labelled}, label_column: label}}}}"
    )
    spec = tmp_path / "probe.yaml"
    spec.write_text(f"data: {{probe: {probe}}}\n")
    check_tables(load_spec(spec).defaults(), str(spec))


def test_the_checks_before_ray_read_tables_without_torch(tmp_path):
    """Tune's head process checks every file-backed source; it must not import torch to do so."""
    labelled = table(tmp_path, "filepath,label\nimg/a.png,cat\nimg/b.png,cat\nimg/bad.png,dog\n", ["a.png", "b.png", "bad.png"])
    spec = tmp_path / "files.yaml"
    spec.write_text(
        f"data: {{train: {{kind: files, table: {labelled}, label_column: label, bad_images: skip}}}}\ntrain: {{batch_size: 2}}\n"
    )
    code = (
        "import sys; from raygap.config import load_spec; from raygap.data import check_tables; "
        f"check_tables(load_spec({str(spec)!r}).defaults(), 'files.yaml'); print('torch' in sys.modules, 'open_clip' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"] and "leaving out 1 unreadable image(s)" in run.stderr


def test_a_probe_table_without_labels(tmp_path, capsys):
    captioned = table(tmp_path, "filepath,title\nimg/a.png,a cat\n", ["a.png"])
    probe = f"{{train: {{kind: files, table: {captioned}}}, test: {{kind: synthetic, size: 32}}}}"
    code, err, spec = run_cli(tmp_path, f"data: {{probe: {probe}}}\nsearch: {{trials: 1}}\n", capsys)
    assert code == 2
    assert f"{spec}: data.probe.train: a probe split needs a class label per image; name the table's label column (label_column)" in err, (
        err
    )


def finished_study(folder_location: str, tmp_path, name: str = "done"):
    """A results folder (path or URI) holding a one-trial study whose trial has finished."""
    from raygap import results

    folder = results.ResultsFolder(folder_location)
    folder.write_text(results.SPEC, f"name: {name}\nsearch: {{trials: 1}}\n")
    row = results.trial_row("t0", 0, {}, {}, "completed", {"modality_gap": 0.5, "mean_r1": 0.2})
    folder.append(results.TRIALS, [row])
    folder.compact(results.TRIALS)  # as a study leaves it when it ends
    folder.remove_empty_parts_folders()
    return folder


def test_the_python_api_keeps_the_folder_rules(tmp_path):
    from raygap.config import SpecError, load_spec
    from raygap.study import run_study

    folder = finished_study(str(tmp_path / "results"), tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "results").iterdir()}
    spec = tmp_path / "other.yaml"
    spec.write_text("name: other\nsearch: {trials: 1}\n")
    with pytest.raises(SpecError, match="already holds a study; pass --resume to continue it, --overwrite to replace it"):
        run_study(load_spec(spec), folder)
    with pytest.raises(SpecError, match=r"holds a study run with a different spec \(differs at name\)"):
        run_study(load_spec(spec), folder, resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "results").iterdir()} == before
    assert not ray.is_initialized()


def test_resume_and_status_take_a_uri(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Optuna database of a URI folder lives under ./results/<name>
    uri = f"file://{tmp_path}/remote"
    finished_study(uri, tmp_path)
    assert main(["study", "status", uri]) == 0
    assert main(["study", "resume", uri, "--no-dashboard"]) == 0
    assert "done: all 1 trial(s) already finished; nothing to resume" in capsys.readouterr().out
    assert main(["study", "resume", f"file://{tmp_path}/nowhere"]) == 2
    assert f"file://{tmp_path}/nowhere: no spec.yaml here; not a raygap study folder" in capsys.readouterr().err
    assert not ray.is_initialized()


def test_a_folder_a_live_study_runs_on_is_refused(tmp_path, capsys):
    """Another live driver on the folder is a runtime state, not a spec error: exit 1, no Ray."""
    from raygap.study.cluster import CLUSTER_RECORD, record_cluster

    spec, out = tmp_path / "study.yaml", tmp_path / "results"
    spec.write_text("search: {trials: 1}\n")
    out.mkdir()
    record_cluster(out / CLUSTER_RECORD, None)  # names this (live) process as the study's driver
    assert main(["study", "run", str(spec), "--results", str(out), "--no-dashboard"]) == 1
    assert f"error: {out}: a study is still running on this folder (pid {os.getpid()})" in capsys.readouterr().err
    assert not ray.is_initialized()
