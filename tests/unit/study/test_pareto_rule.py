"""The Pareto early-stopping rule on hand-made curves (values worked out by hand) and on simulated
seed noise, the scheduler fed a real epoch-based trial's evaluation points, and a real study
through the engine whose hopeless trials are pruned: status pruned with their history, Optuna told
PRUNED, the front without them, a resume that keeps them pruned."""

import math
import random

import pytest

from raygap.config import load_spec
from raygap.study.pareto_rule import ParetoRule, seed_spread, seed_values, t_quantile, value_at

OBJECTIVES = {"modality_gap": "min", "mean_r1": "max"}


def curves(gap: list[tuple[int, float]], r1: list[tuple[int, float]]) -> dict:
    return {"modality_gap": tuple(zip(*gap)), "mean_r1": tuple(zip(*r1))}


def flat(gap: float, r1: float, steps=(0, 100)) -> dict:
    """One seed whose gap and R@1 stay put over `steps`."""
    return curves([(s, gap) for s in steps], [(s, r1) for s in steps])


# Three finished trials of two seeds, flat over steps 0..100. Seed 0 is the unlucky one in each
# (gap 0.41 on average against 0.21); what neither trial nor seed explains is ±0.01 in the first
# two trials: squares 4e-4 over (3 − 1)(2 − 1) = 2 degrees of freedom, a spread of 0.01·√2 in both.
FINISHED = [
    {0: flat(0.40, 0.40), 1: flat(0.22, 0.58)},
    {0: flat(0.42, 0.38), 1: flat(0.20, 0.60)},
    {0: flat(0.41, 0.39), 1: flat(0.21, 0.59)},
]
SPREAD, DF = 0.01 * math.sqrt(2), 2


def rule(finished=FINISHED, **options) -> ParetoRule:
    made = ParetoRule(OBJECTIVES, **{"grace_steps": 0, "margin": 0.0, "min_finished": 3, **options})
    for trial in finished:
        made.add_finished(trial)
    return made


def bound(n_seeds: int, margin: float = 0.0) -> float:
    """How much better one of the three finished trials must be, in each objective, to stop the
    running one: the bound on a difference of two means of n seeds, at level 0.01 / 3."""
    return margin + SPREAD * t_quantile(0.01 / 3, DF) * math.sqrt(2 / n_seeds)


def test_value_at_interpolates_between_finite_points_and_holds_the_ends():
    curve = ([0, 10, 20, 30], [1.0, 3.0, math.nan, 5.0])
    assert value_at(curve, 5) == 2.0
    assert value_at(curve, 20) == 4.0  # the NaN point is left out: between (10, 3) and (30, 5)
    assert value_at(curve, -5) == 1.0 and value_at(curve, 99) == 5.0
    assert math.isnan(value_at(([0, 1], [math.nan, None]), 0))


def test_seed_values_and_the_seed_spread_a_same_seed_comparison_leaves():
    seeds = {0: curves([(0, 0.4), (10, 0.2)], [(0, 0.0), (10, 0.5)]), 1: curves([(0, 0.6), (10, math.nan)], [(0, 0.2), (10, 0.3)])}
    assert seed_values(seeds, "modality_gap", 5) == pytest.approx({0: 0.3, 1: 0.6})
    # Seed 1 is 2 higher than seed 0 in every trial: it cancels, nothing is left.
    assert seed_spread([{0: 1.0, 1: 3.0}, {0: 10.0, 1: 12.0}, {0: 5.0, 1: 7.0}]) == (0.0, 2)
    # Trials with means 2 and 11, seeds with means 5.5 and 7.5 (grand mean 6.5): residuals ±0.5 in
    # each trial after seed 2 and the one-seed trial are left out, squares 1 over 1 degree of freedom.
    assert seed_spread([{0: 1.0, 1: 3.0}, {0: 10.0, 1: 12.0, 2: 13.0}, {0: 5.0}]) == (pytest.approx(0.0), 1)
    assert seed_spread([{0: 1.0, 1: 4.0}, {0: 10.0, 1: 11.0}]) == (pytest.approx(1.0), 1)
    for few in ([{0: 1.0, 1: 4.0}], [{0: 1.0, 1: 3.0}, {0: 5.0, 2: 4.0}], [{0: 5.0}, {}]):
        spread, df = seed_spread(few)
        assert math.isnan(spread) and df == 0


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 30, 100, 101, 1000):
        for p in (0.05, 0.01 / 3, 1e-4, 1e-6):
            assert t_quantile(p, df) == pytest.approx(stats.t.isf(p, df), rel=1e-6)


