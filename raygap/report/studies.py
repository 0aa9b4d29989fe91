"""The numbers of every figure and table of a report: results folders → polars frames, each a tested
function. Nothing here draws (raygap.report.figures) or writes pages (raygap.report.page)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl
import yaml

from raygap import catalog, pareto, results

# Retrieval has one number per direction; the front is drawn once per direction.
DIRECTIONS = {"mean_r1": ["image_to_text_r1", "text_to_image_r1"], "mean_r5": ["image_to_text_r5", "text_to_image_r5"]}


@dataclass
class Study:
    """One results folder, read once."""

    name: str
    location: str
    trials: pl.DataFrame
    history: pl.DataFrame
    objectives: dict[str, str]
    params: list[str]
    """Searched parameter columns (`param.*`) in the order of the study file."""
    spec_text: str = ""
    spec: dict = field(default_factory=dict)
    """The stored study file (spec.yaml) as a mapping."""
    run: dict = field(default_factory=dict)
    summary: pl.DataFrame | None = field(default=None, repr=False)
    """`configurations(study)`, computed once: every figure and table reads it."""

    @property
    def main_param(self) -> str | None:
        return self.params[0] if self.params else None


def number(value: object) -> float:
    """A numeric column's scalar (`Series.max()`, `.min()`, `.item()`) as the number it is: polars types
    these as any Python value or None. A cast only: an empty or all-null column still fails where used."""
    return cast(float, value)


class NothingToReport(ValueError):
    """A study with no completed configuration: no front, no table, no figure to draw."""


def no_completed_trial(study: Study) -> str:
    """'no completed trial (2 failed, 1 pruned)': what a study without results holds."""
    counts = study.trials["status"].value_counts() if "status" in study.trials.columns else pl.DataFrame({"status": [], "count": []})
    held = ", ".join(f"{n} {status}" for status, n in sorted(counts.iter_rows()) if status != "completed")
    return f"no completed trial ({held or 'none recorded'})"


def load_study(location: str | Path) -> Study:
    found = results.read_study(location)
    spec = found.spec
    objectives = catalog.study_objectives(spec)
    params = [c for c in found.trials.columns if c.startswith("param.") and c != "param.train.seed"]
    spec_text = yaml.safe_dump(spec, sort_keys=False) if spec else ""
    return Study(
        spec.get("name") or Path(str(location)).name,
        found.location,
        found.trials,
        found.history,
        objectives,
        params,
        spec_text,
        spec or {},
        found.run,
    )


# ------------------------------------------------------------------------------ data functions
def configurations(study: Study) -> pl.DataFrame:
    """One row per configuration: seed means and stds of the report's metrics, Pareto rank on the
    study's objectives (rank 1 = the front)."""
    if study.summary is None:
        study.summary = pareto.summarize_trials(study.trials, study.objectives, catalog.SUMMARIZED)
    return study.summary


def front_panels(study: Study) -> list[tuple[str, str, pl.DataFrame]]:
    """The (x, y, frame) of each Pareto panel: x is the first objective, y the second, split into
    its retrieval directions. Each frame has x, y, their stds, `on_front` for that panel, the main
    parameter, sorted by x."""
    if len(study.objectives) < 2:
        return []
    (x, x_dir), (y, y_dir) = gap_first(study.objectives)
    summary = configurations(study)
    panels = []
    for y_col in [c for c in DIRECTIONS.get(y, [y]) if c in summary.columns] or [y]:
        if y_col not in summary.columns or x not in summary.columns:
            continue
        ranks = pareto.pareto_ranks(summary, {x: x_dir, y_col: y_dir})
        columns = ["trial_id", "seeds", x, f"{x}_std", y_col, f"{y_col}_std", *([study.main_param] if study.main_param else [])]
        frame = summary.select(columns).with_columns(on_front=(ranks == 1).fill_null(False)).sort(x)
        panels.append((x, y_col, frame))
    return panels


def gap_first(objectives: dict[str, str]) -> list[tuple[str, str]]:
    """The first two objectives, the modality gap first when it is one (it goes on the x axis)."""
    items = list(objectives.items())
    return sorted(items, key=lambda item: item[0] != "modality_gap")[:2]


