"""The report's files: index.html (self-contained, figures embedded), one PNG per figure, report.md."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from raygap import catalog, local_files
from raygap.catalog import label
from raygap.report.comparison import LEVEL, comparison_notes, method_table
from raygap.report.correlation import MIN_CONFIGURATIONS, study_correlations
from raygap.report.interactive import interactive_section
from raygap.report.rates import early_gap_notes, fit_notes
from raygap.report.studies import (
    NothingToReport,
    Study,
    configurations,
    header,
    load_study,
    no_completed_trial,
    number,
    stopped_early,
)


def write_report(
    locations: Sequence[str | Path], output: str | Path | None = None, paper: bool = False, formats: tuple[str, ...] = ("png", "pdf", "svg")
) -> Path:
    """Read the studies, draw every figure, write index.html, each figure in `formats` (the PNG
    always: the page embeds it) and report.md; return the page. `paper`: a table of each
    configuration beside the paper's row for its exact setting.
    NothingToReport when a study has no completed configuration."""
    studies = [load_study(location) for location in locations]
    for study in studies:
        if configurations(study).is_empty():
            raise NothingToReport(
                f"{study.location}: {no_completed_trial(study)}: nothing to report; `raygap study status` lists the errors"
            )
    out = Path(output) if output else _default_output(locations[0], studies[0].name)
    with local_files.staged_folder(out) as staging:  # an interrupted report leaves the old one whole
        _write_page(studies, staging, paper, formats)
    return out / "index.html"


def _write_page(studies: list[Study], out: Path, paper: bool, formats: tuple[str, ...]) -> None:
    from raygap.report import figures

    correlations = study_correlations(studies)
    drawn = figures.draw_all(studies, correlations)
    images = {}
    for name, (figure, caption) in drawn.items():
        path = out / f"{name}.png"
        for suffix in dict.fromkeys(("png", *formats)):
            local_files.write_figure(path.with_suffix(f".{suffix}"), figure)
        figures.plt.close(figure)  # pyplot keeps every figure open until closed
        images[name] = (path, caption)
    table = method_table(studies)
    table_notes = comparison_notes(studies)
    headers = [header(s) for s in studies]
    notes = fit_notes(studies) + early_gap_notes(studies) + _stopped_notes(studies)
    sections = []
    if not correlations.is_empty() and (correlations["n"] >= MIN_CONFIGURATIONS).any():
        sections.append(correlation_section(correlations))
    elif not correlations.is_empty():  # a table of "too few" rows says one thing ten times
        most = int(number(correlations["n"].max()))  # pairs per correlation: a count
        notes.append(f"Correlations across configurations: too few configurations ({most}; {MIN_CONFIGURATIONS} needed)")
    if paper:
        from raygap.report.beside_paper import paper_section

        sections.append(paper_section(studies))
    local_files.write_local_text(out / "report.md", _markdown(headers, images, table, table_notes, notes, studies, sections))
    local_files.write_local_text(out / "index.html", _html(headers, images, table, table_notes, notes, studies, sections))


def _default_output(location: str | Path, name: str) -> Path:
    """DIR/report; for a study behind a URI, results/<name>/report here, beside its Optuna file
    (the page and its figures are local files)."""
    return Path("results") / name / "report" if "://" in str(location) else Path(str(location)) / "report"


def _stopped_notes(studies) -> list[str]:
    """A line per pruned seed: where early stopping stopped it and its objectives there."""
    lines = []
    for study in studies:
        for row in stopped_early(study).iter_rows(named=True):
            there = ", ".join(f"{k} {row[k]:.3f}" for k in study.objectives if isinstance(row.get(k), float))
            lines.append(f"{study.name}: trial {row['trial_id']} seed {row['seed']} pruned at step {row['stopped_at_step']} ({there})")
    return lines


def table_cells(table: pl.DataFrame) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    columns = [c for c in catalog.TABLE_COLUMNS if c in table.columns and not table[c].is_null().all()]
    head = ["study", "setting", "front", "seeds", *[label(c) for c in columns]]
    body = []
    for row in table.iter_rows(named=True):
        setting = row["setting"] + (" — DEGENERATE (collapsed or at chance)" if row.get("degenerate") else "")
        cells = [(row["study"], False), (setting, False), ("yes" if row["front"] else "", False), (str(row["seeds"]), False)]
        for c in columns:
            value, std = row[c], row[f"{c}_std"]
            text = "—" if value is None else f"{value:.3f}" + (f" ± {std:.3f}" if std is not None and not math.isnan(std) else "")
            cells.append((text, bool(row.get(f"best_{c}"))))
        body.append(cells)
    return head, body


def correlation_section(table: pl.DataFrame) -> tuple[str, list[str], list[list[str]]]:
    """The correlation table as (title, head, rows of cells)."""

    def cell(row: dict, name: str) -> str:
        value, low, high = row[name], row[f"{name}_low"], row[f"{name}_high"]
        if row["n"] < MIN_CONFIGURATIONS:
            return f"too few configurations ({row['n']}; {MIN_CONFIGURATIONS} needed)"
        if math.isnan(value):
            return "—"
        return f"{value:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]" if not math.isnan(low) else "")

    head = ["metric", "against", "configurations", "Pearson r [95 % CI]", "Spearman ρ [95 % CI]"]
    body = [
        [label(r["embedding"]), label(r["downstream"]), str(r["n"]), cell(r, "pearson"), cell(r, "spearman")]
        for r in table.iter_rows(named=True)
    ]
    title = (
        "Correlations across configurations (seed means of every configuration of the studies above; "
        f"bootstrap over configurations, {table['resamples'][0]} resamples)"
    )
    return title, head, body


TABLE_TITLE = (
    "Table: every configuration, mean ± std over seeds; front: on its study's Pareto front; best: better than every other "
    f"configuration with the paired difference over shared seeds outside noise ({LEVEL:.0%} t interval excludes 0)"
)


def _markdown(headers, images, table, table_notes, notes, studies, sections=()) -> str:
    lines = ["# raygap report: " + ", ".join(h["study"] for h in headers), ""]
    for h in headers:
        lines.append(
            f"- **{h['study']}** ({h['location']}): {h['completed']} configuration(s) completed, {h['failed']} failed, "
            f"{h['pruned']} pruned, "
            f"{h['seed_runs']} seed run(s); {h['started']} → {h['finished']}; "
            + (f"{h['cpu_hours']:.2f} CPU-h, {h['gpu_hours']:.2f} GPU-h; " if "cpu_hours" in h else "")
            + f"cluster: {h['cluster']}; objectives {h['objectives']}"
            + (f"; zero-shot prompts: {h['zero_shot_prompts']}" if "zero_shot_prompts" in h else "")
        )
    if not table.is_empty():
        head, body = table_cells(table)
        lines += ["", f"## {TABLE_TITLE}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(f"**{t}**" if best else t for t, best in row) + " |" for row in body]
        lines += ["", *[f"- {n}" for n in table_notes]] if table_notes else []
    if notes:
        lines += ["", "## Notes: fits, early stops, correlations", "", *[f"- {n}" for n in notes]]
    for title, head, body in sections:
        lines += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
    lines += ["", "## Figures", ""]
    for name, (path, caption) in images.items():
        lines += [f"![{caption}]({path.name})", "", f"*{caption}*", ""]
    return "\n".join(lines) + "\n"


def _html(headers, images, table, table_notes, notes, studies, sections=()) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>raygap report: {esc(', '.join(h['study'] for h in headers))}</title>",
        # Script errors land on <html data-errors> where a headless browser (and the test) reads them.
        "<script>window.addEventListener('error', e => { const root = document.documentElement; "
        "root.dataset.errors = (root.dataset.errors || '') + e.message + ';'; });</script>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,td:nth-child(2),th{text-align:left}.best{font-weight:bold;background:#e8f4e8}"
        "figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:14px;color:#444}"
        "dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}"
        "pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:12px}</style></head><body>",
        f"<h1>raygap report: {esc(', '.join(h['study'] for h in headers))}</h1>",
    ]
    parts += [_header_html(h, study) for h, study in zip(headers, studies)]
    if not table.is_empty():
        head, body = table_cells(table)
        parts.append(f"<h2>{esc(TABLE_TITLE)}</h2><table><tr>")
        parts += [f"<th>{esc(h)}</th>" for h in head] + ["</tr>"]
        for row in body:
            parts.append("<tr>" + "".join(f"<td class='best'>{esc(t)}</td>" if best else f"<td>{esc(t)}</td>" for t, best in row) + "</tr>")
        parts.append("</table>")
        if table_notes:
            parts.append("<ul class='table-notes'>" + "".join(f"<li>{esc(n)}</li>" for n in table_notes) + "</ul>")
    parts.append(interactive_section(studies))
    if notes:
        parts.append("<h2>Notes: fits, early stops, correlations</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    for title, head, body in sections:
        parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
    for name, (path, caption) in images.items():
        encoded = base64.b64encode(path.read_bytes()).decode()
        parts.append(
            f"<figure id='{name}'><img alt='{esc(caption)}' src='data:image/png;base64,{encoded}'><figcaption>{esc(caption)} "
            f"(<a href='{path.name}'>{path.name}</a>)</figcaption></figure>"
        )
    # Lets a headless browser (and the test) tell that every figure decoded: body data-figures="loaded/total".
    parts.append(
        "<script>window.addEventListener('load', () => { const images = [...document.images]; "
        "document.body.dataset.figures = images.filter(i => i.complete && i.naturalWidth > 0).length + '/' + images.length; });</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


HEADER_KEYS = (
    "location",
    "configurations",
    "completed",
    "failed",
    "pruned",
    "seed_runs",
    "started",
    "finished",
    "cpu_hours",
    "gpu_hours",
    "cluster",
    "objectives",
    "searched",
    "zero_shot_prompts",
)


def _header_html(h: dict, study) -> str:
    """One study's header as a definition list, and its study file folded away."""
    esc = html.escape
    parts = [f"<h2>{esc(h['study'])}</h2><dl>"]
    for key in HEADER_KEYS:
        if key in h:
            value = (
                f"{h[key]:.2f}" if isinstance(h[key], float) else json.dumps(h[key]) if isinstance(h[key], (dict, list)) else str(h[key])
            )
            parts.append(f"<dt>{esc(key.replace('_', ' '))}</dt><dd>{esc(value)}</dd>")
    parts.append("</dl>")
    if study.spec_text:
        parts.append(f"<details><summary>study file</summary><pre>{esc(study.spec_text)}</pre></details>")
    return "".join(parts)
