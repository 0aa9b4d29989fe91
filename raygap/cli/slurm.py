"""raygap slurm: the sbatch script that runs a study in a SLURM allocation (raygap.study.slurm)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from raygap.cli.common import results_folder
from raygap.config import SpecError, load_spec


def cmd_slurm(args: argparse.Namespace) -> int:
    """Check the study file and write the script; nothing is submitted."""
    from raygap.study.slurm import SlurmJob, sbatch_script

    spec = load_spec(args.spec)
    cfg = spec.resolve(check_paths=False)
    folder = results_folder(cfg, args)
    results = folder.location if not folder.is_local else str(Path(folder.location).resolve())
    workers = cfg.resources.workers_per_trial
    if workers > args.nodes * args.cpus_per_node and not args.gpus_per_node:
        raise SpecError(
            f"{args.spec}: resources.workers_per_trial is {workers}, more than the {args.nodes} node(s) × "
            f"{args.cpus_per_node} CPU(s) the job asks for; expected --nodes × --cpus-per-node ≥ {workers}"
        )
    job = SlurmJob(
        Path(args.spec),
        results,
        nodes=args.nodes,
        cpus_per_node=args.cpus_per_node,
        gpus_per_node=args.gpus_per_node,
        partition=args.partition,
        account=args.account,
        time=args.time,
        signal_seconds=args.signal_seconds,
        requeue=not args.no_requeue,
        name=f"raygap-{cfg.name}",
    )
    output = Path(args.output or f"{cfg.name}.sbatch")
    script = sbatch_script(job)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(script)
    os.chmod(temporary, 0o755)
    temporary.replace(output)  # never a half-written script
    print(
        f"wrote {output}: {job.nodes} node(s) × {job.cpus_per_node} CPU(s)"
        + (f" + {job.gpus_per_node} GPU(s)" if job.gpus_per_node else "")
    )
    print(f"results: {results} (every node must reach it: a shared file system or object storage)")
    print(f"submit: sbatch {output}    a requeued job resumes the study; progress: raygap study status {results}")
    return 0


def add_slurm_command(commands) -> None:
    slurm = commands.add_parser("slurm", help="write the sbatch script that runs a study on a SLURM allocation (Ray head + workers)")
    slurm.add_argument("spec", help="study file (YAML)")
    slurm.add_argument("--nodes", type=int, default=1, help="nodes of the allocation; one Ray node each (default 1)")
    slurm.add_argument("--cpus-per-node", type=int, default=1, help="CPUs per node for Ray (default 1)")
    slurm.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per node (default 0)")
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--account", help="SLURM account to charge")
    slurm.add_argument("--time", help="time limit, e.g. 1-00:00:00 (default: the partition's)")
    slurm.add_argument("--signal-seconds", type=int, default=300, help="SIGTERM this long before the time limit (default 300)")
    slurm.add_argument("--no-requeue", action="store_true", help="do not requeue a job stopped before the study finished")
    slurm.add_argument("--results", metavar="DIR", help="results folder every node reaches (default: results/<name>, made absolute)")
    slurm.add_argument("-o", "--output", metavar="FILE", help="where to write the script (default: <name>.sbatch)")
    slurm.set_defaults(handler=cmd_slurm)