def parameter_effects(study: Study) -> pl.DataFrame:
    """Long frame: each searched parameter's value against each objective's seed mean and std."""
    summary = configurations(study)
    frames = []
    for param in study.params:
        for objective in study.objectives:
            if objective not in summary.columns:
                continue
            frames.append(
                summary.filter(pl.col(param).is_not_null()).select(  # a conditional parameter: only its branch's trials
                    pl.lit(param).alias("param"),
                    pl.col(param).cast(pl.String).alias("value_text"),
                    pl.col(param).cast(pl.Float64, strict=False).alias("value"),
                    pl.lit(objective).alias("objective"),
                    pl.col(objective).alias("mean"),
                    pl.col(f"{objective}_std").alias("std"),
                )
            )
    return pl.concat(frames) if frames else pl.DataFrame()


def front_trial_ids(study: Study, limit: int = 6) -> list[str]:
    """The front's configurations that have a history, smallest gap first, at most `limit`; degenerate
    ones (collapsed or at chance) last, so a collapsed model's zero gap is not the one shown first."""
    summary = configurations(study).filter(pl.col("rank") == 1)
    flagged = (pl.col("degenerate").fill_null(0.0) > 0) if "degenerate" in summary.columns else pl.lit(False)
    if not study.history.is_empty():
        summary = summary.filter(pl.col("trial_id").is_in(study.history["trial_id"].unique().implode()))
    first, direction = gap_first(study.objectives)[0]
    ordered = summary.with_columns(flagged.alias("_flagged")).sort(["_flagged", first], descending=[False, direction == "max"])
    return ordered["trial_id"].head(limit).to_list()


def shift_curves(study: Study) -> pl.DataFrame:
    """The front's kept shift curves (a study that kept its embeddings), seed means per
    (trial_id, shift): Liang et al.'s gap and R@1 as the modalities move along the gap vector, and
    each modality centred (shift null, centred 1). Empty where nothing was kept."""
    from raygap import kept_files

    curves = kept_files.read_shift_curves(results.ResultsFolder(study.location), front_trial_ids(study))
    if curves.is_empty():
        return curves
    return (
        curves.group_by(["trial_id", "centred", "shift"], maintain_order=True)
        .agg(pl.col("modality_gap").mean(), pl.col("mean_r1").mean(), pl.len().alias("seeds"))
        .sort(["trial_id", "centred", "shift"])
    )


def dynamics(study: Study, trial_ids: list[str]) -> pl.DataFrame:
    """History rows of the given configurations, averaged over seeds at each step; a `time`
    column is the step for training trials and the simulated time for theory trials."""
    if study.history.is_empty():
        return pl.DataFrame()
    history = study.history.filter(pl.col("trial_id").is_in(trial_ids))
    if "time" not in history.columns:
        history = history.with_columns(time=pl.col("step").cast(pl.Float64))
    numeric = [c for c, t in history.schema.items() if t.is_numeric() and c not in ("seed", "step", "time")]
    return (
        history.group_by("trial_id", "step", maintain_order=True)
        .agg(pl.col("time").first(), *[pl.col(c).mean() for c in numeric])
        .sort("trial_id", "step")
    )


def log_power_fit(frame: pl.DataFrame, late_fraction: float = 0.5) -> dict:
    """gap ≈ prefactor·(log t)^−alpha: least squares of log(gap) against log(log t) over the last
    `late_fraction` of log t (t > 1). alpha_se is the slope's standard error from the residuals
    (n − 2 degrees of freedom): it prices scatter about a straight line, so a local exponent that
    drifts across the window shows in it only as curvature in the residuals. Returns alpha,
    alpha_se, prefactor, r2, points, t_min, t_max; all but points NaN when there are fewer than
    three points, a gap that is not finite and positive, or no spread in log t or in the gap."""
    nan = {"alpha": math.nan, "alpha_se": math.nan, "prefactor": math.nan, "r2": math.nan, "t_min": math.nan, "t_max": math.nan}
    if frame.is_empty():
        return {**nan, "points": 0}
    rows = frame.with_columns(pl.col("time").cast(pl.Float64)).filter(pl.col("time").is_finite() & (pl.col("time") > 1))
    if rows.height < 3:
        return {**nan, "points": rows.height}
    start = number(rows["time"].max()) ** (1 - late_fraction)
    rows = rows.filter(pl.col("time") >= start)
    t, gap = rows["time"].to_numpy().astype(float), rows["modality_gap"].to_numpy().astype(float)
    if len(t) < 3 or not (np.isfinite(gap).all() and (gap > 0).all()):
        return {**nan, "points": len(t)}
    x, y = np.log(np.log(t)), np.log(gap)
    sxx, syy = ((x - x.mean()) ** 2).sum(), ((y - y.mean()) ** 2).sum()
    if not (sxx > 0 and syy > 0):
        return {**nan, "points": len(t)}
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    rss = ((y - intercept - slope * x) ** 2).sum()
    return {
        "alpha": float(-slope),
        "alpha_se": float(math.sqrt(rss / (len(x) - 2) / sxx)),
        "prefactor": float(math.exp(intercept)),
        "r2": float(1 - rss / syy),
        "points": len(x),
        "t_min": float(t.min()),
        "t_max": float(t.max()),
    }


