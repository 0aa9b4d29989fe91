"""raygap's command line.

raygap train SPEC          one trial locally, without Ray
raygap study run SPEC      a Ray Tune + Optuna study (one Ray Train trainer per trial)
raygap study resume DIR    continue a stopped or killed study
raygap study status DIR    trials so far and the current Pareto front, from Parquet only
raygap dashboard DIR       optuna-dashboard for the study's Optuna database, on 127.0.0.1
raygap report DIR [DIR…]   index.html, PNG figures and report.md from one or more study folders
raygap bench               what a study costs on this machine, against raygap's targets
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import yaml

from raygap.config import SpecError, load_spec, parse_override
from raygap.console import format_front, format_table
from raygap.study.folder import StudyInProgress


def _lookup(tree: dict, path: str):
    for key in path.split("."):
        tree = tree[key]
    return tree


def cmd_train(args: argparse.Namespace) -> int:
    # Validate everything before any work: a bad file fails here, and nothing is written.
    spec = load_spec(args.spec, args.set)
    cfg = spec.defaults()
    config = cfg.model_dump(mode="json")
    params = {path: _lookup(config, path) for path in spec.space}
    params.update({key: _lookup(config, key) for key, _ in map(parse_override, args.set)})
    folder = _results_folder(cfg, args)
    if cfg.theory is None:
        from raygap.data import check_tables

        check_tables(cfg, str(spec.path))
    what = "theory model" if cfg.theory else f"{cfg.model.name} · swap {cfg.swap.kind}"
    print(f"raygap train: {cfg.name} · {what} · temperature {cfg.temperature.kind}")
    if spec.space:
        print("  search distributions take their defaults: " + ", ".join(f"{k}={v}" for k, v in params.items() if k in spec.space))

    from raygap import results
    from raygap.clip.trial import run_trial

    trial_id = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    history: list[dict] = []
    try:
        final = run_trial(cfg, history.append, **({} if cfg.theory else {"progress": not args.quiet}))
        status, error = "completed", None
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed trial is a result too: record it, then report it
        final, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"

    folder.write_text(results.SPEC, yaml.safe_dump(spec.raw, sort_keys=False))
    results.record_seed(folder, trial_id, cfg.train.seed, params, config, status, final, error, history)

    if status == "failed":
        print(f"trial {trial_id} failed: {error}", file=sys.stderr)
        print(f"recorded in {folder.uri(results.TRIALS)}", file=sys.stderr)
        return 1
    print(format_table(final))
    print(f"trial {trial_id} → {folder.uri(results.TRIALS)}, {folder.uri(results.HISTORY)}")
    return 0


def _results_folder(cfg, args):
    from raygap.results import ResultsFolder

    return ResultsFolder(args.results or cfg.results or Path("results") / cfg.name)


def cmd_study_run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, args.set, check_paths=not args.dry_run)
    if args.name:
        spec.raw["name"] = args.name
    from raygap import search  # optuna, no ray: a dry run never starts a cluster

    cfg = spec.resolve(check_paths=not args.dry_run)
    folder = _results_folder(cfg, args)
    total = search.number_of_trials(spec)
    if args.dry_run:
        return _print_dry_run(spec, cfg, total, folder)
    from raygap import study

    started = time.time()
    try:
        summary = study.run_study(
            spec, folder, address=args.address, dashboard=not args.no_dashboard, resume=args.resume, overwrite=args.overwrite
        )
    except (study.StudyStopped, KeyboardInterrupt) as stop:
        kept = (
            f"{stop.finished} of {stop.total} trial(s) finished and kept"
            if isinstance(stop, study.StudyStopped)
            else "finished trials kept"
        )
        print(f"\n{cfg.name}: interrupted; {kept}. Continue with: raygap study resume {folder}", file=sys.stderr)
        return 130
    print(f"\n{cfg.name}: finished in {time.time() - started:.0f} s")
    print(format_front(summary, cfg.search.objectives))
    print(f"results: {folder}/ (trials.parquet, history.parquet, pareto.parquet); Optuna study: {study.optuna_path(folder, cfg.name)}")
    if args.report:
        if not folder.is_local:
            print("--report: the results folder is not on this disk; run `raygap report` where it is")
        else:
            print(f"report: {_write_report([folder.path], None)}")
    return 0


def cmd_study_resume(args: argparse.Namespace) -> int:
    """`study run` of the folder's own spec.yaml (local or URI), continuing where it stopped."""
    import tempfile

    from raygap.results import ResultsFolder
    from raygap.study.folder import read_stored_spec

    folder = ResultsFolder(args.folder)
    args.results, args.resume, args.overwrite = args.folder, True, False
    args.set, args.name, args.dry_run = [], None, False
    if folder.is_local:
        read_stored_spec(folder)  # raises unless this is a study folder
        args.spec = str(Path(folder.path, "spec.yaml"))
        return cmd_study_run(args)
    with tempfile.TemporaryDirectory(prefix="raygap-resume-") as scratch:  # load_spec reads a local copy
        args.spec = str(Path(scratch, "spec.yaml"))
        Path(args.spec).write_text(read_stored_spec(folder))
        return cmd_study_run(args)


