import math
from re import escape as re_escape

import optuna
import pytest

from raygap.config import SpecError, load_spec
from raygap.study.space import first_points, grid_points, make_sampler, number_of_trials, recorded_params, suggest_params

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
    study = optuna.create_study(sampler=make_sampler(spec, spec.defaults().search))
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
    study = optuna.create_study(sampler=make_sampler(spec, spec.defaults().search))
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
    from raygap.config import Distribution
    from raygap.study.space import option_labels

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
    assert number_of_trials(spec, spec.defaults().search) == 6
    expected = {(t, p) for t in (0.01, 0.04, 0.2) for p in (1.0, 0.1)}
    assert {(pt["temperature.value"], pt["swap.p"]) for pt in grid_points(spec)} == expected
    study = optuna.create_study(sampler=make_sampler(spec, spec.defaults().search))
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
        number_of_trials(spec, spec.defaults().search)


def test_multi_objective_samplers_build(tmp_path):
    for sampler in ("tpe", "nsga2", "random"):
        spec = spec_from(tmp_path, f"temperature: {{kind: fixed, value: {{uniform: [0.01, 0.4]}}}}\nsearch: {{sampler: {sampler}}}\n")
        study = optuna.create_study(directions=["minimize", "maximize"], sampler=make_sampler(spec, spec.defaults().search))
        for i in range(3):
            trial = study.ask()
            suggest_params(trial, spec.raw)
            study.tell(trial, [float(i), float(-i)])
        assert len(study.best_trials) >= 1


def test_unknown_objective_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"search.objectives: unknown objective 'gapp'"):
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
        sampler=make_sampler(spec, spec.defaults().search),
    )
    for i in range(3):
        config = searcher.suggest(f"t{i}")
        assert 0.01 <= config["temperature.value"] <= 0.4
        searcher.on_trial_complete(f"t{i}", {"modality_gap": 0.1 * i, "mean_r1": 0.2})
    assert [t.state.name for t in searcher._ot_study.trials] == ["COMPLETE"] * 3


# ------------------------------------------------------------------- a study that stops and resumes
CONTINUOUS = (
    "name: resumed\n"
    "temperature: {{kind: fixed, value: {{loguniform: [0.01, 0.5]}}}}\n"
    "swap: {{kind: hard, p: {{uniform: [0.0, 1.0]}}}}\n"
    "search: {{sampler: {sampler}, trials: {trials}, seed: 3, objectives: {{modality_gap: min, mean_r1: max}}}}\n"
)


def objectives(params: dict) -> list[float]:
    """Stand-in results of a trial: a fixed function of its parameters, as a rerun would give."""
    t, p = params["temperature.value"], params["swap.p"]
    return [(math.log(t) + 3.0) ** 2 + 0.1 * p, math.sin(7.0 * t) * p]


def run_trials(spec, storage, n: int) -> optuna.Study:
    """One `raygap study run` / `resume` process's share of the study: the sampler it builds from
    the spec, the study loaded from storage if there is one, n trials asked and told."""
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=make_sampler(spec, spec.defaults().search),
        load_if_exists=True,
        directions=["minimize", "maximize"],
    )
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, objectives(suggest_params(trial, spec.raw)))
    return study


def configurations(study: optuna.Study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


@pytest.mark.parametrize("stop_after", [1, 3, 5])
@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_a_resumed_study_suggests_what_an_uninterrupted_one_would(tmp_path, sampler, stop_after):
    """Stopped after `stop_after` of 10 trials and resumed by a fresh process with the same seed, the
    sampler draws for trials stop_after… what it would have drawn had the study not stopped, instead
    of replaying the draws of trials 0, 1, … (the same configurations again)."""
    spec = spec_from(tmp_path, CONTINUOUS.format(sampler=sampler, trials=10))
    uninterrupted = configurations(run_trials(spec, optuna.storages.InMemoryStorage(), 10))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_trials(spec, optuna.storages.RDBStorage(storage), stop_after)
    resumed = run_trials(spec, optuna.storages.RDBStorage(storage), 10 - stop_after)

    assert [t.number for t in resumed.trials] == list(range(10))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in resumed.trials)
    assert len(set(configurations(resumed))) == 10, "a configuration was suggested twice"
    assert configurations(resumed) == uninterrupted
    assert [t.values for t in resumed.trials] == [objectives(t.params) for t in resumed.trials]


