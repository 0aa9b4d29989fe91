"""The paper's gradient-flow claims, reproduced by raygap.theory (run with -s to see the fits)."""

import math

import pytest
import torch

from raygap.theory import TheoryConfig, embed, simulate

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


def test_euler_steps_converge_at_first_order():
    """Halving the step halves the change in the result: the steps follow the gradient flow."""
    gaps = []
    for dt in (0.1, 0.05, 0.025):
        history = simulate(TheoryConfig(temperature={"kind": "learned", "init": 0.5}, time=50, dt=dt, records=5, **BASE))
        gaps.append(history[-1]["modality_gap"])
    first, second = gaps[1] - gaps[0], gaps[2] - gaps[1]
    print(f"\ngap at t=50 for dt 0.1/0.05/0.025: {gaps}; successive changes {first:.2e}, {second:.2e}")
    assert second / first == pytest.approx(0.5, abs=0.1)
    assert abs(second) < 0.1 * gaps[2]  # at dt=0.025 the remaining error is about one more such change


def test_claim1_learned_temperature_closes_the_gap_like_one_over_log_t():
    history = simulate(TheoryConfig(temperature={"kind": "learned", "init": 0.5}, time=1000, dt=0.25, records=80, **BASE))
    late = [r for r in history if r["time"] >= 100]
    slope, r2 = line_fit([1 / math.log(r["time"]) for r in late], [r["modality_gap"] for r in late])
    log_tau = [math.log(r["tau"]) for r in late]
    print(f"\nclaim 1: gap vs 1/log t over t∈[100, 1000]: slope {slope:.3f}, R² {r2:.5f}; log τ {log_tau[0]:.2f} → {log_tau[-1]:.2f}")
    assert r2 > 0.999 and slope > 0
    assert all(b > a for a, b in zip(log_tau, log_tau[1:]))  # τ keeps growing


def test_claim2_fixed_temperature_closes_the_gap_geometrically_and_faster():
    fixed = simulate(TheoryConfig(temperature={"kind": "fixed", "value": 0.5}, time=10, dt=0.01, records=60, **BASE))
    learned = simulate(TheoryConfig(temperature={"kind": "learned", "init": 0.5}, time=10, dt=0.01, records=60, **BASE))
    late = [r for r in fixed if r["time"] >= 2]
    rate, r2 = line_fit([r["time"] for r in late], [math.log(r["modality_gap"]) for r in late])
    print(f"\nclaim 2: log gap vs t (fixed T=0.5, t∈[2, 10]): rate {rate:.3f} per unit time, R² {r2:.6f}; "
          f"gap at t=10: fixed {fixed[-1]['modality_gap']:.2e}, learned {learned[-1]['modality_gap']:.2e}")
    assert r2 > 0.999 and rate < 0
    assert fixed[-1]["modality_gap"] < 1e-3 * learned[-1]["modality_gap"]


@pytest.mark.parametrize("temperature", [{"kind": "exp_k", "init": 0.5, "k": 4}, {"kind": "schedule", "start": 0.5, "end": 0.1}], ids=["exp_k", "schedule"])
def test_claim3_slower_temperature_growth_closes_the_gap_faster(temperature):
    run = simulate(TheoryConfig(temperature=temperature, time=200, dt=0.1, records=10, **BASE))
    learned = simulate(TheoryConfig(temperature={"kind": "learned", "init": 0.5}, time=200, dt=0.1, records=10, **BASE))
    print(f"\nclaim 3 ({temperature['kind']}): gap at t=200 {run[-1]['modality_gap']:.2e} vs learned exp(θ) {learned[-1]['modality_gap']:.2e}")
    assert run[-1]["modality_gap"] < 0.1 * learned[-1]["modality_gap"]


@pytest.mark.parametrize("d", [4, 16, 64])
def test_claim4_mismatched_pairs_enlarge_the_gap_early_more_for_larger_tau(d):
    # d gap/dt at t = 0, as the mean rate over the first 10 steps of 5e-4 (a 0.05 window already
    # bends at d = 4, τ₀ = 100: the gap's growth saturates within it).
    growth = {}
    for temperature0 in (0.1, 0.03, 0.01):
        rates = []
        for seed in range(100):
            config = TheoryConfig(temperature={"kind": "learned", "init": temperature0}, init="random", n=8, d=d, delta=0.3, time=0.005, dt=0.0005, records=2, seed=seed)
            history = simulate(config)
            rates.append((history[-1]["modality_gap"] - history[0]["modality_gap"]) / history[-1]["time"])
        rates = torch.tensor(rates)
        growth[1 / temperature0] = (float((rates > 0).double().mean()), float(rates.mean()))
    print(f"\nclaim 4 (random init, 100 draws, n=8, d={d}): τ₀ → (fraction with d gap/dt > 0 at t=0, mean d gap/dt): "
          + ", ".join(f"{tau:.0f} → ({frac:.2f}, {mean:.2f})" for tau, (frac, mean) in growth.items()))
    fractions = [frac for frac, _ in growth.values()]
    means = [mean for _, mean in growth.values()]
    assert min(fractions) >= 0.95
    assert means[0] < means[1] < means[2]


def test_random_pairs_match_and_the_gap_shrinks_later():
    history = simulate(TheoryConfig(temperature={"kind": "learned", "init": 0.1}, init="random", n=8, d=16, delta=0.3, time=40, dt=0.01, records=40))
    peak = max(history, key=lambda r: r["modality_gap"])
    print(f"\nrandom init: gap {history[0]['modality_gap']:.3f} → peak {peak['modality_gap']:.3f} at t={peak['time']:.2f} → {history[-1]['modality_gap']:.3f}; "
          f"margin {history[0]['margin']:.3f} → {history[-1]['margin']:.3f}")
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


def test_theory_study_through_the_engine(tmp_path):
    import polars as pl

    from raygap.study import run_study
    from raygap.config import load_spec

    spec_file = tmp_path / "theory-study.yaml"
    spec_file.write_text(
        "theory: {n: 4, d: 8, time: 2, dt: 0.05, records: 5}\n"
        "temperature: {kind: fixed, value: {grid: [0.2, 1.0]}}\n"
        "search: {sampler: grid, repeats: 2, objectives: {modality_gap: min, margin: max}}\n"
    )
    summary = run_study(load_spec(spec_file), tmp_path / "out", dashboard=False)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert trials.height == 4 and set(trials["status"]) == {"completed"}
    assert sorted(set(trials["param.temperature.value"])) == [0.2, 1.0]
    assert summary.height == 2 and summary["seeds"].to_list() == [2, 2]
