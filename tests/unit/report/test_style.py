"""The report figures' look (raygap.report.style): short tick labels that stay distinct, log axes
labelled at 1-2-5 without overlapping minor labels, and legends outside the panels."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from raygap.report.style import OKABE_ITO, ShortTicks, legend_below, plt, tidy


def test_tick_labels_by_hand():
    ticks = ShortTicks()
    assert ticks.format_ticks([0.0, 0.25, 0.5, 0.75, 1.0]) == ["0", "0.25", "0.5", "0.75", "1"]
    assert ticks.format_ticks([0, 100, 200, 300]) == ["0", "100", "200", "300"]  # not 1e2
    assert ticks.format_ticks([0.0525, 0.0526, 0.0527]) == ["0.0525", "0.0526", "0.0527"]
    assert ticks.format_ticks([-0.5, 0.0, 0.5]) == ["\u22120.5", "0", "0.5"]
    assert ticks.format_ticks([1e-5, 2e-5]) == ["1e\u22125", "2e\u22125"]


@given(st.floats(1e-4, 1e4), st.sampled_from([1.0, 2.0, 2.5, 5.0]), st.integers(-2, 2), st.integers(2, 7))
def test_nice_ticks_always_get_distinct_labels(start, step, power, count):
    spacing = step * 10.0**power * 10 ** np.floor(np.log10(start))
    values = [start + i * spacing for i in range(count)]
    labels = ShortTicks().format_ticks(values)
    assert len(set(labels)) == len(labels) or np.ptp(values) / max(abs(v) for v in values) < 1e-5


def overlaps(boxes) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_log_axis_under_a_decade_has_readable_labels_and_the_legend_sits_below():
    figure, axes = plt.subplots(1, 2, figsize=(7.2, 2.6), constrained_layout=True)
    for index, ax in enumerate(axes):
        ax.plot([0.02, 0.03, 0.04], [0.05275, 0.0528, 0.05285], "o-", label=f"study {index}")
        ax.set_xscale("log")
    legend_below(figure, axes)
    tidy(figure)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            shown = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
            assert shown and not overlaps([t.get_window_extent(renderer) for t in shown])
        assert all(t.get_text() == "" for t in ax.xaxis.get_ticklabels(which="minor"))
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["study 0", "study 1"]
    assert not any(legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)) for ax in axes)
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"] == OKABE_ITO  # every figure's colours
    plt.close(figure)
