import optuna
import pytest

from raygap.search import grid_points, make_sampler, number_of_trials, recorded_params, suggest_params
from raygap.spec import SpecError, load_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec_from(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return load_spec(path)


def test_suggestions_stay_in_their_ranges(tmp_path):
    spec = spec_from(
        tmp_path,
        "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}\n"
        "train: {steps: {int: [5, 9]}, lr: {uniform: [0.001, 0.002]}}\n"
        "swap: {kind: {choice: [none, hard_row]}}\n"
        "search: {sampler: random, trials: 20}\n",
    )
    study = optuna.create_study(sampler=make_sampler(spec))
    seen_swaps = set()
    for _ in range(20):
        trial = study.ask()
        params = suggest_params(trial, spec.raw)
        assert 0.01 <= params["temperature.value"] <= 0.4 and 5 <= params["train.steps"] <= 9
        assert 0.001 <= params["train.lr"] <= 0.002
        cfg = spec.resolve(params)  # every suggestion is a valid trial
        assert cfg.temperature.value == params["temperature.value"]
        seen_swaps.add(cfg.swap.kind)
        study.tell(trial, 0.0)
    assert seen_swaps == {"none", "hard_row"}


def test_conditional_space_suggests_only_the_chosen_branch(tmp_path):
    spec = spec_from(
        tmp_path,
        "temperature: {choice: [{kind: fixed, value: {loguniform: [0.01, 0.4]}}, {kind: exp_k, k: {grid: [2, 10]}}, {kind: learned}]}\n"
        "search: {sampler: random}\n",
    )
    study = optuna.create_study(sampler=make_sampler(spec))
    branches = {}
    for _ in range(30):
        trial = study.ask()
        params = suggest_params(trial, spec.raw)
        cfg = spec.resolve(params)
        branches[cfg.temperature.kind] = set(trial.params)
        recorded = recorded_params(params)
        assert recorded["temperature"].startswith(cfg.temperature.kind)
        study.tell(trial, 0.0)
    assert branches == {
        "fixed": {"temperature", "temperature.value"},
        "exp_k": {"temperature", "temperature.k"},
        "learned": {"temperature"},
    }


def test_section_labels_tell_options_apart():
    from raygap.search import option_labels
    from raygap.spec import Distribution

    dist = Distribution("grid", ({"kind": "softplus"}, {"kind": "exp_k", "k": 2}, {"kind": "exp_k", "k": 10}, {"kind": "exp_k", "k": 10}))
    assert option_labels(dist) == ["softplus", "exp_k(k=2)", "exp_k(k=10)", "exp_k(k=10)#3"]
    assert option_labels(Distribution("choice", ({"kind": "fixed", "value": {"loguniform": [0.01, 0.4]}},))) == ["fixed(value~loguniform)"]


def test_grid_runs_every_combination_exactly_once(tmp_path):
    spec = spec_from(
        tmp_path,
        "temperature: {kind: fixed, value: {grid: [0.01, 0.04, 0.2]}}\n"
        "swap: {kind: hard, p: {grid: [1.0, 0.1]}}\n"
        "search: {sampler: grid, trials: 1}\n",
    )
    assert number_of_trials(spec) == 6
    expected = {(t, p) for t in (0.01, 0.04, 0.2) for p in (1.0, 0.1)}
    assert {(pt["temperature.value"], pt["swap.p"]) for pt in grid_points(spec)} == expected
    study = optuna.create_study(sampler=make_sampler(spec))
    seen = []
    for _ in range(6):
        trial = study.ask()
        params = suggest_params(trial, spec.raw)
        seen.append((params["temperature.value"], params["swap.p"]))
        study.tell(trial, 0.0)
    assert sorted(seen) == sorted(expected)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 6  # the last one too


def test_grid_refuses_continuous_ranges(tmp_path):
    spec = spec_from(tmp_path, "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}\nsearch: {sampler: grid}\n")
    with pytest.raises(SpecError, match=r"temperature.value: search.sampler 'grid' needs grid or choice values, got loguniform"):
        number_of_trials(spec)


def test_multi_objective_samplers_build(tmp_path):
    for sampler in ("tpe", "nsga2", "random"):
        spec = spec_from(tmp_path, f"temperature: {{kind: fixed, value: {{uniform: [0.01, 0.4]}}}}\nsearch: {{sampler: {sampler}}}\n")
        study = optuna.create_study(directions=["minimize", "maximize"], sampler=make_sampler(spec))
        for i in range(3):
            trial = study.ask()
            suggest_params(trial, spec.raw)
            study.tell(trial, [float(i), float(-i)])
        assert len(study.best_trials) >= 1


def test_unknown_objective_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"search: unknown objective\(s\) \['gapp'\]"):
        spec_from(tmp_path, "search: {objectives: {gapp: min}}\n")


@pytest.mark.parametrize("objectives", [{"modality_gap": "min"}, {"modality_gap": "min", "mean_r1": "max"}])
def test_ray_optuna_searcher_takes_one_or_more_objectives(tmp_path, objectives):
    import functools

    from ray.tune.search.optuna import OptunaSearch

    spec = spec_from(tmp_path, "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}\nsearch: {sampler: tpe}\n")
    searcher = OptunaSearch(
        space=functools.partial(suggest_params, raw=spec.raw),
        metric=list(objectives),
        mode=list(objectives.values()),
        sampler=make_sampler(spec),
    )
    for i in range(3):
        config = searcher.suggest(f"t{i}")
        assert 0.01 <= config["temperature.value"] <= 0.4
        searcher.on_trial_complete(f"t{i}", {"modality_gap": 0.1 * i, "mean_r1": 0.2})
    assert [t.state.name for t in searcher._ot_study.trials] == ["COMPLETE"] * 3
