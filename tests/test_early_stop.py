"""The Pareto early-stopping rule on hand-made curves (values worked out by hand), and a real study
through the engine whose hopeless trials are pruned: status pruned with their history, Optuna told
PRUNED, the front without them, a resume that keeps them pruned."""

import json
import math

import optuna
import polars as pl
import pytest

from conftest import optuna_study
from raygap.config import load_spec
from raygap.early_stop import ParetoRule, dominates, objectives_at, value_at

SET_TRIAL_STATE_VALUES = 6  # optuna.storages.journal's operation code
OBJECTIVES = {"modality_gap": "min", "mean_r1": "max"}


def curves(gap: list[tuple[int, float]], r1: list[tuple[int, float]]) -> dict:
    return {"modality_gap": tuple(zip(*gap)), "mean_r1": tuple(zip(*r1))}


# A finished trial: gap 0.5 → 0.2 and R@1 0.1 → 0.6 over steps 0..100, so at step 50: gap 0.35, R@1 0.35.
FINISHED = {0: curves([(0, 0.5), (100, 0.2)], [(0, 0.1), (100, 0.6)])}


def rule(**options) -> ParetoRule:
    defaults = {"grace_steps": 0, "margin": 0.0, "min_finished": 1}
    made = ParetoRule(OBJECTIVES, **{**defaults, **options})
    made.add_finished(FINISHED)
    return made


def test_value_at_interpolates_between_finite_points_and_holds_the_ends():
    curve = ([0, 10, 20, 30], [1.0, 3.0, math.nan, 5.0])
    assert value_at(curve, 5) == 2.0
    assert value_at(curve, 20) == 4.0  # the NaN point is left out: between (10, 3) and (30, 5)
    assert value_at(curve, -5) == 1.0 and value_at(curve, 99) == 5.0
    assert math.isnan(value_at(([0, 1], [math.nan, None]), 0))


def test_seed_means_at_a_step():
    seeds = {0: curves([(0, 0.4), (10, 0.2)], [(0, 0.0), (10, 0.5)]), 1: curves([(0, 0.6), (10, 0.6)], [(0, 0.2), (10, 0.3)])}
    at = objectives_at(seeds, OBJECTIVES, 5)
    assert at["modality_gap"] == pytest.approx((0.3 + 0.6) / 2) and at["mean_r1"] == pytest.approx((0.25 + 0.25) / 2)


def test_a_trial_dominated_at_a_step_stops():
    running = {0: curves([(0, 0.5), (50, 0.6)], [(0, 0.1), (50, 0.1)])}  # at 50: gap 0.6 > 0.35, R@1 0.1 < 0.35
    assert rule().should_stop(running, 50)


def test_within_the_margin_it_goes_on():
    running = {0: curves([(50, 0.6)], [(50, 0.1)])}  # the finished trial is better by 0.25 in both
    assert not rule(margin=0.3).should_stop(running, 50)
    assert rule(margin=0.2).should_stop(running, 50)


def test_better_in_one_objective_is_not_dominated():
    running = {0: curves([(50, 0.30)], [(50, 0.1)])}  # smaller gap than 0.35, worse R@1
    assert not rule().should_stop(running, 50)


def test_before_the_grace_period_or_with_too_few_finished_trials_nothing_stops():
    running = {0: curves([(50, 0.6)], [(50, 0.1)])}
    assert not rule(grace_steps=60).should_stop(running, 50)
    assert not rule(min_finished=2).should_stop(running, 50)


def test_ties_do_not_stop_a_trial():
    running = {0: curves([(50, 0.35)], [(50, 0.35)])}  # equal to the finished trial at step 50
    assert not rule().should_stop(running, 50)
    assert not dominates({"modality_gap": 0.3, "mean_r1": 0.5}, {"modality_gap": 0.3, "mean_r1": 0.5}, OBJECTIVES, 0.0)
    # Equal in one objective, better in the other: dominated with margin 0, not with any margin.
    worse = {0: curves([(50, 0.35)], [(50, 0.2)])}
    assert rule().should_stop(worse, 50) and not rule(margin=0.01).should_stop(worse, 50)


def test_nan_never_stops_a_trial():
    running = {0: curves([(50, 0.9)], [(50, math.nan)])}  # R@1 not measured at this point
    assert not rule().should_stop(running, 50)
    nan_finished = ParetoRule(OBJECTIVES, min_finished=1)
    nan_finished.add_finished({0: curves([(0, math.nan), (100, math.nan)], [(0, 0.9), (100, 0.9)])})
    assert not nan_finished.should_stop({0: curves([(50, 0.9)], [(50, 0.0)])}, 50)


