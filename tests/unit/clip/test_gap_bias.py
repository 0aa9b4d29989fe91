"""The gap's finite-sample bias, its interval, and degenerate models flagged wherever a front is shown."""

import math

import polars as pl
import pytest
import torch

from raygap import catalog, pareto
from raygap.cli.console import format_front
from raygap.clip import finite_sample, metrics
from raygap.report.comparison import method_table
from raygap.report.studies import Study, front_trial_ids


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=1, keepdim=True)


def test_corrected_gap_hand_values():
    e = torch.eye(2, dtype=torch.float64)
    # Every pair offset by the same e1 − e2: no spread, so nothing to correct: √2 and a point interval.
    got = finite_sample.corrected_gap(e[[0, 0, 0]], e[[1, 1, 1]])
    assert got == pytest.approx(
        {"modality_gap_corrected": math.sqrt(2), "modality_gap_low": math.sqrt(2), "modality_gap_high": math.sqrt(2)}
    )
    # d = (1, −1) and (−1, 1): mean 0, tr(S_d) = (2 + 2)/1 = 4, so 0 − 4/2 = −2 → −√2 (no gap detectable).
    got = finite_sample.corrected_gap(e[[0, 1]], e[[1, 0]])
    assert metrics.modality_gap(e[[0, 1]], e[[1, 0]]) == 0.0
    assert got["modality_gap_corrected"] == pytest.approx(-math.sqrt(2))


