"""raygap report: each data function against numbers worked out by hand from a small folder, then
the page itself in headless Chromium."""

import math
import os
import re
import shutil
import subprocess

import numpy as np
import polars as pl
import pytest
import yaml

from raygap import report, results
from raygap.cli import main

SPEC = {"name": "hand", "search": {"objectives": {"modality_gap": "min", "mean_r1": "max"}}}
# (trial, seed, T, gap, i→t R@1, t→i R@1). Seed means: a gap 0.5, R@1 (0.30, 0.25), mean 0.275;
# b gap 0.2, R@1 (0.25, 0.25); c gap 0.4, R@1 (0.1, 0.1), dominated by b.
ROWS = [
    ("a", 0, 0.02, 0.4, 0.30, 0.30),
    ("a", 1, 0.02, 0.6, 0.30, 0.20),
    ("b", 0, 0.10, 0.2, 0.20, 0.30),
    ("b", 1, 0.10, 0.2, 0.30, 0.20),
    ("c", 0, 0.30, 0.4, 0.10, 0.10),
]


def make_folder(path, history=True):
    folder = results.ResultsFolder(path)
    rows = []
    for order, (trial, seed, t, gap, i2t, t2i) in enumerate(ROWS):
        metrics = {
            "modality_gap": gap,
            "image_to_text_r1": i2t,
            "text_to_image_r1": t2i,
            "mean_r1": (i2t + t2i) / 2,
            "uniformity": -1.0 - gap,
            "zero_shot_top1": 0.5,
            "linear_probe_top1": 0.6,
            "wall_seconds": 3600.0,
            "cpus_held": 1.0,
            "gpus_held": 0.0,
            "recorded_at": 1000.0 + order,
        }
        rows.append(results.trial_row(trial, seed, {"temperature.value": t}, {}, "completed", metrics))
    rows.append(results.trial_row("d", 0, {"temperature.value": 0.5}, {}, "failed", error="TrainingDiverged: loss became nan"))
    folder.append(results.TRIALS, rows)
    if history:
        # Trial b: gap = 0.3 / log(t) + 0.05 exactly, two seeds that differ by ±0.01 (mean is exact).
        steps = [0, 10, 100, 1000, 10000]
        folder.append(
            results.HISTORY,
            [
                {
                    "step": s,
                    "modality_gap": (0.3 / math.log(s) + 0.05 if s > 1 else 1.0) + (0.01 if seed else -0.01),
                    "temperature": 0.1,
                    "mean_r1": 0.1,
                    "trial_id": "b",
                    "seed": seed,
                }
                for seed in (0, 1)
                for s in steps
            ],
        )
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))
    return folder


def test_configurations_and_fronts_per_direction(tmp_path):
    study = report.load_study(make_folder(tmp_path / "s").path)
    assert study.params == ["param.temperature.value"] and study.main_param == "param.temperature.value"
    summary = report.configurations(study).sort("trial_id")
    assert summary["trial_id"].to_list() == ["a", "b", "c"]
    assert summary["modality_gap"].to_list() == pytest.approx([0.5, 0.2, 0.4])
    assert summary["modality_gap_std"][0] == pytest.approx(math.sqrt(0.02))  # sample std of 0.4, 0.6
    assert summary["seeds"].to_list() == [2, 2, 1]
    assert summary["rank"].to_list() == [1, 1, 2]  # on (gap, mean R@1): a (0.5, 0.275), b (0.2, 0.25), c (0.4, 0.1)

    panels = {y: frame for _, y, frame in report.front_panels(study)}
    assert set(panels) == {"image_to_text_r1", "text_to_image_r1"}
    i2t = panels["image_to_text_r1"]
    assert i2t["trial_id"].to_list() == ["b", "c", "a"]  # sorted by gap
    assert i2t["on_front"].to_list() == [True, False, True]  # a has the better i→t R@1 (0.30 > 0.25)
    assert panels["text_to_image_r1"].filter(pl.col("on_front"))["trial_id"].to_list() == ["b"]  # b dominates a there


def test_parameter_effects_long_frame(tmp_path):
    effects = report.parameter_effects(report.load_study(make_folder(tmp_path / "s").path))
    gap = effects.filter(pl.col("objective") == "modality_gap").sort("value")
    assert gap["value"].to_list() == [0.02, 0.10, 0.30]
    assert gap["mean"].to_list() == pytest.approx([0.5, 0.2, 0.4])
    assert effects.height == 6  # 3 configurations × 2 objectives


