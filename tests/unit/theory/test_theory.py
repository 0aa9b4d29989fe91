"""The paper's gradient-flow claims, reproduced by raygap.theory.simulation (run with -s to see the fits)."""

import itertools
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from raygap.clip.loss import Clip
from raygap.clip.metrics import modality_gap, pair_margins
from raygap.clip.temperature import build_temperature
from raygap.config import TheorySpec
from raygap.config.distributions import parse_distribution
from raygap.report import log_power_fit
from raygap.theory.simulation import _Flow, _initial_state, _row, embed, simulate

BASE = dict(n=8, d=16, delta=0.5)


def line_fit(xs, ys) -> tuple[float, float]:
    """Least-squares slope and R² of ys against xs."""
    x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    design = torch.stack([x, torch.ones_like(x)], 1)
    coef = torch.linalg.lstsq(design, y[:, None]).solution[:, 0]
    residual = y - design @ coef
    return float(coef[0]), float(1 - (residual**2).sum() / ((y - y.mean()) ** 2).sum())


def test_matched_embeddings_have_gap_two_delta():
    s = torch.eye(3, dtype=torch.float64)
    x, y = embed(s, s, torch.tensor(0.3, dtype=torch.float64))
    assert torch.allclose(x.norm(dim=1), torch.ones(3, dtype=torch.float64))
    assert float((x.mean(0) - y.mean(0)).norm()) == pytest.approx(0.6)


KINDS = [
    {"kind": "learned", "init": 0.3},
    {"kind": "learned", "init": 0.3, "lr_scale": 3.0},
    {"kind": "exp_k", "init": 0.3, "k": 4},
    {"kind": "softplus", "init": 0.3},
    {"kind": "fixed", "value": 0.3},
    {"kind": "schedule", "start": 0.5, "end": 0.1},
]


