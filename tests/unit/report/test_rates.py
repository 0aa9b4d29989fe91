"""The gap's rate gap ∝ (log t)^−α (raygap.report.rates): fitted against flow time, not the step
count, on the bias-corrected gap when history has it, with its uncertainty over seeds, and only
where the theory predicts a rate and enough points exist."""

import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from raygap import report, results
from raygap.config.loading import load_spec
from raygap.report import rates

SPEC = {"name": "rate", "search": {"objectives": {"modality_gap": "min", "mean_r1": "max"}}}
STUDIES = Path(__file__).resolve().parents[3] / "studies"


def schedule_of(name: str) -> tuple[int, int, int, float]:
    """A study file's (steps, warmup steps, evaluation interval, peak lr)."""
    train = load_spec(STUDIES / name, check_paths=False).resolve({}, check_paths=False).train
    return train.steps, train.warmup_steps, train.eval_interval, train.lr


FIG4A, PAPER_FIG4A = schedule_of("fig4a.yaml"), schedule_of("paper/fig4a.yaml")


def multipliers(steps: int, warmup: int) -> np.ndarray:
    """The training code's own schedule: lr_s / lr at steps 0 … steps − 1."""
    from raygap.clip.schedule import lr_multiplier

    return np.array([lr_multiplier(s, warmup, steps) for s in range(steps)])


def flow(steps: int, warmup: int) -> np.ndarray:
    """Flow time Σ_{s < step} lr_s / lr at steps 0 … steps."""
    return np.concatenate([[0.0], np.cumsum(multipliers(steps, warmup))])


def inverse_log(t, alpha=1.0, prefactor=1.0):
    """prefactor·(log t)^−alpha, and 1 where t ≤ e (before the fitted window)."""
    t = np.asarray(t, dtype=float)
    return np.where(t > math.e, prefactor * np.log(np.maximum(t, math.e)) ** -alpha, 1.0)


def write_study(path, schedule=FIG4A, kind="learned", seeds=(0, 1, 2), gap=None, corrected=None, lr_logged=None):
    """One configuration trained under `schedule` for `seeds`: gap(seed, flow time) is the logged
    modality_gap, corrected(seed, flow time) the bias-corrected one (left out when None), the
    logged lr as the trainer logs it (`lr_logged(step)` overrides)."""
    steps, warmup, every, lr = schedule
    gap = gap or (lambda seed, t: inverse_log(t))
    rate, times = multipliers(steps, warmup), flow(steps, warmup)
    at = np.array(sorted(set(range(0, steps + 1, every)) | {steps}))
    config = {
        "train": {"steps": steps, "epochs": None, "lr": lr, "warmup_steps": warmup, "warmup_epochs": None, "eval_interval": every},
        "temperature": {"kind": kind},
    }
    folder = results.ResultsFolder(path)
    rows, history = [], []
    for seed in seeds:
        t = times[at]
        g = gap(seed, t)
        rows.append(results.trial_row("a", seed, {}, config, "completed", {"modality_gap": float(g[-1]), "mean_r1": 0.5}))
        for i, step in enumerate(at):
            row = {"trial_id": "a", "seed": seed, "step": int(step), "epoch": step / 16, "modality_gap": float(g[i]), "mean_r1": 0.5}
            # The trainer logs the rate of the step just taken (before the first: the peak rate).
            row["lr"] = lr_logged(step) if lr_logged else lr * (rate[step - 1] if step else 1.0)
            if corrected is not None:
                row[rates.CORRECTED] = float(corrected(seed, t)[i])
            history.append(row)
    folder.append(results.TRIALS, rows)
    folder.append(results.HISTORY, history)
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))
    return report.load_study(path)


def noted_alpha(study) -> tuple[float, float]:
    """α and its ± as the report's Fits line prints them (NaN when it prints no α)."""
    found = [re.search(r"α = ([-0-9.e+]+)(?: ± ([-0-9.e+]+))?", note) for note in rates.fit_notes([study])]
    found = [m for m in found if m]
    if not found:
        return math.nan, math.nan
    (match,) = found
    return float(match[1]), float(match[2]) if match[2] else math.nan