def test_a_repeated_trial_is_judged_on_its_seeds_so_far():
    # Seed 0 finished well (at 50: gap 0.2, R@1 0.6), seed 1 is bad (gap 0.6, R@1 0.1): the means
    # (0.4, 0.35) are worse than the finished trial's (0.35, 0.35) in the gap only, equal in R@1.
    seeds = {0: curves([(0, 0.2), (100, 0.2)], [(0, 0.6), (100, 0.6)]), 1: curves([(50, 0.6)], [(50, 0.1)])}
    assert rule().should_stop(seeds, 50)
    assert not rule(margin=0.01).should_stop(seeds, 50)


def test_early_stop_needs_objectives_measured_at_evaluation_points(tmp_path):
    from raygap.config import SpecError

    path = tmp_path / "late.yaml"
    path.write_text("name: late\nsearch: {objectives: [modality_gap, linear_probe_top1], early_stop: {kind: pareto}}\n")
    with pytest.raises(SpecError, match="linear_probe_top1 is measured only at a seed's end"):
        load_spec(path).resolve()


STUDY = """
name: prune
data:
  train: {kind: synthetic, size: 256}
  eval: {kind: synthetic, size: 64, seed: 1}
train: {steps: 12, batch_size: 32, eval_interval: 3, warmup_steps: 1, lr: {choice: [0.003, 0.000001]}}
temperature: {kind: fixed, value: 0.07}
search:
  sampler: random
  seed: 3
  trials: 4
  objectives: {loss: min}
  early_stop: {kind: pareto, grace_steps: 3, margin: 0.05, min_finished: 1}
tracking: {tensorboard: false}
"""


def test_a_study_prunes_its_hopeless_trials_and_a_resume_keeps_them_pruned(tmp_path):
    """One trial at a time: trials whose learning rate is a millionth of the others' keep their
    initial loss and stop at the first point past the grace period once a learning trial finished."""
    from raygap.study import run_study

    path = tmp_path / "prune.yaml"
    path.write_text(STUDY)
    folder = tmp_path / "out"
    run_study(load_spec(path), folder, dashboard=False, num_cpus=1)
    trials = pl.read_parquet(folder / "trials.parquet")
    pruned = trials.filter(pl.col("status") == "pruned")
    assert pruned.height >= 1 and set(pruned["param.train.lr"]) == {1e-6}
    history = pl.read_parquet(folder / "history.parquet")
    for trial_id, step in pruned.select("trial_id", "stopped_at_step").iter_rows():
        assert 3 <= step < 12  # past the grace period, before the last step
        assert history.filter(pl.col("trial_id") == trial_id)["step"].to_list() == list(range(0, step + 1, 3))

    front = pl.read_parquet(folder / "pareto.parquet")
    assert not set(front["trial_id"]) & set(pruned["trial_id"])
    study = optuna_study(folder, "prune")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == pruned.height
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4 - pruned.height

    # The head dies before telling Optuna about a pruned trial and before a completed one's rows land
    # (their last entries in Optuna's journal, the finished states, are dropped): the resume keeps the
    # pruned trial (told PRUNED), and runs the other again.
    [kept] = pruned["trial_id"][:1]
    [lost] = trials.filter(pl.col("status") == "completed")["trial_id"][-1:]
    ids = {t._trial_id for t in study.trials if t.user_attrs["tune_trial_id"] in (kept, lost)}
    journal = folder / "optuna.log"
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    told = [e for e in entries if e["op_code"] == SET_TRIAL_STATE_VALUES and e["trial_id"] in ids and e["state"] != 0]
    assert len(told) == 2
    journal.write_text("".join(json.dumps(e) + "\n" for e in entries if e not in told))
    trials.filter(pl.col("trial_id") != lost).write_parquet(folder / "trials.parquet")
    run_study(load_spec(path), folder, dashboard=False, num_cpus=1, resume=True)
    again = pl.read_parquet(folder / "trials.parquet")
    assert again.height == 4 and lost not in again["trial_id"].to_list()
    assert again.filter(pl.col("trial_id") == kept)["status"].to_list() == ["pruned"]
    by_tune_id = {t.user_attrs.get("tune_trial_id"): t.state for t in optuna_study(folder, "prune").trials}
    assert by_tune_id[kept] == optuna.trial.TrialState.PRUNED and by_tune_id[lost] == optuna.trial.TrialState.FAIL


def test_asha_stops_trials_on_the_first_objective(tmp_path):
    from raygap.study import run_study

    path = tmp_path / "asha.yaml"
    path.write_text(
        STUDY.replace("{kind: pareto, grace_steps: 3, margin: 0.05, min_finished: 1}", "{kind: asha, grace_steps: 3, reduction_factor: 2}")
    )
    folder = tmp_path / "out"
    run_study(load_spec(path), folder, dashboard=False, num_cpus=1)
    trials = pl.read_parquet(folder / "trials.parquet")
    pruned = trials.filter(pl.col("status") == "pruned")
    assert pruned.height >= 1 and trials.filter(pl.col("status") == "completed").height >= 1
    assert pruned["stopped_at_step"].is_in([3, 6]).all()  # ASHA's rungs: grace 3, then × 2
    states = [t.state for t in optuna_study(folder, "prune").trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == pruned.height
