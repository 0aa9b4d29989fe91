"""A real SLURM on this machine: munged, slurmctld and two slurmd (nodes n1 and n2, one host,
their own ports, proctrack/linuxproc, task/none), each on 127.0.0.1 with a configuration the
fixture writes, each stopped by its pid. `raygap slurm` writes the sbatch script; the job starts
a Ray head on n1 and a Ray worker on n2 and runs the study against them. Slow (minutes): `make
test-slurm` runs them, and CI (which installs Debian's slurmd, slurmctld and munge)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("slurmctld") is None and not os.environ.get("RAYGAP_REQUIRE_SLURM"),
        reason="no SLURM (CI installs Debian's slurmctld, slurmd and munge)",
    ),
]

STUDY = """
name: on-slurm
data:
  train: {kind: synthetic, size: 512, seed: 0}
  eval: {kind: synthetic, size: 128, seed: 1, captions_per_image: 2}
  probe: {train: {kind: synthetic, size: 128, seed: 2}, test: {kind: synthetic, size: 64, seed: 3}}
train: {steps: STEPS, batch_size: 32, eval_interval: 20, checkpoint_interval: 10, warmup_steps: 1, seed: 0}
temperature: {kind: learned, init: {grid: GRID}}
resources: {workers_per_trial: 2, cpus_per_worker: 1, placement: STRICT_SPREAD}
search: {sampler: grid, repeats: 2}
"""

CONF = """ClusterName=raygap-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={node_ports[0]}
AuthType=auth/munge
AuthInfo=socket={dir}/munge.socket,cred_expire=5
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool-%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd-%n.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd-%n.log
SlurmUser={user}
SlurmdUser=root
ReturnToService=2
KillWait=60
MinJobAge=3600
NodeName=n1 NodeHostname={host} NodeAddr=127.0.0.1 Port={node_ports[0]} CPUs=2 RealMemory=2000
NodeName=n2 NodeHostname={host} NodeAddr=127.0.0.1 Port={node_ports[1]} CPUs=2 RealMemory=2000
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def slurm(tmp_path_factory, free_port, stop_processes):
    """A running two-node SLURM; yields the environment its commands need (SLURM_CONF)."""
    folder = tmp_path_factory.mktemp("slurm")
    folder.chmod(0o755)  # munged wants its socket's folder reachable by all
    for sub in ("state", "spool-n1", "spool-n2"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    host = socket.gethostname()
    conf.write_text(
        CONF.format(
            host=host, ctld_port=free_port(), node_ports=(free_port(), free_port()), dir=folder, user=os.environ.get("USER", "root")
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    log = open(folder / "daemons.log", "w")
    daemons = []
    try:
        munge = ["munged", "-F", "-f", f"--socket={folder}/munge.socket", f"--key-file={key}", f"--pid-file={folder}/munged.pid"]
        daemons.append(
            subprocess.Popen([*munge, f"--seed-file={folder}/munged.seed", f"--log-file={folder}/munged.log"], stdout=log, stderr=log)
        )
        _wait_for(lambda: (folder / "munge.socket").exists(), "munged's socket")
        daemons.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], stdout=log, stderr=log, env=env))
        for node in ("n1", "n2"):
            daemons.append(subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", node], stdout=log, stderr=log, env=env))
        _wait_for(lambda: _idle_nodes(env) == 2, "two idle SLURM nodes", timeout=60)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--partition=test"], env=env, capture_output=True)
        _wait_for(lambda: not _jobs(env), "cancelled jobs to end", timeout=90, fail=False)
        tree = []
        for daemon in reversed(daemons):
            try:
                tree += [psutil.Process(daemon.pid), *psutil.Process(daemon.pid).children(recursive=True)]
            except psutil.Error:
                pass
        stop_processes(tree)
        log.close()


def _wait_for(condition, what: str, timeout: float = 30, fail: bool = True) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    assert not fail, f"timed out waiting for {what}"


def _idle_nodes(env) -> int:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=env, capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.split()[-1:] == ["idle"])


def _jobs(env) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True).stdout
    return out.split()


