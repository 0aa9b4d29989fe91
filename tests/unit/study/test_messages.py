"""The results a trial reports through Tune (raygap.study.messages): each kind is read back as
it was built, from the nested form callbacks see and from Tune's flattened copy schedulers see."""

import math

from raygap.seed_record import SeedRecord
from raygap.study import messages
from raygap.study.messages import EvalPoint, Kind

OBJECTIVES = {"modality_gap": "min", "mean_r1": "max"}


def flattened(result: dict) -> dict:
    """Tune's flattening of a nested result (what a scheduler receives)."""
    out = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out.update({f"{key}/{inner}": v for inner, v in value.items()})
        else:
            out[key] = value
    return out


def test_an_evaluation_point_reads_back_nested_and_flattened():
    row = {"step": 40, "steps": 100, "modality_gap": 0.31, "loss": 2.5, "lr": 1e-3, "normalized": True}
    result = EvalPoint.of_row(row, seed=3, objectives=OBJECTIVES).result()
    assert messages.kind_of(result) is Kind.EVAL
    for seen in (result, flattened(result)):
        point = EvalPoint.read(seen, OBJECTIVES)
        assert (point.seed, point.step, point.steps) == (3, 40, 100)
        assert point.objectives["modality_gap"] == 0.31 and math.isnan(point.objectives["mean_r1"])  # not measured here
        assert point.numbers == {"step": 40.0, "modality_gap": 0.31, "loss": 2.5, "lr": 1e-3}  # no bools, no length


def test_a_point_without_a_known_length():
    result = EvalPoint.of_row({"step": 0, "modality_gap": 0.5}, seed=0, objectives=OBJECTIVES).result()
    assert "steps" not in result and EvalPoint.read(result, OBJECTIVES).steps is None


def test_a_seed_record_crosses_whole_and_carries_its_objectives():
    completed = SeedRecord(
        "t1", 2, {"temperature.value": 0.07}, {"name": "s"}, "completed", {"modality_gap": 0.2, "mean_r1": 0.4}, None, [{"step": 0}]
    )
    result = messages.seed_result(completed, OBJECTIVES)
    assert messages.kind_of(result) is Kind.SEED and (result["modality_gap"], result["mean_r1"]) == (0.2, 0.4)
    assert messages.read_seed(result) == completed
    failed = SeedRecord("t1", 2, {}, {}, "failed", error="ValueError: boom")
    result = messages.seed_result(failed, OBJECTIVES)
    assert math.isnan(result["modality_gap"]) and math.isnan(result["mean_r1"])  # Optuna is told the trial failed
    assert messages.read_seed(result) == failed


def test_kinds_of_results_raygap_did_not_report():
    assert messages.kind_of(None) is None and messages.kind_of({}) is None
    assert messages.kind_of({"event": "something-else"}) is None
    done = messages.done_result({"modality_gap": 0.1})
    assert messages.kind_of(done) is Kind.DONE and done["modality_gap"] == 0.1
    carried = messages.carrier(Kind.WORKER_CHECKPOINT, OBJECTIVES)
    assert messages.kind_of(carried) is Kind.WORKER_CHECKPOINT and all(math.isnan(carried[k]) for k in OBJECTIVES)
