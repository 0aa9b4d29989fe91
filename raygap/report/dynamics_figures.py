"""The figures of how the gap moves over training: the front's curves (gap, temperature, retrieval,
1/log t, mismatch) and the paper's Figure 4 (the gap's decay rate, its change over the first steps).
matplotlib, no display; each function returns a figure, or None when the studies have nothing to draw."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from raygap.catalog import label
from raygap.report.rates import early_gap_changes, early_gap_summary, gap_rates
from raygap.report.studies import Study, dynamics, front_trial_ids, number
from raygap.report.style import WIDTH, colour, legend_below, plt


def dynamics_figure(studies: list[Study]) -> plt.Figure | None:
    traces = []
    for study in studies:
        ids = front_trial_ids(study, limit=1 if len(studies) > 1 else 4)
        frame = dynamics(study, ids)
        if not frame.is_empty():
            traces.append((study, frame))
    if not traces:
        return None
    theory = all("margin" in f.columns and "mean_r1" not in f.columns for _, f in traces)
    third = "margin" if theory else "mean_r1"
    panels = ["modality_gap", "temperature", third, "inverse_log", *([] if theory else ["mismatch_fraction"])]
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(WIDTH, 2.5 * rows), squeeze=False, constrained_layout=True)
    time_label = "simulated time t" if theory else "training step"
    line = 0
    for study, frame in traces:
        for trial_id, part in frame.group_by("trial_id", maintain_order=True):
            name = f"{study.name} {trial_id[0]}" if len(studies) > 1 else trial_id[0]
            hue = colour(line)
            line += 1
            for ax, panel in zip(axes.flat, panels):
                if panel == "inverse_log":
                    late = part.filter(pl.col("time") > 1)
                    ax.plot(1 / np.log(late["time"].to_numpy()), late["modality_gap"], ".-", color=hue, markersize=3, linewidth=0.8)
                    ax.set_xlabel("1 / log t")
                    ax.set_ylabel(label("modality_gap"))
                    ax.set_title("straight line = 1/log t decay")
                elif panel in part.columns:
                    early = part if panel != "mismatch_fraction" else part.filter(pl.col("time") <= number(part["time"].max()) * 0.5)
                    ax.plot(early["time"], early[panel], ".-", color=hue, markersize=3, linewidth=0.8, label=name)
                    ax.set_xlabel(time_label + (" (first half)" if panel == "mismatch_fraction" else ""))
                    ax.set_ylabel(label(panel))
                    if theory and panel in ("modality_gap", "temperature"):
                        ax.set_xscale("symlog", linthresh=1)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax in axes.flat[: len(panels)]:
        ax.grid(alpha=0.3)
    legend_below(figure, axes.flat[:1], columns=4, title="configuration")
    return figure


def gap_rate_figure(studies: list[Study]) -> plt.Figure | None:
    """The paper's Figure 4(a): each fitted front configuration's seed-mean gap against flow time
    (log axis) and the seeds' mean fitted line over the window, labelled α ± its standard error
    over seeds (`rates.rate_fit`)."""
    rates = [(study, rate) for study in studies for rate in gap_rates(study)]
    if not rates:
        return None
    figure, ax = plt.subplots(figsize=(WIDTH, 4.5), constrained_layout=True)
    theory = all(study.spec.get("theory") for study, _ in rates)
    for study, rate in rates:
        keep = rate["time"] > 0
        seeds = len(rate["alpha_per_seed"])
        alpha = f"α = {rate['alpha']:.2f} ± {rate['alpha_se']:.2f} (n={seeds} seeds)" if seeds > 1 else f"α = {rate['alpha']:.2f} (1 seed)"
        line = ax.plot(rate["time"][keep], rate["gap"][keep], ".", label=f"{study.name} {rate['trial_id']}: {alpha}")
        t = np.geomspace(rate["t_min"], rate["t_max"], 100)
        ax.plot(t, rate["prefactor"] * np.log(t) ** -rate["alpha"], "-", color=line[0].get_color())
    ax.set_xscale("log")
    ax.set_xlabel("simulated time t" if theory else "flow time t: cumulative learning rate ÷ peak rate")
    ax.set_ylabel(" / ".join(sorted({label(rate["gap_column"]) for _, rate in rates})))
    legend_below(figure, [ax], columns=1)
    return figure


def early_gap_figure(studies: list[Study]) -> plt.Figure | None:
    """The paper's Figure 4(b): the distribution of the gap's change over the first steps across
    initializations, and how many grew."""
    changes = [(study, early_gap_changes(study)) for study in studies]
    changes = [(study, c) for study, c in changes if c.height >= 2]
    if not changes:
        return None
    figure, ax = plt.subplots(figsize=(WIDTH, 4), constrained_layout=True)
    for study, frame in changes:
        summary = early_gap_summary(frame)
        ax.hist(
            frame["change"].drop_nans().to_numpy(),
            bins=20,
            alpha=0.6,
            label=f"{study.name}: {summary['grew']} of {summary['measured']} grew ({summary['fraction_grew']:.0%})",
        )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(f"gap after step {int(number(changes[0][1]['step'].max()))} − gap at step 0")
    ax.set_ylabel("initializations")
    legend_below(figure, [ax], columns=1)
    return figure
