"""9b. Optuna at scale: the cost of one ask + tell against the number of trials a study holds, with
the SQLite storage raygap uses and with Optuna's journal file, and the samplers' own cost per ask
(TPE, NSGA-II) on a study of that size. Part of `raygap bench --only bookkeeping`."""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Literal

DIRECTIONS: list[Literal["minimize", "maximize"]] = ["minimize", "maximize"]


def _storage(kind: str, folder: Path):
    import optuna

    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(folder / "optuna.log")))


def storage_cost(kind: str, trials: int, window: int = 100) -> dict:
    """ask + tell of `trials` trials (one float parameter, two objectives, random sampler so only
    the storage is timed); milliseconds per trial over the first and the last `window`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seconds = []
    with tempfile.TemporaryDirectory() as scratch:
        study = optuna.create_study(
            storage=_storage(kind, Path(scratch)), directions=DIRECTIONS, sampler=optuna.samplers.RandomSampler(seed=0)
        )
        for _ in range(trials):
            started = time.perf_counter()
            trial = study.ask()
            t = trial.suggest_float("temperature.value", 0.01, 0.6, log=True)
            study.tell(trial, [0.8 - t, 0.3 - abs(t - 0.07)])
            seconds.append(time.perf_counter() - started)
    return {
        "storage": kind,
        "trials": trials,
        "first_ms": 1000 * statistics.median(seconds[:window]),
        "at_1000_ms": 1000 * statistics.median(seconds[900:1000]) if trials >= 1000 else None,
        "last_ms": 1000 * statistics.median(seconds[-window:]),
    }


def sampler_cost(sampler_name: str, trials: int, asks: int = 5) -> dict:
    """Seconds per ask of a sampler on an in-memory study already holding `trials` finished trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distribution = optuna.distributions.FloatDistribution(0.01, 0.6, log=True)
    sampler = optuna.samplers.TPESampler(seed=0) if sampler_name == "tpe" else optuna.samplers.NSGAIISampler(seed=0)
    study = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    values = [0.01 * 60 ** (i / trials) for i in range(trials)]
    study.add_trials(
        [
            optuna.trial.create_trial(params={"t": t}, distributions={"t": distribution}, values=[0.8 - t, 0.3 - abs(t - 0.07)])
            for t in values
        ]
    )
    seconds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(asks):
            started = time.perf_counter()
            trial = study.ask({"t": distribution})
            seconds.append(time.perf_counter() - started)
            study.tell(trial, [0.5, 0.1])
    return {"sampler": sampler_name, "trials": trials, "seconds_per_ask": statistics.median(seconds)}
