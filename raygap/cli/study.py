"""raygap study run / resume / submit / compact, and the `study` commands' arguments (status: raygap.cli.status)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from raygap.cli.common import results_folder, write_report
from raygap.cli.console import format_front
from raygap.cli.status import cmd_study_status
from raygap.config import SpecError, load_spec


def cmd_study_run(args: argparse.Namespace) -> int:
    read_data = not (args.dry_run and args.no_data_check)
    spec = load_spec(args.spec, args.set, check_paths=read_data)
    if args.name:
        spec.raw["name"] = args.name
    from raygap.study import space as search  # optuna, no ray: a dry run never starts a cluster

    cfg = spec.resolve(check_paths=read_data)
    folder = results_folder(cfg, args)
    total = search.number_of_trials(spec, cfg.search)
    if args.dry_run:
        from raygap.study.preflight import check_study

        check_study(spec, cfg, data=read_data)  # what a run checks before Ray, bar the results folder
        return _print_dry_run(spec, cfg, total, folder)
    from raygap import study

    started = time.time()
    try:
        summary = study.run_study(
            spec,
            folder,
            address=args.address,
            dashboard=not args.no_dashboard,
            resume=args.resume,
            overwrite=args.overwrite,
            nodes=args.nodes,
        )
    except (study.StudyStopped, KeyboardInterrupt) as stop:
        kept = (
            f"{stop.finished} of {stop.total} trial(s) finished and kept"
            if isinstance(stop, study.StudyStopped)
            else "finished trials kept"
        )
        print(f"\n{cfg.name}: interrupted; {kept}. Continue with: raygap study resume {folder}", file=sys.stderr)
        return 130
    except Exception as error:
        if not _disk_full(error):
            raise
        print(
            f"\n{cfg.name}: the disk is full ({error}); finished trials are kept. Free space, then: raygap study resume {folder}",
            file=sys.stderr,
        )
        return 1
    print(f"\n{cfg.name}: finished in {time.time() - started:.0f} s")
    print(format_front(summary, cfg.search.objectives))
    print(f"results: {folder}/ (trials.parquet, history.parquet, pareto.parquet); Optuna study: {study.optuna_path(folder, cfg.name)}")
    outcomes = _seed_outcomes(folder)
    if summary.is_empty() and not outcomes.get("completed"):  # every trial failed or was stopped: the run did not do its job
        print(
            f"error: {cfg.name}: no trial completed ({_counted(outcomes)}); `raygap study status {folder}` lists the errors",
            file=sys.stderr,
        )
        return 1
    # Some failed seeds are not an error (a diverged learning rate is a finding): counted, exit 0.
    print(f"{cfg.name}: {_counted(outcomes)}" + (f"; `raygap study status {folder}` lists the errors" if outcomes.get("failed") else ""))
    if args.report:
        print(f"report: {write_report([str(folder)], None)}")
    return 0


def cmd_study_resume(args: argparse.Namespace) -> int:
    """`study run` of the folder's own spec.yaml (local or URI), continuing where it stopped."""
    import tempfile

    from raygap.results import ResultsFolder
    from raygap.study.folder import read_stored_spec

    folder = ResultsFolder(args.folder)
    args.results, args.resume, args.overwrite = args.folder, True, False
    args.set, args.name, args.dry_run, args.no_data_check = [], None, False, False
    if folder.is_local:
        read_stored_spec(folder)  # raises unless this is a study folder
        args.spec = str(Path(folder.path, "spec.yaml"))
        return cmd_study_run(args)
    with tempfile.TemporaryDirectory(prefix="raygap-resume-") as scratch:  # load_spec reads a local copy
        args.spec = str(Path(scratch, "spec.yaml"))
        Path(args.spec).write_text(read_stored_spec(folder))
        return cmd_study_run(args)


