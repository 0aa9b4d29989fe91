"""raygap's command line.

raygap train SPEC          one trial locally, without Ray
raygap study run SPEC      a Ray Tune + Optuna study (one Ray Train trainer per trial)
raygap study resume DIR    continue a stopped or killed study
raygap study status DIR    trials so far and the current Pareto front, from Parquet only
raygap study compact DIR   fold the per-seed Parquet parts into trials.parquet / history.parquet
raygap slurm SPEC          the sbatch script that runs a study in a SLURM allocation
raygap dashboard DIR       optuna-dashboard for the study's Optuna database, on 127.0.0.1
raygap report DIR [DIR…]   index.html, PNG figures and report.md from one or more study folders
raygap measure …           every measure of the gap for kept embeddings, or a model on a study's data
raygap bench               what a study costs on this machine, against raygap's targets
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import yaml

from raygap.cli.common import results_folder, write_report
from raygap.cli.console import format_table
from raygap.cli.measure import add_measure_command
from raygap.cli.slurm import add_slurm_command
from raygap.cli.study import add_study_commands
from raygap.config import SpecError, load_spec, parse_override
from raygap.results import UnusableFolder
from raygap.seed_record import SeedRecord
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
    folder = results_folder(cfg, args)
    if cfg.theory is None:
        from raygap.data import check_tables

        check_tables(cfg, str(spec.path))
        from raygap.study.preflight import check_checkpoint

        check_checkpoint(cfg, str(spec.path))
    what = "theory model" if cfg.theory else f"{cfg.model.name} · swap {cfg.swap.kind}"
    print(f"raygap train: {cfg.name} · {what} · temperature {cfg.temperature.kind}")
    if spec.space:
        print("  search distributions take their defaults: " + ", ".join(f"{k}={v}" for k, v in params.items() if k in spec.space))

    from raygap import kept_files, results
    from raygap.trial_kind import train_or_simulate

    trial_id = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    history: list[dict] = []
    kept: list = []  # the seed's artifacts, written once it completed
    try:
        final = train_or_simulate(cfg, history.append, **({} if cfg.theory else {"progress": not args.quiet, "keep": kept.append}))
        status, error = "completed", None
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed trial is a result too: record it, then report it
        final, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"

    folder.write_text(results.SPEC, yaml.safe_dump(spec.raw, sort_keys=False))
    # Artifacts first: a seed recorded as completed has its files.
    written = [
        name
        for a in kept
        if status == "completed"
        for name in kept_files.record_artifacts(folder, trial_id, cfg.train.seed, a.weights, a.embeddings, a.shift)
    ]
    results.record_seed(folder, SeedRecord(trial_id, cfg.train.seed, params, config, status, final, error, history))
    for name in results.DATASETS:
        folder.compact(name)

    if status == "failed":
        print(f"trial {trial_id} failed: {error}", file=sys.stderr)
        print(f"recorded in {folder.uri(results.TRIALS)}", file=sys.stderr)
        return 1
    print(format_table(final))
    print(f"trial {trial_id} → {folder.uri(results.TRIALS)}, {folder.uri(results.HISTORY)}")
    for name in written:
        print(f"kept: {folder.uri(name)}")
    return 0


def _figure_formats(text: str) -> tuple[str, ...]:
    from raygap.report.style import FORMATS

    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(FORMATS)}, got {text!r}")
    return tuple(f for f in FORMATS if f in chosen or f == "png")


def cmd_report(args: argparse.Namespace) -> int:
    page = write_report(args.folders, args.output, args.paper, args.format)
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
        from raygap.bench import CPU_PARTS

        if args.only not in CPU_PARTS:
            raise SpecError(f"--only with --size {args.size}: one of {', '.join(CPU_PARTS)} (the others run together, without --only)")
        CPU_PARTS[args.only](args.size, args.output)
        return 0
    run_bench(args.size, args.output)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from raygap.cli.dashboard import serve

    return serve(args.folder, port=args.port, host=args.host)


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

    add_study_commands(commands)
    add_slurm_command(commands)
    add_measure_command(commands)

    report = commands.add_parser("report", help="a static page (index.html), PNG figures and report.md from study folders")
    report.add_argument("folders", nargs="+", metavar="DIR", help="results folder(s) of studies")
    report.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="where to write (default: DIR/report, for a URI results/<name>/report; required for several studies)",
    )
    report.add_argument(
        "--paper",
        action="store_true",
        help="add a table of each configuration beside the paper's row for its exact setting "
        "(a difference only where the paper states that setting)",
    )
    report.add_argument(
        "--format",
        default="png,pdf,svg",
        type=_figure_formats,
        metavar="png,pdf,svg",
        help="figure files to write, comma-separated (default: all three; the page embeds the PNGs, which are always written)",
    )
    report.set_defaults(handler=cmd_report)

    bench = commands.add_parser("bench", help="measure loop efficiency, per-trial overhead, study efficiency, input, evaluation, memory")
    bench.add_argument(
        "--size",
        choices=["ci", "full", "gpu"],
        default="full",
        help="ci: seconds, a check that it works; full: the figures (minutes); "
        "gpu: RN50/ViT-B-32 throughput, MFU, GPU sharing (CUDA, no Ray)",
    )
    bench.add_argument(
        "--only",
        metavar="PARTS",
        help="with --size gpu, a comma-separated subset of: throughput, pipelines, cache, input, evaluation, sharing, compile; "
        "with ci or full: early-stop (the study with and without search.early_stop), bookkeeping (recording cost at scale), "
        "study-scale (a real 10,000-trial theory study: trials/s early and late), "
        "files-study (a study on image files against the same images in memory) "
        "or compile (train.compile: true against eager)",
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
    except (SpecError, UnusableFolder) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StudyInProgress as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
