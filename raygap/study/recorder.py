"""The single writer of a study's results folder: a Tune callback on the head (what it records,
and how, is `raygap.study.ledger`)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Callable, Mapping

from ray import tune

from raygap import results
from raygap.seed_record import SeedRecord
from raygap.study import messages
from raygap.study.ledger import StudyLedger
from raygap.study.messages import Kind
from raygap.study.space import recorded_params

LIVE_EVERY = 10.0
"""Seconds between rewrites of running.json (what `raygap study status` shows of running trials)."""
ECHO_EVERY = 30.0
"""A running trial prints its latest evaluation point at most this often: a trial shorter than
this prints none, so a 10,000-trial study of short trials prints a line per trial only."""


class StudyRecorder(tune.Callback):
    """The single writer of the results folder: rows land as seeds finish, the front as trials do."""

    def __init__(
        self,
        folder: results.ResultsFolder,
        objectives: dict[str, str],
        total: int,
        echo: Callable[[str], None],
        finished: int = 0,
        stopped: Mapping[str, int] | None = None,
        held: dict[str, float] | None = None,
    ):
        self.folder, self.objectives, self.total, self.echo = folder, objectives, total, echo
        self.ledger = StudyLedger(folder, objectives)
        self.stopped = stopped if stopped is not None else {}  # trial id → step; only the early-stopping scheduler writes it
        self.held = held or {}  # what a trial holds (plan.held()), for a pruned seed's CPU/GPU-hours
        self.recorded: set[str] = set()
        self.recorded_seeds: set[tuple[str, int]] = set()
        self.done: set[str] = set()  # trials whose means arrived
        self.trial_started_at: dict[str, float] = {}
        self.seed_started_at: dict[str, float] = {}
        self.live_rows: dict[str, list[dict]] = {}  # the running seed's evaluation points, kept for a pruned seed
        self.live_seed: dict[str, int] = {}
        self.completed, self.failed, self.pruned = finished, 0, 0  # a resumed study counts the trials it kept
        self.started = time.time()
        self.running: set[str] = set()  # counted here: the progress line would scan every trial
        self.latest: dict[str, dict] = {}  # a running trial's latest evaluation point, for running.json
        self.echoed_at: dict[str, float] = {}
        self.live_written_at = 0.0

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into tuner.pkl when the Tuner is built. `echo` may be any
        # callable, e.g. print once Ray's tqdm_ray has replaced builtins.print in the head (it does
        # when a worker's first log line arrives): pickling it fails. A copy prints plainly.
        return {**self.__dict__, "echo": _print_line}

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.pruned

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):  # Tune's signature
        self.folder.remove(results.RUNNING)  # a killed run's stale list

    def on_experiment_end(self, trials, **info):
        self.folder.remove(results.RUNNING)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)
        self.trial_started_at.setdefault(trial.trial_id, time.time())
        self.seed_started_at.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        kind = messages.kind_of(result)
        if kind is Kind.EVAL:
            point = messages.EvalPoint.read(result, self.objectives)
            self.live_seed[trial.trial_id] = point.seed
            rows = self.live_rows.setdefault(trial.trial_id, [])
            while rows and rows[-1]["step"] >= point.step:  # a restarted seed repeats points after its checkpoint
                rows.pop()
            rows.append(point.numbers)
            self._show_point(trial, point)
        elif kind is Kind.SEED:
            self.live_rows.pop(trial.trial_id, None)
            self.seed_started_at[trial.trial_id] = time.time()
            record = messages.read_seed(result)
            if (record.trial_id, record.seed) in self.recorded_seeds:
                return  # a restarted trial's repeat of a seed already written
            self._record_seed(record)
            if record.status == "failed":
                self.failed += 1
                self._progress(trial, f"trial {trial.trial_id} failed: {record.error}")
        elif kind is Kind.DONE:
            if trial.trial_id in self.done:
                return  # a restarted worker group's repeat of the means
            self.done.add(trial.trial_id)
            self.completed += 1
            front = self.ledger.finish_trial(trial.trial_id)
            self._progress(
                trial,
                f"trial {trial.trial_id} done: "
                + ", ".join(f"{k} {result[k]:.3f}" for k in self.objectives)
                + f" · front {front} point(s)",
            )

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.latest.pop(trial.trial_id, None)
        self._write_running(time.time())
        step = self.stopped.get(trial.trial_id)
        if step is None:
            return
        rows = self.live_rows.pop(trial.trial_id, [])
        seed = self.live_seed.get(trial.trial_id, -1)
        final = {
            **(rows[-1] if rows else {}),
            "stopped_at_step": step,
            **self.held,
            "wall_seconds": time.time() - self.seed_started_at.get(trial.trial_id, self.started),
            "trial_started_at": self.trial_started_at.get(trial.trial_id),
            "recorded_at": time.time(),
        }
        self.ledger.record_seed(SeedRecord(trial.trial_id, seed, recorded_params(trial.config), {}, "pruned", final, None, rows))
        self.recorded.add(trial.trial_id)
        self.pruned += 1
        self._progress(trial, f"trial {trial.trial_id} stopped early at step {step} (pruned)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.latest.pop(trial.trial_id, None)
        self._write_running(time.time())
        self.failed += 1
        if trial.trial_id not in self.recorded:  # failed before any seed finished: record the error
            error = str(trial.get_error() or "unknown error").strip().splitlines()[-1]
            self.ledger.record_seed(SeedRecord(trial.trial_id, -1, recorded_params(trial.config), {}, "failed", error=error))
        self._progress(trial, f"trial {trial.trial_id} failed")

    def _show_point(self, trial, point: messages.EvalPoint) -> None:
        """Keep the point for running.json (rewritten every LIVE_EVERY s) and print it where the
        trial has run ECHO_EVERY s since it started or last printed."""
        now = time.time()
        values = {k: (None if math.isnan(v) else v) for k, v in point.objectives.items()}
        self.latest[trial.trial_id] = {
            "trial_id": trial.trial_id,
            "seed": point.seed,
            "step": point.step,
            "steps": point.steps,
            **values,
            "params": recorded_params(trial.config),
            "started_at": self.trial_started_at.get(trial.trial_id),
        }
        if now - self.echoed_at.get(trial.trial_id, self.trial_started_at.get(trial.trial_id, now)) >= ECHO_EVERY:
            self.echoed_at[trial.trial_id] = now
            of = f"/{point.steps}" if point.steps else ""
            shown = ", ".join(f"{k} {v:.3f}" for k, v in point.objectives.items() if not math.isnan(v))
            self.echo(
                f"[{now - self.started:6.0f}s] trial {trial.trial_id} seed {point.seed} step {point.step}{of}: {shown or 'evaluated'}"
            )
        self._write_running(now)

    def _write_running(self, now: float) -> None:
        """running.json, at most every LIVE_EVERY s (a rewrite per event would cost a 10,000-trial
        study on object storage an upload per trial): `study status` says how old it is."""
        if now - self.live_written_at >= LIVE_EVERY:
            self.live_written_at = now
            running = [self.latest[t] for t in sorted(self.latest) if t in self.running]
            self.folder.write_text(results.RUNNING, json.dumps({"updated_at": now, "trials": running}, default=str))

    def _record_seed(self, record: SeedRecord) -> None:
        self.recorded.add(record.trial_id)
        self.recorded_seeds.add((record.trial_id, record.seed))
        # Wall-clock stamps on the head, for the per-trial overhead in `raygap bench`.
        stamps = {"trial_started_at": self.trial_started_at.get(record.trial_id), "recorded_at": time.time()}
        self.ledger.record_seed(dataclasses.replace(record, final=record.final and {**record.final, **stamps}))

    def _progress(self, finished, message: str) -> None:
        running = len(self.running - {finished.trial_id})
        elapsed = time.time() - self.started
        self.echo(
            f"[{elapsed:6.0f}s] {message} · {self.finished}/{self.total} finished, {running} running, {self.failed} failed"
            + (f", {self.pruned} pruned" if self.pruned else "")
        )


def _print_line(line: str) -> None:
    print(line, flush=True)