def test_lr_multipliers_are_the_training_schedule():
    from raygap.clip.schedule import lr_multiplier

    for steps, warmup in ((1000, 20), (10000, 500), (300, 0), (5, 10)):
        ours = rates.lr_multipliers(steps, warmup)
        assert ours == pytest.approx([lr_multiplier(s, warmup, steps) for s in range(steps)], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("schedule", [FIG4A, PAPER_FIG4A], ids=["1000-steps", "10000-steps"])
def test_a_gap_exactly_inverse_log_of_flow_time_gives_alpha_one(tmp_path, schedule):
    """gap = 1/log(flow time) under the fig4a warmup + cosine schedules: α = 1. Against the step
    count the same curve gave 0.89 (1,000 steps) and 1.37 (10,000 steps)."""
    study = write_study(tmp_path / "r", schedule, gap=lambda seed, t: inverse_log(t, 1.0, 1 + 0.1 * seed))
    alpha, _ = noted_alpha(study)
    assert alpha == pytest.approx(1.0, abs=0.005)
    (rate,) = rates.gap_rates(study)
    assert rate["alpha"] == pytest.approx(1.0, abs=1e-6) and rate["alpha_se"] < 1e-6
    assert rate["points"] >= rates.MIN_POINTS and rate["gap_column"] == "modality_gap"
    assert "flow time (cumulative learning rate in steps at the peak rate)" in rates.fit_notes([study])[0]


def test_flow_time_follows_the_trainers_lr_and_refuses_a_schedule_it_cannot_rebuild(tmp_path):
    steps, warmup, _, lr = FIG4A
    study = write_study(tmp_path / "r", FIG4A)
    run = study.history.filter(seed=0).sort("step")
    config = {"train": {"steps": steps, "lr": lr, "warmup_steps": warmup}, "temperature": {"kind": "learned"}}
    t, why = rates.flow_time(run, config)
    assert why == "" and t == pytest.approx(flow(steps, warmup)[run["step"].to_numpy()], rel=1e-12)
    # The same logged rates under a configuration that disagrees with them: no flow time, so no α.
    t, why = rates.flow_time(run, {**config, "train": {**config["train"], "warmup_steps": 100}})
    assert t is None and "schedule" in why
    constant = write_study(tmp_path / "c", FIG4A, lr_logged=lambda step: lr)
    assert rates.gap_rates(constant) == []
    assert "does not match the logged rate" in rates.fit_notes([constant])[0]


def test_warmup_in_epochs_is_rebuilt_from_the_epoch_count(tmp_path):
    """A COCO-style trial: epochs and warmup_epochs, 16 steps per epoch, the last step the last evaluation."""
    study = write_study(tmp_path / "r", (480, 80, 16, 0.001))
    run = study.history.filter(seed=0).sort("step")
    config = {"train": {"steps": None, "epochs": 30, "lr": 0.001, "warmup_epochs": 5}, "temperature": {"kind": "learned"}}
    t, why = rates.flow_time(run, config)
    assert why == "" and t == pytest.approx(flow(480, 80)[run["step"].to_numpy()], rel=1e-12)


@pytest.mark.parametrize("floor", ["added", "in quadrature"])
def test_the_corrected_gap_removes_the_finite_sample_floor(tmp_path, floor):
    """A measured gap with a floor of 0.05 (the uncorrected centroid distance) flattens the late
    curve: α ≈ 0.80 added, 0.94 in quadrature. The bias-corrected column has no floor: α = 1."""
    true = lambda seed, t: inverse_log(t)  # noqa: E731
    measured = (lambda s, t: true(s, t) + 0.05) if floor == "added" else (lambda s, t: np.hypot(true(s, t), 0.05))
    plain = write_study(tmp_path / "plain", FIG4A, gap=measured)
    assert noted_alpha(plain)[0] < 0.97 and "modality_gap (uncorrected" in rates.fit_notes([plain])[0]
    study = write_study(tmp_path / "corrected", FIG4A, gap=measured, corrected=true)
    assert noted_alpha(study)[0] == pytest.approx(1.0, abs=0.005)
    (rate,) = rates.gap_rates(study)
    assert rate["gap_column"] == rates.CORRECTED and rate["alpha"] == pytest.approx(1.0, abs=1e-6)
    assert f"gap: {rates.CORRECTED}" in rates.fit_notes([study])[0]


@pytest.mark.parametrize("kind", ["fixed", "schedule", "cosine", "softplus"])
def test_a_temperature_without_a_predicted_rate_gets_no_alpha(tmp_path, kind):
    """`make run`'s fixed-temperature study printed α = 6.84 ± 0.51 over t ∈ [100, 300] (3 points)."""
    study = write_study(tmp_path / "r", FIG4A, kind=kind)
    assert rates.gap_rates(study) == [] and math.isnan(noted_alpha(study)[0])
    (note,) = rates.fit_notes([study])
    assert note.startswith(f"rate: no gap rate for a: temperature {kind}")
    assert len(rates.gap_rates(write_study(tmp_path / "k", FIG4A, kind="exp_k"))) == 1  # exp(θ/k): SLRT under Adam


def test_a_trial_without_a_recorded_temperature_gets_no_alpha(tmp_path):
    folder = results.ResultsFolder(tmp_path / "r")
    folder.append(results.TRIALS, [results.trial_row("a", 0, {}, {}, "completed", {"modality_gap": 0.1, "mean_r1": 0.5})])
    folder.append(
        results.HISTORY,
        [{"trial_id": "a", "seed": 0, "step": s, "modality_gap": 1 / math.log(s), "mean_r1": 0.5} for s in range(10, 10001, 10)],
    )
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))
    study = report.load_study(tmp_path / "r")
    assert rates.gap_rates(study) == [] and rates.fit_notes([study]) == [
        "rate: no gap rate for a: temperature not recorded: the theory predicts the rate only for a learned τ = exp(θ)"
    ]


