"""The single writer of a study's results folder: a Tune callback on the head."""

from __future__ import annotations

import json
import time
from typing import Callable

import polars as pl
from ray import tune

from raygap import catalog, pareto, results
from raygap.search import recorded_params


class StudyRecorder(tune.Callback):
    """The single writer of the results folder: rows land as seeds finish, the front as trials do."""

    def __init__(
        self, folder: results.ResultsFolder, objectives: dict[str, str], total: int, echo: Callable[[str], None], finished: int = 0
    ):
        self.folder, self.objectives, self.total, self.echo = folder, objectives, total, echo
        self.recorded: set[str] = set()
        self.recorded_seeds: set[tuple[str, int]] = set()
        self.trial_started_at: dict[str, float] = {}
        self.completed, self.failed = finished, 0  # a resumed study counts the trials it kept
        self.started = time.time()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.trial_started_at.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("event") == "seed":
            report = json.loads(result["payload"])
            if (report["trial_id"], report["seed"]) in self.recorded_seeds:
                return  # a restarted trial's repeat of a seed already written
            self._record_seed(report)
            if report["status"] == "failed":
                self.failed += 1
                self._progress(trials, trial, f"trial {trial.trial_id} failed: {report['error']}")
        elif result.get("event") == "done":
            self.completed += 1
            front = self._update_front()
            self._progress(
                trials,
                trial,
                f"trial {trial.trial_id} done: "
                + ", ".join(f"{k} {result[k]:.3f}" for k in self.objectives)
                + f" · front {front} point(s)",
            )

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        if trial.trial_id not in self.recorded:  # failed before any seed finished: record the error
            error = str(trial.get_error() or "unknown error").strip().splitlines()[-1]
            results.record_seed(self.folder, trial.trial_id, -1, recorded_params(trial.config), {}, "failed", error=error)
        self._progress(trials, trial, f"trial {trial.trial_id} failed")

    def _record_seed(self, report: dict) -> None:
        self.recorded.add(report["trial_id"])
        self.recorded_seeds.add((report["trial_id"], report["seed"]))
        # Wall-clock stamps on the head, for the per-trial overhead in `raygap bench`.
        stamps = {"trial_started_at": self.trial_started_at.get(report["trial_id"]), "recorded_at": time.time()}
        final = report.get("final") and {**report["final"], **stamps}
        results.record_seed(
            self.folder,
            report["trial_id"],
            report["seed"],
            report["params"],
            report["config"],
            report["status"],
            final,
            report.get("error"),
            report.get("history"),
        )

    def _update_front(self) -> int:
        summary = pareto.summarize_trials(self.folder.read(results.TRIALS), self.objectives, catalog.SUMMARIZED)
        self.folder.write_parquet(results.PARETO, summary, metadata={"objectives": json.dumps(self.objectives)})
        return summary.filter(pl.col("rank") == 1).height

    def _progress(self, trials, finished, message: str) -> None:
        running = sum(t.status == "RUNNING" and t is not finished for t in trials)
        elapsed = time.time() - self.started
        self.echo(
            f"[{elapsed:6.0f}s] {message} · {self.completed + self.failed}/{self.total} finished, {running} running, {self.failed} failed"
        )