def test_dynamics_averages_seeds(tmp_path):
    study = report.load_study(make_folder(tmp_path / "s").path)
    frame = report.dynamics(study, ["b"])
    assert frame["step"].to_list() == [0, 10, 100, 1000, 10000]
    assert frame["modality_gap"][2] == pytest.approx(0.3 / math.log(100) + 0.05)


def test_method_table_shows_every_configuration_and_no_noise_as_best(tmp_path):
    study = report.load_study(make_folder(tmp_path / "s").path)
    table = report.method_table([study]).sort("trial_id")
    assert table["trial_id"].to_list() == ["a", "b", "c"]  # c is dominated, d failed
    assert table["front"].to_list() == [True, True, False]
    # b's gap (0.2, 0.2) against a's (0.4, 0.6): paired differences 0.2 and 0.4, so 0.3 ± 12.706 × 0.1;
    # against c only seed 0 is shared: no interval. a's i→t R@1 (0.3, 0.3) against b's (0.2, 0.3):
    # 0.05 ± 12.706 × 0.05. Zero-shot ties everywhere. Nothing is distinguishable: nothing is bold.
    assert not any(table[f"best_{c}"].any() for c in ("modality_gap", "image_to_text_r1", "zero_shot_top1"))
    notes = report.comparison_notes([study])
    assert (
        "modality gap: no best marked: hand temperature.value=0.1 is not distinguishable from hand temperature.value=0.3 (1 seed(s)"
        in notes[0]
    )
    # Two studies: every configuration of each; the same settings, so the searched value names them
    other = make_folder(tmp_path / "t")
    compared = report.method_table([study, report.load_study(other.path)])
    assert compared.height == 6 and compared["setting"].to_list()[:3] == [
        "temperature.value=0.1",
        "temperature.value=0.02",
        "temperature.value=0.3",
    ]


def test_hypervolume_progress_by_hand(tmp_path):
    progress = report.hypervolume_progress(report.load_study(make_folder(tmp_path / "s").path))
    # Reference (gap 2, R@1 0). Completion order a (seed 1 at 1001), b (1003), c (1004).
    # a alone: (2 − 0.5) × 0.275 = 0.4125; with b: 1.8 × 0.25 + (2 − 0.5) × (0.275 − 0.25) = 0.4875;
    # c (0.4, 0.1) lies inside that area and adds nothing.
    assert progress["trial_id"].to_list() == ["a", "b", "c"]
    assert progress["hypervolume"].to_list() == pytest.approx([0.4125, 0.4875, 0.4875])


def test_header_counts_and_hours(tmp_path):
    head = report.header(report.load_study(make_folder(tmp_path / "s").path))
    assert (head["configurations"], head["completed"], head["failed"], head["seed_runs"]) == (4, 3, 1, 6)
    assert head["cpu_hours"] == pytest.approx(5.0) and head["gpu_hours"] == 0.0


def test_pruned_trials_are_counted_listed_where_they_stopped_and_left_out_of_the_front(tmp_path):
    folder = make_folder(tmp_path / "s")
    pruned = {"modality_gap": 0.01, "mean_r1": 0.9, "stopped_at_step": 300, "recorded_at": 1002.5}  # would top the front
    folder.append(results.TRIALS, [results.trial_row("e", 0, {"temperature.value": 0.3}, {}, "pruned", pruned)])
    study = report.load_study(folder.path)
    head = report.header(study)
    assert (head["configurations"], head["completed"], head["failed"], head["pruned"]) == (5, 3, 1, 1)
    assert report.hypervolume_progress(study)["trial_id"].to_list() == ["a", "b", "c"]
    assert "e" not in report.configurations(study)["trial_id"].to_list()
    assert report.stopped_early(study).select("trial_id", "seed", "stopped_at_step").rows() == [("e", 0, 300)]
    page = report.write_report([folder.path])
    assert "hand: trial e seed 0 pruned at step 300 (mean_r1 0.900, modality_gap 0.010)" in (page.parent / "report.md").read_text()