def _disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error that led to it (Tune wraps its callbacks'), is a full disk."""
    import errno

    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


def _seed_outcomes(folder) -> dict[str, int]:
    """Seed runs recorded in the folder, by status (completed, failed, pruned)."""
    from raygap import results

    trials = folder.read(results.TRIALS) if folder.exists(results.TRIALS) else None
    if trials is None or "status" not in trials.columns:
        return {}
    return {status: count for status, count in trials["status"].value_counts().iter_rows()}


def _counted(outcomes: dict[str, int]) -> str:
    words = {"completed": "completed", "failed": "failed", "pruned": "stopped early"}
    parts = [f"{outcomes.get(status, 0)} {word}" for status, word in words.items() if outcomes.get(status) or status == "completed"]
    return f"seed runs: {', '.join(parts)}"


DRY_RUN_LISTED = 100  # grid configurations a dry run lists; the rest are counted


def _print_dry_run(spec, cfg, total: int, folder) -> int:
    from raygap.study import space as search
    from raygap.study.cluster import plan_for_this_machine

    print(f"{cfg.name}: {total} trial(s) × {cfg.search.repeats} seed(s), sampler {cfg.search.sampler}, objectives {cfg.search.objectives}")
    if cfg.search.sampler == "grid" and spec.space:
        for i, point in enumerate(search.grid_points(spec, limit=DRY_RUN_LISTED)):
            print(f"  {i:3d}  " + ", ".join(f"{k}={v}" for k, v in search.recorded_params(point).items()))
        if total > DRY_RUN_LISTED:
            print(f"  … and {total - DRY_RUN_LISTED:,} more")
    elif not spec.space:
        print("  nothing is searched: one configuration" + (f", {cfg.search.repeats} seeds" if cfg.search.repeats > 1 else ""))
    else:
        for path, dist in spec.space.items():
            shown = search.option_labels(dist) if dist.kind in ("choice", "grid") else list(dist.args)
            print(f"  {path}: {dist.kind} {shown}")
        for i, point in enumerate(search.first_points(spec, cfg.search)):
            # A chosen section's label names its searched keys (`siglip(bias_init~uniform)`): its kind is enough here.
            print(f"  first {i + 1}: " + ", ".join(f"{k}={str(v).split('(')[0] if '~' in str(v) else v}" for k, v in point.items()))
    r = cfg.resources
    device = "GPU" if r.use_gpu else ("GPU if the cluster has them, else CPU" if r.use_gpu is None else "CPU")
    if cfg.theory is not None:
        print("each trial is a theory simulation: one CPU in its trial process (resources do not apply)")
    else:
        print(f"each trial needs {r.workers_per_trial} worker(s) on {device}")
    try:
        print(f"resources on this machine: {plan_for_this_machine(cfg).describe()}")
    except SpecError as error:
        print(f"this machine cannot run it: {str(error).removeprefix('resources: ')}")
    print(f"results would go to {folder}/")
    return 0


def cmd_study_compact(args: argparse.Namespace) -> int:
    """Fold trials/ and history/ parts into trials.parquet and history.parquet."""
    from raygap import results
    from raygap.study.folder import CLUSTER_RECORD, check_no_study_running, optuna_path, stored_name

    folder = results.ResultsFolder(args.folder)
    if not folder.exists(results.TRIALS):
        raise SpecError(f"{folder}: no trials here (not a study folder, or no trial has finished yet)")
    study_name = stored_name(folder)
    check_no_study_running(optuna_path(folder, study_name).parent / CLUSTER_RECORD)  # its own writer compacts as it goes
    for name in results.DATASETS:
        print(f"{folder.uri(name)}: {folder.compact(name)} part(s) folded in")
    return 0


def cmd_study_submit(args: argparse.Namespace) -> int:
    """The study as a Ray Job on the cluster at --address; with --wait, its end and logs."""
    spec = load_spec(args.spec, args.set)
    folder = results_folder(spec.resolve(), args)
    from raygap.study.submit import submit_study, wait_for

    client, submission_id = submit_study(spec, folder, args.address)
    if not args.wait:
        return 0
    status = wait_for(client, submission_id)
    print(client.get_job_logs(submission_id)[-4000:])
    print(f"{submission_id}: {status.value}")
    return 0 if status.value == "SUCCEEDED" else 1


def add_study_commands(commands) -> None:
    """raygap study run / resume / status / submit."""
    study = commands.add_parser("study", help="hyperparameter studies with Ray Tune + Optuna").add_subparsers(
        dest="study_command", required=True
    )
    run = study.add_parser("run", help="run a study: Optuna search, one Ray Train trainer per trial")
    run.add_argument("spec", help="study file (YAML)")
    run.add_argument("--address", help="join this Ray cluster (e.g. auto) instead of starting a local one")
    run.add_argument("--nodes", type=int, metavar="N", help="with --address: wait until the cluster has N nodes (at most 10 min)")
    run.add_argument("--results", metavar="DIR", help="results folder (default: results/<name>)")
    run.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec value (repeatable)")
    run.add_argument("--name", help="study name (default: the spec's name)")
    run.add_argument("--dry-run", action="store_true", help="validate, print the trials and resources, start nothing")
    run.add_argument(
        "--no-data-check", action="store_true", help="with --dry-run: do not read the data tables and images (paper-scale sets)"
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing study in the results folder")
    run.add_argument("--resume", action="store_true", help="continue the study already in the results folder")
    run.add_argument("--no-dashboard", action="store_true", help="start the local Ray cluster without its dashboard")
    run.add_argument("--report", action="store_true", help="write the report (raygap report) when the study ends")
    run.set_defaults(handler=cmd_study_run)

    resume = study.add_parser("resume", help="continue a stopped or killed study from its results folder")
    resume.add_argument("folder", help="the study's results folder")
    resume.add_argument("--address", help="join this Ray cluster instead of starting a local one")
    resume.add_argument("--nodes", type=int, metavar="N", help="with --address: wait until the cluster has N nodes (at most 10 min)")
    resume.add_argument("--no-dashboard", action="store_true", help="start the local Ray cluster without its dashboard")
    resume.add_argument("--report", action="store_true", help="write the report when the study ends")
    resume.set_defaults(handler=cmd_study_resume)

    submit = study.add_parser("submit", help="run a study as a Ray Job on a running cluster (the dashboard's Jobs page shows it)")
    submit.add_argument("spec", help="study file (YAML), validated here before it is submitted")
    submit.add_argument("--address", required=True, help="the cluster's dashboard, e.g. http://127.0.0.1:8265")
    submit.add_argument("--results", metavar="DIR", help="a folder the cluster can reach: absolute on its head, shared, or a URI")
    submit.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec value (repeatable)")
    submit.add_argument("--wait", action="store_true", help="wait for the job to end; print its last logs")
    submit.set_defaults(handler=cmd_study_submit)
    status = study.add_parser("status", help="trials, failures and the Pareto front of a study folder (no Ray needed)")
    status.add_argument("folder")
    status.set_defaults(handler=cmd_study_status)
    compact = study.add_parser(
        "compact", help="fold a study's per-seed Parquet parts into trials.parquet and history.parquet (a study does it when it ends)"
    )
    compact.add_argument("folder")
    compact.set_defaults(handler=cmd_study_compact)
