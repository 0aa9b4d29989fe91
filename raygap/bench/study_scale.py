"""Part 10: a real study of many short theory trials through the engine (Ray Tune, Optuna's journal
file, the head's single writer), and how fast trials finish early and late in it. The sampler is
random so that the figure is raygap's and Tune's cost per trial; what TPE and NSGA-II add at that
size is part 9's (`optuna_scale`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SCALE_STUDY: dict[str, Any] = {
    "name": "scale",
    "theory": {"n": 8, "d": 16, "delta": 0.5, "init": "matched", "time": 5, "dt": 0.1, "records": 5},
    "temperature": {"kind": "fixed", "value": {"loguniform": [0.05, 2.0]}},
    "search": {"sampler": "random", "seed": 0, "objectives": {"modality_gap": "min", "margin": "max"}},
}


def study_scale(trials: int, folder: str | Path, echo=print, window: int = 1000) -> dict:
    """Run the study of `trials` trials into `folder`/results and return its trials/s over the first
    and the last `window` trials recorded (by the head's clock) and their ratio (≤ 1.5 is flat)."""
    from raygap.config import load_spec
    from raygap.results import TRIALS, ResultsFolder
    from raygap.study import run_study

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scale.yaml"
    raw = {**SCALE_STUDY, "search": {**SCALE_STUDY["search"], "trials": trials}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    results = ResultsFolder(folder / "results")
    shown = max(trials // 10, 1)
    progress = [0]

    def every_tenth(line: str) -> None:  # one line per trial is too many at this size
        progress[0] += 1
        if progress[0] % shown == 0:
            echo(f"    {line}")

    run_study(load_spec(path), results, echo=every_tenth, dashboard=False, overwrite=True)
    stamps = results.read(TRIALS).sort("recorded_at")["recorded_at"].to_list()
    window = min(window, len(stamps) // 2)
    first = (window - 1) / (stamps[window - 1] - stamps[0])  # window stamps span window − 1 trials
    last = (window - 1) / (stamps[-1] - stamps[-window])
    return {
        "trials": len(stamps),
        "window": window,
        "seconds": stamps[-1] - stamps[0],
        "first_trials_per_s": first,
        "last_trials_per_s": last,
        "first_over_last": first / last,
        "sampler": "random",
        "results": str(results),
    }