def test_report_command_writes_page_pngs_and_markdown(tmp_path, capsys):
    make_folder(tmp_path / "s")
    assert main(["report", str(tmp_path / "s")]) == 0
    out = tmp_path / "s" / "report"
    # No gap_rate: the hand trials record no temperature, so no rate is fitted (tests/test_rates.py draws one);
    # no correlation: three configurations are too few for a coefficient, as the table says. Each figure in 3 formats.
    figures = ("pareto", "effects", "dynamics", "hypervolume")
    assert {p.name for p in out.iterdir()} == {
        "index.html",
        "report.md",
        *(f"{f}.{kind}" for f in figures for kind in ("png", "pdf", "svg")),
    }
    for name in figures:
        pdf = (out / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF") and len(re.findall(rb"/Type /Page\b", pdf)) == 1
        assert (out / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    markdown = (out / "report.md").read_text()
    assert "- Correlations across configurations: too few configurations (3; 6 needed)" in markdown
    assert "| modality gap | mean recall@1 |" not in markdown  # no table of rows that all say so
    # every configuration, the front marked; two seeds that do not tell b's gap from a's: no bold
    assert "| hand | temperature.value=0.1 | yes | 2 | 0.200 ± 0.000 |" in markdown
    assert "| hand | temperature.value=0.3 |  | 1 | 0.400 |" in markdown
    assert "- modality gap: no best marked: hand temperature.value=0.1 is not distinguishable" in markdown
    assert "hand: no gap rate for b: temperature not recorded" in markdown
    assert not list(out.glob(".*.tmp"))
    # --format picks the files (the page's PNGs always); a format matplotlib is not asked for is refused
    assert main(["report", str(tmp_path / "s"), "-o", str(tmp_path / "svg"), "--format", "svg"]) == 0
    assert sorted(p.suffix for p in (tmp_path / "svg").glob("pareto.*")) == [".png", ".svg"]
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "s"), "--format", "png,eps"])
    assert "expected a comma-separated list of png, pdf, svg, got 'png,eps'" in capsys.readouterr().err
    # Comparisons need an output folder; a folder that is not a study is refused by name.
    assert main(["report", str(tmp_path / "s"), str(tmp_path / "s")]) == 2
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "nothing" in capsys.readouterr().err


def keep_shift_curves(folder, trial: str, seeds: dict[int, list[tuple[float, float, float]]]) -> None:
    """Kept shift curves for a trial: seed → [(shift, gap, mean R@1)], the centred row last."""
    from raygap import kept_files

    for seed, rows in seeds.items():
        shift = [{"shift": s, "centred": int(math.isnan(s)), "modality_gap": g, "mean_r1": r} for s, g, r in rows]
        kept_files.record_artifacts(folder, trial, seed, shift=shift)


def test_shift_curves_of_the_front_by_hand(tmp_path):
    folder = make_folder(tmp_path / "s")
    nan = float("nan")
    keep_shift_curves(
        folder, "b", {0: [(0.0, 0.2, 0.3), (0.5, 0.05, 0.2), (nan, 0.01, 0.1)], 1: [(0.0, 0.4, 0.1), (0.5, 0.15, 0.2), (nan, 0.03, 0.3)]}
    )
    keep_shift_curves(folder, "c", {0: [(0.0, 0.9, 0.9)]})  # c is not on the front: not drawn
    curves = report.shift_curves(report.load_study(folder.path))
    assert curves["trial_id"].unique().to_list() == ["b"]
    assert curves.filter(pl.col("centred") == 0)["modality_gap"].to_list() == pytest.approx([0.3, 0.1])  # seed means
    assert curves.filter(pl.col("centred") == 1)["mean_r1"].to_list() == pytest.approx([0.2])
    assert curves["seeds"].to_list() == [2, 2, 2]


