"""Plain-text tables for the terminal: a trial's metrics and a study's Pareto front."""

from __future__ import annotations

from collections.abc import Mapping


def format_front(summary, objectives: Mapping[str, str]) -> str:
    """The Pareto front (rank 1) as a plain table: searched values, objectives as mean ± std, and a
    flag on configurations with a degenerate seed (collapsed or retrieving at chance), so that no
    reader takes a collapsed model's zero gap for the best."""
    if summary.is_empty():
        return "no completed trial: no front"
    front = summary.filter(summary["rank"] == 1).sort(next(iter(objectives)))
    params = [c for c in front.columns if c.startswith("param.")]
    columns = [*params, *objectives]
    header = ["trial", *[c.removeprefix("param.") for c in params], *[f"{m} ({d})" for m, d in objectives.items()], "seeds"]
    rows = []
    for row in front.iter_rows(named=True):
        cells = [row["trial_id"]]
        for c in columns:
            value, std = row[c], row.get(f"{c}_std")
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            cells.append(text + (f" ± {std:.2g}" if isinstance(std, float) else ""))
        share = row.get("degenerate")
        flag = f"DEGENERATE ({share:.0%} of seeds collapsed or at chance)" if isinstance(share, float) and share > 0 else ""
        rows.append([*cells, str(row["seeds"]), flag])
    header.append("")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"Pareto front: {front.height} of {summary.height} configuration(s)"]
    flagged = sum(1 for r in rows if r[-1])
    if flagged:
        lines[0] += f"; {flagged} flagged DEGENERATE: their gap and recall say nothing of a working model"
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def format_table(metrics: dict) -> str:
    """The catalogue's metrics that a trial reported, in catalogue order."""
    from raygap.catalog import METRICS

    width = max(map(len, METRICS))
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -------"]
    for key in METRICS:
        if key in metrics:
            value = metrics[key]
            lines.append(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return "\n".join(lines)
