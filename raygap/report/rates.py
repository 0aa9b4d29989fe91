"""How fast the gap moves, from history.parquet: the fitted rate gap ∝ (log t)^−α of the front's
configurations (the paper's Figure 4(a)), with the exponent per seed as its spread, and the gap's
change over the first steps of short runs, one per initialization (its Figure 4(b))."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from raygap.report.data import Study, dynamics, front_trial_ids, log_power_fit

EARLY_STEPS = 20  # a study whose seed runs all end by this step is an early-training study


def gap_rates(study: Study, limit: int = 3) -> list[dict]:
    """Per front configuration with a finite fit: its trial id, the seed-mean curve (time, gap), the
    fit of that curve (log_power_fit) and α fitted to each seed's own curve."""
    out = []
    for trial_id in front_trial_ids(study, limit):
        curve = dynamics(study, [trial_id])
        fit = log_power_fit(curve)
        if not math.isfinite(fit["alpha"]):
            continue
        seeds = study.history.filter(pl.col("trial_id") == trial_id)
        if "time" not in seeds.columns:
            seeds = seeds.with_columns(time=pl.col("step").cast(pl.Float64))
        per_seed = [log_power_fit(rows.sort("step"))["alpha"] for _, rows in seeds.group_by("seed", maintain_order=True)]
        out.append({"trial_id": trial_id, "time": curve["time"].to_numpy(), "gap": curve["modality_gap"].to_numpy(), "fit": fit,
                    "alpha_per_seed": [a for a in per_seed if math.isfinite(a)]})  # fmt: skip
    return out


def fit_notes(studies: list[Study]) -> list[str]:
    """A line per fitted front configuration (`gap_rates`): α, its standard error, window and R²."""
    notes = []
    for study in studies:
        for rate in gap_rates(study):
            fit = rate["fit"]
            notes.append(
                f"{study.name} {rate['trial_id']}: gap ∝ (log t)^−α, α = {fit['alpha']:.3g} ± {fit['alpha_se']:.2g} over t ∈ [{fit['t_min']:.3g}, {fit['t_max']:.3g}] "
                f"({fit['points']} points, least squares of log gap on log log t, ± the slope's standard error; R² = {fit['r2']:.4f})"
            )
    return notes


def early_gap_changes(study: Study, until: int = 10) -> pl.DataFrame:
    """For a study whose seed runs all end by EARLY_STEPS (one run per initialization): per seed run,
    the gap at step 0, at the last evaluation point at or before `until`, and the change. Empty for
    other studies and runs without both points."""
    history = study.history
    if history.is_empty() or "modality_gap" not in history.columns or history["step"].max() > EARLY_STEPS:
        return pl.DataFrame()
    rows = []
    for (trial_id, seed), run in history.group_by("trial_id", "seed", maintain_order=True):
        start, later = run.filter(pl.col("step") == 0), run.filter((pl.col("step") > 0) & (pl.col("step") <= until)).sort("step")
        if start.is_empty() or later.is_empty():
            continue
        before, after = float(start["modality_gap"][0]), float(later["modality_gap"][-1])
        rows.append({"trial_id": trial_id, "seed": seed, "step": int(later["step"][-1]), "gap_before": before, "gap_after": after,
                     "change": after - before})  # fmt: skip
    return pl.DataFrame(rows)


def early_gap_summary(changes: pl.DataFrame) -> dict:
    """How many initializations' gap grew (a NaN change counts as neither), of how many."""
    values = changes["change"].to_numpy() if not changes.is_empty() else np.array([])
    finite = values[np.isfinite(values)]
    grew = int((finite > 0).sum())
    return {
        "runs": len(values),
        "measured": len(finite),
        "grew": grew,
        "fraction_grew": grew / len(finite) if len(finite) else math.nan,
        "median_change": float(np.median(finite)) if len(finite) else math.nan,
    }


def early_gap_notes(studies: list[Study]) -> list[str]:
    """A line per early-training study: how many initializations' gap grew, and the median change."""
    notes = []
    for study in studies:
        changes = early_gap_changes(study)
        if changes.height < 2:
            continue
        s = early_gap_summary(changes)
        notes.append(
            f"{study.name}: the gap grew over the first {int(changes['step'].max())} steps in {s['grew']} of {s['measured']} "
            f"initializations ({s['fraction_grew']:.0%}); median change {s['median_change']:+.4f}"
        )
    return notes
