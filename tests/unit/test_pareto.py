import itertools

import numpy as np
import polars as pl
import pytest

from raygap.pareto import hypervolume_2d, pareto_front, pareto_ranks, summarize_trials

OBJ = {"gap": "min", "r1": "max"}


def brute_ranks(rows: list[tuple], directions: list[str]) -> list:
    """O(n²) per front, with explicit loops: the obvious definition."""

    def cost(row):
        return [v if d == "min" else -v for v, d in zip(row, directions)]

    valid = [i for i, r in enumerate(rows) if not any(np.isnan(v) for v in r)]
    ranks = [None] * len(rows)
    rank = 1
    while valid:
        front = []
        for i in valid:
            dominated = False
            for j in valid:
                a, b = cost(rows[j]), cost(rows[i])
                if all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b)):
                    dominated = True
            if not dominated:
                front.append(i)
        for i in front:
            ranks[i] = rank
        valid = [i for i in valid if i not in front]
        rank += 1
    return ranks


def test_hand_example():
    frame = pl.DataFrame({"gap": [0.1, 0.2, 0.3, 0.15, 0.5], "r1": [0.2, 0.5, 0.6, 0.1, 0.6]})
    # (0.15, 0.1) is dominated by (0.1, 0.2); (0.5, 0.6) by (0.3, 0.6).
    assert pareto_ranks(frame, OBJ).to_list() == [1, 1, 1, 2, 2]
    assert pareto_front(frame, OBJ)["gap"].to_list() == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("seed", range(6))
def test_ranks_match_brute_force_on_random_frames(seed):
    rng = np.random.default_rng(seed)
    n, k = 40, 2 + seed % 2
    values = rng.integers(0, 6, (n, k)).astype(float)  # small integers: many ties
    values[rng.random((n, k)) < 0.05] = np.inf
    values[rng.random((n, k)) < 0.05] = -np.inf
    values[rng.random((n, k)) < 0.05] = np.nan
    directions = ["min", "max", "min"][:k]
    frame = pl.DataFrame({f"o{i}": values[:, i] for i in range(k)})
    got = pareto_ranks(frame, {f"o{i}": d for i, d in enumerate(directions)}).to_list()
    assert got == brute_ranks([tuple(r) for r in values], directions)


def test_null_objective_never_on_the_front():
    frame = pl.DataFrame({"gap": [None, 0.5], "r1": [0.9, 0.1]})
    assert pareto_ranks(frame, OBJ).to_list() == [None, 1]


