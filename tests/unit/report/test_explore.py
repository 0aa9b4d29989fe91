"""The interactive report's numbers: attainment surfaces of the per-seed fronts against a slow
reference written here, front stability worked out by hand, degenerate inputs, and a payload that
is plain JSON."""

import itertools
import json
import math

import numpy as np
import pytest
import yaml

from raygap import report, results
from raygap.report.explore import attainment_surfaces, explorer_payload, front_stability

PAIR = {"modality_gap": "min", "mean_r1": "max"}


def study_of(tmp_path, rows: list[tuple[str, int, float, float]], name: str = "hand"):
    """A results folder of completed seed rows (trial, seed, gap, mean R@1)."""
    folder = results.ResultsFolder(tmp_path / name)
    trial_rows = [
        results.trial_row(t, seed, {"temperature.value": 0.1}, {}, "completed", {"modality_gap": g, "mean_r1": r}) for t, seed, g, r in rows
    ]
    folder.append(results.TRIALS, trial_rows)
    folder.write_text(results.SPEC, yaml.safe_dump({"name": name, "search": {"objectives": PAIR}}))
    return report.load_study(folder.path)


def slow_surface(points: dict[int, list[tuple[float, float]]], level: float) -> list[tuple[float, float]]:
    """The level % attainment surface by its definition, for gap (min) and R@1 (max): the minimal
    corners (in cost terms) of the region that at least level % of the seeds' point sets reach,
    searched over every combination of the coordinates that occur."""
    xs = sorted({x for pts in points.values() for x, _ in pts})
    ys = sorted({y for pts in points.values() for _, y in pts})
    reached = []
    for x, y in itertools.product(xs, ys):
        count = sum(any(px <= x and py >= y for px, py in pts) for pts in points.values())
        if 100 * count / len(points) >= level:
            reached.append((x, y))
    return sorted(z for z in reached if not any(o != z and o[0] <= z[0] and o[1] >= z[1] for o in reached))


def test_attainment_surfaces_match_the_definition_on_random_fronts(tmp_path):
    rng = np.random.default_rng(0)
    for case in range(20):
        seeds = int(rng.integers(2, 5))
        rows = [(f"c{c}", s, float(rng.integers(0, 8)) / 8, float(rng.integers(0, 8)) / 8) for c in range(6) for s in range(seeds)]
        study = study_of(tmp_path / str(case), rows)
        surfaces = attainment_surfaces(study, PAIR)
        points = {s: [(g, r) for _, seed, g, r in rows if seed == s] for s in range(seeds)}
        for level in (25.0, 50.0, 75.0):
            got = sorted(surfaces.filter(surfaces["level"] == level).select("x", "y").iter_rows())
            assert got == slow_surface(points, level), (case, level)


def test_two_seeds_by_hand(tmp_path):
    # Seed 0: a (0.4, 0.3), b (0.2, 0.25), c (0.4, 0.1): its front is a and b.
    # Seed 1: a (0.6, 0.25), b (0.2, 0.25): b dominates a, so the front is b alone.
    rows = [("a", 0, 0.4, 0.3), ("a", 1, 0.6, 0.25), ("b", 0, 0.2, 0.25), ("b", 1, 0.2, 0.25), ("c", 0, 0.4, 0.1)]
    study = study_of(tmp_path, rows)
    stability = {r["trial_id"]: (r["seeds"], r["on_seed_fronts"], r["stable"]) for r in front_stability(study, PAIR).iter_rows(named=True)}
    assert stability == {"a": (2, 1, False), "b": (2, 2, True), "c": (1, 0, True)}
    surfaces = attainment_surfaces(study, PAIR)
    # At least 1 of 2 seeds (25 and 50 %): seed 0's front, b then a. Both seeds (75 %): b's point;
    # every other corner both seeds reach, e.g. (0.6, 0.25), is dominated by it.
    assert sorted(surfaces.filter(surfaces["level"] == 50.0).select("x", "y").iter_rows()) == [(0.2, 0.25), (0.4, 0.3)]
    assert sorted(surfaces.filter(surfaces["level"] == 75.0).select("x", "y").iter_rows()) == [(0.2, 0.25)]


def test_one_seed_or_missing_values_give_no_surface(tmp_path):
    one_seed = study_of(tmp_path, [("a", 0, 0.4, 0.3), ("b", 0, 0.2, 0.1)])
    assert attainment_surfaces(one_seed, PAIR).is_empty()
    assert front_stability(one_seed, PAIR)["stable"].all()  # one seed: membership cannot differ
    nan = study_of(tmp_path, [("a", 0, math.nan, 0.3), ("a", 1, math.nan, 0.2)], name="nan")
    assert attainment_surfaces(nan, PAIR).is_empty()


def test_collapsed_results_tie_on_every_seed_front(tmp_path):
    """Every configuration identical on every seed (a collapsed model): all tie on each seed's
    front, so every one is stable and the surfaces are that single point."""
    study = study_of(tmp_path, [(t, s, 0.0, 0.01) for t in "abc" for s in (0, 1)])
    assert front_stability(study, PAIR)["stable"].all()
    assert set(attainment_surfaces(study, PAIR).select("x", "y").iter_rows()) == {(0.0, 0.01)}


def test_the_payload_is_plain_json_with_pruned_and_failed_trials(tmp_path):
    study = study_of(tmp_path, [("a", 0, 0.4, 0.3), ("a", 1, 0.6, 0.25), ("b", 0, 0.2, 0.25), ("b", 1, math.nan, 0.25)])
    folder = results.ResultsFolder(tmp_path / "hand")
    folder.append(
        results.TRIALS,
        [results.trial_row("p", 0, {"temperature.value": 0.5}, {}, "pruned", {"modality_gap": 0.9, "mean_r1": 0.0, "stopped_at_step": 40})],
    )
    folder.append(results.TRIALS, [results.trial_row("f", 0, {"temperature.value": 0.5}, {}, "failed", error="TrainingDiverged")])
    payload = explorer_payload([report.load_study(folder.path), study])
    json.dumps(payload, allow_nan=False)  # NaN would break the page's JSON.parse
    first = payload["studies"][0]
    assert {c["trial_id"] for c in first["configurations"]} == {"a", "b"}  # the pruned and failed ones apart
    assert first["pruned"] == [{"trial_id": "p", "seed": 0, "step": 40, "error": None, "values": {"modality_gap": 0.9, "mean_r1": 0.0}}]
    assert [f["trial_id"] for f in first["failed"]] == ["f"]
    assert payload["pairs"] == [["modality_gap", "mean_r1"]]
    b = next(c for c in first["configurations"] if c["trial_id"] == "b")
    assert b["values"]["modality_gap"] is None and b["values"]["mean_r1"] == pytest.approx(0.25)  # a NaN seed: no mean, not drawn


def test_seed_fronts_pair_the_nth_seed_of_each_configuration_even_when_seeds_differ(tmp_path):
    # a ran seeds 0 and 1, b seeds 5 and 6 (train.seed differs): the first seeds' front is a, the
    # second seeds' front is b, so both are unstable (grouped by seed number each would stand alone).
    study = study_of(tmp_path, [("a", 0, 0.2, 0.5), ("a", 1, 0.6, 0.1), ("b", 5, 0.4, 0.3), ("b", 6, 0.4, 0.3)])
    assert not front_stability(study, PAIR)["stable"].any()
    assert not attainment_surfaces(study, PAIR).is_empty()