def test_a_resumed_tpe_study_past_its_random_start_matches_an_uninterrupted_one(tmp_path):
    """The same once TPE models the finished trials (after its 10 random start-up trials)."""
    spec = spec_from(tmp_path, CONTINUOUS.format(sampler="tpe", trials=24))
    uninterrupted = configurations(run_trials(spec, optuna.storages.InMemoryStorage(), 24))
    for stop_after in (4, 12, 18):
        storage = optuna.storages.InMemoryStorage()
        run_trials(spec, storage, stop_after)
        resumed = configurations(run_trials(spec, storage, 24 - stop_after))
        assert resumed == uninterrupted and len(set(resumed)) == 24, stop_after


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_a_resumed_grid_study_runs_each_combination_once(tmp_path, stop_after):
    spec = spec_from(
        tmp_path,
        "name: resumed\n"
        "temperature: {kind: fixed, value: {grid: [0.01, 0.04, 0.2]}}\n"
        "swap: {kind: hard, p: {grid: [1.0, 0.1]}}\n"
        "search: {sampler: grid, seed: 3, objectives: {modality_gap: min, mean_r1: max}}\n",
    )
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_trials(spec, optuna.storages.RDBStorage(storage), stop_after)
    study = run_trials(spec, optuna.storages.RDBStorage(storage), number_of_trials(spec, spec.defaults().search) - stop_after)
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert sorted(configurations(study)) == sorted(tuple(sorted(p.items())) for p in grid_points(spec))


FAMILIES = (
    "loss:\n  choice:\n    - {kind: clip}\n    - {kind: siglip, bias_init: {uniform: [-10.0, -1.0]}}\n"
    "temperature:\n  choice:\n    - {kind: learned, init: 0.07}\n    - {kind: fixed, value: {loguniform: [0.01, 0.4]}}\n"
    "swap: {kind: hard, p: {uniform: [0.0, 1.0]}}\n"
)


def test_first_configurations_become_the_searchers_first_points(tmp_path):
    """search.first: a chosen section by its label, the values inside it by their paths; what a
    configuration leaves out is drawn; enqueued in Optuna, the first asks run exactly them."""
    first = (
        "search:\n  trials: 4\n  first:\n"
        "    - {loss: {kind: siglip, bias_init: -4.0}, temperature: {kind: fixed, value: 0.04}}\n"
        "    - {loss: {kind: clip}, swap: {p: 0.25}}\n"
    )
    spec = spec_from(tmp_path, FAMILIES + first)
    points = first_points(spec, spec.defaults().search)
    assert points == [
        {"loss": "siglip(bias_init~uniform)", "loss.bias_init": -4.0, "temperature": "fixed(value~loguniform)", "temperature.value": 0.04},
        {"loss": "clip", "swap.p": 0.25},
    ]
    study = optuna.create_study(sampler=make_sampler(spec, spec.defaults().search))
    for point in points:
        study.enqueue_trial(point)
    asked = []
    for _ in range(2):
        trial = study.ask()
        asked.append(spec.resolve(suggest_params(trial, spec.raw)))
        study.tell(trial, 0.0)
    assert asked[0].loss.kind == "siglip" and asked[0].loss.bias_init == -4.0 and asked[0].temperature.value == 0.04
    assert 0.0 <= asked[0].swap.p <= 1.0  # not named: drawn
    assert asked[1].loss.kind == "clip" and asked[1].swap.p == 0.25


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("{train: {lr: 0.1}}", "search.first[0].train.lr: not a searched setting of this study; searched: loss, temperature, swap.p"),
        (
            "{loss: {kind: cyclip}}",
            "search.first[0].loss: {'kind': 'cyclip'} matches none of the searched options: clip, siglip(bias_init~uniform)",
        ),
        ("{loss: {kind: siglip, bias_init: 3.0}}", "search.first[0].loss.bias_init: 3.0 is outside the searched uniform [-10.0, -1.0]"),
        ("{temperature: {kind: learned, init: 0.1}}", "search.first[0].temperature: {'kind': 'learned', 'init': 0.1} matches none"),
        ("{swap: {p: 2}}", "search.first[0].swap.p: 2 is outside the searched uniform [0.0, 1.0]"),
    ],
)
def test_a_first_configuration_the_space_cannot_take_names_its_key(tmp_path, entry, expected):
    spec = spec_from(tmp_path, FAMILIES + f"search:\n  trials: 4\n  first:\n    - {entry}\n")
    with pytest.raises(SpecError, match=re_escape(f"{spec.path}: {expected}")):
        first_points(spec, spec.defaults().search)


