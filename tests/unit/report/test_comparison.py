"""The report's table: every configuration shown, the front marked, a best only where seed noise
cannot explain it, and what sets several studies apart."""

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raygap import tolerance
from raygap.report.comparison import comparison_notes, method_table, paired_differences, study_settings
from raygap.report.studies import Study

OBJECTIVES = {"modality_gap": "min", "mean_r1": "max"}


def study(name: str, per_seed: dict[str, dict[int, tuple[float, float]]], spec: dict | None = None, params=True) -> Study:
    """Configurations → seed → (modality_gap, mean_r1)."""
    rows = [
        {
            "trial_id": trial,
            "seed": seed,
            "status": "completed",
            "param.temperature.value": 0.01 * (i + 1),
            "modality_gap": gap,
            "mean_r1": r1,
            "image_to_text_r1": r1,
        }
        for i, (trial, seeds) in enumerate(per_seed.items())
        for seed, (gap, r1) in seeds.items()
    ]
    trials = pl.DataFrame(rows)
    if not params:
        trials = trials.drop("param.temperature.value")
    return Study(name, name, trials, pl.DataFrame(), OBJECTIVES, ["param.temperature.value"] if params else [], spec=spec or {"name": name})


def test_a_paired_interval_worked_out_by_hand():
    # differences 0.2, 0.19, 0.21: mean 0.2, s = 0.01, t(0.975, 2) = 4.302653 → 0.2 ± 0.024841
    (three,) = paired_differences(np.array([0.5, 0.6, 0.7]), np.array([[0.3, 0.41, 0.49]]))
    assert (three.seeds, three.mean) == (3, pytest.approx(0.2))
    assert (three.low, three.high) == (
        pytest.approx(0.2 - 4.302653 * 0.01 / math.sqrt(3)),
        pytest.approx(0.2 + 4.302653 * 0.01 / math.sqrt(3)),
    )
    assert three.excludes_zero
    # the case: 0.062 ± 0.000 against 0.055 ± 0.017 over 2 seeds; differences 0.024 and −0.010:
    # mean 0.007, s = 0.034/√2, t(0.975, 1) = 12.7062 → 0.007 ± 12.7062 × 0.017 = [−0.209, 0.223]
    (two,) = paired_differences(np.array([0.062, 0.062]), np.array([[0.038, 0.072]]))
    assert (two.low, two.high) == (pytest.approx(0.007 - 12.7062 * 0.017, abs=1e-4), pytest.approx(0.007 + 12.7062 * 0.017, abs=1e-4))
    assert not two.excludes_zero
    # seeds run by only one side do not pair; one shared seed has no interval
    (one,) = paired_differences(np.array([0.5, np.nan]), np.array([[0.4, 0.3]]))
    assert one.seeds == 1 and math.isnan(one.low) and not one.excludes_zero


def test_every_configuration_is_a_row_and_the_front_is_marked():
    # b is dominated by a (larger gap, lower R@1); it still gets its row
    s = study("grid", {"a": {0: (0.1, 0.5), 1: (0.1, 0.6)}, "b": {0: (0.2, 0.4), 1: (0.2, 0.5)}, "c": {0: (0.05, 0.1), 1: (0.05, 0.2)}})
    table = method_table([s])
    assert sorted(table["trial_id"].to_list()) == ["a", "b", "c"]
    assert dict(zip(table["trial_id"], table["front"])) == {"a": True, "b": False, "c": True}
    # constant seed-to-seed offsets: the paired differences have no spread, so the bests are clear
    assert table.filter(pl.col("best_image_to_text_r1"))["trial_id"].to_list() == ["a"]
    assert table.filter(pl.col("best_modality_gap"))["trial_id"].to_list() == ["c"]
    assert comparison_notes([s]) == []


