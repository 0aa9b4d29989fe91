"""Drawings of raygap.report's data functions (matplotlib, no display). Each function takes the
studies and returns a figure, or None when the studies have nothing to draw for it."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from matplotlib.colors import LogNorm, Normalize

from raygap.catalog import label
from raygap.report.dynamics_figures import dynamics_figure, early_gap_figure, gap_rate_figure
from raygap.report.hypervolume import hypervolume_progress
from raygap.report.rates import MIN_POINTS
from raygap.report.studies import (
    Study,
    front_panels,
    number,
    parameter_effects,
    shift_curves,
)
from raygap.report.style import CATEGORIES, SEQUENTIAL, WIDTH, colour, legend_below, plt, tidy


def draw_all(studies: list[Study], correlations: pl.DataFrame) -> dict[str, tuple[plt.Figure, str]]:
    """Every figure the studies support, by file name, with its caption; `correlations` is the
    studies' `study_correlations` (the page's table shows it too)."""
    theory = all(study.spec.get("theory") for study in studies)
    time_words = "simulated time" if theory else "cumulative learning rate in steps at the peak rate"
    drawn = {
        "pareto": (pareto_figure(studies), "Pareto front: every configuration's seed mean (error bars: std over seeds); the front joined"),
        "effects": (effects_figure(studies), "Each searched parameter against each objective (seed means ± std)"),
        "dynamics": (dynamics_figure(studies), "Training dynamics of the front's configurations"),
        "hypervolume": (hypervolume_figure(studies), "Search progress: hypervolume of the front after each completed configuration"),
        "gap_rate": (
            gap_rate_figure(studies),
            f"Gap against flow time t ({time_words}), "
            f"with gap ∝ (log t)^−α fitted per seed over the late half of log t: α is the mean ± standard error over seeds. Only "
            f"learned-temperature configurations with ≥ {MIN_POINTS} points per seed in the window get an α",
        ),
        "early_gap": (early_gap_figure(studies), "The gap's change over the first steps, one run per initialization"),
        "shift": (
            shift_figure(studies),
            "Liang et al.'s shift of the kept eval embeddings: both modalities moved along the gap vector by λ and renormalized "
            "(λ = 0.5 meets in the middle, λ < 0 widens the gap), the gap and mean R@1 at each (seed means); dotted: each "
            "modality centred",
        ),
        "correlation": (
            correlation_figure(correlations),
            "Gap and uniformity against each downstream metric across configurations: Pearson r and Spearman ρ, 95 % bootstrap intervals",
        ),
    }
    return {name: (tidy(figure), caption) for name, (figure, caption) in drawn.items() if figure is not None}


def _colour_scale(values: pl.Series):
    """A colour map for the main parameter: log-scaled when it spans more than a decade."""
    numeric = values.cast(pl.Float64, strict=False)
    if numeric.null_count() == 0 and len(numeric):
        low, high = float(number(numeric.min())), float(number(numeric.max()))
        if low == high:
            high = low + 1
        norm = LogNorm(low, high) if low > 0 and high / low > 10 else Normalize(low, high)
        return numeric.to_numpy(), norm, SEQUENTIAL
    categories = sorted(set(values.cast(pl.String).to_list()))
    return np.array([categories.index(v) for v in values.cast(pl.String)]), Normalize(0, max(len(categories) - 1, 1)), CATEGORIES


def pareto_figure(studies: list[Study]) -> plt.Figure | None:
    panels_by_study = [(s, front_panels(s)) for s in studies]
    # One panel per (x, y) pair: studies with other objectives get panels of their own.
    keys = list(dict.fromkeys((x, y) for _, panels in panels_by_study for x, y, _ in panels))
    if not keys:
        return None
    figure, axes = plt.subplots(
        1, len(keys), figsize=(WIDTH if len(keys) <= 2 else WIDTH * len(keys) / 2, 3.2), squeeze=False, constrained_layout=True
    )
    several = len(studies) > 1
    for index, (study, panels) in enumerate(panels_by_study):
        hue = colour(index)
        for x, y, frame in panels:
            ax = axes[0][keys.index((x, y))]
            ax.errorbar(
                frame[x],
                frame[y],
                xerr=frame[f"{x}_std"].fill_null(0),
                yerr=frame[f"{y}_std"].fill_null(0),
                fmt="none",
                ecolor="0.6",
                elinewidth=0.8,
                zorder=1,
            )
            front = frame.filter(pl.col("on_front"))
            if several or study.main_param is None:
                ax.scatter(frame[x], frame[y], s=18, color=hue, alpha=0.6, zorder=2, label=study.name)
            else:
                values, norm, cmap = _colour_scale(frame[study.main_param])
                points = ax.scatter(frame[x], frame[y], c=values, norm=norm, cmap=cmap, s=22, zorder=2)
                if ax is axes[0][-1]:
                    figure.colorbar(points, ax=axes[0].tolist(), label=label(study.main_param), shrink=0.9)
            ax.plot(front[x], front[y], "-", color=hue if several else "black", linewidth=1.2, zorder=3)
            ax.scatter(
                front[x],
                front[y],
                s=55,
                facecolors="none",
                edgecolors=hue if several else "black",
                linewidths=1.2,
                zorder=4,
                label=None if several else "Pareto front",
            )
            ax.set_xlabel(label(x))
            ax.set_ylabel(label(y))
            ax.grid(alpha=0.3)
    legend_below(figure, axes[0])
    return figure


def effects_figure(studies: list[Study]) -> plt.Figure | None:
    effects = [(s, parameter_effects(s)) for s in studies]
    effects = [(s, e) for s, e in effects if not e.is_empty()]
    if not effects:
        return None
    params = list(dict.fromkeys(p for _, e in effects for p in e["param"].unique(maintain_order=True)))
    objectives = list(dict.fromkeys(o for _, e in effects for o in e["objective"].unique(maintain_order=True)))
    figure, axes = plt.subplots(len(params), len(objectives), figsize=(WIDTH, 2.6 * len(params)), squeeze=False, constrained_layout=True)
    for index, (study, effect) in enumerate(effects):
        for row, param in enumerate(params):
            for col, objective in enumerate(objectives):
                ax = axes[row][col]
                part = effect.filter((pl.col("param") == param) & (pl.col("objective") == objective))
                if part.is_empty():
                    continue
                numeric = part["value"].null_count() == 0
                x: np.ndarray | list[str]
                if numeric:
                    part = part.sort("value")
                    x = part["value"].to_numpy()
                    span = x.max() / x.min() if x.min() > 0 else 0
                    if span > 10:
                        ax.set_xscale("log")
                else:
                    x = [text.split("(")[0] for text in part["value_text"]]  # a section choice: its kind
                joined = numeric and part["value"].n_unique() == part.height  # a line only through distinct x
                ax.errorbar(
                    x,
                    part["mean"],
                    yerr=part["std"].fill_null(0),
                    fmt="o-" if joined else "o",
                    markersize=4,
                    linewidth=0.8,
                    color=colour(index),
                    capsize=2,
                    alpha=0.8,
                    label=study.name,
                )
                ax.set_xlabel(label(param))
                ax.set_ylabel(label(objective))
                ax.grid(alpha=0.3)
                if not numeric:
                    ax.tick_params(axis="x", labelrotation=20)
    if len(effects) > 1:
        legend_below(figure, axes.flat)
    return figure


def hypervolume_figure(studies: list[Study]) -> plt.Figure | None:
    progress = [(s, hypervolume_progress(s)) for s in studies]
    progress = [(s, p) for s, p in progress if not p.is_empty()]
    if not any(p.height >= 2 for _, p in progress):  # one configuration has no progress to show
        return None
    figure, ax = plt.subplots(figsize=(WIDTH / 2, 2.6), constrained_layout=True)
    for index, (study, frame) in enumerate(progress):
        ax.step(frame["completed"], frame["hypervolume"], where="post", color=colour(index), label=study.name)
        ax.plot(frame["completed"], frame["hypervolume"], "o", color=colour(index), markersize=3)
    objectives = list(progress[0][0].objectives)[:2]
    ax.set_xlabel("completed configurations")
    ax.set_ylabel(f"hypervolume ({label(objectives[0])} × {label(objectives[1])})")
    ax.grid(alpha=0.3)
    if len(progress) > 1:
        legend_below(figure, [ax], columns=2)
    return figure


def correlation_figure(table: pl.DataFrame) -> plt.Figure | None:
    """One panel per embedding metric: r and ρ against each downstream metric, with intervals."""
    if table.is_empty() or table.filter(pl.col("pearson").is_not_nan()).is_empty():
        return None
    embeddings = table["embedding"].unique(maintain_order=True).to_list()
    columns = min(2, len(embeddings))
    rows = math.ceil(len(embeddings) / columns)
    per_panel = table.height / len(embeddings)
    figure, axes = plt.subplots(rows, columns, figsize=(WIDTH, rows * (1.0 + 0.35 * per_panel)), squeeze=False, constrained_layout=True)
    for ax in axes.flat[len(embeddings) :]:
        ax.axis("off")
    for ax, embedding in zip(axes.flat, embeddings):
        pairs = table.filter(pl.col("embedding") == embedding)
        y = np.arange(pairs.height)
        for name, offset, marker in (("pearson", -0.15, "s"), ("spearman", 0.15, "o")):
            value, low, high = (pairs[c].to_numpy() for c in (name, f"{name}_low", f"{name}_high"))
            ax.errorbar(
                value,
                y + offset,
                xerr=np.abs(np.vstack([value - low, high - value])),
                fmt=marker,
                capsize=3,
                label="Pearson r" if name == "pearson" else "Spearman ρ",
            )
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_yticks(y, [f"{label(d)} (n={n})" for d, n in zip(pairs["downstream"], pairs["n"])])
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(f"{label(embedding)} against …")
    legend_below(figure, axes.flat[:1], columns=2)
    return figure


def shift_figure(studies: list[Study]) -> plt.Figure | None:
    """The front's kept shift curves: the gap and mean R@1 against λ, one line per configuration,
    each modality centred as a dotted level."""
    curves = [(study, shift_curves(study)) for study in studies]
    curves = [(study, c) for study, c in curves if not c.is_empty()]
    if not curves:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(WIDTH, 2.8), squeeze=False, constrained_layout=True)
    line = 0
    for study, frame in curves:
        for trial_id, part in frame.group_by("trial_id", maintain_order=True):
            hue, line = colour(line), line + 1
            name = f"{study.name} {trial_id[0]}" if len(studies) > 1 else trial_id[0]
            moved, centred = part.filter(pl.col("centred") == 0), part.filter(pl.col("centred") == 1)
            for ax, column in zip(axes[0], ("modality_gap", "mean_r1")):
                ax.plot(moved["shift"], moved[column], "o-", color=hue, markersize=3, linewidth=1, label=name)
                if not centred.is_empty():
                    ax.axhline(centred[column][0], color=hue, linestyle=":", linewidth=1)
    for ax, column in zip(axes[0], ("modality_gap", "mean_r1")):
        ax.set_xlabel("shift λ along the gap vector")
        ax.set_ylabel(label(column))
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.grid(alpha=0.3)
    legend_below(figure, axes[0][:1], columns=3, title="configuration")
    return figure
