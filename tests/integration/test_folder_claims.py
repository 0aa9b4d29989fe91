"""One folder, one study, one spec: two runs started on one new folder do not both run, URI
folders of one study name do not share an Optuna study, and a spec.yaml edited after the run is
refused on resume. Real processes, real Ray, real files."""

import json
import os
import subprocess
import sys
import time

import polars as pl
import pytest
import ray

from raygap.cli import main
from raygap.study import folder as study_folder

THEORY = """name: claimed
theory: {n: 8, d: 16, delta: 0.5, init: matched, time: 20, dt: 0.1, records: 5}
temperature: {kind: fixed, value: {grid: [0.3, 0.5, 0.7]}}
search: {sampler: grid, objectives: {modality_gap: min}}
"""


def test_two_runs_on_one_new_folder_one_runs_the_other_is_refused(tmp_path):
    spec = tmp_path / "claimed.yaml"
    spec.write_text(THEORY)
    out = tmp_path / "race"
    command = [sys.executable, "-m", "raygap", "study", "run", str(spec), "--results", str(out), "--no-dashboard"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    first, second = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2))
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in (first, second))
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    assert f"{out}: another raygap process (" in outcomes[1][1] and "is running a study on this folder" in outcomes[1][1]
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == 3 and sorted(trials["param.temperature.value"].to_list()) == [0.3, 0.5, 0.7]
    assert not (out / study_folder.CLAIM).exists()  # released when the run ended

    # The stored spec edited after the run: resume names what changed and runs nothing.
    stored = out / "spec.yaml"
    stored.write_text(stored.read_text().replace("time: 20", "time: 10"))
    assert main(["study", "resume", str(out), "--no-dashboard"]) == 2
    assert not ray.is_initialized()


def test_a_resume_of_an_edited_spec_names_what_changed(tmp_path, capsys):
    from raygap import results

    folder = results.ResultsFolder(tmp_path / "edited")
    folder.write_text(results.SPEC, "name: edited\ntrain: {steps: 20}\n")
    folder.write_text(results.RUN, json.dumps(study_folder.spec_record({"name": "edited", "train": {"steps": 40}})))
    folder.append(results.TRIALS, [results.trial_row("a", 0, {}, {}, "completed", {"modality_gap": 0.1, "mean_r1": 0.2})])
    assert main(["study", "resume", str(folder.path), "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert f"{folder.path}: spec.yaml was edited after the study ran (differs at train.steps)" in err
    assert not ray.is_initialized()


def test_a_claim_held_by_a_live_process_refuses_and_a_dead_ones_is_taken_over(tmp_path, capsys):
    spec = tmp_path / "claimed.yaml"
    spec.write_text(THEORY)
    out = tmp_path / "held"
    with study_folder.claimed(out):
        assert main(["study", "run", str(spec), "--results", str(out), "--no-dashboard"]) == 1
        assert f"pid {os.getpid()}" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [study_folder.CLAIM]  # nothing else written
    assert not out.exists()  # the claim made the folder and left it empty: removed
    assert not ray.is_initialized()
    # A claim left by a killed process (a pid that no longer runs) is taken over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out.mkdir()
    (out / study_folder.CLAIM).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "created": time.time() - 5}))
    with study_folder.claimed(out):
        owner = json.loads((out / study_folder.CLAIM).read_text())
        assert owner["pid"] == os.getpid()


def test_uri_folders_of_one_study_name_keep_separate_optuna_files(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow.fs")
    from pyarrow import fs as pafs

    from raygap import results

    monkeypatch.chdir(tmp_path)
    # Two object-store folders of one study name beside a local one: file:// URIs marked as not local
    # stand in for two buckets, so no network is needed.
    folders = [results.ResultsFolder(tmp_path / "local" / "tiny")]
    for name in ("x", "z"):
        uri_folder = results.ResultsFolder(f"file://{tmp_path}/remote/{name}")
        uri_folder.is_local = False  # an object store's folder: its Optuna file lives on the head
        uri_folder.filesystem = pafs.LocalFileSystem()
        folders.append(uri_folder)
    paths = [study_folder.optuna_path(f, "tiny") for f in folders]
    assert len(set(paths)) == 3
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("journal\n")
    study_folder.clear(folders[1], paths[1])  # --overwrite of one touches only its own
    assert [p.exists() for p in paths] == [True, False, True]
