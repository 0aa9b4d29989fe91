"""The numbers of the report's interactive figures (the page draws them; `interactive` writes it):
how sure the front is, from the per-seed fronts, and everything a hover or a click shows.

Seed noise is large in these studies, so a front of seed means overstates what is known. Seed r's
front is the front of every configuration's seed-r result; the empirical attainment function
(EAF) over those fronts says, for each point of the objective plane, in what fraction of seeds
some configuration reached it. Its 25 / 50 / 75 % attainment surfaces are drawn beside the front
of means, and a configuration whose front membership differs between seeds is marked unstable.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl

from raygap import catalog, pareto
from raygap.report.studies import Study, configurations

EXPLORED = ["modality_gap", "uniformity", "mean_r1", "zero_shot_top1", "linear_probe_top1"]
LEVELS = (25.0, 50.0, 75.0)


def seed_results(study: Study) -> pl.DataFrame:
    """Completed seed rows of the configurations on the report's table (pruned ones left out), with
    `repeat`: the seed's place within its trial (0, 1, …). Seed r's front is over repeat r, which is
    the same seed in every configuration unless train.seed itself differs between them."""
    kept = configurations(study)["trial_id"].to_list()
    rows = study.trials.filter((pl.col("status") == "completed") & pl.col("trial_id").is_in(kept))
    return rows.with_columns(repeat=(pl.col("seed").rank("dense").over("trial_id") - 1).cast(pl.Int64))


def _costs(frame: pl.DataFrame, pair: dict[str, str]) -> np.ndarray:
    """Objective values as costs (larger-is-better ones negated), one row per frame row."""
    return np.column_stack([frame[c].to_numpy().astype(float) * (1 if d == "min" else -1) for c, d in pair.items()])


def attainment_surfaces(study: Study, pair: dict[str, str], levels: tuple[float, ...] = LEVELS) -> pl.DataFrame:
    """The `levels` % attainment surfaces of the per-seed fronts on the two objectives of `pair`
    (metric → min|max): columns level, x, y, the surface's corner points in order along x. A level
    is attained where at least `level` % of the seeds' fronts reach a point. Empty with fewer than
    two seeds or with missing values."""
    import moocore

    rows = seed_results(study).drop_nulls(list(pair)).filter(pl.all_horizontal([pl.col(c).is_finite() for c in pair]))
    rows = rows.sort("repeat", maintain_order=True)  # moocore.eaf reads each set's points as one run: interleaved sets give wrong surfaces
    if rows.is_empty() or rows["repeat"].n_unique() < 2:
        return pl.DataFrame(schema={"level": pl.Float64, "x": pl.Float64, "y": pl.Float64})
    surfaces = moocore.eaf(_costs(rows, pair), sets=rows["repeat"].to_numpy(), percentiles=list(levels))
    signs = np.array([1 if d == "min" else -1 for d in pair.values()])
    frame = pl.DataFrame({"level": surfaces[:, 2], "x": surfaces[:, 0] * signs[0], "y": surfaces[:, 1] * signs[1]})
    return frame.sort("level", "x")


def front_stability(study: Study, pair: dict[str, str]) -> pl.DataFrame:
    """Per configuration: in how many of its seeds it is on that seed's front (of every
    configuration's result for that seed) on `pair`; `stable` when in all or in none."""
    rows = seed_results(study).drop_nulls(list(pair))
    if rows.is_empty():
        return pl.DataFrame(schema={"trial_id": pl.String, "seeds": pl.UInt32, "on_seed_fronts": pl.UInt32, "stable": pl.Boolean})
    flagged = [
        seed_rows.select("trial_id").with_columns(on_front=pl.Series(pareto.pareto_ranks(seed_rows, pair) == 1).fill_null(False))
        for _, seed_rows in rows.group_by("repeat")
    ]
    return (
        pl.concat(flagged)
        .group_by("trial_id", maintain_order=True)
        .agg(pl.len().cast(pl.UInt32).alias("seeds"), pl.col("on_front").sum().cast(pl.UInt32).alias("on_seed_fronts"))
        .with_columns(stable=(pl.col("on_seed_fronts") == 0) | (pl.col("on_seed_fronts") == pl.col("seeds")))
        .sort("trial_id")
    )


