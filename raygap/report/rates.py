"""How fast the gap moves, from history.parquet: the fitted rate gap ∝ (log t)^−α of the front's
configurations (the paper's Figure 4(a)), fitted per seed against flow time and summarized over
seeds, and the gap's change over the first steps of short runs, one per initialization (its
Figure 4(b))."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl

from raygap.report.studies import Study, front_trial_ids, log_power_fit, number

EARLY_STEPS = 20  # a study whose seed runs all end by this step is an early-training study

MIN_POINTS = 5
"""Evaluation points a seed needs inside the fitted window (the late half of log t) for its α to count."""
LOG_RATE_TEMPERATURES = ("learned", "exp_k")
"""Temperatures for which the theory predicts gap ∝ (log t)^−α: τ = exp(θ), and exp(θ/k), which
under Adam is exp(θ) with θ's rate × 1/k (SLRT). softplus grows τ only linearly in θ; a fixed or
scheduled τ does not learn."""
CORRECTED = "modality_gap_corrected"
"""The bias-corrected gap: fitted when history has it, since the plain centroid distance has a
finite-sample floor ≈ √(tr Σ_d / n) that flattens the late curve and biases α low."""


def lr_multipliers(total_steps: int, warmup_steps: int) -> np.ndarray:
    """raygap.clip.schedule.lr_multiplier at steps 0 … total_steps − 1, in numpy so that a report
    needs no torch (a test pins the two together)."""
    s = np.arange(total_steps, dtype=float)
    cosine = 0.5 * (1 + np.cos(np.pi * (s - warmup_steps) / max(total_steps - warmup_steps, 1)))
    return np.where(s < warmup_steps, (s + 1) / max(warmup_steps, 1), cosine)


def flow_time(run: pl.DataFrame, config: dict) -> tuple[np.ndarray | None, str]:
    """The time the theory means at each evaluation point of one seed run (rows sorted by step):
    a theory trial's simulated time; for training, the cumulative learning rate in steps at the
    peak rate, Σ_{s < step} lr_s / lr (the step count only when the rate is constant). The
    schedule is rebuilt from the trial's configuration and checked against the logged `lr`.
    Returns (None, why) when it cannot be known."""
    if config.get("theory"):
        if "time" in run.columns and run["time"].null_count() == 0:
            return run["time"].cast(pl.Float64).to_numpy(), ""
        return None, "no simulated time in history"
    train = config.get("train") or {}
    if not train:
        return None, "no training configuration recorded"
    steps = run["step"].to_numpy().astype(int)
    total = int(train.get("steps") or steps.max())  # by epochs: a completed seed's last evaluation is its last step
    if train.get("warmup_epochs") is None:
        warmups = [int(train.get("warmup_steps") or 0)]
    else:  # warmup in epochs: steps per epoch from the epoch count, or from history's step/epoch
        per_epoch = {round(total / train["epochs"])} if train.get("epochs") else set()
        if "epoch" in run.columns:
            per_epoch |= {round(s / e) for s, e in zip(steps, run["epoch"].to_list()) if e}
        warmups = sorted({math.ceil(train["warmup_epochs"] * p) for p in per_epoch if p})
    if steps.max() > total:
        return None, "history runs past the configured steps"
    logged = run.select("step", "lr").drop_nulls().filter(pl.col("step") > 0) if "lr" in run.columns else pl.DataFrame()
    for warmup in warmups:
        multipliers = lr_multipliers(total, warmup)
        if not logged.is_empty() and train.get("lr"):
            # The logged rate is the last step's; compared as multipliers, with a tolerance for rounding near 0.
            if not np.allclose(logged["lr"].to_numpy() / train["lr"], multipliers[logged["step"].to_numpy() - 1], rtol=1e-6, atol=1e-9):
                continue
        return np.concatenate([[0.0], np.cumsum(multipliers)])[steps], ""
    return None, "the learning-rate schedule does not match the logged rate"


def _configs(study: Study, trial_id: str) -> dict[int, dict]:
    """Each seed's recorded configuration (trials.parquet `config`), by seed."""
    if "config" not in study.trials.columns:
        return {}
    rows = study.trials.filter((pl.col("trial_id") == trial_id) & pl.col("config").is_not_null())
    configs = {seed: json.loads(text) for seed, text in rows.select("seed", "config").iter_rows()}
    return {seed: config for seed, config in configs.items() if config}  # a pruned or failed seed records none


