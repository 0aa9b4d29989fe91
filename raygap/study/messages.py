"""What a trial tells the head through Tune: every result a raygap trial reports is one of the
kinds below, built and read in this module only. Tune checks each result for the study's
objectives, so every kind carries them (NaN where it measures none).

- `eval`: an evaluation point of a running seed (`EvalPoint`); schedulers, the recorder and the
  trackers read it as it is measured;
- `seed`: a seed that ended, completed or failed (`seed_record.SeedRecord`, as JSON: Tune flattens
  nested results);
- `done`: the trial's last result, the seed means Optuna is told;
- `checkpoint` (a trial training in its own process) and `worker-checkpoint` (a worker group,
  raygap.study.worker_group): results that exist to carry a checkpoint.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Mapping

from raygap.seed_record import SeedRecord

KIND = "event"  # the key of a result's kind


class Kind(str, Enum):
    EVAL = "eval"
    SEED = "seed"
    DONE = "done"
    CHECKPOINT = "checkpoint"
    WORKER_CHECKPOINT = "worker-checkpoint"


def kind_of(result: Mapping | None) -> Kind | None:
    """The kind of a Tune result (None for one raygap did not report, e.g. Tune's own)."""
    try:
        return Kind(result.get(KIND)) if result else None
    except ValueError:
        return None


def no_objectives(objectives) -> dict[str, float]:
    return {name: math.nan for name in objectives}


@dataclass(frozen=True)
class EvalPoint:
    """An evaluation point of a running seed: its step, the seed's length in steps where known
    (an early stopper never judges a seed's last point), the objectives (NaN where the point does
    not measure one) and every number of the row."""

    seed: int
    step: int
    steps: int | None
    objectives: dict[str, float]
    numbers: dict[str, float]

    @classmethod
    def of_row(cls, row: dict, seed: int, objectives) -> EvalPoint:
        # The length stays out of `numbers`: there it would become a pruned seed's `steps`, which
        # for a completed seed counts the steps it trained.
        numbers = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "steps"}
        steps = int(row["steps"]) if row.get("steps") is not None else None
        return cls(seed, int(row["step"]), steps, {k: numbers.get(k, math.nan) for k in objectives}, numbers)

    def result(self) -> dict:
        """As a Tune result: the objectives at the top (what a scheduler or Tune's metric check
        reads) and the row under `seed<n>/`, so a repeated trial's seeds are series of their own in
        TensorBoard and MLflow."""
        length = {"steps": self.steps} if self.steps is not None else {}
        return {KIND: Kind.EVAL.value, "seed": self.seed, "step": self.step, **length, **self.objectives, f"seed{self.seed}": self.numbers}

    @classmethod
    def read(cls, result: Mapping, objectives) -> EvalPoint:
        seed, prefix = result["seed"], f"seed{result['seed']}/"
        # Callbacks see the row nested; schedulers see Tune's flattened copy (`seed<n>/<name>`).
        nested = result.get(f"seed{seed}")
        numbers = dict(nested) if nested is not None else {k[len(prefix) :]: v for k, v in result.items() if k.startswith(prefix)}
        return cls(seed, result["step"], result.get("steps"), {k: result[k] for k in objectives}, numbers)


def seed_result(record: SeedRecord, objectives) -> dict:
    """A seed that ended, as a Tune result: its final objectives (NaN for a failed seed, which
    tells Optuna the trial failed) beside the record."""
    final = record.final or {}
    values = {k: final.get(k, math.nan) for k in objectives} if record.status == "completed" else no_objectives(objectives)
    return {KIND: Kind.SEED.value, "payload": json.dumps(asdict(record)), **values}


def read_seed(result: Mapping) -> SeedRecord:
    return SeedRecord(**json.loads(result["payload"]))


def done_result(means: dict[str, float]) -> dict:
    """The trial's last result: the seed means (what Optuna is told)."""
    return {KIND: Kind.DONE.value, **means}


def carrier(kind: Kind, objectives, **extra) -> dict:
    """A result that exists to carry a checkpoint (`checkpoint`, `worker-checkpoint`)."""
    return {KIND: kind.value, **extra, **no_objectives(objectives)}
