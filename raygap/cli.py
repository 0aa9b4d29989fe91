"""raygap's command line: `raygap train SPEC` runs one trial locally, without Ray."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import yaml

from raygap.spec import SpecError, load_spec, parse_override

# The metrics a person reads first; everything else is in trials.parquet.
SUMMARY = (
    "modality_gap",
    "uniformity",
    "image_to_text_r1",
    "text_to_image_r1",
    "image_to_text_r5",
    "text_to_image_r5",
    "mismatch_fraction",
    "pair_cosine",
    "zero_shot_top1",
    "linear_probe_top1",
    "temperature",
    "loss",
    "samples_per_s",
    "train_seconds",
    "eval_seconds",
)


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
    folder = Path(args.results or cfg.results or Path("results") / cfg.name)
    print(f"raygap train: {cfg.name} · {cfg.model.name} · temperature {cfg.temperature.kind} · swap {cfg.swap.kind}")
    if spec.space:
        print("  search distributions take their defaults: " + ", ".join(f"{k}={v}" for k, v in params.items() if k in spec.space))

    from raygap import results
    from raygap.train import train

    trial_id = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    history: list[dict] = []
    try:
        final = train(cfg, report=history.append, progress=not args.quiet)
        status, error = "completed", None
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed trial is a result too: record it, then report it
        final, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"

    results.write_text(folder / results.SPEC, yaml.safe_dump(spec.raw, sort_keys=False))
    row = results.trial_row(trial_id, cfg.train.seed, params, config, status, final, error)
    results.append_rows(folder / results.TRIALS, [row])
    if history:
        results.append_rows(folder / results.HISTORY, results.history_rows(trial_id, cfg.train.seed, history))

    if status == "failed":
        print(f"trial {trial_id} failed: {error}", file=sys.stderr)
        print(f"recorded in {folder / results.TRIALS}", file=sys.stderr)
        return 1
    print(format_table(final))
    print(f"trial {trial_id} → {folder / results.TRIALS}, {folder / results.HISTORY}")
    return 0


def format_table(metrics: dict) -> str:
    width = max(map(len, SUMMARY))
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -------"]
    for key in SUMMARY:
        if key in metrics:
            value = metrics[key]
            lines.append(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raygap", description="Studies of the modality gap in CLIP training.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="run one trial locally (no Ray) and write Parquet results")
    train.add_argument("spec", help="study file (YAML)")
    train.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec value (repeatable)")
    train.add_argument("--results", metavar="DIR", help="results folder (default: results/<name>)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