def test_too_few_points_in_the_window_give_no_alpha(tmp_path):
    """`make run`'s schedule, 300 steps evaluated every 100: 3 points in the window, no α; every 25: enough."""
    sparse = write_study(tmp_path / "sparse", (300, 20, 100, 0.002))
    assert rates.gap_rates(sparse) == [] and math.isnan(noted_alpha(sparse)[0])
    assert f"fewer than {rates.MIN_POINTS} evaluation points" in rates.fit_notes([sparse])[0]
    # A seed without the schedule's record is left out, and the line says so.
    mixed = write_study(tmp_path / "mixed", FIG4A)
    mixed.trials = mixed.trials.with_columns(config=pl.when(pl.col("seed") == 1).then(pl.lit("{}")).otherwise(pl.col("config")))
    (rate,) = rates.gap_rates(mixed)
    assert len(rate["alpha_per_seed"]) == 2 and rate["seeds_left_out"] == {1: "no training configuration recorded"}
    assert rates.fit_notes([mixed])[0].endswith("; seed 1 left out: no training configuration recorded")
    dense = write_study(tmp_path / "dense", (300, 20, 25, 0.002))
    (rate,) = rates.gap_rates(dense)
    assert rate["points"] >= rates.MIN_POINTS and rate["alpha"] == pytest.approx(1.0, abs=1e-6)


def test_the_uncertainty_is_the_standard_error_over_seeds(tmp_path):
    """Each seed's curve is an exact power (the regression's own ± is 0); the seeds disagree, and
    the ± is their standard error, std / √3."""
    per_seed = [0.8, 1.0, 1.3]
    study = write_study(tmp_path / "r", FIG4A, gap=lambda seed, t: inverse_log(t, per_seed[seed], 2.0))
    (rate,) = rates.gap_rates(study)
    expected_se = np.std(per_seed, ddof=1) / math.sqrt(3)
    assert rate["alpha_per_seed"] == pytest.approx(per_seed, abs=1e-9)
    assert rate["alpha"] == pytest.approx(np.mean(per_seed), abs=1e-9) and rate["alpha_se"] == pytest.approx(expected_se, rel=1e-9)
    alpha, se = noted_alpha(study)
    assert se == pytest.approx(expected_se, rel=0.05) and alpha == pytest.approx(np.mean(per_seed), abs=0.005)
    assert "mean ± standard error over 3 seeds; per seed 0.8, 1, 1.3" in rates.fit_notes([study])[0]
    (one,) = rates.gap_rates(write_study(tmp_path / "one", FIG4A, seeds=(0,)))
    assert math.isnan(one["alpha_se"])
    assert "one seed: no uncertainty over seeds" in rates.fit_notes([write_study(tmp_path / "one2", FIG4A, seeds=(0,))])[0]


def test_a_theory_trial_is_fitted_against_its_simulated_time(tmp_path):
    folder = results.ResultsFolder(tmp_path / "r")
    config = {
        "theory": {"n": 8, "d": 16, "time": 1000.0},
        "train": {"steps": 300, "lr": 0.001, "warmup_steps": 20},
        "temperature": {"kind": "learned"},
    }
    folder.append(results.TRIALS, [results.trial_row("a", 0, {}, config, "completed", {"modality_gap": 0.1, "mean_r1": 0.5})])
    t = np.geomspace(1, 1000, 40)
    folder.append(
        results.HISTORY,
        [
            {"trial_id": "a", "seed": 0, "step": i, "time": float(v), "modality_gap": float(g), "mean_r1": 0.5}
            for i, (v, g) in enumerate(zip(t, inverse_log(t, 1.1, 0.5)))
        ],
    )
    folder.write_text(results.SPEC, yaml.safe_dump(SPEC))
    study = report.load_study(tmp_path / "r")
    (rate,) = rates.gap_rates(study)
    assert rate["alpha"] == pytest.approx(1.1, abs=1e-9) and rate["theory"]
    assert "t the simulated time" in rates.fit_notes([study])[0] and "no sampling floor" in rates.fit_notes([study])[0]


def test_the_report_draws_the_rate_and_states_it(tmp_path):
    """`raygap report` on a fitted study: the gap_rate figure and a Fits line with the seeds' α; on
    a fixed-temperature one, neither, and a line saying why."""
    from raygap.cli import main

    write_study(tmp_path / "learned", FIG4A, gap=lambda seed, t: inverse_log(t, 1.0, 1 + 0.1 * seed))
    assert main(["report", str(tmp_path / "learned")]) == 0
    out = tmp_path / "learned" / "report"
    assert (out / "gap_rate.png").stat().st_size > 0
    markdown = (out / "report.md").read_text()
    assert re.search(r"rate a: gap ∝ \(log t\)\^−α, α = 1 ± [0-9.e-]+ \(mean ± standard error over 3 seeds", markdown), markdown
    write_study(tmp_path / "fixed", (300, 20, 100, 0.002), kind="fixed")
    assert main(["report", str(tmp_path / "fixed")]) == 0
    out = tmp_path / "fixed" / "report"
    assert not (out / "gap_rate.png").exists() and "α =" not in (out / "report.md").read_text()
    assert "rate: no gap rate for a: temperature fixed" in (out / "report.md").read_text()
