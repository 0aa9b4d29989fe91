"""One look for every report figure: a colour-blind-safe palette, tick labels with as few digits as
tell the ticks apart, log axes labelled at 1-2-5 only, and legends outside the data."""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display on a cluster head or in CI
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

# Okabe & Ito's eight colours (2008), distinguishable with every common colour-vision deficiency;
# black last, as it also draws the front.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
CATEGORIES = ListedColormap(OKABE_ITO, name="okabe_ito")
SEQUENTIAL = "viridis"  # perceptually uniform and colour-blind safe
FORMATS = ("png", "pdf", "svg")
WIDTH = 7.2  # inches: a two-column paper's full width

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 9,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "figure.dpi": 100,
        "axes.prop_cycle": cycler(color=OKABE_ITO),
        "axes.formatter.useoffset": False,  # "+0.05" above an axis reads as a tick label
        "svg.fonttype": "none",  # text stays text in the SVG (searchable, editable)
        "pdf.fonttype": 42,  # TrueType in the PDF, as journals ask
    }
)


def colour(index: int) -> str:
    return OKABE_ITO[index % len(OKABE_ITO)]


class ShortTicks(ticker.Formatter):
    """Tick labels with the fewest significant digits (2 to 6) that keep every label distinct:
    0.05, 0.1, 0.15 rather than 0.05000, 0.10000, 0.15000 or 0.05275."""

    def __call__(self, value, pos=None) -> str:
        return _number(value, 3)

    def format_ticks(self, values) -> list[str]:
        for digits in range(2, 7):
            labels = [_number(v, digits) for v in values]
            if len(set(labels)) == len(labels):
                return labels
        return [_number(v, 6) for v in values]


def _number(value: float, digits: int) -> str:
    """`value` to `digits` significant digits: positional from 0.001 to 10⁶ (100, not 1e2), else
    scientific (2e-05 → 2e-5)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    if 1e-3 <= abs(value) < 1e6:
        text = np.format_float_positional(value, precision=digits, unique=True, fractional=False, trim="-")
        return text.replace("-", "\u2212")  # the minus sign matplotlib itself draws
    return f"{value:.{digits}g}".replace("e-0", "e-").replace("e+0", "e").replace("-", "\u2212")


def tidy(figure: plt.Figure) -> plt.Figure:
    """Every axis of `figure`: as many linear ticks as fit its length, with short labels; log axes labelled as
    `_log_ticks` says, no minor labels (they overlap below a decade)."""
    for ax in figure.axes:  # colour bars too
        for axis, scale, limits in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
            if isinstance(axis.get_major_locator(), (ticker.NullLocator, ticker.FixedLocator)):
                continue  # no ticks (a colour bar's short side), or ticks placed on purpose
            if axis.get_major_formatter().__class__.__name__ in ("StrCategoryFormatter", "FixedFormatter"):
                continue  # category names or labels set on purpose
            if scale == "linear":
                axis.set_major_locator(ticker.MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10]))  # as many as fit
                axis.set_major_formatter(ShortTicks())
            elif scale == "log":
                axis.set_major_locator(_log_ticks(*limits))
                axis.set_major_formatter(ShortTicks())
                axis.set_minor_formatter(ticker.NullFormatter())
    return figure


def _log_ticks(low: float, high: float) -> ticker.Locator:
    """Labelled ticks of a log axis: every power of ten over three decades or more, 1-2-5 under
    that, 1 to 9 under one decade; a narrower span than a third of a decade, four plain ticks."""
    decades = math.log10(max(low, high) / min(low, high)) if min(low, high) > 0 else 3.0
    if decades < 0.3:
        return ticker.MaxNLocator(nbins=4)
    subs = (1.0,) if decades >= 3 else (1.0, 2.0, 5.0) if decades >= 1 else tuple(float(k) for k in range(1, 10))
    return ticker.LogLocator(base=10, subs=subs)


def legend_below(figure: plt.Figure, axes, columns: int = 3, title: str | None = None) -> None:
    """One legend for the figure, below the panels (outside the data), from the labelled artists
    of `axes` (each label once)."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    if handles:
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=min(columns, len(handles)),
            frameon=False,
            title=title,
        )
