"""The local Ray cluster: starting it, recording its head processes, and stopping what a killed
study left running."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

import ray

from raygap import local_files
from raygap.config import TrialConfig
from raygap.study import library_internals
from raygap.study.folder import CLUSTER_RECORD, check_no_study_running  # noqa: F401  (CLUSTER_RECORD: re-exported)
from raygap.study.plan import ResourcePlan, check_fits_one_node, study_plan

# Ray Train's controller polls its workers every 2 s by default, so a finished trainer waits up to
# 2 s to notice; polling a few workers is cheap. Set before Ray starts, so every process inherits it.
TRAIN_ENV_DEFAULTS = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}


def start_ray(address: str | None, dashboard: bool = True, num_cpus: int | None = None) -> tuple[str | None, str | None]:
    """Join `address`, or start a local cluster whose dashboard listens on 127.0.0.1 only; return
    the dashboard's address and the cluster's session folder."""
    for key, value in TRAIN_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if address:
        # A running cluster's processes have their own environment: the settings go with the job.
        env_vars = {key: os.environ[key] for key in TRAIN_ENV_DEFAULTS}
        context = ray.init(address=address, logging_level=logging.ERROR, runtime_env={"env_vars": env_vars})
    else:
        # address="local": a new cluster, never one that `ray start` left on this machine.
        context = ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
    stop_on_sigterm()
    # ray.init is typed as returning BaseContext; the RayContext it gives has address_info.
    return context.dashboard_url or None, getattr(context, "address_info", {}).get("session_dir")


def stop_on_sigterm() -> None:
    """SIGTERM (SLURM's time limit or preemption, `scontrol requeue`, `docker stop`) stops the study
    as Ctrl-C does: Tune's SIGINT handler ends the trials (the finished ones are kept for a resume);
    before or after Tune runs, a KeyboardInterrupt. Called after ray.init, whose handler would abort
    the process, and not through SIGINT itself, which a shell ignores in a background job."""
    import signal
    import threading

    def on_sigterm(signum, frame) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)


def wait_for_nodes(count: int, echo: Callable[[str], None], timeout: float = 600.0) -> None:
    """Wait until the joined cluster has `count` live nodes (a SLURM job's nodes join one by one)."""
    deadline, alive = time.time() + timeout, 0
    while time.time() < deadline:
        alive = sum(1 for node in ray.nodes() if node["Alive"])
        if alive >= count:
            echo(f"cluster: {alive} node(s) joined")
            return
        time.sleep(1.0)
    raise RuntimeError(f"--nodes {count}: only {alive} node(s) joined the cluster in {timeout:.0f} s")


def dashboard_line(url: str | None) -> str:
    """Where the Ray dashboard is and, when the cluster uses token authentication (Ray's default
    for a new local cluster), where its token is: the command, never the token itself."""
    if not url:
        return "Ray dashboard: off"
    line = f"Ray dashboard: http://{url}"
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        where = os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")
        line += f" (it asks for the cluster's token: `ray get-auth-token` prints it; it is kept in {where})"
    return line


# (Ray leaves its dashboard and agents running after a SIGKILL of the driver) can be stopped later.


def record_cluster(path: Path, session: str | None) -> None:
    """Record this driver, the cluster processes it started and their session folder (`session`,
    ray.init's address_info), so that a later run can stop what a killed driver left."""
    import psutil

    me = psutil.Process()
    processes = [{"pid": p.pid, "created": p.create_time()} for p in me.children()]
    record = {"driver": {"pid": me.pid, "created": me.create_time()}, "processes": processes, "recorded": time.time()}
    if session:
        record["session"] = str(Path(session).resolve())
    local_files.write_local_text(path, json.dumps(record))


def stop_stale_cluster(path: Path, echo: Callable[[str], None]) -> int:
    """Stop what a dead raygap driver left running from the cluster it recorded at `path`; never
    touch a live study's processes or any process the record does not name (checked by start time)."""
    import psutil

    if not path.exists():
        return 0
    record = json.loads(path.read_text())

    def alive(entry: dict) -> psutil.Process | None:
        try:
            process = psutil.Process(entry["pid"])
            return process if abs(process.create_time() - entry["created"]) < 1e-3 else None
        except psutil.Error:
            return None

    check_no_study_running(path)
    heads = [process for process in map(alive, record["processes"]) if process is not None]
    doomed = {p.pid: p for head in heads for p in [head, *head.children(recursive=True)]}
    for process in psutil.process_iter():
        try:
            if process.create_time() >= record["recorded"] - 60 and _of_the_cluster(process, record):
                doomed.setdefault(process.pid, process)
        except psutil.Error:
            continue
    stopped = []
    for process in doomed.values():
        try:
            process.kill()
            stopped.append(process)
        except psutil.Error:
            pass
    psutil.wait_procs(stopped, timeout=10)
    path.unlink()
    if stopped:
        echo(f"stopped {len(stopped)} process(es) left by a killed study's Ray cluster")
    return len(stopped)


def _of_the_cluster(process, record: dict) -> bool:
    """Whether `process` belongs to the recorded cluster though its parent died: processes the
    raylet started carry its pid in RAY_RAYLET_PID, except where Ray's process title overwrote the
    start of their environment (its dashboard and runtime-env agents); those write their logs in
    the cluster's session folder."""
    if process.environ().get("RAY_RAYLET_PID") in {str(entry["pid"]) for entry in record["processes"]}:
        return True
    session = record.get("session")
    if not session:
        return False
    return any(file.path.startswith(session + os.sep) for file in process.open_files())


def plan_for_this_machine(cfg: TrialConfig) -> ResourcePlan:
    """The plan a local run of a study whose defaults are `cfg` would use, without starting
    Ray (for --dry-run and the check before it starts); a trial this machine cannot start or hold
    is a SpecError."""
    import psutil

    plan = study_plan(cfg, float(os.cpu_count() or 1), float(local_gpus()))
    check_fits_one_node(cfg, plan, nodes=1, memory_bytes=psutil.virtual_memory().available)
    return plan


def check_cluster_fits(cfg, plan: ResourcePlan) -> None:
    """check_fits_one_node on a running cluster: its live nodes, the least memory one offers."""
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    memory = min((node["Resources"].get("memory", 0.0) for node in nodes), default=0.0)
    check_fits_one_node(cfg, plan, nodes=len(nodes), memory_bytes=memory)


def local_gpus() -> int:
    """GPUs on this machine, as Ray counts them, without importing torch."""
    return library_internals.visible_gpus()
