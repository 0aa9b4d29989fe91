"""Resuming a study: keep finished trials once, drop the rest (each runs again, continuing from the
stopped trial's checkpoints), and bring the Optuna study in line; on a head without the Optuna
file (a URI study resumed elsewhere) rebuild it from trials.parquet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, cast

import optuna
import polars as pl

from raygap import results
from raygap.config import StudySpec
from raygap.study import library_internals
from raygap.study.folder import optuna_storage
from raygap.study.optuna_search import TUNE_TRIAL_ID
from raygap.study.space import CONTINUES, suggest_params


def finished_trials(trials: pl.DataFrame, repeats: int) -> list[str]:
    """Trials that ended: every seed completed, or one failed or was pruned (either ends its trial)."""
    per_trial = trials.group_by("trial_id", maintain_order=True).agg(
        (pl.col("status") == "completed").sum().alias("completed"), pl.col("status").is_in(["failed", "pruned"]).any().alias("ended")
    )
    return per_trial.filter((pl.col("completed") >= repeats) | pl.col("ended"))["trial_id"].to_list()


class Resumed(NamedTuple):
    """What a resume keeps and runs again."""

    finished: int
    rerun: list[dict]
    """The unfinished trials' parameters, to run again first."""
    continues: list[list[str] | None]
    """For each of `rerun`, the stopped trial it continues (if it started): its Tune id, then those of
    the trials it continued in turn, newest first."""


def prepare_resume(
    folder: results.ResultsFolder, optuna_file: Path, spec: StudySpec, objectives: dict[str, str], repeats: int, echo
) -> Resumed:
    """Keep the finished trials' rows (exactly once) and drop the rest; tell Optuna the outcome
    of trials that finished before the stop but were never told (the driver died in between),
    and mark the other running ones failed. Return how many trials are finished and the
    parameters of the unfinished ones, to run again first, each with the trial it continues."""
    finished: list[str] = []
    trials = pl.DataFrame()
    if folder.exists(results.TRIALS):
        trials, footer, parts = folder.read_parts(results.TRIALS)
        finished = finished_trials(trials, repeats)
        kept = trials.filter(pl.col("trial_id").is_in(finished))
        if kept.height < trials.height:
            folder.write_parquet(results.TRIALS, kept, footer, parts)
        if folder.exists(results.HISTORY):  # also rows left by a resume killed between the two writes
            history, footer, parts = folder.read_parts(results.HISTORY)
            if not history["trial_id"].is_in(finished).all():
                folder.write_parquet(results.HISTORY, history.filter(pl.col("trial_id").is_in(finished)), footer, parts)
    rerun: list[dict] = []
    continues: list[list[str] | None] = []
    told = 0
    if not optuna_file.exists() and finished:
        rebuild_optuna_study(optuna_file, spec, trials, finished, objectives)
        echo(
            f"resuming: no Optuna study at {optuna_file}; "
            f"rebuilt it from the {len(finished)} finished trial(s) in {folder.uri(results.TRIALS)}"
        )
    elif optuna_file.exists():
        storage = optuna_storage(optuna_file)
        study = optuna.load_study(study_name=spec.name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)):
            tune_id = trial.user_attrs.get(TUNE_TRIAL_ID)
            if tune_id in finished:
                rows = trials.filter(pl.col("trial_id") == tune_id)
                storage.set_trial_state_values(library_internals.storage_trial_id(trial), *_outcome(rows, objectives))
                told += 1
                continue
            started = trial.state == optuna.trial.TrialState.RUNNING
            if started or library_internals.enqueued_params(trial):  # asked, or waiting (a search.first configuration)
                rerun.append(dict(trial.params) if started else library_internals.enqueued_params(trial))
                # a trial that itself continued others: its checkpoints first, then theirs
                continues.append([tune_id, *trial.user_attrs.get(CONTINUES, [])] if started and tune_id else None)
            storage.set_trial_state_values(library_internals.storage_trial_id(trial), optuna.trial.TrialState.FAIL)
    echo(
        f"resuming: {len(finished)} finished trial(s) kept, {len(rerun)} unfinished one(s) to run again"
        + (f"; {told} finished one(s) told to Optuna" if told else "")
    )
    return Resumed(len(finished), rerun, continues)


def rebuild_optuna_study(optuna_file: Path, spec: StudySpec, trials: pl.DataFrame, finished: list[str], objectives: dict[str, str]) -> None:
    """A new Optuna study in `optuna_file` holding the finished trials as trials.parquet has them:
    their parameters (with the distributions the spec's space gives them), outcome and Tune id.
    What is lost with the old file: the unfinished trials' parameters (sampled anew) and numbering."""
    study = optuna.create_study(
        study_name=spec.name,
        storage=optuna_storage(optuna_file),
        directions=["minimize" if mode == "min" else "maximize" for mode in objectives.values()],
    )
    param_columns = [c for c in trials.columns if c.startswith("param.")]
    for trial_id in finished:
        rows = trials.filter(pl.col("trial_id") == trial_id)
        first = rows.row(0, named=True)  # a trial's seeds share its parameters
        params = {c.removeprefix("param."): first[c] for c in param_columns if first[c] is not None}
        fixed = optuna.trial.FixedTrial(params)
        suggest_params(fixed, spec.raw, str(spec.path))  # records each parameter's distribution
        state, values = _outcome(rows, objectives)
        if values is not None and any(math.isnan(v) for v in values):
            state, values = optuna.trial.TrialState.FAIL, None  # as the searcher tells a NaN result
        trial = optuna.trial.create_trial(
            params=params, distributions=fixed.distributions, state=state, values=values, user_attrs={TUNE_TRIAL_ID: trial_id}
        )
        study.add_trial(trial)


def _outcome(rows: pl.DataFrame, objectives: dict[str, str]) -> tuple[optuna.trial.TrialState, list[float] | None]:
    """What the trial would have told Optuna: pruned, failed, or complete with its seeds' mean objectives."""
    if (rows["status"] == "pruned").any():
        return optuna.trial.TrialState.PRUNED, None
    if (rows["status"] != "completed").any():
        return optuna.trial.TrialState.FAIL, None
    return optuna.trial.TrialState.COMPLETE, [float(cast(float, rows[key].mean())) for key in objectives]
