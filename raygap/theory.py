"""The paper's theory model of the modality gap, simulated by gradient flow (Yaras et al., §2–3).

Each modality's unit embeddings lie on a plane parallel to the other's: a shared part on the unit
sphere of the first d−1 coordinates, scaled by √(1−δ²), plus an offset of +δ (images) or −δ (texts)
along the last coordinate e. So x_i = √(1−δ²)·s_i + δe and y_i = √(1−δ²)·t_i − δe; with matched
shared parts the modality gap is exactly 2δ. The CLIP loss with a temperature strategy from
raygap.temperature is minimised by explicit Euler steps on s, t, δ and the temperature's parameter
(float64, autograd); shared parts move in their sphere's tangent space and are renormalized.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from raygap.clip.loss import contrastive_loss
from raygap.clip.metrics import modality_gap, pair_margins
from raygap.clip.temperature import Temperature, build_temperature


@dataclass
class TheoryConfig:
    n: int = 8
    """Pairs."""
    d: int = 16
    """Embedding dimension (shared parts live in the first d−1)."""
    delta: float = 0.5
    """Initial offset δ₀ ∈ (0, 1): the initial gap is 2δ₀ for matched pairs."""
    init: str = "matched"
    """matched: shared parts identical across modalities and orthonormal (margin 1 − 0 between own
    and other pairs); random: image and text shared parts drawn independently on the sphere."""
    temperature: dict | None = None
    """A raygap temperature strategy (default: learned τ = exp(θ), T₀ = 0.07)."""
    dt: float = 0.05
    time: float = 100.0
    """Total time of the flow; steps = time / dt."""
    records: int = 200
    """History points, spaced evenly in log time (and at t = 0)."""
    seed: int = 0


def _initial_state(cfg: TheoryConfig) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.init == "matched":
        if cfg.n > cfg.d - 1:
            raise ValueError(f"matched init needs n ≤ d − 1 orthonormal shared parts, got n={cfg.n}, d={cfg.d}")
        basis = torch.linalg.qr(torch.randn(cfg.d - 1, cfg.d - 1, generator=g, dtype=torch.float64))[0]
        s = basis[: cfg.n].clone()
        return s, s.clone()
    if cfg.init == "random":
        s = F.normalize(torch.randn(cfg.n, cfg.d - 1, generator=g, dtype=torch.float64), dim=1)
        t = F.normalize(torch.randn(cfg.n, cfg.d - 1, generator=g, dtype=torch.float64), dim=1)
        return s, t
    raise ValueError(f"init must be 'matched' or 'random', got {cfg.init!r}")


def embed(s: torch.Tensor, t: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image and text unit embeddings from shared parts and the offset δ."""
    scale = torch.sqrt(1 - delta**2)
    offset = torch.zeros(len(s), 1, dtype=s.dtype) + delta
    return torch.cat([scale * s, offset], dim=1), torch.cat([scale * t, -offset], dim=1)


def margin(x: torch.Tensor, y: torch.Tensor) -> float:
    """The smallest pair margin: positive when every pair is matched."""
    return float(pair_margins(x, y).min())


def run_theory_trial(trial, report: Callable[[dict], None] | None = None) -> dict:
    """A theory trial from a TrialConfig with a `theory` section: the final row plus timings,
    in the shape of a training trial's final metrics."""
    started = time.perf_counter()
    theory = trial.theory
    config = TheoryConfig(
        n=theory.n, d=theory.d, delta=theory.delta, init=theory.init, temperature=trial.temperature.model_dump(),
        dt=theory.dt, time=theory.time, records=theory.records, seed=theory.seed,
    )  # fmt: skip
    history = simulate(config, report)
    return {**history[-1], "train_seconds": time.perf_counter() - started, "device": "cpu", "workers": 1}


def simulate(cfg: TheoryConfig, report: Callable[[dict], None] | None = None) -> list[dict]:
    """Run the flow; return (and report) history rows: time, step, gap, delta, tau, margin, loss."""
    s, t = _initial_state(cfg)
    s.requires_grad_(True)
    t.requires_grad_(True)
    delta = torch.tensor(cfg.delta, dtype=torch.float64, requires_grad=True)
    steps = max(1, round(cfg.time / cfg.dt))
    temperature: Temperature = build_temperature(cfg.temperature or {"kind": "learned"}, total_steps=steps)
    temperature.double()
    theta = list(temperature.parameters())
    record_at = {0, steps} | {int(round(v)) for v in torch.logspace(0, math.log10(steps), cfg.records).tolist()}
    history: list[dict] = []
    for step in range(steps + 1):
        x, y = embed(s, t, delta)
        tau = temperature.tau(step).to(torch.float64)  # fixed/schedule strategies give float32
        loss = contrastive_loss(x, y, tau)
        if step in record_at:
            row = {
                "time": step * cfg.dt,
                "step": step,
                "modality_gap": modality_gap(x.detach(), y.detach()),
                "delta": float(delta.detach()),
                "tau": float(tau.detach()),
                "margin": margin(x.detach(), y.detach()),
                "loss": float(loss.detach()),
            }
            row["temperature"] = 1 / row["tau"]
            history.append(row)
            if report:
                report(row)
        if step == steps:
            break
        grads = torch.autograd.grad(loss, [s, t, delta, *theta])
        with torch.no_grad():
            for shared, grad in ((s, grads[0]), (t, grads[1])):
                # Gradient flow on the sphere: the tangent part of the gradient, then back to unit norm.
                tangent = grad - (grad * shared).sum(1, keepdim=True) * shared
                shared.sub_(cfg.dt * tangent)
                shared.copy_(F.normalize(shared, dim=1))
            delta.sub_(cfg.dt * grads[2]).clamp_(0.0, 1.0 - 1e-9)
            for param, grad in zip(theta, grads[3:]):
                param.sub_(cfg.dt * temperature.lr_scale * grad)
            temperature.clamp_()
    return history
