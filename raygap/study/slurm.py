"""A study inside a SLURM allocation: the sbatch script `raygap slurm` writes. Ray-free: the
script starts the Ray head on the allocation's first node and a Ray worker on every other node
(`srun`), runs `raygap study run --resume` against that cluster once every node has joined, and
stops Ray at the end or on SIGTERM (the time limit's `--signal`, a preemption or `scontrol
requeue`), requeueing the job when the study did not finish. A requeued job resumes the same study:
finished trials are kept, unfinished ones run again (raygap.study.resume)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from raygap.config import SpecError

# Picks free ports on the node it runs on: Ray's defaults collide where two Ray nodes (two jobs,
# or a test's two slurmd on one host) share a machine.
_FREE_PORTS = (
    "import socket; s = [socket.socket() for _ in range({n})]; [x.bind(('', 0)) for x in s]; print(*(x.getsockname()[1] for x in s))"
)


@dataclass(frozen=True)
class SlurmJob:
    """What the sbatch script asks SLURM for and what it runs."""

    study: Path
    results: str
    nodes: int = 1
    cpus_per_node: int = 1
    gpus_per_node: int = 0
    partition: str | None = None
    account: str | None = None
    time: str | None = None
    """SLURM's time limit (e.g. 1-00:00:00); None: the partition's default."""
    signal_seconds: int = 300
    """SIGTERM this long before the time limit, for the study to stop and Ray to shut down."""
    requeue: bool = True
    """Requeue the job when it is stopped before the study finished."""
    name: str = "raygap"

    def check(self) -> None:
        for key in ("nodes", "cpus_per_node"):
            if getattr(self, key) < 1:
                raise SpecError(f"raygap slurm --{key.replace('_', '-')}: expected 1 or more, got {getattr(self, key)}")
        if self.gpus_per_node < 0 or self.signal_seconds < 0:
            raise SpecError("raygap slurm: --gpus-per-node and --signal-seconds expect 0 or more")


def sbatch_script(job: SlurmJob, bin_dir: Path | None = None) -> str:
    """The script, with absolute paths to this installation's `raygap`, `ray` and Python (the
    same environment must be installed on every node, e.g. on a shared file system)."""
    job.check()
    bin_dir = bin_dir or Path(sys.executable).parent
    q = shlex.quote
    directives = [
        f"--job-name={job.name}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={job.cpus_per_node}",
        *([f"--gpus-per-node={job.gpus_per_node}"] if job.gpus_per_node else []),
        *([f"--partition={job.partition}"] if job.partition else []),
        *([f"--account={job.account}"] if job.account else []),
        *([f"--time={job.time}"] if job.time else []),
        *(["--requeue"] if job.requeue else ["--no-requeue"]),
        "--open-mode=append",
        f"--signal=B:TERM@{job.signal_seconds}",
    ]
    header = "\n".join(f"#SBATCH {d}" for d in directives)
    return _TEMPLATE.format(
        header=header,
        study=q(str(job.study.resolve())),
        results=q(job.results),
        raygap=q(str(bin_dir / "raygap")),
        ray=q(str(bin_dir / "ray")),
        python=q(str(bin_dir / "python")),
        free_ports=q(_FREE_PORTS.format(n=6)),
        nodes=job.nodes,
        gpus=job.gpus_per_node,
        requeue=1 if job.requeue else 0,
    )


_TEMPLATE = """#!/bin/bash
# A raygap study in a SLURM allocation, written by `raygap slurm`. Submit with: sbatch THIS_FILE
{header}
set -uo pipefail

RAYGAP={raygap}
RAY={ray}
PYTHON={python}
STUDY={study}
RESULTS={results}
FREE_PORTS={free_ports}
NODES={nodes}
GPUS={gpus}
REQUEUE={requeue}
export RAY_AUTH_MODE=token
# The cluster's token, in ~/.ray/auth_token (made once; every node reads it from the shared home).
"$RAY" get-auth-token --generate >/dev/null || exit 1
study=
stopping=0
on_term() {{
  stopping=1
  echo "raygap: SIGTERM: stopping the study (finished trials are kept)"
  [ -n "$study" ] && kill -TERM "$study" 2>/dev/null
}}
trap on_term TERM

echo "raygap: job $SLURM_JOB_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $SLURM_JOB_NODELIST"
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
address_of() {{  # a node's address as SLURM knows it (NodeAddr), as an IPv4 address
  local addr
  addr=$(scontrol show node "$1" | tr ' ' '\\n' | sed -n 's/^NodeAddr=//p')
  getent ahostsv4 "${{addr:-$1}}" | awk 'NR == 1 {{print $1}}'
}}
# `ray start --block` on a node, as a background step with the node's CPUs, memory and GPUs; its
# ports picked free on that node.
step_gpus=()
[ "$GPUS" -gt 0 ] && step_gpus=(--gpus-per-task="$GPUS")
ray_node() {{
  local node=$1; shift
  srun --overlap --nodes=1 --ntasks=1 --cpus-per-task="$SLURM_CPUS_PER_TASK" --mem=0 "${{step_gpus[@]}}" -w "$node" bash -c '
    read -r agent grpc metrics runtime client dash < <("$0" -c "$1")
    shift
    exec "$RAY" start --block --dashboard-agent-listen-port "$agent" --dashboard-agent-grpc-port "$grpc" \\
      --metrics-export-port "$metrics" --runtime-env-agent-port "$runtime" "$@"' "$PYTHON" "$FREE_PORTS" "$@" &
  ray_steps+=($!)
}}
export RAY
ray_steps=()
head=${{nodes[0]}}
head_ip=$(address_of "$head")
read -r port dashboard client _ < <("$PYTHON" -c "$FREE_PORTS")  # the batch shell runs on the head node
ray_node "$head" --head --node-ip-address "$head_ip" --port "$port" --num-cpus "$SLURM_CPUS_PER_TASK" --num-gpus "$GPUS" \\
  --dashboard-host 127.0.0.1 --dashboard-port "$dashboard" --ray-client-server-port "$client"
for node in "${{nodes[@]:1}}"; do
  ray_node "$node" --address "$head_ip:$port" --node-ip-address "$(address_of "$node")" --num-cpus "$SLURM_CPUS_PER_TASK" --num-gpus "$GPUS"
done
echo "raygap: Ray head on $head ($head_ip:$port); its dashboard listens on 127.0.0.1:$dashboard of $head."
echo "raygap: to see it, from your machine: ssh -N -L 8265:127.0.0.1:$dashboard $head (through your login node: -J LOGIN), then http://127.0.0.1:8265"

# --resume: a requeued job continues the same study; --nodes: start once every node has joined.
"$RAYGAP" study run "$STUDY" --results "$RESULTS" --resume --address "$head_ip:$port" --nodes "$NODES" &
study=$!
[ "$stopping" = 1 ] && kill -TERM "$study"  # a SIGTERM that came while Ray was starting
while kill -0 "$study" 2>/dev/null; do wait "$study"; done  # a trapped SIGTERM returns from wait early
wait "$study"; status=$?  # the study's own exit status
echo "raygap: the study exited with $status; stopping Ray"
kill -TERM "${{ray_steps[@]}}" 2>/dev/null
wait "${{ray_steps[@]}}" 2>/dev/null
if [ "$stopping" = 1 ] && [ "$status" != 0 ] && [ "$REQUEUE" = 1 ]; then
  echo "raygap: the study did not finish: requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
"""