def header(study: Study) -> dict:
    """What was run: counts, dates and compute from trials.parquet; the cluster from run.yaml."""
    trials = study.trials
    by_trial = trials.group_by("trial_id").agg(
        (pl.col("status") == "completed").all().alias("ok"), (pl.col("status") == "pruned").any().alias("pruned")
    )
    stamps = [c for c in ("seed_started_at", "recorded_at") if c in trials.columns]
    span = trials.select(pl.col(stamps[0]).min().alias("first"), pl.col(stamps[-1]).max().alias("last")).row(0) if stamps else (None, None)
    busy = trials.select(pl.col("wall_seconds").fill_null(0)) if "wall_seconds" in trials.columns else None
    cpus = trials["cpus_held"].fill_null(0) if "cpus_held" in trials.columns else None
    gpus = trials["gpus_held"].fill_null(0) if "gpus_held" in trials.columns else None
    hours = {}
    if busy is not None and cpus is not None:
        hours["cpu_hours"] = float((busy.to_series() * cpus).sum()) / 3600
        hours["gpu_hours"] = float((busy.to_series() * gpus).sum()) / 3600
    return {
        "study": study.name,
        "location": study.location,
        "configurations": by_trial.height,
        "completed": int(by_trial["ok"].sum()),
        "pruned": int(by_trial["pruned"].sum()),
        "failed": int((~by_trial["ok"] & ~by_trial["pruned"]).sum()),
        "seed_runs": trials.height,
        "started": _date(span[0]),
        "finished": _date(span[1]),
        **hours,
        "cluster": study.run.get("cluster", "not recorded"),
        "objectives": study.objectives,
        "searched": [p.removeprefix("param.") for p in study.params],
        **_zero_shot_prompts(trials),
    }


def _zero_shot_prompts(trials: pl.DataFrame) -> dict:
    """Which zero-shot prompts the numbers used (eval.templates from the trials' configurations)."""
    if "zero_shot_top1" not in trials.columns or "config" not in trials.columns:
        return {}
    found = {tuple(json.loads(c).get("eval", {}).get("templates", [])) for c in trials["config"].drop_nulls().unique()}
    found.discard(())
    if not found:
        return {}
    described = [f"'{t[0]}'" if len(t) == 1 else f"{len(t)} templates averaged ({t[0]!r}, …)" for t in sorted(found)]
    return {"zero_shot_prompts": "; ".join(described)}


def stopped_early(study: Study) -> pl.DataFrame:
    """The seeds early stopping pruned: where each stopped and its objectives there."""
    if "stopped_at_step" not in study.trials.columns:
        return pl.DataFrame()
    columns = ["trial_id", "seed", "stopped_at_step", *[c for c in study.objectives if c in study.trials.columns]]
    return study.trials.filter(pl.col("status") == "pruned").select(columns).sort("stopped_at_step", "trial_id")


def _date(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "not recorded"


def setting_label(row: dict, params: list[str]) -> str:
    """A configuration's searched values as "name=value, …" (a parameter it does not use left out)."""
    values = {p.removeprefix("param."): row[p] for p in params if row.get(p) is not None}
    return (
        ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}" for name, value in values.items()) or "defaults"
    )
