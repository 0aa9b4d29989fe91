"""The report's table: every configuration of every study (its front marked), what sets each study
apart, and a "best" mark only where seed noise cannot explain it.

A configuration is marked best in a column when its seed mean is the best and, against every other
configuration, the paired difference over the seeds both ran (same seed numbers: the same data
order and initial weights) has a 95 % Student-t interval that excludes zero. With fewer than two
shared seeds no interval exists, so nothing is marked; the notes say so. No correction for
comparing many configurations is made: a mark says "not explained by these seeds", not more."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from raygap import catalog, tolerance
from raygap.report.studies import Study, configurations, setting_label

LEVEL = 0.95
MAX_ROWS_PER_STUDY = 40
"""Rows a study shows at most: its front first, then by Pareto rank (all are compared)."""
NOT_SETTINGS = ("name", "results", "resources", "tracking", "search")
"""Study-file sections that do not change what a configuration trains or measures."""


@dataclass(frozen=True)
class PairedDifference:
    """Mean over shared seeds of (a − b), with its two-sided t interval (NaN below two seeds)."""

    seeds: int
    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_differences(best: np.ndarray, others: np.ndarray, level: float = LEVEL) -> list[PairedDifference]:
    """`best` (seeds,) against each row of `others` (rows, seeds); NaN marks a seed a row did not run.
    Seeds whose two values agree within tolerance.RELATIVE count as equal (difference 0)."""
    differences = best[None, :] - others
    same = np.isclose(best[None, :], others, rtol=tolerance.RELATIVE, atol=tolerance.RELATIVE)
    differences = np.where(same, 0.0, differences)
    out = []
    for row in differences:
        row = row[np.isfinite(row)]
        n = len(row)
        if n == 0:
            out.append(PairedDifference(0, math.nan, math.nan, math.nan))
            continue
        mean = float(row.mean())
        if n < 2:
            out.append(PairedDifference(1, mean, math.nan, math.nan))
            continue
        spread = 0.0 if tolerance.constant_rows(row[None, :])[0] else float(row.std(ddof=1))
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * spread / math.sqrt(n)
        out.append(PairedDifference(n, mean, mean - half, mean + half))
    return out


def study_settings(studies: list[Study]) -> list[str]:
    """Per study (in order), the study-file settings in which it differs from the other studies ("" for one
    study, or where all agree): what a row's "setting" must name when every row says "defaults"."""
    if len(studies) < 2:
        return [""] * len(studies)
    flat = [_flatten(_resolved(study)) for study in studies]
    written = [_flatten(study.spec) for study in studies]
    searched = {p.removeprefix("param.") for study in studies for p in study.params}
    out = []
    for values, own in zip(flat, written):
        shown = []
        for key, value in values.items():
            present = [f[key] for f in flat if key in f]
            differs = len({json.dumps(v, sort_keys=True) for v in present}) > 1
            # A key only some studies have (a kind's own key) is named where the file wrote it.
            if (differs or (len(present) < len(flat) and key in own)) and not any(key == s or key.startswith(s + ".") for s in searched):
                shown.append(f"{key}={_short(value)}")
        out.append(", ".join(shown))
    return out


def _resolved(study: Study) -> dict:
    """The study's configuration with every default filled (searched values at their defaults);
    the stored file as written where it no longer validates."""
    from raygap.config import SpecError
    from raygap.config.loading import StudySpec

    raw = {"name": study.name, **study.spec}  # _flatten leaves out NOT_SETTINGS
    try:
        return StudySpec(Path(study.location) / "spec.yaml", raw).resolve(check_paths=False).model_dump(mode="json")
    except SpecError:
        return raw


def _flatten(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree} if prefix else {}
    out: dict = {}
    for key, value in tree.items():
        if key not in NOT_SETTINGS or prefix:
            out.update(_flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    return out


def _short(value) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:37] + "…"


def method_table(studies: list[Study]) -> pl.DataFrame:
    """Every configuration of the studies (at most MAX_ROWS_PER_STUDY each), seed means and stds of
    the table's metrics, `front` (Pareto rank 1 in its study), and `best_<column>` where the row is
    distinguishably the best (module docstring). `notes` (comparison_notes) say why a column has no mark."""
    return _marked(studies)[0]


def comparison_notes(studies: list[Study]) -> list[str]:
    """A line per table column whose best mean is not marked, naming the closest configuration and
    the paired difference; and a line per study whose rows were cut at MAX_ROWS_PER_STUDY."""
    return _marked(studies)[1]


def _marked(studies: list[Study]) -> tuple[pl.DataFrame, list[str]]:
    rows = _rows(studies)
    if rows.is_empty():
        return rows, []
    per_seed = _seed_values(studies, rows)
    notes = []
    for column in catalog.TABLE_COLUMNS:
        if column not in rows.columns:
            continue
        marked, note = _mark(rows, per_seed, column)
        rows = rows.with_columns(pl.Series(f"best_{column}", marked))
        notes += [note] if note else []
    shown = pl.concat([group.head(MAX_ROWS_PER_STUDY) for group in rows.partition_by("study_index", maintain_order=True)])
    for index, count in rows.group_by("study_index", maintain_order=True).len().iter_rows():
        if count > MAX_ROWS_PER_STUDY:
            more = count - MAX_ROWS_PER_STUDY
            notes.append(f"{studies[index].name}: {more} more configuration(s) not shown (every one is compared); pareto.parquet holds all")
    return shown.drop("study_index"), notes


