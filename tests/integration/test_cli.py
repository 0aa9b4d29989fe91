import math
import re
import subprocess
import sys

import polars as pl
import pytest

from raygap.cli import main

TINY = """
name: clitest
data:
  train: {kind: synthetic, size: 256}
  eval: {kind: synthetic, size: 64, seed: 1}
  probe: {train: {kind: synthetic, size: 64, seed: 2}, test: {kind: synthetic, size: 32, seed: 3}}
train: {steps: 3, batch_size: 32, eval_interval: 2}
temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_train_writes_trials_and_history(tmp_path, spec_file, capsys):
    out = tmp_path / "results"
    assert main(["train", str(spec_file), "--results", str(out), "--quiet"]) == 0
    assert "modality_gap" in capsys.readouterr().out
    trials = pl.read_parquet(out / "trials.parquet")
    history = pl.read_parquet(out / "history.parquet")
    row = trials.row(0, named=True)
    assert row["status"] == "completed" and row["error"] is None and row["seed"] == 0
    assert row["param.temperature.value"] == pytest.approx(math.sqrt(0.01 * 0.4))  # the range's default
    assert row["temperature"] == pytest.approx(row["param.temperature.value"])
    measures = ("instance_gap", "relative_gap", "alignment", "uniformity_loss", "image_cone", "gap_dimensions", "modality_separability")
    for column in (
        "modality_gap",
        "uniformity",
        "image_to_text_r1",
        "text_to_image_r10",
        "zero_shot_top1",
        "linear_probe_top1",
        "config",
        *measures,
    ):
        assert row[column] is not None, column
    assert 0.5 <= row["modality_separability"] <= 1 and 0 < row["relative_gap"] < 1
    assert history["step"].to_list() == [0, 2, 3] and set(history["trial_id"]) == {row["trial_id"]}
    assert (out / "spec.yaml").exists()
    assert history["gap_pairs"].to_list() == [64, 64, 64]  # eval split smaller than eval.gap_pairs
    assert history["relative_gap"].null_count() == 0 and "modality_separability" not in history.columns  # a final measure
    import pyarrow.parquet as pq

    assert b"gap_pairs random" in pq.read_schema(out / "history.parquet").metadata[b"modality_gap"]

    assert main(["train", str(spec_file), "--results", str(out), "--quiet", "--set", "train.seed=1"]) == 0
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials["seed"].to_list() == [0, 1] and trials["param.train.seed"].to_list() == [None, 1]


def test_bad_spec_fails_fast_and_writes_nothing(tmp_path, spec_file):
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "raygap", "train", str(spec_file), "--results", str(out), "--set", "temperature.value=-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"error: {spec_file}: temperature.value: Input should be greater than 0 (got -1)" in result.stderr
    assert not out.exists()


def test_failed_trial_is_recorded(tmp_path, spec_file, capsys):
    out = tmp_path / "results"
    assert main(["train", str(spec_file), "--results", str(out), "--quiet", "--set", "train.lr=1.0e+30"]) == 1
    assert "TrainingDiverged: loss became nan" in capsys.readouterr().err
    row = pl.read_parquet(out / "trials.parquet").row(0, named=True)
    assert row["status"] == "failed" and row["error"].startswith("TrainingDiverged: loss became nan")


GRID = TINY.replace(
    "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}",
    "temperature: {kind: fixed, value: {grid: [0.02, 0.07, 0.2]}}\nsearch: {sampler: grid}\nresources: {workers_per_trial: 2}",
)


def test_dry_run_lists_every_grid_configuration_and_starts_nothing(tmp_path, capsys):
    spec = tmp_path / "grid.yaml"
    spec.write_text(GRID.replace("train: {kind: synthetic, size: 256}", "train: {kind: files, table: /absent/pairs.csv}"))
    out = tmp_path / "results"
    assert main(["study", "run", str(spec), "--dry-run", "--no-data-check", "--results", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 trial(s) × 1 seed(s), sampler grid" in printed
    for value in ("0.02", "0.07", "0.2"):
        assert f"temperature.value={value}" in printed
    assert "2 worker(s) per trial" in printed
    assert not out.exists()
    import ray

    assert not ray.is_initialized()
    # a dry run that reads the data, and a run, find the missing table before Ray starts
    for dry_run in (["--dry-run"], []):
        assert main(["study", "run", str(spec), *dry_run, "--results", str(out)]) == 2
        assert "data.train.table: data table not found: /absent/pairs.csv" in capsys.readouterr().err
        assert not out.exists() and not ray.is_initialized()


def test_a_study_reads_tables_relative_to_its_file_from_another_working_folder(tmp_path, save_jpegs):
    """A trial runs in its own folder: the study file's relative paths must not depend on it."""
    save_jpegs(tmp_path / "project" / "mydata", [(40, 48)] * 16)
    study = tmp_path / "project" / "studies" / "own.yaml"
    study.parent.mkdir()
    study.write_text(
        "data:\n  train: {kind: files, table: ../mydata/pairs.csv}\n  eval: {kind: files, table: ../mydata/pairs.csv}\n"
        "  probe: null\ntrain: {steps: 2, batch_size: 8, eval_interval: 2}\nsearch: {trials: 1, objectives: {modality_gap: min}}\n"
        "artifacts: {weights: best}\n"
    )
    (tmp_path / "elsewhere").mkdir()
    command = [sys.executable, "-m", "raygap", "study", "run", "../project/studies/own.yaml", "--results", "out", "--no-dashboard"]
    result = subprocess.run(command, cwd=tmp_path / "elsewhere", capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "own: seed runs: 1 completed"
    trials = pl.read_parquet(tmp_path / "elsewhere" / "out" / "trials.parquet")
    assert trials["status"].to_list() == ["completed"] and trials["error"].to_list() == [None]
    # a one-worker trial (in the Tune trial's process) keeps its best weights too
    assert (tmp_path / "elsewhere" / "out" / "artifacts" / trials["trial_id"][0] / "seed0" / "weights.pt").is_file()
    # the folder keeps absolute paths: a resume from any folder reads the same table
    assert f"table: {tmp_path / 'project' / 'mydata' / 'pairs.csv'}\n" in (tmp_path / "elsewhere" / "out" / "spec.yaml").read_text()


def test_status_of_a_running_study_shows_its_trials_before_any_seed_finished(tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text(
        TINY.replace("train: {steps: 3, batch_size: 32, eval_interval: 2}", "train: {steps: 400, batch_size: 32, eval_interval: 20}")
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "raygap",
        "study",
        "run",
        str(spec),
        "--results",
        str(out),
        "--no-dashboard",
        "--set",
        "search.trials=1",
    ]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = None
        while run.poll() is None and seen is None:
            status = subprocess.run(
                [sys.executable, "-m", "raygap", "study", "status", str(out)], capture_output=True, text=True, timeout=60
            )
            if status.returncode == 0 and "running" in status.stdout:
                seen = status.stdout
        printed, _ = run.communicate(timeout=300)
    finally:
        run.kill()
    assert seen is not None, printed[-3000:]
    lines = seen.splitlines()
    assert lines[0].startswith(f"{out}: 1 trial(s) running (as of ") and lines[-1] == f"{out}: no seed has finished yet"
    assert re.fullmatch(
        r"  running \w+ seed 0 step \d+/400: modality_gap \d\.\d{3}(, mean_r1 \d\.\d{3})? \(temperature\.value=[0-9.e-]+\)", lines[1]
    ), lines
    assert run.returncode == 0 and not (out / "running.json").exists()  # removed when the study ends


def test_study_refuses_an_existing_study_folder(tmp_path, spec_file, capsys):
    out = tmp_path / "results"
    assert main(["train", str(spec_file), "--results", str(out), "--quiet"]) == 0
    before = (out / "trials.parquet").read_bytes()
    assert main(["study", "run", str(spec_file), "--results", str(out)]) == 2
    assert "already holds a study; pass --resume to continue it, --overwrite to replace it" in capsys.readouterr().err
    assert (out / "trials.parquet").read_bytes() == before
    # Resuming with other settings would mix two studies in one folder.
    assert main(["study", "run", str(spec_file), "--results", str(out), "--resume", "--set", "train.steps=5"]) == 2
    assert "holds a study run with a different spec (differs at train.steps)" in capsys.readouterr().err
    import ray

    assert (out / "trials.parquet").read_bytes() == before and not ray.is_initialized()


def test_status_of_a_folder_without_trials(tmp_path, capsys):
    assert main(["study", "status", str(tmp_path)]) == 2
    assert "no trials.parquet or trials/ parts here" in capsys.readouterr().err


def test_the_dashboard_line_says_where_the_token_is_never_the_token(monkeypatch):
    from raygap.study.cluster import dashboard_line

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    assert dashboard_line("127.0.0.1:8265") == (
        "Ray dashboard: http://127.0.0.1:8265 (it asks for the cluster's token: `ray get-auth-token` prints it; "
        "it is kept in ~/.ray/auth_token)"
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert dashboard_line("127.0.0.1:8265") == "Ray dashboard: http://127.0.0.1:8265"
    assert dashboard_line(None) == "Ray dashboard: off"


def test_study_compact_folds_the_parts_a_killed_study_left(tmp_path, capsys):
    from raygap import results
    from raygap.seed_record import SeedRecord

    folder = results.ResultsFolder(tmp_path / "killed")
    for i in range(3):
        seed = SeedRecord(f"t{i}", 0, {"x": float(i)}, {}, "completed", {"modality_gap": 0.1}, None, [{"step": 0}, {"step": 5}])
        results.record_seed(folder, seed)
    assert main(["study", "compact", str(tmp_path / "killed")]) == 0
    out = capsys.readouterr().out
    assert "trials.parquet: 3 part(s) folded in" in out and "history.parquet: 3 part(s) folded in" in out
    assert pl.read_parquet(tmp_path / "killed" / "trials.parquet").height == 3
    assert pl.read_parquet(tmp_path / "killed" / "history.parquet").height == 6
    assert main(["study", "compact", str(tmp_path / "nothing")]) == 2