def brute_hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area of the union of boxes [x, rx] × [y, ry] (both minimised) by coordinate compression."""
    boxes = [(x, y) for x, y in points if x < ref[0] and y < ref[1]]
    xs = sorted({x for x, _ in boxes} | {ref[0]})
    ys = sorted({y for _, y in boxes} | {ref[1]})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs, xs[1:]), zip(ys, ys[1:])):
        if any(bx <= x0 and by <= y0 for bx, by in boxes):
            area += (x1 - x0) * (y1 - y0)
    return area


def test_hypervolume_hand_value():
    frame = pl.DataFrame({"gap": [0.1, 0.3], "r1": [0.5, 0.8]})
    # minimise gap and −r1, reference (1, 0): boxes 0.9×0.5 and 0.7×0.8 overlap in 0.7×0.5.
    assert hypervolume_2d(frame, OBJ, (1.0, 0.0)) == pytest.approx(0.9 * 0.5 + 0.7 * 0.8 - 0.7 * 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_union_of_boxes(seed):
    rng = np.random.default_rng(seed)
    gap, r1 = rng.random(30).round(2), rng.random(30).round(2)
    frame = pl.DataFrame({"gap": gap, "r1": r1})
    expected = brute_hypervolume(list(zip(gap, -r1)), (0.9, -0.1))
    assert hypervolume_2d(frame, OBJ, (0.9, 0.1)) == pytest.approx(expected)


def test_summarize_means_over_seeds_and_ranks():
    trials = pl.DataFrame(
        {
            "trial_id": ["a", "a", "b", "b", "c"],
            "seed": [0, 1, 0, 1, 0],
            "status": ["completed", "completed", "completed", "completed", "failed"],
            "param.temperature.value": [0.04, 0.04, 0.2, 0.2, 0.1],
            "gap": [0.2, 0.4, 0.05, 0.05, None],
            "r1": [0.5, 0.7, 0.2, 0.3, None],
        }
    )
    summary = summarize_trials(trials, OBJ, ["r1"])
    assert summary["trial_id"].to_list() == ["a", "b"]  # the failed trial never enters
    a = summary.row(0, named=True)
    assert a["gap"] == pytest.approx(0.3) and a["r1"] == pytest.approx(0.6) and a["seeds"] == 2
    assert a["gap_std"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert summary["rank"].to_list() == [1, 1]


def test_a_pruned_configuration_never_enters_the_summary_even_with_a_finished_seed():
    trials = pl.DataFrame(
        {
            "trial_id": ["a", "p", "p"],
            "seed": [0, 0, 1],
            "status": ["completed", "completed", "pruned"],
            "gap": [0.3, 0.01, 0.9],
            "r1": [0.5, 0.9, 0.1],
        }
    )
    assert summarize_trials(trials, OBJ, ["r1"])["trial_id"].to_list() == ["a"]


def test_single_objective_ranks_are_the_sorted_order():
    frame = pl.DataFrame({"gap": [0.3, 0.1, 0.2, 0.1]})
    assert pareto_ranks(frame, {"gap": "min"}).to_list() == [3, 1, 2, 1]


def test_ranks_match_a_slow_peeling_reference_with_ties_and_missing_values():
    """The counting sort against the definition: repeatedly remove the rows nobody dominates."""
    from raygap.pareto import _costs

    def reference(frame, objectives):
        costs, ranks, rank = _costs(frame, objectives), {}, 1
        remaining = [i for i in range(frame.height) if not np.isnan(costs[i]).any()]
        while remaining:
            front = [i for i in remaining if not any((costs[j] <= costs[i]).all() and (costs[j] < costs[i]).any() for j in remaining)]
            ranks.update({i: rank for i in front})
            remaining = [i for i in remaining if i not in front]
            rank += 1
        return [ranks.get(i) for i in range(frame.height)]

    rng = np.random.default_rng(0)
    for n, k in [(40, 2), (150, 2), (120, 3)]:  # two objectives take the O(n log n) sweep
        data = rng.integers(0, 8, size=(n, k)).astype(float)  # many ties
        data[rng.random((n, k)) < 0.05] = np.nan
        frame = pl.DataFrame({f"c{i}": data[:, i] for i in range(k)})
        objectives = {f"c{i}": ("min" if i % 2 == 0 else "max") for i in range(k)}
        assert pareto_ranks(frame, objectives).to_list() == reference(frame, objectives)


@pytest.mark.parametrize("seed", range(5))
def test_the_running_front_matches_the_front_of_all_points(seed):
    """Added one at a time (with ties, NaN and ±inf), the running front is rank 1 of the whole set."""
    from raygap.pareto import RunningFront

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(60, 2)).astype(float)
    values[rng.random(60) < 0.1, 0] = np.nan
    values[rng.random(60) < 0.05, 1] = np.inf
    frame = pl.DataFrame({"trial_id": [f"t{i}" for i in range(60)], "gap": values[:, 0], "r1": values[:, 1]})
    running = RunningFront(OBJ)
    for row in frame.iter_rows(named=True):
        running.add(row["trial_id"], row)
    assert set(running.front) == set(pareto_front(frame, OBJ)["trial_id"])


def test_the_ledger_keeps_the_front_pareto_file_and_parts_in_step(tmp_path):
    from raygap.results import HISTORY, PARETO, TRIALS, ResultsFolder
    from raygap.seed_record import SeedRecord
    from raygap.study.ledger import StudyLedger

    folder = ResultsFolder(tmp_path / "study")
    ledger = StudyLedger(folder, {"modality_gap": "min", "mean_r1": "max"}, pareto_every=0.0)
    points = {"a": [(0.5, 0.3), (0.3, 0.3)], "b": [(0.2, 0.2), (0.2, 0.2)], "c": [(0.6, 0.1), (0.6, 0.1)]}
    sizes = []
    for trial_id, seeds in points.items():
        for seed, (gap, r1) in enumerate(seeds):
            final = {"modality_gap": gap, "mean_r1": r1}
            ledger.record_seed(SeedRecord(trial_id, seed, {"x": 1.0}, {}, "completed", final, None, [{"step": 0}]))
        sizes.append(ledger.finish_trial(trial_id))
    ledger.record_seed(SeedRecord("d", 0, {"x": 2.0}, {}, "failed", error="boom"))
    assert sizes == [1, 2, 2]  # a (0.4, 0.3); b (0.2, 0.2) trades off with it; c is dominated by both
    assert len(list((tmp_path / "study" / "trials").iterdir())) == 7  # a part per seed, nothing rewritten
    ranks = dict(folder.read(PARETO).select("trial_id", "rank").iter_rows())
    assert ranks == {"a": 1, "b": 1, "c": 2}
    ledger.close()
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == ["history.parquet", "pareto.parquet", "trials.parquet"]
    assert folder.read(TRIALS).height == 7
    assert folder.read(HISTORY).height == 6
    again = StudyLedger(folder, {"modality_gap": "min", "mean_r1": "max"})  # a resume starts from the folder
    assert set(again.front.front) == {"a", "b"}
