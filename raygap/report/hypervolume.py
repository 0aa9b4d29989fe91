"""The search's progress as a hypervolume: the front of the first two objectives after each completed
configuration, against a reference from the catalogue's worst values (or the worst seen)."""

from __future__ import annotations

import polars as pl

from raygap import catalog, pareto
from raygap.report.studies import Study, gap_first, number


def hypervolume_progress(study: Study) -> pl.DataFrame:
    """Hypervolume of the front on the first two objectives after each completed configuration, in
    the order results reached the head. The reference is each objective's known bound, or the
    worst value seen."""
    if len(study.objectives) < 2:
        return pl.DataFrame()
    objectives = dict(gap_first(study.objectives))
    order = "recorded_at" if "recorded_at" in study.trials.columns else None
    ended = study.trials.filter(pl.col("status") != "completed")["trial_id"]  # failed or pruned: not on a front (summarize_trials)
    done = study.trials.with_row_index("order").filter((pl.col("status") == "completed") & ~pl.col("trial_id").is_in(ended.to_list()))
    if done.is_empty():
        return pl.DataFrame()
    finished = (
        done.group_by("trial_id")
        .agg(pl.col(order or "order").max().alias("finished"), *[pl.col(c).mean() for c in objectives])
        .sort("finished")
    )
    (x, x_dir), (y, y_dir) = objectives.items()  # two: gap_first
    reference = (hypervolume_reference(finished[x], x, x_dir), hypervolume_reference(finished[y], y, y_dir))
    # Only the front of each prefix counts, and it changes only when a configuration joins it:
    # O(n × front) in all rather than a hypervolume of every prefix.
    front, volume, volumes = pareto.RunningFront(objectives), 0.0, []
    for row in finished.iter_rows(named=True):
        if front.add(row["trial_id"], row):
            volume = front.hypervolume(reference)
        volumes.append(volume)
    return pl.DataFrame({"completed": range(1, finished.height + 1), "trial_id": finished["trial_id"], "hypervolume": volumes})


def hypervolume_reference(values: pl.Series, column: str, direction: str) -> float:
    """The hypervolume's reference on one objective: the catalogue's worst value when the study
    optimises the metric in its better direction, else the worst value seen."""
    metric = catalog.METRICS.get(column)
    if metric is not None and metric.worst is not None and metric.better == direction:
        return metric.worst
    return float(number(values.max() if direction == "min" else values.min()))