def _job(env, job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], env=env, capture_output=True, text=True).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def _submit(tmp_path: Path, env, steps: int, grid: list[float]) -> tuple[str, Path, Path]:
    """Write the study and its sbatch script with `raygap slurm`, submit it; (job id, results, log)."""
    study, results = tmp_path / "on-slurm.yaml", tmp_path / "results"
    study.write_text(STUDY.replace("STEPS", str(steps)).replace("GRID", json.dumps(grid)))
    script = tmp_path / "on-slurm.sbatch"
    written = subprocess.run(
        [sys.executable, "-m", "raygap", "slurm", str(study), "--nodes", "2", "--cpus-per-node", "2", "--results", str(results)]
        + ["--signal-seconds", "30", "-o", str(script)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert written.returncode == 0, written.stderr
    assert f"sbatch {script}" in written.stdout and subprocess.run(["bash", "-n", str(script)]).returncode == 0
    submitted = subprocess.run(
        ["sbatch", "--parsable", f"--output={tmp_path}/job-%j.out", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    return job_id, results, tmp_path / f"job-{job_id}.out"


def _wait_for_job(env, job_id: str, log: Path, timeout: float = 600) -> dict[str, str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = _job(env, job_id)
        if job.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
            return job
        time.sleep(2)
    raise AssertionError(f"job {job_id} did not end in {timeout} s:\n" + (log.read_text()[-3000:] if log.exists() else ""))


def test_a_two_node_allocation_runs_two_worker_trials_across_both_nodes(slurm, tmp_path):
    job_id, results, log = _submit(tmp_path, slurm, steps=40, grid=[0.07, 0.05])
    job = _wait_for_job(slurm, job_id, log)
    printed = log.read_text()
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", printed[-3000:]
    assert "cluster: 2 node(s) joined" in printed and "ssh -N -L 8265:127.0.0.1:" in printed and "of n1" in printed
    trials = pl.read_parquet(results / "trials.parquet").sort("trial_id", "seed")
    assert trials.height == 4 and set(trials["status"]) == {"completed"} and trials["seed"].to_list() == [0, 1, 0, 1]
    assert trials["nodes"].to_list() == [2] * 4  # each seed's two workers ran on n1 and n2
    groups = sorted(p.name for p in (results / "ray" / "train").iterdir() if p.is_dir())
    assert groups == sorted(f"{t}-seeds" for t in trials["trial_id"].unique())  # one worker group per trial, both seeds in it
    assert "Reporting training result" not in printed  # Ray Train's per-report log lines are turned down
    print(f"job {job_id}: {trials.height} seed runs on 2 nodes in {job['RunTime']}")


def _mid_trial_checkpoint(results: Path, finished: list[str]) -> bool:
    """Whether a trial not in `finished` has a training-state checkpoint its group registered."""
    for path in results.glob("ray/train/*-seeds/checkpoint_*/training.pt"):
        run = path.parent.parent
        snapshot = run / "checkpoint_manager_snapshot.json"
        if run.name.removesuffix("-seeds") not in finished and snapshot.is_file() and path.parent.name in snapshot.read_text():
            return True
    return False


def test_a_requeued_job_resumes_the_study_with_no_trial_lost_or_repeated(slurm, tmp_path):
    job_id, results, log = _submit(tmp_path, slurm, steps=60, grid=[0.07, 0.05, 0.1])
    # Requeue once the first trial is recorded (its two seeds) and the next one has checkpointed mid-way.
    _wait_for(lambda: len(list((results / "trials").glob("part-*.parquet"))) >= 2, "the first trial's two seeds", timeout=300)
    finished = pl.read_parquet(results / "trials")["trial_id"].unique().to_list()
    _wait_for(lambda: _mid_trial_checkpoint(results, finished), "a checkpoint of the next trial", timeout=120)
    before = pl.read_parquet(results / "trials").sort("trial_id", "seed")
    requeued = subprocess.run(["scontrol", "requeue", job_id], env=slurm, capture_output=True, text=True)
    assert requeued.returncode == 0, requeued.stderr
    _wait_for(lambda: _job(slurm, job_id).get("Restarts") == "1", "the requeue", timeout=120)
    job = _wait_for_job(slurm, job_id, log)
    printed = log.read_text()
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0" and job["Restarts"] == "1", printed[-3000:]
    assert "restart 0" in printed and "restart 1" in printed and "unfinished one(s) to run again" in printed
    assert "3/3 finished, 0 running, 0 failed" in printed and "Error in training function" not in printed

    trials = pl.read_parquet(results / "trials.parquet").sort("trial_id", "seed")
    assert trials.height == 6 and set(trials["status"]) == {"completed"}
    assert trials.select("trial_id", "seed").is_unique().all()  # no seed recorded twice
    assert sorted(trials["param.temperature.init"].unique().to_list()) == [0.05, 0.07, 0.1]  # every configuration ran
    kept = trials.filter(pl.col("trial_id").is_in(before["trial_id"].to_list()))
    assert kept.select("trial_id", "seed", "modality_gap").equals(before.select("trial_id", "seed", "modality_gap"))  # not run again
    continued = trials.filter(pl.col("resumed_from_step").is_not_null())
    assert continued.height >= 1 and (continued["resumed_from_step"] >= 10).all()  # the stopped trial went on from its checkpoint
    print(
        f"job {job_id}: requeued after {before.height} seed runs and a checkpoint of the next trial; {trials.height} in the end, "
        f"continued from step(s) {continued['resumed_from_step'].to_list()}; {job['RunTime']} the last run"
    )
