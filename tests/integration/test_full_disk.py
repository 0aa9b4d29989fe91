"""A disk that fills up mid-study (a real 3 MB tmpfs): the run ends with exit 1 and the resume
command, keeps every finished trial, and `study resume` finishes the study once there is room."""

import subprocess
import sys
import uuid

import polars as pl
import pytest

STUDY = """
name: full
theory: {n: 8, d: 16, delta: 0.5, init: matched, time: 100, dt: 0.05, records: 10}
temperature: {kind: fixed, value: {loguniform: [0.1, 1.0]}}
search: {sampler: random, trials: 50, seed: 0, objectives: {modality_gap: min}}
tracking: {tensorboard: false}
"""


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs, unmounted by the test that mounted it; skipped where mounting is not allowed."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def raygap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raygap", *args], capture_output=True, text=True, timeout=400)


def test_a_full_disk_keeps_finished_trials_and_says_how_to_resume(tmp_path, small_disk):
    spec, out = tmp_path / "full.yaml", small_disk / "out"
    spec.write_text(STUDY)
    run = raygap("study", "run", str(spec), "--results", str(out), "--no-dashboard")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "full: the disk is full ([Errno 28] " in run.stderr and f"Free space, then: raygap study resume {out}" in run.stderr
    kept = pl.read_parquet(sorted((out / "trials").glob("part-*.parquet")) + sorted(out.glob("trials.parquet")))
    assert 0 < kept["trial_id"].n_unique() < 50

    subprocess.run(["mount", "-o", "remount,size=40m", str(small_disk)], check=True)
    resume = raygap("study", "resume", str(out), "--no-dashboard")
    assert resume.returncode == 0, resume.stdout[-2000:] + resume.stderr[-2000:]
    after = pl.read_parquet(out / "trials.parquet")
    assert after.height == 50 and after["trial_id"].n_unique() == 50 and set(after["status"]) == {"completed"}
    assert set(kept["trial_id"]) <= set(after["trial_id"])  # every finished trial kept, once
