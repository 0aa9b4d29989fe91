"""A study whose results live in an S3 bucket: a real S3-compatible server (moto's server mode) on
127.0.0.1, the real CLI. Rows land in the bucket, Ctrl-C stops the study, a resume on a fresh
head (another working folder, no Optuna file) continues it from the bucket alone, and status and
report read it there."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import polars as pl
import pyarrow.fs as pafs
import pytest

from raygap import results
from raygap.study import folder as study_folder
from raygap.study.folder import optuna_storage

BUCKET = "raygap-test"
STUDY = """
name: bucketed
theory: {n: 8, d: 16, delta: 0.5, init: matched, time: 100, dt: 0.05, records: 10}
temperature: {kind: fixed, value: {loguniform: [0.1, 1.0]}}
search: {sampler: tpe, trials: 6, seed: 0, objectives: {modality_gap: min}}
"""


@pytest.fixture
def s3(monkeypatch, free_port):
    """An S3 server on 127.0.0.1 with one bucket; raygap, pyarrow and Ray reach it through
    AWS_ENDPOINT_URL, which the study's subprocesses inherit. Stopped by its pid."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        filesystem = pafs.S3FileSystem(endpoint_override=f"http://127.0.0.1:{port}", allow_bucket_creation=True)
        deadline = time.time() + 60
        while True:
            try:
                filesystem.create_dir(BUCKET)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield filesystem
    finally:
        server.terminate()
        server.wait(timeout=30)


def raygap(cwd: Path, *args: str) -> subprocess.Popen:
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "raygap", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
    )


def objects(filesystem) -> list[str]:
    found = filesystem.get_file_info(pafs.FileSelector(f"{BUCKET}/flt", recursive=True, allow_not_found=True))
    return sorted(i.path.removeprefix(f"{BUCKET}/flt/") for i in found if i.type == pafs.FileType.File and "/ray/" not in f"/{i.path}")


def recorded(uri: str) -> int:
    try:
        return results.ResultsFolder(uri).read(results.TRIALS).height
    except (FileNotFoundError, OSError):
        return 0


def test_a_study_in_a_bucket_stops_and_resumes_on_a_fresh_head(tmp_path, s3):
    uri = f"s3://{BUCKET}/flt"
    spec = tmp_path / "bucketed.yaml"
    spec.write_text(STUDY)
    first, fresh = tmp_path / "head1", tmp_path / "head2"

    run = raygap(first, "study", "run", str(spec), "--results", uri, "--no-dashboard")
    deadline = time.time() + 240
    while recorded(uri) < 2 and time.time() < deadline and run.poll() is None:
        time.sleep(0.3)
    assert run.poll() is None and recorded(uri) >= 2, "the study ended before it could be stopped"
    run.send_signal(signal.SIGINT)
    log, _ = run.communicate(timeout=120)
    assert run.returncode == 130, log
    assert f"Continue with: raygap study resume {uri}" in log
    before = results.ResultsFolder(uri).read(results.TRIALS)
    assert 2 <= before.height < 6
    # The head keeps the Optuna file, not the bucket, in a folder of its own for this URI.
    assert [p.relative_to(first) for p in (first / "results").rglob("optuna.log")] == [
        study_folder.optuna_path(results.ResultsFolder(uri), "bucketed")
    ]
    assert not any(name.endswith(".tmp") for name in objects(s3)), objects(s3)

    resume = raygap(fresh, "study", "resume", uri, "--no-dashboard")  # a new head: only the bucket is shared
    log, _ = resume.communicate(timeout=400)
    assert resume.returncode == 0, log
    assert f"rebuilt it from the {before.height} finished trial(s)" in log
    after = results.ResultsFolder(uri).read(results.TRIALS)
    assert after.height == 6 and after["trial_id"].n_unique() == 6 and set(after["status"]) == {"completed"}
    kept = after.filter(pl.col("trial_id").is_in(before["trial_id"].implode()))
    assert kept.select(before.columns).drop("config").equals(before.drop("config"))  # kept exactly once, unchanged
    assert after.select("param.temperature.value").n_unique() == 6
    journal = fresh / study_folder.optuna_path(results.ResultsFolder(uri), "bucketed")
    study = optuna.load_study(study_name="bucketed", storage=optuna_storage(journal))
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 6
    assert [name for name in objects(s3) if "/" not in name] == [
        "history.parquet",
        "pareto.parquet",
        "run.yaml",
        "spec.yaml",
        "trials.parquet",
    ]  # compacted at the end: no parts, no temporaries

    status = raygap(fresh, "study", "status", uri)
    log, _ = status.communicate(timeout=120)
    assert status.returncode == 0 and "6 trial(s), 6 seed run(s): 6 completed" in log, log
    report = raygap(fresh, "report", uri)
    log, _ = report.communicate(timeout=300)
    assert report.returncode == 0, log
    page = fresh / "results" / "bucketed" / "report" / "index.html"
    assert f"report: {Path('results/bucketed/report/index.html')}" in log and page.stat().st_size > 0
    summary = (page.parent / "report.md").read_text()
    assert f"**bucketed** ({uri}): 6 configuration(s) completed, 0 failed" in summary, summary


def test_a_missing_bucket_or_an_unreachable_endpoint_is_refused_before_ray(tmp_path, s3, capsys, monkeypatch, free_port):
    import ray

    from raygap.cli import main

    monkeypatch.chdir(tmp_path)  # where a URI study's Optuna file would go (results/.uri-studies)
    spec = tmp_path / "bucketed.yaml"
    spec.write_text(STUDY)
    assert main(["study", "run", str(spec), "--results", "s3://no-such-bucket/flt", "--no-dashboard"]) == 2
    assert "error: s3://no-such-bucket/flt: cannot write here (" in capsys.readouterr().err
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["study", "run", str(spec), "--results", f"s3://{BUCKET}/flt", "--no-dashboard"]) == 2
    assert f"error: s3://{BUCKET}/flt: cannot write here (" in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "results").exists()


def test_kept_artifacts_go_to_the_bucket_whole_and_are_listed(s3):
    """A seed's artifacts behind a URI: one upload each, listed with their sizes, read back."""
    import numpy as np

    from raygap import kept_files

    folder = results.ResultsFolder(f"s3://{BUCKET}/kept")
    weights = bytes(range(256)) * 40
    embeddings = {
        "image": np.eye(3, dtype=np.float32),
        "text": np.eye(3, dtype=np.float32)[[0, 0, 1, 2]],
        "caption_image": np.array([0, 0, 1, 2]),
    }
    shift = [{"shift": 0.0, "centred": 0, "modality_gap": 0.1, "mean_r1": 0.5}]
    names = kept_files.record_artifacts(folder, "t1", 0, weights, embeddings, shift)
    listed = dict(kept_files.list_artifacts(folder))
    assert sorted(listed) == sorted(names) and listed["artifacts/t1/seed0/weights.pt"] == len(weights)
    with folder.filesystem.open_input_stream(f"{folder.path}/artifacts/t1/seed0/weights.pt") as stream:
        assert stream.read() == weights
    assert kept_files.read_shift_curves(folder, ["t1"])["modality_gap"].to_list() == [0.1]
    stored = s3.get_file_info(pafs.FileSelector(f"{BUCKET}/kept", recursive=True))
    assert sorted(i.path.removeprefix(f"{BUCKET}/kept/") for i in stored if i.type == pafs.FileType.File) == sorted(names)  # no temporaries