def test_figures_have_readable_ticks_and_legends_outside_the_panels(tmp_path):
    """Two studies, every figure the hand folders give: no two tick labels of an axis overlap, no
    minor label on a log axis, every legend outside every panel, and one-configuration studies
    get no hypervolume panel."""
    from raygap.report import figures
    from raygap.report.correlation import study_correlations

    folders = [make_folder(tmp_path / name) for name in ("s", "t")]
    keep_shift_curves(folders[0], "b", {0: [(-0.5, 0.6, 0.2), (0.0, 0.2, 0.3), (0.5, 0.05, 0.25), (float("nan"), 0.01, 0.2)]})
    studies = [report.load_study(folder.path) for folder in folders]
    drawn = figures.draw_all(studies, study_correlations(studies))
    assert set(drawn) == {"pareto", "effects", "dynamics", "hypervolume", "correlation", "shift"}  # 6 configurations pooled
    for name, (figure, _) in drawn.items():
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>" and ax.axison]
        for ax in figure.axes:
            for axis in (ax.xaxis, ax.yaxis):
                boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
                assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), (
                    name,
                    [t.get_text() for t in axis.get_ticklabels()],
                )
                assert not [t.get_text() for t in axis.get_ticklabels(which="minor") if t.get_text()], name
        legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
        for legend in legends:
            assert not any(legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)) for ax in panels), name
        figures.plt.close(figure)
    single = report.load_study(make_folder(tmp_path / "one").path)
    single.trials = single.trials.filter(pl.col("trial_id") == "b")
    assert figures.hypervolume_figure([single]) is None


def points_drawn(dom: str, figure: str, until: str) -> int:
    """Markers plotly.js drew in the figure's element (SVG paths of class "point")."""
    start = dom.index(f'id="{figure}"')
    return len(re.findall(r'<path class="point\b', dom[start : dom.index(until, start)]))


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None and not os.environ.get("RAYGAP_REQUIRE_BROWSER"), reason="no chromium (CI installs it)")
def test_page_renders_in_headless_chromium(tmp_path):
    """Two studies overlaid (t has a pruned trial): the PNGs decode, the interactive figures draw
    every point (counted in the DOM plotly.js built), and no script error is logged."""
    make_folder(tmp_path / "s")
    folder = make_folder(tmp_path / "t")
    folder.append(
        results.TRIALS, [results.trial_row("e", 0, {"temperature.value": 0.3}, {}, "pruned", {"modality_gap": 0.3, "mean_r1": 0.2})]
    )
    page = report.write_report([tmp_path / "s", tmp_path / "t"], tmp_path / "compare")
    browser = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    browser.append("--virtual-time-budget=15000")
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    figures = re.search(r'<body[^>]*data-figures="(\d+)/(\d+)"', dom.stdout)
    assert figures, "the page's load script did not run"
    # Every figure decoded: pareto, effects, dynamics, hypervolume, correlation (no gap rate: these
    # hand-made trials record no learned temperature, the one case the theory gives a rate for).
    assert figures.group(1) == figures.group(2) == "5"
    assert 'data-explorer="drawn"' in dom.stdout and "data-errors" not in dom.stdout
    # Front: the three configurations of each study and t's pruned trial. Curves: trial b (the
    # first on the front with a history), 2 seeds × 5 steps × (gap, mean R@1).
    assert points_drawn(dom.stdout, "explore-front", "explore-failed") == 3 + 3 + 1
    assert points_drawn(dom.stdout, "explore-curves", "<script") == 2 * 5 * 2
    assert "hand trial d seed 0: TrainingDiverged" in dom.stdout  # failed trials are named, not drawn
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    shot = tmp_path / "shot.png"
    subprocess.run([*browser, "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1200) and pixels.std() > 20  # drawn figures, not a blank page
    # The SVGs decode in the browser; the PDFs render in poppler (a PDF viewer's engine)
    svgs = sorted(page.parent.glob("*.svg"))
    gallery = page.parent / "svgs.html"
    gallery.write_text(
        "<!doctype html><body>" + "".join(f"<img src='{p.name}'>" for p in svgs) + "<script>window.addEventListener('load', () => "
        "{ document.body.dataset.figures = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length; });</script>"
    )
    dom = subprocess.run([*browser, "--dump-dom", gallery.as_uri()], capture_output=True, text=True, timeout=120)
    assert len(svgs) == 5 and f'data-figures="{len(svgs)}"' in dom.stdout
    if shutil.which("pdftoppm") or os.environ.get("RAYGAP_REQUIRE_BROWSER"):
        for pdf in sorted(page.parent.glob("*.pdf")):
            subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(pdf), str(tmp_path / pdf.stem)], check=True, timeout=60)
            rendered = np.asarray(Image.open(tmp_path / f"{pdf.stem}.png").convert("L"), dtype=float)
            assert rendered.std() > 10, pdf.name  # drawn, not blank


