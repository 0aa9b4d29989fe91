"""`raygap study submit` for real: a Ray head started here (`ray start --head`, dashboard on
127.0.0.1), a small study submitted as a Ray Job, SUCCEEDED read through the dashboard's REST API,
the results folder checked; then the processes of that cluster, and only those, are stopped."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import psutil

from raygap.cli import main

STUDY = """
name: submitted
data:
  train: {kind: synthetic, size: 128}
  eval: {kind: synthetic, size: 64, seed: 1}
  probe: {train: {kind: synthetic, size: 64, seed: 2}, test: {kind: synthetic, size: 32, seed: 3}}
train: {steps: 2, batch_size: 32, eval_interval: 2, warmup_steps: 1}
temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}
search: {trials: 2}
"""


def cluster_processes(gcs_port: int) -> list[psutil.Process]:
    """The processes of the cluster whose GCS listens on `gcs_port`: those that name it, their
    children, and the workers their raylet started (RAY_RAYLET_PID)."""
    named = []
    for process in psutil.process_iter():
        try:
            if any(str(gcs_port) in part for part in process.cmdline()):
                named.append(process)
        except psutil.Error:
            continue
    found = {p.pid: p for head in named for p in [head, *_children(head)]}
    raylets = {str(p.pid) for p in found.values() if "raylet" in p.name()}
    for process in psutil.process_iter():
        try:
            if process.environ().get("RAY_RAYLET_PID") in raylets:
                found.setdefault(process.pid, process)
        except psutil.Error:
            continue
    return list(found.values())


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def get(url: str) -> dict:
    """A dashboard REST call, with the cluster's token when it uses one."""
    from raygap.study.submit import token_headers

    return json.load(urllib.request.urlopen(urllib.request.Request(url, headers=token_headers(url)), timeout=30))


def test_a_study_submitted_as_a_ray_job_succeeds(tmp_path, capsys, free_port, stop_processes, forget_ray_start):
    gcs_port, dashboard_port = free_port(), free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    # The cluster runs in this virtual environment, as if it were activated: its `python` runs the job.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PATH": f"{ray_cli.parent}{os.pathsep}{os.environ['PATH']}"}
    started = subprocess.run(
        [
            str(ray_cli),
            "start",
            "--head",
            f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        address = f"http://127.0.0.1:{dashboard_port}"
        spec = tmp_path / "submitted.yaml"
        spec.write_text(STUDY)
        results = tmp_path / "results"
        assert main(["study", "submit", str(spec), "--address", address, "--results", str(results)]) == 0
        submission_id = capsys.readouterr().out.split("submitted ", 1)[1].split()[0]

        status = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and status not in ("SUCCEEDED", "FAILED", "STOPPED"):
            time.sleep(2)
            status = get(f"{address}/api/jobs/{submission_id}")["status"]
        logs = get(f"{address}/api/jobs/{submission_id}/logs")["logs"]
        assert status == "SUCCEEDED", logs[-3000:]
        trials = pl.read_parquet(results / "trials.parquet")
        assert trials.height == 2 and set(trials["status"]) == {"completed"}
        assert "submitted: 2 trial(s)" in logs
    finally:
        stop_processes(cluster_processes(gcs_port), grace=0)
        forget_ray_start(gcs_port)
    assert not cluster_processes(gcs_port), "the test's Ray cluster is still running"