def explored_metrics(study: Study) -> list[str]:
    """The metrics a pair can be picked from: the explored ones the study measured."""
    summary = configurations(study)
    return [m for m in EXPLORED if m in summary.columns and not summary[m].is_null().all()]


def explorer_payload(studies: list[Study]) -> dict:
    """Everything the page's figures show, as plain JSON: per study its configurations (seed means,
    stds, parameters, Pareto rank and stability per pair), pruned and failed trials, each trial's
    curves per seed, and the attainment surfaces per pair of explored metrics."""
    payload: dict = {"labels": {m: catalog.label(m) for m in EXPLORED}, "better": {m: catalog.METRICS[m].better for m in EXPLORED}}
    payload["studies"] = [_study_payload(study) for study in studies]
    metrics = [m for m in EXPLORED if any(m in s["metrics"] for s in payload["studies"])]
    payload["pairs"] = [[x, y] for x, y in itertools.combinations(metrics, 2)]
    return payload


def _study_payload(study: Study) -> dict:
    metrics = explored_metrics(study)
    summary = configurations(study)
    configs = []
    for row in summary.iter_rows(named=True):
        configs.append(
            {
                "trial_id": row["trial_id"],
                "seeds": row["seeds"],
                "params": {p.removeprefix("param."): _plain(row.get(p)) for p in study.params},
                "values": {m: _plain(row.get(m)) for m in metrics},
                "stds": {m: _plain(row.get(f"{m}_std")) for m in metrics},
            }
        )
    pairs = {}
    for x, y in itertools.combinations(metrics, 2):
        pair = catalog.objectives_from([x, y])
        ranks = pareto.pareto_ranks(summary, pair)
        stability = front_stability(study, pair)
        surfaces = attainment_surfaces(study, pair)
        pairs[f"{x}|{y}"] = {
            "on_front": [r == 1 for r in ranks.fill_null(0).to_list()],
            "unstable": stability.filter(~pl.col("stable"))["trial_id"].to_list(),
            "surfaces": {
                f"{level:g}": surfaces.filter(pl.col("level") == level).select("x", "y").to_dict(as_series=False) for level in LEVELS
            },
        }
    return {
        "name": study.name,
        "metrics": metrics,
        "configurations": configs,
        "pairs": pairs,
        "pruned": _others(study, "pruned", metrics),
        "failed": _others(study, "failed", metrics),
        "curves": _curves(study),
    }


def _others(study: Study, status: str, metrics: list[str]) -> list[dict]:
    """Pruned or failed seed runs: their metrics where they stopped (none for a failed one)."""
    rows = study.trials.filter(pl.col("status") == status)
    step = "stopped_at_step" if "stopped_at_step" in rows.columns else None
    return [
        {
            "trial_id": row["trial_id"],
            "seed": row["seed"],
            "step": row[step] if step else None,
            "error": row.get("error"),
            "values": {m: _plain(row.get(m)) for m in metrics},
        }
        for row in rows.iter_rows(named=True)
    ]


def _curves(study: Study) -> dict:
    """trial id → seed → {step, modality_gap, mean_r1}: what a click on a point draws."""
    history = study.history
    if history.is_empty() or "step" not in history.columns:
        return {}
    columns = [c for c in ("modality_gap", "mean_r1") if c in history.columns]
    curves: dict = {}
    for (trial_id, seed), rows in history.sort("trial_id", "seed", "step").group_by("trial_id", "seed", maintain_order=True):
        curves.setdefault(trial_id, {})[str(seed)] = {c: [_plain(v) for v in rows[c]] for c in ["step", *columns]}
    return curves


def _plain(value):
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
