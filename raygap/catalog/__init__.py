"""The metric catalogue: what every number raygap reports is, in one place.

Each metric a trial reports (a column of trials.parquet / history.parquet) has one entry: which way
is better, its label on axes and tables, what it means, how it is measured, the worst value it can
take (the hypervolume's reference point) and where it appears. Study-file objectives are checked
against it; the report's "best" cells, its hypervolume reference and every axis label read it.
A pure package: no torch, no ray. The entries are in paper_measures.py and further_measures.py.
"""

from __future__ import annotations

import math

from raygap.catalog.further_measures import FURTHER_MEASURES
from raygap.catalog.metric import MMVP_GROUPS, MMVP_MEASURED, RECALL_MEASURED, Direction, Metric, mmvp_column
from raygap.catalog.paper_measures import PAPER_MEASURES

_METRICS = [*PAPER_MEASURES, *FURTHER_MEASURES]

METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}

DEFAULT_OBJECTIVES: dict[str, Direction] = {m.name: m.better for m in _METRICS if m.default_objective and m.better is not None}
TABLE_COLUMNS: list[str] = [m.name for m in _METRICS if m.table]
SUMMARIZED: list[str] = [m.name for m in _METRICS if m.summarized]
AT_EVAL: list[str] = [m.name for m in _METRICS if m.at_eval]
# Parquet footers of trials and history: how each metric was measured.
MEASURED: dict[str, str] = {m.name: m.measured for m in _METRICS if m.measured}

# Labels of searched parameters (`param.*` columns) on axes.
PARAMETER_LABELS = {
    "param.temperature.value": "fixed temperature T",
    "param.temperature.start": "schedule start T",
    "param.temperature.end": "schedule end T",
    "param.temperature.lr_scale": "temperature LR scale",
    "param.swap.p": "swap probability",
}


def label(column: str) -> str:
    """The label of a metric or a searched parameter column."""
    if column in METRICS:
        return METRICS[column].label
    return PARAMETER_LABELS.get(column, column.removeprefix("param.").replace("_", " "))


def study_objectives(spec: dict) -> dict[str, str]:
    """A stored study file's objectives (spec.yaml as a mapping), the defaults where it names none:
    what `study status` and the report both rank by."""
    named = (spec.get("search") or {}).get("objectives")
    return objectives_from(named) if named else dict(DEFAULT_OBJECTIVES)


def objectives_from(value: dict[str, str] | list[str]) -> dict[str, str]:
    """A study file's `search.objectives`: a mapping metric → min|max as it is, or a list of metric
    names, each optimised in its better direction."""
    if isinstance(value, dict):
        return dict(value)
    if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        raise ValueError(f"expected a mapping metric: min|max or a list of metric names, got {value!r}")
    objectives: dict[str, str] = {}
    for name in value:
        if name not in METRICS:
            raise ValueError(f"unknown objective {name!r}; metrics: {', '.join(METRICS)}")
        better = METRICS[name].better
        if better is None:
            raise ValueError(f"{name} has no better direction; give objectives as a mapping metric: min|max")
        objectives[name] = better
    return objectives


# What measures each metric: the CLIP evaluators need the probe split (zero-shot, linear probe) or
# an MMVP-VLM copy; a theory simulation measures only its own curve.
NEEDS_PROBE = {"zero_shot_top1", "linear_probe_top1"}
NEEDS_MMVP = {"mmvp_accuracy", *(mmvp_column(group) for group in MMVP_GROUPS)}
THEORY_MEASURES = {"modality_gap", "delta", "tau", "temperature", "margin", "loss", "train_seconds", "wall_seconds"}
CLIP_ONLY = {"delta", "margin"}


def unmeasured(name: str, *, theory: bool, probe: bool, mmvp: bool) -> str | None:
    """Why a trial of this configuration never measures metric `name`, or None when it does."""
    if theory:
        return None if name in THEORY_MEASURES else f"theory trials measure only {', '.join(sorted(THEORY_MEASURES))}"
    if name in CLIP_ONLY:
        return f"{name} is measured by theory trials (a theory: section) only"
    if name in NEEDS_PROBE and not probe:
        return f"{name} needs the probe split, and data.probe is null"
    if name in NEEDS_MMVP and not mmvp:
        return f"{name} needs an MMVP-VLM copy (data.mmvp), and none is given"
    return None


def check_objectives(objectives: dict[str, str]) -> None:
    """Raise ValueError unless every objective is a catalogue metric optimised in its better direction."""
    if not objectives:
        raise ValueError("objectives needs at least one metric")
    for name, direction in objectives.items():
        metric = METRICS.get(name)
        if metric is None:
            raise ValueError(f"unknown objective {name!r}; metrics: {', '.join(METRICS)}")
        if direction not in ("min", "max"):
            raise ValueError(f"{name}: expected min or max, got {direction!r}")
        if metric.better is not None and direction != metric.better:
            word = "smaller" if metric.better == "min" else "larger"
            raise ValueError(
                f"{name}: {word} is better ({metric.description}), so it is optimised with {metric.better!r}, not {direction!r}"
            )


def best(values: list[float], name: str) -> float | None:
    """The best of `values` by the metric's direction, NaN and None ignored; None if none is left
    or the metric has no better side."""
    direction = METRICS[name].better
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if direction is None or not finite:
        return None
    return min(finite) if direction == "min" else max(finite)