# ------------------------------------------------------------------ gap ∝ (log t)^−α fits
def power_frame(t, gap) -> pl.DataFrame:
    return pl.DataFrame({"time": np.asarray(t, dtype=float), "modality_gap": np.asarray(gap, dtype=float)})


def test_log_power_fit_recovers_an_exact_exponent():
    t = np.logspace(0.5, 4, 40)
    fit = report.log_power_fit(power_frame(t, 3 * np.log(t) ** -1.5), late_fraction=1.0)
    assert fit["alpha"] == pytest.approx(1.5, abs=1e-9) and fit["prefactor"] == pytest.approx(3, abs=1e-9)
    assert fit["alpha_se"] < 1e-9 and fit["r2"] == pytest.approx(1.0, abs=1e-12)
    assert fit["points"] == 40 and fit["t_min"] == pytest.approx(t[0]) and fit["t_max"] == pytest.approx(1e4)
    late = report.log_power_fit(power_frame(t, 3 * np.log(t) ** -1.5))  # the late half of log t: t ≥ 100
    assert late["t_min"] >= 100 and late["points"] == int((t >= 100).sum()) and late["alpha"] == pytest.approx(1.5, abs=1e-9)


def test_log_power_fit_standard_error_matches_the_scatter_of_noisy_fits():
    """Multiplicative noise of 2%: each fit lands within a few standard errors of 1.5, and over 400
    draws the spread of α matches the reported standard error (the fraction within ±1 SE is near
    0.68, the t-distribution's with 28 degrees of freedom)."""
    t = np.logspace(1, 3, 30)
    rng = np.random.default_rng(0)
    fits = [
        report.log_power_fit(power_frame(t, 3 * np.log(t) ** -1.5 * np.exp(rng.normal(0, 0.02, t.size))), late_fraction=1.0)
        for _ in range(400)
    ]
    alphas, errors = np.array([f["alpha"] for f in fits]), np.array([f["alpha_se"] for f in fits])
    within = float((np.abs(alphas - 1.5) <= errors).mean())
    print(f"\n400 noisy fits: α {alphas.mean():.4f} ± {alphas.std():.4f} (spread), mean SE {errors.mean():.4f}, within ±1 SE {within:.2f}")
    assert abs(fits[0]["alpha"] - 1.5) < 3 * fits[0]["alpha_se"]
    assert 0.6 < within < 0.76 and alphas.std() == pytest.approx(errors.mean(), rel=0.15)


@pytest.mark.parametrize(
    "t, gap",
    [
        ([], []),
        ([10.0, 100.0], [0.2, 0.1]),  # too few points
        ([0.5, 1.0, 10.0, 100.0], [0.4, 0.3, 0.2, 0.1]),  # two of them at t ≤ 1, where log log t is undefined
        ([10.0, 100.0, 1000.0, 10000.0], [0.2, 0.2, 0.2, 0.2]),  # a constant gap
        ([10.0, 100.0, 1000.0, 10000.0], [0.2, 0.1, 0.0, 0.05]),  # a zero
        ([10.0, 100.0, 1000.0, 10000.0], [0.2, 0.1, -0.1, 0.05]),  # a negative gap
        ([10.0, 100.0, 1000.0, 10000.0], [0.2, 0.1, math.nan, 0.05]),  # a NaN
        ([10.0, 100.0, 1000.0, 10000.0], [0.2, 0.1, math.inf, 0.05]),  # an inf
        ([10.0, 10.0, 10.0], [0.3, 0.2, 0.1]),  # no spread in t
    ],
    ids=["empty", "two-points", "t-below-one", "constant", "zero", "negative", "nan", "inf", "one-time"],
)
def test_log_power_fit_gives_nan_on_degenerate_input(t, gap):
    fit = report.log_power_fit(power_frame(t, gap), late_fraction=1.0)
    assert all(math.isnan(fit[k]) for k in ("alpha", "alpha_se", "prefactor", "r2", "t_min", "t_max")), fit
    assert fit["points"] <= len(t)
    assert math.isnan(report.log_power_fit(pl.DataFrame(), late_fraction=1.0)["alpha"])