def test_step_zero_is_never_judged():
    """The untrained model's metrics depend on its seed alone: a trial far worse than every finished
    one at step 0 goes on (grace_steps 0), and the same values at step 50 stop it."""
    hopeless = {0: curves([(0, 1.5), (50, 1.5)], [(0, 0.0), (50, 0.0)])}
    assert not rule().should_stop(hopeless, 0, 100)
    assert rule().should_stop(hopeless, 50, 100)


def test_a_seeds_last_evaluation_is_never_judged():
    """At its last step the seed is trained: stopping there would record a finished seed as pruned.
    Nor is a point judged when the seed's length is unknown."""
    hopeless = {0: curves([(50, 1.5), (100, 1.5)], [(50, 0.0), (100, 0.0)])}
    assert not rule().should_stop(hopeless, 100, 100)
    assert not rule().should_stop(hopeless, 50, None)
    assert rule().should_stop(hopeless, 50, 100)
    assert rule().should_stop(hopeless, 100, 150)


def test_the_bound_is_the_seed_spread_times_a_bonferroni_t_quantile():
    """One seed against three finished trials: a trial worse than the best one's seed 0 (0.40, 0.40)
    by just more than the bound in both objectives stops, just less goes on; the margin adds to
    the bound."""
    for margin in (0.0, 0.05):
        worse = 0.40 + bound(1, margin) * 1.001, 0.40 - bound(1, margin) * 1.001
        barely = 0.40 + bound(1, margin) * 0.999, 0.40 - bound(1, margin) * 0.999
        assert rule(margin=margin).should_stop({0: flat(*worse)}, 50, 100)
        assert not rule(margin=margin).should_stop({0: flat(*barely)}, 50, 100)
        assert not rule(margin=margin).should_stop({0: flat(worse[0], 0.40)}, 50, 100)  # not worse in R@1
    # Both seeds, against the second trial (0.42, 0.38) and (0.20, 0.60), means (0.31, 0.49): the
    # bound shrinks by √2.
    two = {0: flat(0.42 + bound(2) * 1.001, 0.38 - bound(2) * 1.001), 1: flat(0.20 + bound(2) * 1.001, 0.60 - bound(2) * 1.001)}
    assert bound(2) < bound(1) and rule().should_stop(two, 50, 100)
    assert not rule().should_stop({0: flat(0.42 + bound(2) * 0.999, 0.38), 1: flat(0.20 + bound(2) * 0.999, 0.60)}, 50, 100)


def test_a_running_seed_is_compared_with_the_same_seed_of_finished_trials():
    """Seed 0 is the unlucky draw in every trial. A trial that runs seed 0 as the finished ones did
    goes on, though its seed 0 is worse than their seed means (0.31, 0.49) in both objectives (what
    the rule compared before), and so does one that has run both seeds as they did."""
    assert not rule().should_stop({0: flat(0.41, 0.39)}, 50, 100)
    assert not rule().should_stop({0: flat(0.41, 0.39), 1: flat(0.21, 0.59)}, 50, 100)
    assert rule().should_stop({0: flat(0.40 + bound(1) * 1.01, 0.40 - bound(1) * 1.01)}, 50, 100)