def rate_fit(study: Study, trial_id: str) -> dict:
    """gap ∝ (log t)^−α for one configuration: `log_power_fit` of each seed's gap against its flow
    time over the late half of log t, α the mean over seeds and `alpha_se` the standard error of
    that mean (the seeds' spread / √seeds; NaN for one seed). The gap is `CORRECTED` where history
    has it for every row, else `modality_gap`. Only a temperature in LOG_RATE_TEMPERATURES and seeds
    with at least MIN_POINTS points in the window give an α; otherwise alpha is NaN and `reason`
    says why. Also returns the seed-mean curve (time, gap), each seed's fit, the window and the
    line the seeds' fits average to (prefactor)."""
    history = study.history.filter(pl.col("trial_id") == trial_id).sort("seed", "step")
    configs = _configs(study, trial_id)
    out = {"trial_id": trial_id, "alpha": math.nan, "alpha_se": math.nan, "reason": ""}
    kinds = {(c.get("temperature") or {}).get("kind") for c in configs.values()}
    if kinds - set(LOG_RATE_TEMPERATURES) or not kinds:
        kind = ", ".join(sorted(str(k) for k in kinds)) or "not recorded"
        return {**out, "reason": f"temperature {kind}: the theory predicts the rate only for a learned τ = exp(θ)"}
    if "modality_gap" not in history.columns:
        return {**out, "reason": "no gap in history"}
    column = CORRECTED if CORRECTED in history.columns and history[CORRECTED].null_count() == 0 else "modality_gap"
    fits, times, why = {}, [], {}
    for (seed,), run in history.group_by("seed", maintain_order=True):
        t, reason = flow_time(run, configs.get(seed, {}))
        if t is None:
            why[seed] = reason
            continue
        times.append(run.select("step", pl.Series("time", t), pl.col(column).cast(pl.Float64).alias("gap")))
        fit = log_power_fit(pl.DataFrame({"time": t, "modality_gap": run[column].cast(pl.Float64)}))
        if fit["points"] < MIN_POINTS:
            why[seed] = f"fewer than {MIN_POINTS} evaluation points in the window"
        elif not math.isfinite(fit["alpha"]):
            why[seed] = "a gap that is not positive and finite in the window"
        else:
            fits[seed] = fit
    if not fits:
        return {**out, "reason": "; ".join(sorted(set(why.values()))) or "no history"}
    alphas = np.array([f["alpha"] for f in fits.values()])
    curve = pl.concat(times).group_by("step").agg(pl.col("time").mean(), pl.col("gap").mean()).sort("step")
    return {
        **out,
        "gap_column": column,
        "alpha": float(alphas.mean()),
        "alpha_se": float(alphas.std(ddof=1) / math.sqrt(len(alphas))) if len(alphas) > 1 else math.nan,
        "alpha_per_seed": alphas.tolist(),
        "seed_fits": fits,
        "seeds_left_out": why,
        "prefactor": float(np.exp(np.mean([math.log(f["prefactor"]) for f in fits.values()]))),
        "t_min": min(f["t_min"] for f in fits.values()),
        "t_max": max(f["t_max"] for f in fits.values()),
        "points": min(f["points"] for f in fits.values()),
        "theory": any(c.get("theory") for c in configs.values()),
        "time": curve["time"].to_numpy(),
        "gap": curve["gap"].to_numpy(),
    }


def rate_fits(study: Study, limit: int = 3) -> list[dict]:
    """`rate_fit` of the front's configurations that have a history, smallest gap first."""
    return [rate_fit(study, trial_id) for trial_id in front_trial_ids(study, limit)] if not study.history.is_empty() else []


def gap_rates(study: Study, limit: int = 3) -> list[dict]:
    """The front configurations that get an α (`rate_fit`)."""
    return [rate for rate in rate_fits(study, limit) if math.isfinite(rate["alpha"])]