def test_hypervolume_progress_equals_the_hypervolume_of_every_prefix(tmp_path):
    """The incremental front gives what recomputing the hypervolume of each prefix gave, ties and all."""
    from raygap import pareto

    rng = np.random.default_rng(1)
    folder = results.ResultsFolder(tmp_path / "r")
    gaps, r1s = rng.integers(0, 8, 80) / 8, rng.integers(0, 8, 80) / 8
    rows = [
        results.trial_row(
            f"t{i:02d}", 0, {"temperature.value": 0.1}, {}, "completed", {"modality_gap": g, "mean_r1": r, "recorded_at": float(i)}
        )
        for i, (g, r) in enumerate(zip(gaps, r1s))
    ]
    folder.append(results.TRIALS, rows)
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))
    progress = report.hypervolume_progress(report.load_study(folder.path))
    objectives = {"modality_gap": "min", "mean_r1": "max"}
    frame = pl.DataFrame({"modality_gap": gaps, "mean_r1": r1s})
    slow = [pareto.hypervolume_2d(frame.head(i + 1), objectives, (2.0, 0.0)) for i in range(80)]
    assert progress["hypervolume"].to_list() == pytest.approx(slow, abs=1e-12)


def early_folder(path, changes):
    """A Figure-4(b)-style study: one trial per initialization, the gap at steps 0, 5 and 10."""
    folder = results.ResultsFolder(path)
    rows, history = [], []
    for i, (before, after) in enumerate(changes):
        rows.append(results.trial_row(f"t{i}", i, {"train.seed": i}, {}, "completed", {"modality_gap": after, "mean_r1": 0.1}))
        history += [{"trial_id": f"t{i}", "seed": i, "step": s, "modality_gap": g} for s, g in ((0, before), (5, before), (10, after))]
    folder.append(results.TRIALS, rows)
    folder.append(results.HISTORY, history)
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))


def test_early_gap_changes_count_the_initializations_that_grew(tmp_path):
    from raygap.report.rates import early_gap_changes, early_gap_notes, early_gap_summary

    early_folder(tmp_path / "e", [(0.5, 0.6), (0.5, 0.4), (0.5, math.nan), (0.2, 0.5)])
    study = report.load_study(tmp_path / "e")
    changes = early_gap_changes(study)
    assert changes["step"].to_list() == [10] * 4
    assert changes["change"].to_list()[:2] == pytest.approx([0.1, -0.1]) and math.isnan(changes["change"][2])
    summary = early_gap_summary(changes)
    assert {k: summary[k] for k in ("runs", "measured", "grew")} == {"runs": 4, "measured": 3, "grew": 2}
    assert summary["fraction_grew"] == pytest.approx(2 / 3) and summary["median_change"] == pytest.approx(0.1)
    assert early_gap_notes([study]) == ["hand: the gap grew over the first 10 steps in 2 of 3 initializations (67%); median change +0.1000"]
    assert early_gap_changes(report.load_study(make_folder(tmp_path / "long").location)).is_empty()  # runs past step 20


def test_report_of_a_study_without_a_completed_trial_is_a_clear_error(tmp_path, capsys):
    folder = results.ResultsFolder(tmp_path / "failed")
    folder.append(
        results.TRIALS,
        [results.trial_row(t, 0, {"temperature.value": 0.5}, {}, "failed", error="TrainingDiverged: loss became nan") for t in "de"],
    )
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))
    assert main(["report", str(folder.path)]) == 2
    assert f"{folder.path}: no completed trial (2 failed): nothing to report" in capsys.readouterr().err
    assert not (tmp_path / "failed" / "report").exists()


def test_an_interrupted_report_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from raygap import local_files

    make_folder(tmp_path / "s")
    page = report.write_report([tmp_path / "s"])
    before = {p.name: p.read_bytes() for p in page.parent.iterdir()}
    written = []

    def interrupt_after_two(path, figure):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path)
        local_files.write_local_bytes(path, b"partial")

    monkeypatch.setattr(local_files, "write_figure", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        report.write_report([tmp_path / "s"])
    assert {p.name: p.read_bytes() for p in page.parent.iterdir()} == before  # the old report, untouched
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if p.name.startswith(".")) == []  # no staging left
