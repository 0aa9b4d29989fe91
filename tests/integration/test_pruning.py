"""Early stopping through real studies: a Pareto-stopped study and its resume, ASHA's rungs."""

import json

import optuna
import polars as pl

from raygap.config import load_spec

SET_TRIAL_STATE_VALUES = 6  # optuna.storages.journal's operation code


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


def test_a_study_prunes_its_hopeless_trials_and_a_resume_keeps_them_pruned(tmp_path, optuna_study):
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


def test_asha_stops_trials_on_the_first_objective(tmp_path, optuna_study):
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
