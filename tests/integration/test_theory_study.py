"""A theory study through the engine (Ray Tune)."""

import polars as pl


def test_theory_study_through_the_engine(tmp_path):

    from raygap.config import load_spec
    from raygap.study import run_study

    spec_file = tmp_path / "theory-study.yaml"
    spec_file.write_text(
        "theory: {n: 4, d: 8, time: 2, dt: 0.05, records: 5}\n"
        "temperature: {kind: fixed, value: {grid: [0.2, 1.0]}}\n"
        "search: {sampler: grid, repeats: 2, objectives: {modality_gap: min, margin: max}}\n"
    )
    summary = run_study(load_spec(spec_file), tmp_path / "out", dashboard=False)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert trials.height == 4 and set(trials["status"]) == {"completed"}
    assert sorted(set(trials["param.temperature.value"])) == [0.2, 1.0]
    assert summary.height == 2 and summary["seeds"].to_list() == [2, 2]
