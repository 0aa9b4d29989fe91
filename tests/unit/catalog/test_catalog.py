"""The metric catalogue is the one place that says what a metric is: the report's best cells, its
hypervolume reference, the study file's objectives and the metrics a trial reports all follow it."""

import math

import polars as pl
import pytest
import torch
import yaml

from raygap import catalog, report, results
from raygap.config import SpecError, load_spec


def study_with(tmp_path, values: dict[str, list[float]]):
    """Three configurations, two seeds each (the second 0.001 above the first everywhere, so a
    best is clear of seed noise), all on the (gap, mean R@1) front, with the given values of the
    other metrics."""
    folder = results.ResultsFolder(tmp_path)
    rows = []
    for i, (gap, r1) in enumerate([(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]):
        for seed in (0, 1):
            metrics = {"modality_gap": gap, "mean_r1": r1, **{name: column[i] + seed / 1000 for name, column in values.items()}}
            rows.append(results.trial_row(f"t{i}", seed, {"temperature.value": 0.1 * (i + 1)}, {}, "completed", metrics))
    folder.append(results.TRIALS, rows)
    folder.write_text(results.SPEC, yaml.safe_dump({"name": "cat", "search": {"objectives": {"modality_gap": "min", "mean_r1": "max"}}}))
    return report.load_study(tmp_path)


@pytest.mark.parametrize("name", [n for n in catalog.TABLE_COLUMNS if n != "modality_gap"])
def test_the_report_marks_the_best_of_each_table_column_by_the_catalogue_direction(tmp_path, name):
    # The middle configuration holds the best value whichever way is better; the others straddle it.
    values = [-1.093, -0.986, -1.2] if catalog.METRICS[name].better == "max" else [0.5, 0.1, 0.9]
    table = report.method_table([study_with(tmp_path, {name: values})])
    best_row = table.filter(pl.col(f"best_{name}"))
    assert best_row["trial_id"].to_list() == ["t1"], f"{name}: {catalog.METRICS[name].better} is better"

    head, body = report.table_cells(table)
    column = head.index(catalog.label(name))
    assert [cells[column][1] for cells in body] == [False, True, False]


def test_uniformity_is_larger_is_better_everywhere(tmp_path):
    # The review's case: −0.986 is the most uniform, not −1.093.
    table = report.method_table([study_with(tmp_path, {"uniformity": [-1.093, -0.986, -1.05]})])
    assert table.filter(pl.col("best_uniformity"))["uniformity"].to_list() == [pytest.approx(-0.986 + 0.0005)]  # seed mean
    assert "higher = more uniform" in catalog.label("uniformity")
    assert catalog.METRICS["uniformity"].worst == pytest.approx(-math.sqrt(2))
    # The hypervolume's reference for uniformity (a max objective) is the collapsed value −√2.
    series = pl.Series([-1.0, -0.5])
    assert report.hypervolume_reference(series, "uniformity", "max") == pytest.approx(-math.sqrt(2))


def test_nan_never_wins_a_column(tmp_path):
    table = report.method_table([study_with(tmp_path, {"zero_shot_top1": [float("nan"), 0.2, 0.3]})])
    assert table.filter(pl.col("best_zero_shot_top1"))["trial_id"].to_list() == ["t2"]


def write_study(tmp_path, objectives) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "search": {"objectives": objectives}}))
    return str(path)


def test_objectives_must_follow_the_catalogue(tmp_path):
    with pytest.raises(SpecError, match=r"search.objectives: uniformity: larger is better .* 'max', not 'min'"):
        load_spec(write_study(tmp_path, {"modality_gap": "min", "uniformity": "min"}))
    with pytest.raises(SpecError, match="unknown objective 'gap'"):
        load_spec(write_study(tmp_path, {"gap": "min"}))
    # A metric with no better side may go either way; a list takes each metric's better side.
    assert load_spec(write_study(tmp_path, {"temperature": "min"})).defaults().search.objectives == {"temperature": "min"}
    assert load_spec(write_study(tmp_path, ["modality_gap", "uniformity"])).defaults().search.objectives == {
        "modality_gap": "min",
        "uniformity": "max",
    }
    with pytest.raises(SpecError, match="temperature has no better direction"):
        load_spec(write_study(tmp_path, ["modality_gap", "temperature"]))


def test_default_objectives_and_table_columns_come_from_the_catalogue():
    assert catalog.DEFAULT_OBJECTIVES == {"modality_gap": "min", "mean_r1": "max"}
    assert catalog.TABLE_COLUMNS == [
        "modality_gap",
        "uniformity",
        "zero_shot_top1",
        "linear_probe_top1",
        "image_to_text_r1",
        "text_to_image_r1",
    ]
    # a value the metric takes in a healthy model; a worst of 0 sits at the top (recalls) or the bottom (a log-mean potential)
    typical = {"uniformity_loss": -1.0}
    for name, metric in catalog.METRICS.items():
        assert metric.better in ("min", "max", None) and metric.label and metric.description, name
        if metric.worst is not None and metric.better is not None:
            healthy = typical.get(name, 0.0 if metric.worst != 0 else 1.0)
            assert catalog.best([metric.worst, healthy], name) != metric.worst, f"{name}: worst is not worst"


def test_every_evaluation_metric_is_in_the_catalogue():
    from raygap.clip.evaluate import embedding_metrics

    generator = torch.Generator().manual_seed(0)
    row = embedding_metrics(torch.randn(16, 8, generator=generator), torch.randn(16, 8, generator=generator), torch.arange(16))
    assert set(row) - {"gap_pairs"} <= set(catalog.METRICS)
