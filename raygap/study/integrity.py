"""Whether a study folder's files agree with each other: the Optuna journal is whole, no trials row
is counted twice (a copied part), no finished Optuna trial lacks its rows (a deleted part), no
history row belongs to a trial the table lacks. `study status` reports what disagrees; a resume
refuses to continue from it. Ray-free."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from raygap import results
from raygap.results import UnusableFolder

SHOWN = 5  # ids named per finding; the rest are counted


def check_optuna_journal(path: Path) -> None:
    """UnusableFolder if the Optuna journal at `path` has a line that is not whole JSON (cut short by
    a full disk or a kill, or text appended): Optuna reads past it once, then fails on the next write."""
    if path.suffix != ".log" or not path.exists():
        return
    with path.open("rb") as journal:
        for number, line in enumerate(journal, start=1):
            try:
                json.loads(line)
                whole = line.endswith(b"\n")
            except ValueError:
                whole = False
            if not whole:
                raise UnusableFolder(
                    f"{path}: line {number} of the Optuna journal is damaged; move the file aside, and "
                    "`raygap study resume` rebuilds the Optuna study from trials.parquet"
                )


def disagreements(folder: results.ResultsFolder, optuna_file: Path, study_name: str, history: bool = True) -> list[str]:
    """One line per way the folder's files disagree; empty when they agree. `history`: count
    history rows without a trial (a resume drops them: a kill while it drops an unfinished trial's
    rows leaves them too)."""
    if not folder.exists(results.TRIALS):
        return []
    trials = folder.read(results.TRIALS)
    found = []
    twice = trials.group_by("trial_id", "seed").len().filter(pl.col("len") > 1).sort("trial_id", "seed")
    if twice.height:
        found.append(
            f"{twice.height} seed run(s) recorded more than once (a copied part in trials/?): "
            + _named(f"{t} seed {s}" for t, s in twice.select("trial_id", "seed").iter_rows())
        )
    known = set(trials["trial_id"].to_list())
    if history and folder.exists(results.HISTORY):
        orphans = sorted(set(folder.read(results.HISTORY)["trial_id"].to_list()) - known)
        if orphans:
            found.append(f"history rows of {len(orphans)} trial(s) that trials.parquet lacks (a deleted part?): " + _named(orphans))
    missing = sorted(set(_optuna_finished(optuna_file, study_name)) - known)
    if missing:
        found.append(
            f"{len(missing)} trial(s) finished in the Optuna study but absent from trials.parquet (a deleted part?): " + _named(missing)
        )
    return found


def _optuna_finished(optuna_file: Path, study_name: str) -> list[str]:
    """Tune ids of the Optuna study's COMPLETE and PRUNED trials (none without the file)."""
    import optuna

    from raygap.study.folder import TUNE_TRIAL_ID, optuna_storage

    if not optuna_file.exists():
        return []
    check_optuna_journal(optuna_file)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(optuna_file)
    if study_name not in {study.study_name for study in storage.get_all_studies()}:
        return []
    study = optuna.load_study(study_name=study_name, storage=storage)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t.user_attrs[TUNE_TRIAL_ID] for t in study.get_trials(deepcopy=False, states=states) if TUNE_TRIAL_ID in t.user_attrs]


def _named(ids) -> str:
    ids = list(ids)
    return ", ".join(map(str, ids[:SHOWN])) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