def cmd_report(args: argparse.Namespace) -> int:
    page = _write_report(args.folders, args.output)
    print(f"report: {page}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from raygap.bench import run_bench

    if args.size == "gpu":
        from raygap.bench import GPU_PARTS, check_gpu_bench, run_gpu_bench

        parts = tuple(args.only.split(",")) if args.only else GPU_PARTS
        try:
            check_gpu_bench(parts)
        except ValueError as error:
            raise SpecError(str(error)) from None
        run_gpu_bench(args.output, parts=parts)
        return 0
    if args.only:
        raise SpecError("--only picks parts of --size gpu")
    run_bench(args.size, args.output)
    return 0


def _write_report(folders: list[str], output: str | None) -> Path:
    from raygap.report import write_report

    missing = [f for f in folders if not Path(f, "trials.parquet").is_file() and "://" not in f]
    if missing:
        raise SpecError(f"not a raygap results folder (no trials.parquet): {', '.join(missing)}")
    if len(folders) > 1 and not output:
        raise SpecError("several studies need -o DIR for the comparison page")
    return write_report(folders, output)


def _print_dry_run(spec, cfg, total: int, folder) -> int:
    from raygap import search
    from raygap.study.cluster import plan_for_this_machine

    print(f"{cfg.name}: {total} trial(s) × {cfg.search.repeats} seed(s), sampler {cfg.search.sampler}, objectives {cfg.search.objectives}")
    if cfg.search.sampler == "grid" and spec.space:
        for i, point in enumerate(search.grid_points(spec)):
            print(f"  {i:3d}  " + ", ".join(f"{k}={v}" for k, v in search.recorded_params(point).items()))
    elif not spec.space:
        print("  nothing is searched: one configuration" + (f", {cfg.search.repeats} seeds" if cfg.search.repeats > 1 else ""))
    else:
        for path, dist in spec.space.items():
            shown = search.option_labels(dist) if dist.kind in ("choice", "grid") else list(dist.args)
            print(f"  {path}: {dist.kind} {shown}")
    r = cfg.resources
    device = "GPU" if r.use_gpu else ("GPU if the cluster has them, else CPU" if r.use_gpu is None else "CPU")
    if cfg.theory is not None:
        print("each trial is a theory simulation: one CPU in its trial process (resources do not apply)")
    else:
        print(f"each trial needs {r.workers_per_trial} worker(s) on {device}")
    try:
        print(f"resources on this machine: {plan_for_this_machine(spec).describe()}")
    except SpecError as error:
        print(f"this machine cannot run it: {str(error).removeprefix('resources: ')}")
    print(f"results would go to {folder}/")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from raygap.dashboard import serve

    return serve(args.folder, port=args.port, host=args.host)


def cmd_study_status(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from raygap import results

    folder = results.ResultsFolder(args.folder)
    if not folder.exists(results.TRIALS):
        raise SpecError(f"{folder}: no trials.parquet here (not a study folder, or no trial has finished yet)")
    trials = folder.read(results.TRIALS)
    counts = trials.group_by("status").len().sort("status")
    print(
        f"{folder}: {trials['trial_id'].n_unique()} trial(s), {trials.height} seed run(s): "
        + ", ".join(f"{n} {s}" for s, n in counts.iter_rows())
    )
    for row in trials.filter(pl.col("status") == "failed").iter_rows(named=True):
        print(f"  failed {row['trial_id']} seed {row['seed']}: {row['error']}")
    if folder.exists(results.PARETO):
        objectives = json.loads(folder.schema(results.PARETO).metadata[b"objectives"])
        print(format_front(folder.read(results.PARETO), objectives))
    return 0


def _add_study_commands(commands) -> None:
    """raygap study run / resume / status."""
    study = commands.add_parser("study", help="hyperparameter studies with Ray Tune + Optuna").add_subparsers(
        dest="study_command", required=True
    )
    run = study.add_parser("run", help="run a study: Optuna search, one Ray Train trainer per trial")
    run.add_argument("spec", help="study file (YAML)")
    run.add_argument("--address", help="join this Ray cluster (e.g. auto) instead of starting a local one")
    run.add_argument("--results", metavar="DIR", help="results folder (default: results/<name>)")
    run.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec value (repeatable)")
    run.add_argument("--name", help="study name (default: the spec's name)")
    run.add_argument("--dry-run", action="store_true", help="validate, print the trials and resources, start nothing")
    run.add_argument("--overwrite", action="store_true", help="replace an existing study in the results folder")
    run.add_argument("--resume", action="store_true", help="continue the study already in the results folder")
    run.add_argument("--no-dashboard", action="store_true", help="start the local Ray cluster without its dashboard")
    run.add_argument("--report", action="store_true", help="write the report (raygap report) when the study ends")
    run.set_defaults(handler=cmd_study_run)

    resume = study.add_parser("resume", help="continue a stopped or killed study from its results folder")
    resume.add_argument("folder", help="the study's results folder")
    resume.add_argument("--address", help="join this Ray cluster instead of starting a local one")
    resume.add_argument("--no-dashboard", action="store_true", help="start the local Ray cluster without its dashboard")
    resume.add_argument("--report", action="store_true", help="write the report when the study ends")
    resume.set_defaults(handler=cmd_study_resume)

    status = study.add_parser("status", help="trials, failures and the Pareto front of a study folder (no Ray needed)")
    status.add_argument("folder")
    status.set_defaults(handler=cmd_study_status)


def build_parser() -> argparse.ArgumentParser:
    from raygap import __version__

    parser = argparse.ArgumentParser(prog="raygap", description="Studies of the modality gap in CLIP training.")
    parser.add_argument("--version", action="version", version=f"raygap {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="run one trial locally (no Ray) and write Parquet results")
    train.add_argument("spec", help="study file (YAML)")
    train.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec value (repeatable)")
    train.add_argument("--results", metavar="DIR", help="results folder (default: results/<name>)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=cmd_train)

    _add_study_commands(commands)

    report = commands.add_parser("report", help="a static page (index.html), PNG figures and report.md from study folders")
    report.add_argument("folders", nargs="+", metavar="DIR", help="results folder(s) of studies")
    report.add_argument("-o", "--output", metavar="DIR", help="where to write (default: DIR/report; required for several studies)")
    report.set_defaults(handler=cmd_report)

    bench = commands.add_parser("bench", help="measure loop efficiency, per-trial overhead, study efficiency, input, evaluation, memory")
    bench.add_argument(
        "--size",
        choices=["ci", "full", "gpu"],
        default="full",
        help="ci: seconds, a check that it works; full: the figures (minutes); gpu: RN50/ViT-B-32 throughput, MFU, GPU sharing (CUDA, no Ray)",
    )
    bench.add_argument(
        "--only",
        metavar="PARTS",
        help="with --size gpu, a comma-separated subset of: throughput, pipelines, cache, input, evaluation, sharing",
    )
    bench.add_argument("-o", "--output", default="results/bench", metavar="DIR", help="where the JSON goes (default: results/bench)")
    bench.set_defaults(handler=cmd_bench)

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard for a study folder's Optuna database (127.0.0.1)")
    dashboard.add_argument("folder")
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.add_argument("--host", default="127.0.0.1", help="bind address; anything else exposes the study to the network")
    dashboard.set_defaults(handler=cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StudyInProgress as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