def _rows(studies: list[Study]) -> pl.DataFrame:
    settings = study_settings(studies)
    rows = []
    for index, study in enumerate(studies):
        summary = configurations(study)
        if summary.is_empty():
            continue
        along = "modality_gap" if "modality_gap" in study.objectives else next(iter(study.objectives))
        summary = summary.sort(["rank", along], descending=[False, study.objectives[along] == "max"], nulls_last=True)
        for row in summary.iter_rows(named=True):
            searched = setting_label(row, study.params) if study.params else ""
            setting = "; ".join(part for part in (settings[index], searched) if part) or "defaults"
            out = {
                "study_index": index,
                "study": study.name,
                "trial_id": row["trial_id"],
                "setting": setting,
                "seeds": row["seeds"],
                "front": row["rank"] == 1,
            }
            out["degenerate"] = bool((row.get("degenerate") or 0.0) > 0)
            for column in catalog.TABLE_COLUMNS:
                out[column] = row.get(column)
                out[f"{column}_std"] = row.get(f"{column}_std")
            rows.append(out)
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _seed_values(studies: list[Study], rows: pl.DataFrame) -> dict[str, np.ndarray]:
    """Per table column, a (rows, seeds) array of each row's completed seed values (NaN: not run)."""
    frames = []
    for index, study in enumerate(studies):
        ids = rows.filter(pl.col("study_index") == index)["trial_id"]
        done = study.trials.filter((pl.col("status") == "completed") & pl.col("trial_id").is_in(ids.to_list()))
        frames.append(done.with_columns(pl.lit(index).alias("study_index")))
    seeds_run = pl.concat(frames, how="diagonal_relaxed")
    seeds = sorted(seeds_run["seed"].unique().to_list())
    order = {key: i for i, key in enumerate(zip(rows["study_index"], rows["trial_id"]))}
    out = {}
    for column in catalog.TABLE_COLUMNS:
        values = np.full((rows.height, len(seeds)), np.nan)
        if column in seeds_run.columns:
            for study, trial, seed, value in seeds_run.select("study_index", "trial_id", "seed", column).iter_rows():
                values[order[(study, trial)], seeds.index(seed)] = np.nan if value is None else value
        out[column] = values
    return out


def _mark(rows: pl.DataFrame, per_seed: dict[str, np.ndarray], column: str) -> tuple[list[bool], str | None]:
    """Whether each row is the distinguishable best of `column`, and a note where the best mean is not."""
    better = catalog.METRICS[column].better
    means = rows[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
    usable = np.isfinite(means) & ~rows["degenerate"].to_numpy()
    marked = [False] * rows.height
    if better is None or usable.sum() < 2:
        return marked, None
    snapped = tolerance.snap(np.where(usable, means, np.nan))
    best_value = np.nanmin(snapped) if better == "min" else np.nanmax(snapped)
    best = int(np.flatnonzero(snapped == best_value)[0])
    others = np.flatnonzero(usable & (np.arange(rows.height) != best))
    sign = 1.0 if better == "max" else -1.0  # differences oriented so that > 0 favours the best
    differences = paired_differences(sign * per_seed[column][best], sign * per_seed[column][others])
    unclear = [(d, i) for d, i in zip(differences, others) if not d.low > 0]
    if not unclear:
        marked[best] = True
        return marked, None
    closest, index = min(unclear, key=lambda pair: (pair[0].seeds >= 2, pair[0].low if math.isfinite(pair[0].low) else -math.inf))
    return marked, _unmarked_note(rows, column, best, int(index), closest, sign)


def _unmarked_note(rows: pl.DataFrame, column: str, best: int, other: int, difference: PairedDifference, sign: float) -> str:
    def name(i: int) -> str:
        return f"{rows['study'][i]} {rows['setting'][i]}"

    head = f"{catalog.label(column)}: no best marked: {name(best)} is not distinguishable from {name(other)}"
    if difference.seeds >= 2 and difference.low == difference.high == 0:
        return (
            f"{catalog.label(column)}: no best marked: {name(best)} ties with {name(other)} on every one of {difference.seeds} shared seeds"
        )
    if difference.seeds < 2:
        return f"{head} ({difference.seeds} seed(s) run by both; an interval needs 2)"
    mean, low, high = (sign * v for v in (difference.mean, difference.low, difference.high))
    low, high = min(low, high), max(low, high)
    return f"{head} with {difference.seeds} seeds: paired difference {mean:+.4g}, {LEVEL:.0%} interval [{low:+.4g}, {high:+.4g}]"
