"""Inputs a study used to accept and then fail on after Ray started (resource plans that cannot
run, trackers that refuse their settings, folders that cannot be written, early stopping that
cannot mean what it says, a table in a `choice` branch): through `raygap study run`, each is exit
2 naming the file and key, with no Ray started and nothing written."""

import socket

import pytest
import ray
from PIL import Image

from raygap.cli import main

STUDY = "name: refused\ntrain: {steps: 20, batch_size: 8}\nsearch: {trials: 2}\n"


def refused(tmp_path, capsys, *settings: str, results: str | None = None) -> str:
    """Run the study with `settings`; assert exit 2, no Ray, nothing written; return stderr."""
    spec = tmp_path / "study.yaml"
    spec.write_text(STUDY)
    out = results or str(tmp_path / "out")
    args = ["study", "run", str(spec), "--results", out, "--no-dashboard"]
    for setting in settings:
        args += ["--set", setting]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert not ray.is_initialized(), "a refused study started Ray"
    assert not (tmp_path / "out").exists(), "a refused study wrote its results folder"
    assert not (tmp_path / "results").exists(), "a refused study wrote a results folder in the working directory"
    return err.replace(f"error: {spec}: ", "")


PLANS = [
    (
        ["resources.workers_per_trial=50", "train.batch_size=100"],
        "resources.workers_per_trial: 50 workers would get 0.04 CPU each, under the 0.25 a worker needs; "
        "the cluster's 2 CPU fit at most 7 worker(s) per trial",
    ),
    (
        ["resources={workers_per_trial: 2, placement: STRICT_SPREAD}"],
        "resources.placement: STRICT_SPREAD puts each of the 2 workers on a node of its own, but the cluster has 1 node(s)",
    ),
    (["model.name=ViT-bigG-14"], "model.name: a ViT-bigG-14 worker needs at least 41.1 GB (its process, and 16 bytes per parameter"),
]


@pytest.mark.parametrize("settings,expected", PLANS, ids=["50-workers", "strict-spread", "model-too-large"])
def test_a_plan_this_machine_cannot_run(tmp_path, capsys, monkeypatch, settings, expected):
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # the figures of a 2-core machine on any machine
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("Memory", (), {"available": 24e9})())
    assert expected in refused(tmp_path, capsys, *settings)


EARLY_STOPS = [
    (
        "search.early_stop={kind: asha}",
        "search: early_stop.kind 'asha' ranks trials on one objective, but the study has 2 (modality_gap, mean_r1)",
    ),
    ("search.early_stop={kind: pareto, margin: .inf}", "search.early_stop.margin: Input should be a finite number (got inf)"),
    (
        "search.early_stop={kind: pareto, margin: 0.1, grace_steps: 1000000000}",
        "search.early_stop.grace_steps: 1000000000 is not below train.steps (20), so no trial could ever be stopped",
    ),
]


@pytest.mark.parametrize("setting,expected", EARLY_STOPS, ids=["asha-two-objectives", "margin-inf", "grace-past-the-end"])
def test_early_stopping_that_cannot_mean_what_it_says(tmp_path, capsys, setting, expected):
    assert expected in refused(tmp_path, capsys, setting)


def test_tracking_settings_a_tracker_would_refuse(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        (
            "tracking.mlflow.tracking_uri=bogus://x",
            "tracking.mlflow.tracking_uri: 'bogus://x': MLflow has no store for 'bogus'; expected one of ",
        ),
        (
            f"tracking.mlflow.tracking_uri=sqlite:///{a_file}/m.db",
            f"tracking.mlflow.tracking_uri: 'sqlite:///{a_file}/m.db': {a_file} is a file, not a folder",
        ),
        (f"tracking.wandb={{dir: {a_file}/wandb}}", f"tracking.wandb.dir: {a_file} is a file, not a folder"),
        (
            "tracking.wandb={mode: online}",
            "tracking.wandb.mode: online needs a W&B API key (`wandb login`, or WANDB_API_KEY) and none is set",
        ),
    ]
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(a_file))  # an empty netrc: no `wandb login`
    for setting, expected in cases:
        assert expected in refused(tmp_path, capsys, setting)


def image_table(tmp_path, name: str, images: bool) -> str:
    """A files table of 16 pairs whose paths are images, or text files that are not."""
    folder = tmp_path / name
    folder.mkdir()
    for i in range(16):
        if images:
            Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(folder / f"{i}.png")
        else:
            (folder / f"{i}.png").write_text("not an image")
    table = tmp_path / f"{name}.csv"
    table.write_text("filepath,title\n" + "".join(f"{name}/{i}.png,picture {i}\n" for i in range(16)))
    return str(table)


def test_every_table_a_choice_may_pick_is_read(tmp_path, capsys):
    good, bad = image_table(tmp_path, "good", True), image_table(tmp_path, "bad", False)
    err = refused(tmp_path, capsys, f"data.train={{choice: [{{kind: files, table: {good}}}, {{kind: files, table: {bad}}}]}}")
    assert f"data.train: {bad}: 16 image file(s) cannot be read as images" in err


def test_a_decoded_copy_folder_that_cannot_be_made(tmp_path, capsys):
    good = image_table(tmp_path, "good", True)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    err = refused(tmp_path, capsys, f"data.train={{kind: files, table: {good}, decoded_cache: {a_file}/cache}}")
    assert f"data.train.decoded_cache: {a_file} is a file, not a folder (the decoded copy's folder is {a_file}/cache)" in err


def test_a_results_folder_that_cannot_be_written(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert f"error: {a_file}/out: {a_file} is a file, not a folder" in refused(tmp_path, capsys, results=f"{a_file}/out")
    assert "error: bogus://bucket/x: Unrecognized filesystem type in URI" in refused(tmp_path, capsys, results="bogus://bucket/x")


def test_the_dashboard_on_a_port_it_cannot_have(tmp_path, capsys):
    from raygap import results

    folder = results.ResultsFolder(tmp_path / "study")
    folder.write_text(results.SPEC, "name: study\n")
    (tmp_path / "study" / "optuna.log").write_text("")
    assert main(["dashboard", str(tmp_path / "study"), "--port", "70000"]) == 2
    assert "error: --port: 70000 is not a port number; expected 1 to 65535" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["dashboard", str(tmp_path / "study"), "--port", str(port)]) == 2
    assert f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use)" in capsys.readouterr().err
