"""What a running study has recorded, kept on the head by its single writer (`StudyRecorder`):
each finished seed becomes a Parquet part (results.ResultsFolder.append), the front of seed means
grows one configuration at a time (pareto.RunningFront), pareto.parquet is rewritten at most every
`pareto_every` seconds and when the study ends, and the parts are compacted every `compact_every`
seeds and at the end. Recording a seed reads nothing back, so it costs the same at the 10,000th
trial as at the first; each compaction also rewrites the compacted files, an O(study) step every
`compact_every` seeds (at 10,000 trials, tens of milliseconds of its ≈ 3 s). No ray, no torch: `raygap bench --only
bookkeeping` times it alone."""

from __future__ import annotations

import json
import time

import polars as pl

from raygap import catalog, pareto, results
from raygap.seed_record import SeedRecord


class StudyLedger:
    def __init__(self, folder: results.ResultsFolder, objectives: dict[str, str], pareto_every: float = 30.0, compact_every: int = 1000):
        self.folder, self.objectives, self.pareto_every, self.compact_every = folder, objectives, pareto_every, compact_every
        self.parts_since_compaction = 0
        self.rows: list[dict] = folder.read(results.TRIALS).to_dicts() if folder.exists(results.TRIALS) else []
        self.front = pareto.RunningFront(objectives)
        self.pareto_written = 0.0
        self.seeds: dict[str, list[dict]] = {}  # trial id → its seed rows, for the seed means
        for row in self.rows:
            self.seeds.setdefault(row["trial_id"], []).append(row)
        for trial_id in list(self.seeds):  # a resumed study: its finished configurations
            self._add_to_front(trial_id)

    def record_seed(self, record: SeedRecord) -> None:
        """One seed's row and its evaluation points, as new parts."""
        row = results.record_seed(self.folder, record)
        self.rows.append(row)
        self.parts_since_compaction += 1
        if self.parts_since_compaction >= self.compact_every:  # keeps readers (status, report) fast mid-study
            self.compact()
        self.seeds.setdefault(record.trial_id, []).append(row)

    def finish_trial(self, trial_id: str) -> int:
        """A trial ended with every seed completed: it joins the front if no configuration dominates
        its seed means. Returns the front's size; pareto.parquet follows on its cadence."""
        self._add_to_front(trial_id)
        if time.monotonic() - self.pareto_written >= self.pareto_every:
            self.write_pareto()
        return len(self.front)

    def _add_to_front(self, trial_id: str) -> None:
        rows = self.seeds.get(trial_id, [])
        if rows and all(row["status"] == "completed" for row in rows):
            means = {k: _mean([row.get(k) for row in rows]) for k in self.objectives}
            self.front.add(trial_id, means)

    def write_pareto(self) -> None:
        """pareto.parquet from every recorded row (O(study): on the cadence and at the end only)."""
        self.pareto_written = time.monotonic()
        if not any(row["status"] == "completed" for row in self.rows):
            return  # nothing to rank: no pareto.parquet rather than an empty one
        summary = pareto.summarize_trials(pl.DataFrame(self.rows, infer_schema_length=None), self.objectives, catalog.SUMMARIZED)
        self.folder.write_parquet(results.PARETO, summary, metadata={"objectives": json.dumps(self.objectives)})

    def compact(self) -> None:
        """Fold the parts into trials.parquet and history.parquet: every `compact_every` seeds, so
        each part is read once more in all and readers mid-study have few parts to open."""
        for name in results.DATASETS:
            self.folder.compact(name)
        self.parts_since_compaction = 0

    def close(self) -> None:
        """The study ended (or stopped): the final pareto.parquet, and the parts compacted."""
        self.write_pareto()
        self.compact()
        self.folder.remove_empty_parts_folders()  # a finished study is a few plain files


def _mean(values: list) -> float:
    numbers = [float(v) for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else float("nan")