def describe_gap(column: str, theory: bool = False) -> str:
    if theory:
        return f"{column} (the simulated model's own gap: no sampling floor)"
    if column == CORRECTED:
        return f"{CORRECTED} (the finite-sample floor removed)"
    return "modality_gap (uncorrected: its finite-sample floor ≈ √(tr Σ_d / n) biases α low)"


def fit_notes(studies: list[Study]) -> list[str]:
    """A line per fitted front configuration (`rate_fit`): α ± its standard error over seeds, the
    per-seed values, the window, the time and the gap column; and per study a line naming the
    front configurations that get no α, and why."""
    notes = []
    for study in studies:
        skipped: dict[str, list[str]] = {}
        for rate in rate_fits(study):
            if not math.isfinite(rate["alpha"]):
                skipped.setdefault(rate["reason"], []).append(rate["trial_id"])
                continue
            seeds = len(rate["alpha_per_seed"])
            spread = (
                f"α = {rate['alpha']:.3g} ± {rate['alpha_se']:.2g} (mean ± standard error over {seeds} seeds; per seed "
                + ", ".join(f"{a:.3g}" for a in rate["alpha_per_seed"])
                + ")"
                if seeds > 1
                else f"α = {rate['alpha']:.3g} (one seed: no uncertainty over seeds)"
            )
            time = "simulated time" if rate["theory"] else "flow time (cumulative learning rate in steps at the peak rate)"
            notes.append(
                f"{study.name} {rate['trial_id']}: gap ∝ (log t)^−α, {spread} over t ∈ [{rate['t_min']:.3g}, {rate['t_max']:.3g}], "
                f"t the {time}, late half of log t, ≥ {rate['points']} points per seed; "
                f"gap: {describe_gap(rate['gap_column'], rate['theory'])}"
                + "".join(f"; seed {seed} left out: {reason}" for seed, reason in rate["seeds_left_out"].items())
            )
        for reason, trial_ids in skipped.items():
            notes.append(f"{study.name}: no gap rate for {', '.join(trial_ids)}: {reason}")
    return notes


def early_gap_changes(study: Study, until: int = 10) -> pl.DataFrame:
    """For a study whose seed runs all end by EARLY_STEPS (one run per initialization): per seed run,
    the gap at step 0, at the last evaluation point at or before `until`, and the change. Empty for
    other studies and runs without both points."""
    history = study.history
    if history.is_empty() or "modality_gap" not in history.columns or number(history["step"].max()) > EARLY_STEPS:
        return pl.DataFrame()
    rows = []
    for (trial_id, seed), run in history.group_by("trial_id", "seed", maintain_order=True):
        start, later = run.filter(pl.col("step") == 0), run.filter((pl.col("step") > 0) & (pl.col("step") <= until)).sort("step")
        if start.is_empty() or later.is_empty():
            continue
        before, after = float(start["modality_gap"][0]), float(later["modality_gap"][-1])
        rows.append(
            {
                "trial_id": trial_id,
                "seed": seed,
                "step": int(later["step"][-1]),
                "gap_before": before,
                "gap_after": after,
                "change": after - before,
            }
        )
    return pl.DataFrame(rows)


def early_gap_summary(changes: pl.DataFrame) -> dict:
    """How many initializations' gap grew (a NaN change counts as neither), of how many."""
    values = changes["change"].to_numpy() if not changes.is_empty() else np.array([])
    finite = values[np.isfinite(values)]
    grew = int((finite > 0).sum())
    return {
        "runs": len(values),
        "measured": len(finite),
        "grew": grew,
        "fraction_grew": grew / len(finite) if len(finite) else math.nan,
        "median_change": float(np.median(finite)) if len(finite) else math.nan,
    }


def early_gap_notes(studies: list[Study]) -> list[str]:
    """A line per early-training study: how many initializations' gap grew, and the median change."""
    notes = []
    for study in studies:
        changes = early_gap_changes(study)
        if changes.height < 2:
            continue
        s = early_gap_summary(changes)
        notes.append(
            f"{study.name}: the gap grew over the first {int(number(changes['step'].max()))} steps in {s['grew']} of {s['measured']} "
            f"initializations ({s['fraction_grew']:.0%}); median change {s['median_change']:+.4f}"
        )
    return notes