def test_first_configurations_are_refused_with_the_grid_sampler_and_beyond_trials(tmp_path):
    with pytest.raises(SpecError, match=r"search: first: the grid sampler runs every configuration once already"):
        spec_from(tmp_path, "swap: {kind: {grid: [none, hard]}}\nsearch: {sampler: grid, first: [{swap: {kind: none}}]}\n")
    with pytest.raises(SpecError, match=r"search: first: 2 configurations, more than search.trials \(1\)"):
        spec_from(tmp_path, FAMILIES + "search: {trials: 1, first: [{swap: {p: 0.1}}, {swap: {p: 0.2}}]}\n")


def test_first_configurations_may_restate_fixed_settings_and_pick_the_option_whose_range_holds_them(tmp_path):
    """The docs' example on a study that searches only a fixed T's value; two options of one kind
    told apart by their ranges; a plain value among section options; an int range takes integers only."""
    spec = spec_from(
        tmp_path,
        "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}\nsearch: {first: [{temperature: {kind: fixed, value: 0.04}}]}\n",
    )
    assert first_points(spec, spec.defaults().search) == [{"temperature.value": 0.04}]
    refused = "temperature: {kind: fixed, value: {loguniform: [0.01, 0.4]}}\nsearch: {first: [{temperature: {kind: learned}}]}\n"
    with pytest.raises(SpecError, match=r"search.first\[0\].temperature.kind: not a searched setting"):
        first_points(spec_from(tmp_path, refused), spec_from(tmp_path, refused).defaults().search)

    two = (
        "temperature:\n  choice:\n"
        "    - {kind: fixed, value: {loguniform: [0.01, 0.05]}}\n    - {kind: fixed, value: {loguniform: [0.1, 0.4]}}\n"
        "data:\n  probe: {choice: [null, {train: {kind: synthetic, size: 64}, test: {kind: synthetic, size: 32}}]}\n"
        "train: {steps: {int: [5, 9]}}\n"
    )
    spec = spec_from(
        tmp_path, two + "search: {first: [{temperature: {kind: fixed, value: 0.2}, data: {probe: null}, train: {steps: 7}}]}\n"
    )
    assert first_points(spec, spec.defaults().search) == [
        {"temperature": "fixed(value~loguniform)#1", "temperature.value": 0.2, "data.probe": None, "train.steps": 7}
    ]
    spec = spec_from(tmp_path, two + "search: {first: [{temperature: {kind: fixed, value: 0.07}}]}\n")
    with pytest.raises(
        SpecError, match=re_escape("search.first[0].temperature.value: 0.07 is outside the searched loguniform [0.01, 0.05]")
    ):
        first_points(spec, spec.defaults().search)
    spec = spec_from(tmp_path, two + "search: {first: [{train: {steps: 6.5}}]}\n")
    with pytest.raises(SpecError, match=re_escape("search.first[0].train.steps: 6.5 is outside the searched int [5, 9]")):
        first_points(spec, spec.defaults().search)