@pytest.mark.parametrize("temperature", KINDS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_flow_is_minus_the_gradient_of_the_clip_loss(temperature):
    """The simulator's hand-written velocity against autograd through raygap.clip.loss.Clip."""
    cfg = TheorySpec(init="random", n=5, d=7, seed=3)
    s, t = _initial_state(cfg)
    strategy = build_temperature(temperature, total_steps=10)
    strategy.double()
    flow = _Flow(strategy, dt=0.5, n=5, m=6)
    velocity = flow(flow.pack(s.numpy(), t.numpy(), 0.4, [float(p.detach()) for p in flow.params]), time=1.3)
    shared = [s.clone().requires_grad_(True), t.clone().requires_grad_(True)]
    delta = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    loss = Clip()(*embed(*shared, delta), strategy.tau(1.3 / 0.5).to(torch.float64))
    grads = torch.autograd.grad(loss, [*shared, delta, *strategy.parameters()])
    tangent = [g - (g * u).sum(1, keepdim=True) * u for g, u in zip(grads[:2], (s, t))]
    expected = flow.pack(-tangent[0].numpy(), -tangent[1].numpy(), -float(grads[2]), [-strategy.lr_scale * float(g) for g in grads[3:]])
    assert np.abs(velocity - expected).max() < 1e-12


def test_history_rows_are_the_clip_metrics():
    """Rows are computed in numpy; they agree with raygap.clip's loss, gap and margin."""
    cfg = TheorySpec(init="random", n=6, d=9, seed=1)
    s, t = _initial_state(cfg)
    strategy = build_temperature({"kind": "learned", "init": 0.2}, total_steps=10)
    strategy.double()
    flow = _Flow(strategy, dt=0.1, n=6, m=8)
    row = _row(flow, flow.pack(s.numpy(), t.numpy(), 0.35, [float(p.detach()) for p in flow.params]), step=3)
    x, y = embed(s, t, torch.tensor(0.35, dtype=torch.float64))
    assert row["time"] == pytest.approx(0.3) and row["tau"] == pytest.approx(5.0) and row["delta"] == 0.35
    assert row["loss"] == pytest.approx(float(Clip()(x, y, torch.tensor(row["tau"], dtype=torch.float64))), rel=1e-12)
    assert row["modality_gap"] == pytest.approx(modality_gap(x, y), rel=1e-12)
    assert row["margin"] == pytest.approx(float(pair_margins(x, y).min()), rel=1e-12)


def test_adaptive_steps_converge_as_the_tolerance_tightens():
    """Dormand–Prince steps under error control: the gap at t = 10 approaches a tight-tolerance run
    as the tolerance shrinks, and matched shared parts stay equal (the gap is exactly 2δ)."""
    run = {
        tol: simulate(TheorySpec(time=10, dt=0.25, records=5, tolerance=tol, **BASE), {"kind": "learned", "init": 0.5})[-1]
        for tol in (1e-3, 1e-5, 1e-7, 1e-11)
    }
    errors = {tol: abs(row["modality_gap"] / run[1e-11]["modality_gap"] - 1) for tol, row in run.items() if tol != 1e-11}
    print(
        "\ngap at t=10 relative to tolerance 1e-11, by tolerance: "
        + ", ".join(f"{tol:.0e} → {err:.1e} ({run[tol]['solver_steps']} steps)" for tol, err in errors.items())
    )
    assert errors[1e-3] > errors[1e-5] > errors[1e-7] and errors[1e-7] < 1e-6
    fixed = simulate(TheorySpec(time=100, dt=0.5, records=5, **BASE), {"kind": "fixed", "value": 0.5})
    assert fixed[-1]["modality_gap"] < 1e-60 and all(r["modality_gap"] == pytest.approx(2 * r["delta"], rel=1e-12) for r in fixed)


def test_claim1_learned_temperature_gap_falls_like_a_power_of_log_t():
    """Over t ∈ [100, 1000] the gap follows (log t)^−α with α ≈ 1.09, neither 1/log t nor 1/log² t.

    α is the least-squares slope of log gap on log log t, ± its standard error; the 3-SE interval
    excludes both 1 and 2, and the two halves of the window give exponents further apart than their
    errors allow: the local exponent grows. Why: the flow conserves δ·exp(−δ²/2)·τ² exactly (the
    entries of ∂L/∂logits sum to zero, so dδ/dτ = −2δ / (τ(1 − δ²))), so gap = 2δ ∝ τ⁻² as δ → 0,
    and over this window τ grows more slowly than log t (τ/log t falls)."""
    history = pl.DataFrame(simulate(TheorySpec(time=1000, dt=0.25, records=80, **BASE), {"kind": "learned", "init": 0.5}))
    late_half = history.filter(pl.col("time") >= 1000**0.5)  # the late half of log t
    conserved = (late_half["delta"] * (-(late_half["delta"] ** 2) / 2).exp() * late_half["tau"] ** 2).to_numpy()
    drift = conserved.max() / conserved.min() - 1

    fit = log_power_fit(history, late_fraction=1 / 3)  # t ∈ [100, 1000]
    window = history.filter(pl.col("time") >= fit["t_min"])
    middle = math.sqrt(fit["t_min"] * fit["t_max"])
    halves = [log_power_fit(window.filter(keep), late_fraction=1.0) for keep in (pl.col("time") < middle, pl.col("time") >= middle)]
    low, high = fit["alpha"] - 3 * fit["alpha_se"], fit["alpha"] + 3 * fit["alpha_se"]
    t, gap = window["time"].to_numpy(), window["modality_gap"].to_numpy()

    def misfit(alpha: float) -> float:
        """Largest relative distance of the gap from A·(log t)^−alpha with the best A (least squares in log)."""
        shape = np.log(t) ** -alpha
        return float(np.abs(gap / (np.exp(np.mean(np.log(gap / shape))) * shape) - 1).max())

    tau_per_log_t = window["tau"].to_numpy() / np.log(t)
    print(
        f"\nclaim 1: δ·exp(−δ²/2)·τ² over t ∈ [{late_half['time'][0]:.3g}, 1000]: {conserved[0]:.9f}, relative drift {drift:.1e}\n"
        f"  gap ∝ (log t)^−α over t ∈ [{fit['t_min']:.4g}, {fit['t_max']:.4g}] ({fit['points']} points): "
        f"α = {fit['alpha']:.4f} ± {fit['alpha_se']:.4f} "
        f"(slope's standard error), R² {fit['r2']:.6f}; 3-SE interval [{low:.3f}, {high:.3f}]\n"
        f"  halves: α = {halves[0]['alpha']:.4f} ± {halves[0]['alpha_se']:.4f} over [{halves[0]['t_min']:.4g}, {halves[0]['t_max']:.4g}], "
        f"{halves[1]['alpha']:.4f} ± {halves[1]['alpha_se']:.4f} over [{halves[1]['t_min']:.4g}, {halves[1]['t_max']:.4g}]\n"
        f"  largest relative misfit: fitted α {misfit(fit['alpha']):.2%}, α = 1 {misfit(1):.2%}, α = 2 {misfit(2):.2%}; "
        f"τ/log t {tau_per_log_t[0]:.3f} → {tau_per_log_t[-1]:.3f}"
    )
    assert drift < 1e-9
    assert 1.0 < fit["alpha"] < 1.2 and fit["alpha_se"] < 0.01 and fit["r2"] > 0.999
    assert not low <= 2 <= high and misfit(2) > 0.1  # 1/log² t is rejected, by far
    assert not low <= 1 <= high and misfit(1) > 2 * misfit(fit["alpha"])  # and so is 1/log t
    assert halves[1]["alpha"] - halves[0]["alpha"] > 3 * (halves[0]["alpha_se"] + halves[1]["alpha_se"])  # α grows with t
    assert all(b < a for a, b in zip(tau_per_log_t, tau_per_log_t[1:]))  # τ grows more slowly than log t here


def test_claim2_fixed_temperature_closes_the_gap_geometrically_and_faster():
    fixed = simulate(TheorySpec(time=10, dt=0.05, records=60, **BASE), {"kind": "fixed", "value": 0.5})
    learned = simulate(TheorySpec(time=10, dt=0.05, records=60, **BASE), {"kind": "learned", "init": 0.5})
    late = [r for r in fixed if r["time"] >= 2]
    rate, r2 = line_fit([r["time"] for r in late], [math.log(r["modality_gap"]) for r in late])
    print(
        f"\nclaim 2: log gap vs t (fixed T=0.5, t∈[2, 10]): rate {rate:.3f} per unit time, R² {r2:.6f}; "
        f"gap at t=10: fixed {fixed[-1]['modality_gap']:.2e}, learned {learned[-1]['modality_gap']:.2e}"
    )
    assert r2 > 0.999 and rate < 0
    assert fixed[-1]["modality_gap"] < 1e-3 * learned[-1]["modality_gap"]


@pytest.mark.parametrize(
    "temperature", [{"kind": "exp_k", "init": 0.5, "k": 4}, {"kind": "schedule", "start": 0.5, "end": 0.1}], ids=["exp_k", "schedule"]
)
def test_claim3_slower_temperature_growth_closes_the_gap_faster(temperature):
    run = simulate(TheorySpec(time=200, dt=1.0, records=10, **BASE), temperature)
    learned = simulate(TheorySpec(time=200, dt=1.0, records=10, **BASE), {"kind": "learned", "init": 0.5})
    print(
        f"\nclaim 3 ({temperature['kind']}): gap at t=200 {run[-1]['modality_gap']:.2e} vs learned exp(θ) {learned[-1]['modality_gap']:.2e}"
    )
    assert run[-1]["modality_gap"] < 0.1 * learned[-1]["modality_gap"]


@pytest.mark.parametrize("d", [4, 16, 64])
def test_claim4_mismatched_pairs_enlarge_the_gap_early_more_for_larger_tau(d):
    # d gap/dt at t = 0, as the mean rate over the first 10 steps of 5e-4 (a 0.05 window already
    # bends at d = 4, τ₀ = 100: the gap's growth saturates within it).
    growth = {}
    for temperature0 in (0.1, 0.03, 0.01):
        rates = []
        for seed in range(100):
            config = TheorySpec(
                init="random",
                n=8,
                d=d,
                delta=0.3,
                time=0.005,
                dt=0.0005,
                records=2,
                seed=seed,
            )
            history = simulate(config, {"kind": "learned", "init": temperature0})
            rates.append((history[-1]["modality_gap"] - history[0]["modality_gap"]) / history[-1]["time"])
        rates = torch.tensor(rates)
        growth[1 / temperature0] = (float((rates > 0).double().mean()), float(rates.mean()))
    print(
        f"\nclaim 4 (random init, 100 draws, n=8, d={d}): τ₀ → (fraction with d gap/dt > 0 at t=0, mean d gap/dt): "
        + ", ".join(f"{tau:.0f} → ({frac:.2f}, {mean:.2f})" for tau, (frac, mean) in growth.items())
    )
    fractions = [frac for frac, _ in growth.values()]
    means = [mean for _, mean in growth.values()]
    assert min(fractions) >= 0.95
    assert means[0] < means[1] < means[2]


def test_random_pairs_match_and_the_gap_shrinks_later():
    history = simulate(TheorySpec(init="random", n=8, d=16, delta=0.3, time=40, dt=0.05, records=40), {"kind": "learned", "init": 0.1})
    peak = max(history, key=lambda r: r["modality_gap"])
    print(
        f"\nrandom init: gap {history[0]['modality_gap']:.3f} → peak {peak['modality_gap']:.3f} at t={peak['time']:.2f} "
        f"→ {history[-1]['modality_gap']:.3f}; "
        f"margin {history[0]['margin']:.3f} → {history[-1]['margin']:.3f}"
    )
    assert history[0]["margin"] < 0 < history[-1]["margin"]  # pairs become matched
    assert history[-1]["modality_gap"] < peak["modality_gap"]


def test_theory_trial_through_raygap_train(tmp_path):
    import polars as pl

    from raygap.cli import main

    spec = tmp_path / "theory.yaml"
    spec.write_text("theory: {n: 4, d: 8, time: 2, dt: 0.05, records: 10}\ntemperature: {kind: fixed, value: 0.5}\n")
    assert main(["train", str(spec), "--quiet", "--results", str(tmp_path / "out")]) == 0
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    history = pl.read_parquet(tmp_path / "out" / "history.parquet")
    row = trials.row(0, named=True)
    assert row["status"] == "completed" and row["modality_gap"] == pytest.approx(2 * row["delta"], rel=1e-9)
    assert history["time"].to_list()[0] == 0 and history["time"].to_list()[-1] == pytest.approx(2.0)
    assert history["modality_gap"].to_list() == sorted(history["modality_gap"].to_list(), reverse=True)


# ------------------------------------------------------------------ step sizes of the study files
STUDIES = sorted((Path(__file__).resolve().parents[3] / "studies").glob("theory-*.yaml"))
SHRUNK_TIME = {"theory-learned": 100, "theory-fixed": 20, "theory-mismatch": 2, "theory-search": 10}


def corners(node) -> list:
    """Every setting a study file's search leaves can take at their extremes: each grid or choice
    value, both ends of a range (recursively)."""
    distribution = parse_distribution(node, "test")
    if distribution is not None:
        return [c for value in distribution.candidates() for c in corners(value)]
    if isinstance(node, dict):
        return [dict(zip(node, values)) for values in itertools.product(*(corners(v) for v in node.values()))]
    return [node]


@pytest.mark.parametrize("study", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_step_sizes_are_small_enough(study):
    """Every recorded gap of each study's settings (each corner of its search space, seed 0) is
    within 2% of the same run with every step 8× smaller; shrunk in time, with the file's dt."""
    raw = yaml.safe_load(study.read_text())
    theory = {**raw["theory"], "time": SHRUNK_TIME[study.stem]}
    worst = []
    for temperature in corners(raw["temperature"]):
        runs = [simulate(TheorySpec(**theory), temperature, substeps=substeps) for substeps in (1, 8)]
        deviation = max(
            abs(a["modality_gap"] / b["modality_gap"] - 1) if a["modality_gap"] != b["modality_gap"] else 0.0 for a, b in zip(*runs)
        )
        worst.append((deviation, temperature, runs[0][-1]["solver_steps"]))
    print(
        f"\n{study.stem} (t ≤ {theory['time']}, dt {theory['dt']}): largest relative deviation from steps 8× smaller "
        + ", ".join(f"{d:.1e} ({'/'.join(str(v) for v in temp.values())}, {n} steps)" for d, temp, n in worst)
    )
    assert worst and max(d for d, _, _ in worst) < 0.02
