"""What the command line's commands share."""

from __future__ import annotations

from pathlib import Path

from raygap.config import SpecError


def results_folder(cfg, args):
    from raygap.results import ResultsFolder

    return ResultsFolder(args.results or cfg.results or Path("results") / cfg.name)


def write_report(folders: list[str], output: str | None, paper: bool = False, formats: tuple[str, ...] = ("png", "pdf", "svg")) -> Path:
    from raygap import results
    from raygap.report import write_report as write

    missing = [f for f in folders if "://" not in f and not results.ResultsFolder(f).exists(results.TRIALS)]
    if missing:
        raise SpecError(f"not a raygap results folder (no trials.parquet or trials/ parts): {', '.join(missing)}")
    if len(folders) > 1 and not output:
        raise SpecError("several studies need -o DIR for the comparison page")
    from raygap.report.studies import NothingToReport

    try:
        return write(folders, output, paper, formats)
    except NothingToReport as error:
        raise SpecError(str(error)) from None
