"""`raygap report --paper`: each configuration of one of the paper's methods beside the paper's
row for its exact setting (raygap.paper), in the paper's units (accuracies and recalls in %), with
the difference; a setting the paper does not state, or states illegibly, without one."""

from __future__ import annotations

import json
import math

import polars as pl

from raygap import paper
from raygap.report.studies import Study, configurations, setting_label

_ORDER = {"matched": 0, "not legible": 1, "unmatched": 2}
SHOWN_UNMATCHED = 50  # rows listed for settings the paper does not have; the rest are counted


def paper_comparison(studies: list[Study]) -> pl.DataFrame:
    """One row per configuration of one of the paper's methods: study, trial, its parameters,
    `status` (raygap.paper.PaperMatch), the paper's table/method/setting when a row is shown, a
    `note` (why it is not compared; how its model and data differ from the paper's), and per paper
    column `ours_<c>` (seed mean in the paper's unit) and `paper_<c>` (null when no row is shown).
    Matched configurations first."""
    rows = []
    for study in studies:
        summary = configurations(study)
        if summary.is_empty() or "config" not in study.trials.columns:
            continue
        config_of = _configs(study.trials)
        found = []
        for row in summary.iter_rows(named=True):
            config = config_of.get(row["trial_id"], {})
            match = paper.paper_match(config)
            if match is None:
                continue
            theirs = match.row or {}
            note = [match.reason] if match.reason else []
            if match.row is not None:  # the paper's numbers are shown: say what else differs
                note += paper.setup_differences(config)
            out = {"study": study.name, "trial_id": row["trial_id"], "setting": setting_label(row, study.params), "seeds": row.get("seeds")}
            out.update({"status": match.status, "table": theirs.get("table"), "method": theirs.get("method")})
            out.update({"paper_setting": theirs.get("setting"), "note": "; ".join(note)})
            for column, (ours, factor) in paper.COLUMNS.items():
                value = row.get(ours)
                out[f"ours_{column}"] = value * factor if isinstance(value, (int, float)) else None
                out[f"paper_{column}"] = theirs.get(column)
            found.append(out)
        rows += sorted(found, key=lambda r: _ORDER[r["status"]])
    return pl.DataFrame(rows, infer_schema_length=None)


def _configs(trials: pl.DataFrame) -> dict[str, dict]:
    """Each trial's configuration from its first seed that recorded one (a pruned seed records {})."""
    out: dict[str, dict] = {}
    for trial_id, text in trials.select("trial_id", "config").iter_rows():
        if trial_id not in out or not out[trial_id]:
            out[trial_id] = json.loads(text or "{}")
    return out


def paper_section(studies: list[Study]) -> tuple[str, list[str], list[list[str]]]:
    """The comparison as (title, head, rows of cells): "ours / paper (ours − paper)" per metric
    for a matched configuration, "ours / paper" for a row whose setting is not legible, "ours" alone
    for a setting the paper does not have."""
    frame = paper_comparison(studies)
    head = ["study", "setting", "seeds", "paper row", "note", *paper.COLUMNS]
    body = []
    unmatched = 0
    for row in frame.iter_rows(named=True):
        unmatched += row["status"] == "unmatched"
        if unmatched > SHOWN_UNMATCHED:
            continue
        shown = row["table"] is not None
        where = f"Table {row['table']}: {row['method']} {row['paper_setting']}" if shown else "—"
        cells = [row["study"], row["setting"], str(row["seeds"]), where, row["note"]]
        for column in paper.COLUMNS:
            ours, theirs = row[f"ours_{column}"], row[f"paper_{column}"]
            mine = "—" if ours is None or math.isnan(ours) else f"{ours:.3g}"
            if not shown:
                cells.append(mine)
            elif theirs is None:
                cells.append(f"{mine} / —" if mine != "—" else "—")
            elif row["status"] == "matched" and mine != "—":
                cells.append(f"{mine} / {theirs:g} ({ours - theirs:+.3g})")
            else:
                cells.append(f"{mine} / {theirs:g}")
        body.append(cells)
    if unmatched > SHOWN_UNMATCHED:  # a 10,000-configuration study would list every one
        body.append(
            ["…", f"{unmatched - SHOWN_UNMATCHED} more at settings the paper does not have", "", "—", "", *["" for _ in paper.COLUMNS]]
        )
    total = sum(configurations(s).height for s in studies)
    matched = frame.height and int((frame["status"] == "matched").sum())
    title = (
        f"Beside the paper: {matched} of {total} configuration(s) match a row of its tables "
        "(ours / paper (difference); accuracies and recalls in %)"
    )
    elsewhere = frame.height and int(frame["note"].str.starts_with("not in the paper").sum())
    if frame.height - matched - elsewhere:
        title += (
            f"; {frame.height - matched - elsewhere} more, of its methods at a setting it does not state or states illegibly, "
            "without a difference"
        )
    if elsewhere:
        title += f"; {elsewhere} with a loss the paper did not train with, not in the paper"
    title += f" — {paper.CITATION}"
    return title, head, body