def noisy_pairs(n: int, dim: int, offset: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Matched pairs around shared directions; the images shifted by `offset` along one axis."""
    shared = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    shift = torch.zeros(dim, dtype=torch.float64)
    shift[0] = offset
    x = unit(shared + 0.3 * torch.randn(n, dim, generator=generator, dtype=torch.float64) + shift)
    y = unit(shared + 0.3 * torch.randn(n, dim, generator=generator, dtype=torch.float64) - shift)
    return x, y


def test_a_healthy_model_without_a_gap_measures_a_floor_that_the_correction_removes():
    generator = torch.Generator().manual_seed(0)
    plain, corrected = [], []
    for _ in range(40):
        x, y = noisy_pairs(512, 64, 0.0, generator)
        plain.append(metrics.modality_gap(x, y))
        estimate = finite_sample.corrected_gap(x, y)
        corrected.append(estimate["modality_gap_corrected"])
        assert estimate["modality_gap_low"] <= estimate["modality_gap_corrected"] <= estimate["modality_gap_high"]
    # The plain gap sits at √(tr Σ_d / n) ≈ 0.02, never near the true 0; the corrected squares average 0.
    assert min(plain) > 0.01
    squares = torch.tensor(corrected).sign() * torch.tensor(corrected) ** 2
    assert abs(float(squares.mean())) < 3 * float(squares.std()) / math.sqrt(len(squares))


def test_the_corrected_square_is_unbiased_against_a_large_sample_reference():
    generator = torch.Generator().manual_seed(1)
    x, y = noisy_pairs(200_000, 16, 0.05, generator)  # the reference: the true squared gap
    truth = float(((x - y).mean(0) ** 2).sum())
    draws, covered = [], 0
    for _ in range(60):
        xs, ys = noisy_pairs(128, 16, 0.05, generator)
        estimate = finite_sample.corrected_gap(xs, ys)
        value = estimate["modality_gap_corrected"]
        draws.append(math.copysign(value * value, value))
        covered += estimate["modality_gap_low"] <= math.sqrt(truth) <= estimate["modality_gap_high"]
    mean = sum(draws) / len(draws)
    spread = float(torch.tensor(draws).std()) / math.sqrt(len(draws))
    assert abs(mean - truth) < 3 * spread
    plain = [metrics.modality_gap(*noisy_pairs(128, 16, 0.05, generator)) ** 2 for _ in range(20)]
    assert sum(plain) / len(plain) > truth + 3 * spread  # the plain square is biased upwards
    assert covered >= 48  # a 95 % interval covers the truth in most draws (80 % here)


def test_corrected_gap_of_undefined_features_is_nan():
    x = torch.randn(5, 4, dtype=torch.float64)
    assert all(math.isnan(v) for v in finite_sample.corrected_gap(x[:1], x[1:2]).values())
    broken = x.clone()
    broken[2, 0] = math.nan
    assert all(math.isnan(v) for v in finite_sample.corrected_gap(broken, x).values())


def test_degenerate_models():
    assert finite_sample.chance_r1(torch.tensor([1, 1, 1, 1])) == pytest.approx(0.25)
    assert finite_sample.chance_r1(torch.tensor([2, 2])) == pytest.approx((2 / 4 + 1 / 2) / 2)
    chance = 1 / 100
    # Collapsed embeddings, whatever the recall.
    assert finite_sample.degenerate(-math.sqrt(2) + 1e-4, 0.9, chance, 100) == 1.0
    assert finite_sample.degenerate(math.nan, 0.9, chance, 100) == 1.0
    # Retrieval at chance: within 3 standard errors (0.03 here) of 0.01.
    assert finite_sample.degenerate(-1.1, 0.03, chance, 100) == 1.0
    assert finite_sample.degenerate(-1.1, 0.2, chance, 100) == 0.0
    # Through the evaluator's numbers: collapsed features are degenerate, healthy ones are not.
    collapsed = torch.ones(100, 8)
    recall = metrics.recall_at_k(collapsed, collapsed, torch.arange(100))
    mean_r1 = (recall["image_to_text_r1"] + recall["text_to_image_r1"]) / 2
    assert finite_sample.degenerate(metrics.uniformity(collapsed, collapsed), mean_r1, chance, 100) == 1.0
    x, y = noisy_pairs(100, 32, 0.0, torch.Generator().manual_seed(2))
    recall = metrics.recall_at_k(x, y, torch.arange(100))
    mean_r1 = (recall["image_to_text_r1"] + recall["text_to_image_r1"]) / 2
    assert finite_sample.degenerate(metrics.uniformity(x, y), mean_r1, chance, 100) == 0.0


def seeds_frame() -> pl.DataFrame:
    # Trial c collapsed: gap 0 and recall at chance sit on the front; a and b are healthy.
    rows = []
    for trial, gap, r1, uniformity, degenerate in (("a", 0.3, 0.6, -1.1, 0.0), ("b", 0.1, 0.4, -1.0, 0.0), ("c", 0.0, 0.01, -1.414, 1.0)):
        for seed in (0, 1):
            rows.append(
                {
                    "trial_id": trial,
                    "seed": seed,
                    "status": "completed",
                    "param.temperature.value": 0.01,
                    "modality_gap": gap + seed * 1e-3,
                    "mean_r1": r1,
                    "uniformity": uniformity,
                    "degenerate": degenerate,
                }
            )
    return pl.DataFrame(rows)


def test_a_collapsed_model_on_the_front_is_flagged_and_never_best():
    objectives = {"modality_gap": "min", "mean_r1": "max"}
    summary = pareto.summarize_trials(seeds_frame(), objectives, catalog.SUMMARIZED)
    assert summary.filter(pl.col("rank") == 1)["trial_id"].sort().to_list() == ["a", "b", "c"]
    text = format_front(summary, objectives)
    flagged = [line for line in text.splitlines() if "DEGENERATE (" in line]
    assert len(flagged) == 1 and flagged[0].startswith("c ")
    assert "1 flagged DEGENERATE" in text.splitlines()[0]
    study = Study(name="s", location="s", trials=seeds_frame(), history=pl.DataFrame(), objectives=objectives, params=[])
    study.summary = summary
    table = method_table([study])
    best_gap = table.filter(pl.col("best_modality_gap"))["trial_id"].to_list()
    assert best_gap == ["b"]  # not c's collapsed 0
    assert table.filter(pl.col("trial_id") == "c")["degenerate"].to_list() == [True]
    # The report's dynamics and rate panels take the healthy front configurations first.
    assert front_trial_ids(study)[-1] == "c"
