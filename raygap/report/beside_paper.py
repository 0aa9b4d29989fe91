"""`raygap report --paper`: each configuration beside the paper's row for the same method
(raygap.paper), in the paper's units (accuracies and recalls in %), with the difference."""

from __future__ import annotations

import json
import math

import polars as pl

from raygap import paper
from raygap.report.data import Study, configurations, setting_label


def paper_comparison(studies: list[Study]) -> pl.DataFrame:
    """One row per configuration that matches a paper row: study, trial, its parameters, the paper's
    table/method/setting, and per paper column `ours_<c>` (seed mean in the paper's unit), `paper_<c>`."""
    rows = []
    for study in studies:
        summary = configurations(study)
        if summary.is_empty() or "config" not in study.trials.columns:
            continue
        first_config = study.trials.group_by("trial_id", maintain_order=True).agg(pl.col("config").first())
        config_of = dict(zip(first_config["trial_id"], first_config["config"]))
        for row in summary.iter_rows(named=True):
            match = paper.paper_row(json.loads(config_of.get(row["trial_id"]) or "{}"))
            if match is None:
                continue
            out = {"study": study.name, "trial_id": row["trial_id"], "setting": setting_label(row, study.params), "seeds": row.get("seeds")}
            out.update({"table": match["table"], "method": match["method"], "paper_setting": match["setting"]})
            for column, (ours, factor) in paper.COLUMNS.items():
                value = row.get(ours)
                out[f"ours_{column}"] = value * factor if isinstance(value, (int, float)) else None
                out[f"paper_{column}"] = match.get(column)
            rows.append(out)
    return pl.DataFrame(rows, infer_schema_length=None)


def paper_section(studies: list[Study]) -> tuple[str, list[str], list[list[str]]]:
    """The comparison as (title, head, rows of cells): "ours / paper (ours − paper)" per metric."""
    frame = paper_comparison(studies)
    head = ["study", "setting", "seeds", "paper row", *paper.COLUMNS]
    body = []
    for row in frame.iter_rows(named=True):
        cells = [row["study"], row["setting"], str(row["seeds"]), f"Table {row['table']}: {row['method']} {row['paper_setting']}"]
        for column in paper.COLUMNS:
            ours, theirs = row[f"ours_{column}"], row[f"paper_{column}"]
            if ours is None or theirs is None or math.isnan(ours):
                cells.append("—" if theirs is None else f"— / {theirs:g}")
            else:
                cells.append(f"{ours:.3g} / {theirs:g} ({ours - theirs:+.3g})")
        body.append(cells)
    total = sum(configurations(s).height for s in studies)
    title = (f"Beside the paper: {frame.height} of {total} configuration(s) match a row of its tables "
             f"(ours / paper (difference); accuracies and recalls in %) — {paper.CITATION}")  # fmt: skip
    return title, head, body