def test_noise_gets_no_bold_and_the_note_gives_the_interval():
    s = study("noisy", {"a": {0: (0.1, 0.062), 1: (0.1, 0.062)}, "b": {0: (0.2, 0.038), 1: (0.2, 0.072)}})
    table = method_table([s])
    assert not table["best_image_to_text_r1"].any()
    (note,) = [n for n in comparison_notes([s]) if n.startswith("image→text recall@1")]
    assert "noisy temperature.value=0.01 is not distinguishable from noisy temperature.value=0.02 with 2 seeds" in note
    assert note.endswith("with 2 seeds: paired difference +0.007, 95% interval [-0.209, +0.223]")


def test_one_seed_marks_nothing_and_says_why():
    s = study("single", {"a": {0: (0.1, 0.5)}, "b": {0: (0.2, 0.4)}})
    table = method_table([s])
    assert not table["best_image_to_text_r1"].any() and not table["best_modality_gap"].any()
    assert any("(1 seed(s) run by both; an interval needs 2)" in n for n in comparison_notes([s]))


def test_a_tie_marks_nothing():
    s = study("tied", {"a": {0: (0.1, 0.5), 1: (0.1, 0.6)}, "b": {0: (0.2, 0.5), 1: (0.2, 0.6)}})
    assert not method_table([s])["best_image_to_text_r1"].any()


def test_several_studies_are_told_apart_by_their_settings():
    fixed = study("fixed", {"x": {0: (0.1, 0.5), 1: (0.1, 0.6)}}, {"name": "fixed", "temperature": {"kind": "fixed", "value": 0.07}}, False)
    learned = study("learned", {"x": {0: (0.3, 0.4), 1: (0.3, 0.5)}}, {"name": "learned", "temperature": {"kind": "learned"}}, False)
    swapped = study(
        "swap",
        {"x": {0: (0.05, 0.45), 1: (0.05, 0.55)}},
        {"name": "swap", "temperature": {"kind": "learned"}, "swap": {"kind": "hard", "p": 0.5}},
        False,
    )
    settings_ = study_settings([fixed, learned, swapped])
    assert settings_ == [
        "temperature.kind=fixed, temperature.value=0.07, swap.kind=none",
        "temperature.kind=learned, swap.kind=none",  # its defaults (init, floor) are the same everywhere they exist
        "temperature.kind=learned, swap.kind=hard, swap.p=0.5",
    ]
    assert study_settings([fixed]) == [""]
    table = method_table([fixed, learned, swapped])
    assert table["setting"].to_list() == settings_
    assert "defaults" not in table["setting"].to_list()
    # seeds 0 and 1 pair across studies: fixed's R@1 is 0.05 above swap's on both → marked
    assert table.filter(pl.col("best_image_to_text_r1"))["study"].to_list() == ["fixed"]


def test_the_rows_of_a_large_study_are_cut_and_every_one_compared():
    many = {f"t{i:03d}": {0: (0.1 + i / 1000, 0.5 - i / 1000), 1: (0.1 + i / 1000, 0.6 - i / 1000)} for i in range(45)}
    s = study("many", many)
    table = method_table([s])
    assert table.height == 40 and table.filter(pl.col("best_image_to_text_r1"))["trial_id"].to_list() == ["t000"]
    assert "many: 5 more configuration(s) not shown" in comparison_notes([s])[-1]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=2, max_size=6),
    st.floats(-1, 1),
    st.integers(0, 1),
)
def test_a_configuration_is_never_distinguishable_from_itself_or_from_an_ulp_of_itself(values, shift, nudge):
    base = np.array(values)
    other = np.nextafter(base, np.inf) if nudge else base.copy()
    (same,) = paired_differences(base, other[None, :])
    assert not same.excludes_zero
    # a constant shift (no spread) is clear exactly where every seed's two values differ beyond
    # raygap's tolerance, and then on the shift's side of zero
    (shifted,) = paired_differences(base + shift, base[None, :])
    beyond = ~np.isclose(base + shift, base, rtol=tolerance.RELATIVE, atol=tolerance.RELATIVE)
    assert shifted.excludes_zero == bool(beyond.all())
    if shifted.excludes_zero:
        assert (shifted.low > 0) == (shift > 0)