def test_ties_within_the_tolerance_do_not_stop_a_trial():
    """Finished trials whose seeds differ by the same amount everywhere leave a bound of 0: a running
    trial one ulp worse in both objectives is a tie; one worse by 1e-6 is beaten."""
    same = [{0: flat(0.3, 0.5), 1: flat(0.2, 0.6)} for _ in range(3)]
    ulp_worse = {0: flat(math.nextafter(0.3, 1), math.nextafter(0.5, 0))}
    assert not rule(same).should_stop(ulp_worse, 50, 100)
    assert not rule(same).should_stop({0: flat(0.3, 0.5)}, 50, 100)
    assert rule(same).should_stop({0: flat(0.3 + 1e-6, 0.5 - 1e-6)}, 50, 100)


def test_without_a_seed_spread_only_a_margin_decides():
    """One seed per finished trial: no spread to measure. With margin 0 nothing stops; with a
    margin, a trial worse by more than it in both objectives does."""
    one_seed = [{0: flat(0.3, 0.5)} for _ in range(3)]
    hopeless = {0: flat(0.9, 0.1)}
    assert not rule(one_seed).should_stop(hopeless, 50, 100)
    assert rule(one_seed, margin=0.05).should_stop(hopeless, 50, 100)
    assert not rule(one_seed, margin=0.05).should_stop({0: flat(0.34, 0.46)}, 50, 100)


def test_before_the_grace_period_or_with_too_few_finished_trials_nothing_stops():
    hopeless = {0: flat(1.5, 0.0)}
    assert not rule(grace_steps=60).should_stop(hopeless, 50, 100)
    assert not rule(min_finished=4).should_stop(hopeless, 50, 100)
    assert rule().should_stop(hopeless, 50, 100)


def test_nan_never_stops_a_trial():
    assert not rule().should_stop({0: flat(1.5, math.nan)}, 50, 100)  # R@1 not measured at this point
    nan_finished = [{0: curves([(0, math.nan), (100, math.nan)], [(0, 0.9), (100, 0.9)]), 1: flat(math.nan, 0.9)} for _ in range(3)]
    assert not rule(nan_finished, margin=0.01).should_stop({0: flat(1.5, 0.0)}, 50, 100)


def test_one_seed_pareto_needs_a_margin(tmp_path):
    from raygap.config import SpecError

    path = tmp_path / "noisy.yaml"
    path.write_text("name: noisy\nsearch: {early_stop: {kind: pareto}}\n")
    with pytest.raises(SpecError, match="cannot measure the seed spread"):
        load_spec(path).resolve()
    path.write_text("name: noisy\nsearch: {repeats: 2, early_stop: {kind: pareto}}\n")
    load_spec(path).resolve()


def simulate(offset: float, finished: int, repeats: int, runs: int, seed: int, shared: float = 0.0) -> float:
    """The fraction of `runs` running trials stopped by the rule (defaults: margin 0, grace 0,
    3 finished) against `finished` finished trials. Every trial has the same mean curves (gap
    1.2 → 0.4, R@1 0 → 0.5 over steps 0..300, a point every 50); the running one is worse by
    `offset` times 0.02 in both. Each seed adds noise of SD 0.02: its own lasting effect, which in
    the two objectives is correlated 0.9 (a lucky seed is lucky in both, the hard case for a rule
    that asks for both), plus independent noise at each point (SD 0.3 of it). That noise is drawn
    afresh for every trial, even at the same seed: the worst case for comparing like with like.
    `shared` adds a lasting effect of each seed that every trial with that seed has (SD `shared`
    times 0.02), as a seed's initialization and batches do."""
    rng = random.Random(seed)
    steps = list(range(0, 301, 50))
    common = [shared * rng.gauss(0, 1) for _ in range(repeats)]

    def seed_curves(k: int, shift: float) -> dict:
        lasting = rng.gauss(0, 1)
        other = 0.9 * lasting + math.sqrt(1 - 0.81) * rng.gauss(0, 1)
        gap = [1.2 - 0.8 * s / 300 + 0.02 * (shift + common[k] + lasting + 0.3 * rng.gauss(0, 1)) for s in steps]
        r1 = [0.5 * s / 300 - 0.02 * (shift + common[k] + other + 0.3 * rng.gauss(0, 1)) for s in steps]
        return {"modality_gap": (steps, gap), "mean_r1": (steps, r1)}

    stopped = 0
    for _ in range(runs):
        judge = ParetoRule(OBJECTIVES, min_finished=3)
        for _ in range(finished):
            judge.add_finished({k: seed_curves(k, 0.0) for k in range(repeats)})
        mine = {k: seed_curves(k, offset) for k in range(repeats)}
        for k in range(repeats):  # seeds one after the other, each judged at its points as they arrive
            so_far = {j: mine[j] for j in range(k)}
            for i, step in enumerate(steps):
                so_far[k] = {name: (steps[: i + 1], values[: i + 1]) for name, (_, values) in mine[k].items()}
                if judge.should_stop(so_far, step, steps[-1]):
                    break
            else:
                continue
            stopped += 1
            break
    return stopped / runs


