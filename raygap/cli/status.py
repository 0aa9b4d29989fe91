"""raygap study status: a study folder's running trials, finished seeds, failures, front, kept files
and any disagreement between its files; reads the folder only (no Ray)."""

from __future__ import annotations

import argparse
import sys
import time

from raygap.cli.console import format_front
from raygap.config import SpecError


def cmd_study_status(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from raygap import kept_files, results

    folder = results.ResultsFolder(args.folder)
    running = folder.exists(results.RUNNING)
    if running:
        _print_running(folder, json.loads(folder.read_text(results.RUNNING)))
    if not folder.exists(results.TRIALS):
        if running:
            print(f"{folder}: no seed has finished yet")
            return 0
        raise SpecError(f"{folder}: no trials.parquet or trials/ parts here (not a study folder, or no trial has finished yet)")
    trials = folder.read(results.TRIALS)
    counts = trials.group_by("status").len().sort("status")
    print(
        f"{folder}: {trials['trial_id'].n_unique()} trial(s), {trials.height} seed run(s): "
        + ", ".join(f"{n} {s}" for s, n in counts.iter_rows())
    )
    for row in trials.filter(pl.col("status") == "failed").iter_rows(named=True):
        print(f"  failed {row['trial_id']} seed {row['seed']}: {row['error']}")
    for row in trials.filter(pl.col("status") == "pruned").iter_rows(named=True):
        print(f"  pruned {row['trial_id']} seed {row['seed']} at step {row.get('stopped_at_step')}")
    if folder.exists(results.PARETO):
        import yaml

        from raygap.catalog import study_objectives
        from raygap.study.folder import read_stored_spec

        # the study file's objectives, as the report reads them (pareto.parquet's footer repeats them)
        stored = yaml.safe_load(read_stored_spec(folder)) if folder.exists(results.SPEC) else {}
        objectives = study_objectives(stored or {})
        print(format_front(folder.read(results.PARETO), objectives))
    _print_artifacts(kept_files.list_artifacts(folder))
    return _report_disagreements(folder)


ARTIFACTS_LISTED = 20  # kept files status names one by one; more are counted


def _print_artifacts(kept: list[tuple[str, int]]) -> None:
    if not kept:
        return
    total = sum(size for _, size in kept)
    print(f"artifacts: {len(kept)} file(s), {total / 1e6:.2f} MB")
    for name, size in kept[:ARTIFACTS_LISTED]:
        print(f"  {name}  {size / 1e6:.2f} MB")
    if len(kept) > ARTIFACTS_LISTED:
        print(f"  … and {len(kept) - ARTIFACTS_LISTED} more")


def _print_running(folder, live: dict) -> None:
    """The running trials' latest evaluation points, from running.json (rewritten every 10 s)."""
    age = time.time() - live["updated_at"]
    stamp = time.strftime("%H:%M:%S", time.localtime(live["updated_at"]))
    print(f"{folder}: {len(live['trials'])} trial(s) running (as of {stamp}, {age:.0f} s ago)")
    for trial in live["trials"]:
        of = f"/{trial['steps']}" if trial.get("steps") else ""
        params = ", ".join(f"{k}={v}" for k, v in trial["params"].items())
        skip = {"trial_id", "seed", "step", "steps", "params", "started_at"}
        values = ", ".join(f"{k} {v:.3f}" for k, v in trial.items() if k not in skip and isinstance(v, float))
        print(
            f"  running {trial['trial_id']} seed {trial['seed']} step {trial['step']}{of}: {values or 'no objective yet'}"
            + (f" ({params})" if params else "")
        )


def _report_disagreements(folder) -> int:
    """1 and one line per disagreement between the folder's files (integrity), else 0."""
    from raygap.study import integrity
    from raygap.study.folder import optuna_path, stored_name

    name = stored_name(folder)
    found = integrity.disagreements(folder, optuna_path(folder, name), name)
    for line in found:
        print(f"warning: {line}", file=sys.stderr)
    if found:
        print("a resume refuses these files: restore or remove the part named, or start again with --overwrite", file=sys.stderr)
    return 1 if found else 0
