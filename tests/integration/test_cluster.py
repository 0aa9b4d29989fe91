"""A real two-node Ray cluster on this machine: a head and a second node as separate `ray start`
processes, each with its own resources. `raygap study run --address` places two-worker SPREAD
trials on both nodes; the second node's raylet is killed mid-trial, and the trial is retried from
its checkpoint on what is left. Slow (a few minutes on 2 cores): `make test-all` runs it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import pytest

from raygap import results

STUDY = """
name: two-nodes
data:
  train: {kind: synthetic, size: 512, seed: 0}
  eval: {kind: synthetic, size: 128, seed: 1, captions_per_image: 2}
  probe: {train: {kind: synthetic, size: 128, seed: 2}, test: {kind: synthetic, size: 64, seed: 3}}
train: {steps: 60, batch_size: 32, eval_interval: 20, checkpoint_interval: 10, warmup_steps: 1, seed: 0, max_restarts: 3}
temperature: {kind: learned, init: {grid: [0.07, 0.05]}}
resources: {workers_per_trial: 2, cpus_per_worker: 1, placement: SPREAD}
search: {sampler: grid}
"""


# `ray start --head` turns on Ray's token authentication (the token in ~/.ray/auth_token); every
# other node and every driver must then ask for it, as on a real cluster.
TOKEN_AUTH = {**os.environ, "RAY_AUTH_MODE": "token"}


def ray_start(free_port, *args: str) -> subprocess.Popen:
    """One node: `ray start --block` owns its processes until it is stopped."""
    ray = Path(sys.executable).parent / "ray"
    ports = ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    command = [str(ray), "start", "--block", "--node-ip-address", "127.0.0.1", *args]
    for option in ports:  # two nodes on one machine: each agent needs its own ports
        command += [option, str(free_port())]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=TOKEN_AUTH)


def raylet(node: subprocess.Popen, timeout: float = 120) -> psutil.Process:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [p for p in psutil.Process(node.pid).children(recursive=True) if p.name() == "raylet"]
        if found:
            return found[0]
        assert node.poll() is None, "ray start exited"
        time.sleep(0.5)
    raise AssertionError("no raylet")


def processes_of(raylets: set[int]) -> list[psutil.Process]:
    """Ray workers started by these raylets (the env var Ray gives each worker)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("RAY_RAYLET_PID") in {str(pid) for pid in raylets}:
                found.append(process)
        except psutil.Error:
            continue
    return found


def train_workers(raylet_pid: int) -> list[psutil.Process]:
    found = []
    for process in processes_of({raylet_pid}):
        try:
            if process.cmdline()[:1] and process.cmdline()[0].startswith("ray::RayTrainWorker"):
                found.append(process)
        except psutil.Error:
            continue
    return found


def stop_nodes(nodes: list[subprocess.Popen], raylets: set[int], stop_processes) -> None:
    """Stop what the test started, by pid: each node's process tree and the workers of its raylet."""
    tree = []
    for node in nodes:
        try:
            tree += [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
        except psutil.Error:
            pass
    stop_processes(tree + processes_of(raylets))
    for node in nodes:
        node.wait(timeout=10)


def checkpointed_step(out: Path) -> int | None:
    import torch

    for path in out.glob("ray/**/checkpoint_*/training.pt"):
        try:
            return torch.load(path, weights_only=True)["step"]
        except (RuntimeError, EOFError, OSError, KeyError):
            continue
    return None


@pytest.mark.slow
def test_spread_trials_on_two_nodes_survive_losing_one(tmp_path, free_port, stop_processes, forget_ray_start):
    port = free_port()
    head = ray_start(
        free_port, "--head", "--port", str(port), "--num-cpus", "3", "--resources", '{"head_node": 1}', "--include-dashboard", "false"
    )
    nodes, raylets = [head], set()
    try:
        raylets.add(raylet(head).pid)
        second = ray_start(free_port, "--address", f"127.0.0.1:{port}", "--num-cpus", "2", "--resources", '{"second_node": 1}')
        nodes.append(second)
        lost = raylet(second)
        raylets.add(lost.pid)
        spec, out = tmp_path / "two-nodes.yaml", tmp_path / "results"
        spec.write_text(STUDY)
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raygap",
                "study",
                "run",
                str(spec),
                "--results",
                str(out),
                "--address",
                f"127.0.0.1:{port}",
                "--no-dashboard",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=TOKEN_AUTH,
        )
        deadline, step, spread = time.time() + 300, None, False
        while not (spread and step is not None) and time.time() < deadline and run.poll() is None:
            spread = spread or all(train_workers(pid) for pid in raylets)  # a worker of the trial on each node
            step = checkpointed_step(out) if spread else None
            time.sleep(0.2)
        assert spread and step is not None, "no trial ran a worker on each node and checkpointed"
        lost.kill()  # the second node is lost: its `ray start` stops the rest of it
        log, _ = run.communicate(timeout=600)
        assert run.returncode == 0, log

        trials = results.ResultsFolder(out).read(results.TRIALS)
        assert trials.height == 2 and trials["trial_id"].n_unique() == 2 and set(trials["status"]) == {"completed"}, log
        assert trials["workers"].to_list() == [2, 2]
        resumed = trials.filter(pl.col("resumed_from_step").is_not_null())["resumed_from_step"].to_list()
        assert resumed and all(10 <= s < 60 for s in resumed), trials.select(
            "trial_id", "resumed_from_step"
        )  # from a checkpoint, not step 0
        history = results.ResultsFolder(out).read(results.HISTORY)
        for trial_id in trials["trial_id"]:
            assert history.filter(pl.col("trial_id") == trial_id)["step"].to_list() == [0, 20, 40, 60]
        assert second.wait(timeout=60) != 0  # the lost node's `ray start` gave up on it
        print(f"second node lost after a checkpoint at step {step}; trials resumed from steps {resumed}")
    finally:
        stop_nodes(nodes, raylets, stop_processes)
        forget_ray_start(port)
    assert not processes_of(raylets), "the cluster's workers are still running"