@pytest.mark.parametrize("finished, repeats", [(3, 2), (3, 3), (12, 3)])
def test_configurations_like_the_finished_ones_are_rarely_stopped(finished, repeats):
    """Seed noise alone: at most 5 % of configurations identical to the finished ones stop (the
    rule before comparing like with like stopped 80–98 % of them), while one worse by 20 times the
    noise in both objectives stops almost always."""
    assert simulate(0.0, finished, repeats, runs=150, seed=finished * 10 + repeats) <= 0.05
    assert simulate(20.0, finished, repeats, runs=30, seed=1) >= 0.9


def test_a_seed_effect_every_trial_shares_cancels():
    """Seed effects five times the rest of the noise, the same in every trial (as the bench's seed 1
    trails seed 0 at every T ≤ 0.1): identical configurations still rarely stop, and one worse by
    6 times the remaining noise still stops, as the comparison on the same seeds cancels them."""
    assert simulate(0.0, 3, 3, runs=150, seed=2, shared=5.0) <= 0.05
    assert simulate(6.0, 3, 3, runs=30, seed=3, shared=5.0) >= 0.9


def test_an_epoch_based_trial_reports_its_length_and_its_last_point_is_not_judged(tiny):
    """A trial by epochs (no train.steps, like every COCO study): 512 pairs at batch 64 for half an
    epoch is 4 steps, points at 0, 2 and 4. Its evaluation points carry that length to the study's
    scheduler, which judges step 2 only: not the untrained model, not the trained seed."""
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from raygap.clip.train import train
    from raygap.study.engine import _early_stopper
    from raygap.study.worker import live_result

    cfg = tiny(
        data={"probe": None},
        train={"steps": None, "epochs": 0.5, "batch_size": 64, "eval_interval": 2},
        search={"repeats": 2, "objectives": OBJECTIVES, "early_stop": {"kind": "pareto", "min_finished": 3}},
    )
    rows = []
    final = train(cfg, report=rows.append)
    assert final["steps"] == 4 and [row["step"] for row in rows] == [0, 2, 4]
    results = [live_result(row, cfg) for row in rows]
    assert [result["steps"] for result in results] == [4, 4, 4] and "steps" not in results[0]["seed0"]

    stopper = _early_stopper(cfg, None, resume=False)  # what the engine builds for this study
    for _ in range(3):  # finished trials far better than a model trained for 4 steps
        stopper.rule.add_finished({0: flat(0.0, 1.0, steps=(0, 4)), 1: flat(0.001, 0.999, steps=(0, 4))})
    trial = SimpleNamespace(trial_id="t")
    actions = {result["step"]: stopper.on_trial_result(None, trial, result) for result in results}
    assert actions == {0: TrialScheduler.CONTINUE, 2: TrialScheduler.STOP, 4: TrialScheduler.CONTINUE}


def test_early_stop_needs_objectives_measured_at_evaluation_points(tmp_path):
    from raygap.config import SpecError

    path = tmp_path / "late.yaml"
    path.write_text("name: late\nsearch: {objectives: [modality_gap, linear_probe_top1], early_stop: {kind: pareto}}\n")
    with pytest.raises(SpecError, match="linear_probe_top1 is measured only at a seed's end"):
        load_spec(path).resolve()
