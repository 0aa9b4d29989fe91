"""The paper's theory model of the modality gap, simulated by gradient flow (Yaras et al., §2–3).

Each modality's unit embeddings lie on a plane parallel to the other's: a shared part on the unit
sphere of the first d−1 coordinates, scaled by √(1−δ²), plus an offset of +δ (images) or −δ (texts)
along the last coordinate e. So x_i = √(1−δ²)·s_i + δe and y_i = √(1−δ²)·t_i − δe; with matched
shared parts the modality gap is exactly 2δ. The CLIP loss with a temperature strategy from
raygap.clip.temperature is minimised by gradient flow on s, t, δ and the temperature's parameter
θ; shared parts move in their sphere's tangent space.

The flow is integrated in float64 by Dormand–Prince 5(4) steps (gradients by hand in numpy,
checked against autograd through raygap.clip.loss in the tests) whose size keeps each step's error
estimate under `tolerance` (relative for δ, so the gap keeps its relative accuracy as it shrinks).
`dt` caps the step and is the grid that records fall on (record k·dt is step k).

With τ = exp(θ) (lr_scale 1, below the cap) the flow conserves δ·exp(−δ²/2)·τ² exactly: the
entries of ∂L/∂logits sum to zero, which makes dδ/dθ = −2δ/(1 − δ²). So the gap falls as τ⁻² once
δ is small, and how fast it closes is how fast τ grows.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from raygap.clip.temperature import ExpOverK, Learned, Softplus, Temperature, build_temperature
from raygap.config import TemperatureSpec, TheorySpec


def _initial_state(cfg: TheorySpec) -> tuple[torch.Tensor, torch.Tensor]:
    """matched: shared parts identical across modalities and orthonormal (n ≤ d − 1, checked by the
    spec); random: image and text shared parts drawn independently on the sphere."""
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.init == "matched":
        basis = torch.linalg.qr(torch.randn(cfg.d - 1, cfg.d - 1, generator=g, dtype=torch.float64))[0]
        s = basis[: cfg.n].clone()
        return s, s.clone()
    s = F.normalize(torch.randn(cfg.n, cfg.d - 1, generator=g, dtype=torch.float64), dim=1)
    t = F.normalize(torch.randn(cfg.n, cfg.d - 1, generator=g, dtype=torch.float64), dim=1)
    return s, t


def embed(s: torch.Tensor, t: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image and text unit embeddings from shared parts and the offset δ."""
    scale = torch.sqrt(1 - delta**2)
    offset = torch.zeros(len(s), 1, dtype=s.dtype) + delta
    return torch.cat([scale * s, offset], dim=1), torch.cat([scale * t, -offset], dim=1)


def run_theory(cfg, report: Callable[[dict], None] | None = None) -> dict:
    """A seed run of a TrialConfig with a `theory` section: the final row plus timings, in the
    shape of a training run's final metrics."""
    started = time.perf_counter()
    history = simulate(cfg.theory, cfg.temperature, report)
    return {**history[-1], "train_seconds": time.perf_counter() - started, "device": "cpu", "workers": 1}


def simulate(
    cfg: TheorySpec, temperature_section: TemperatureSpec | dict, report: Callable[[dict], None] | None = None, substeps: int = 1
) -> list[dict]:
    """Run the flow under the temperature strategy; return (and report) history rows: time, step
    (time / dt), gap, delta, tau, margin, loss and solver_steps (the integration steps taken so far).

    `substeps` > 1 takes each accepted step as that many steps of 1/substeps its size (records stay
    at the same times): a check that the steps taken are small enough."""
    s, t = _initial_state(cfg)
    steps = max(1, round(cfg.time / cfg.dt))
    temperature: Temperature = build_temperature(temperature_section, total_steps=steps)
    temperature.double()
    flow = _Flow(temperature, cfg.dt, cfg.n, cfg.d - 1)
    state = flow.pack(s.numpy(), t.numpy(), cfg.delta, [float(p.detach()) for p in flow.params])
    record_at = sorted({0, steps} | {int(round(v)) for v in torch.logspace(0, math.log10(steps), cfg.records).tolist()})
    history: list[dict] = []
    now, h, taken, first = 0.0, cfg.dt, 0, None
    for step in record_at:
        end = step * cfg.dt
        while end - now > 1e-9 * cfg.dt:
            clipped = end - now < h
            size = end - now if clipped else h
            new, error, first, last = _dopri_step(flow, state, now, size, first)
            ratio = error / cfg.tolerance
            if not ratio <= 1:  # rejected (or not finite): try again from the same state with a smaller step
                h = size * max(0.2, 0.9 * ratio**-0.2) if math.isfinite(ratio) else size / 5
                if h < 1e-12 * cfg.dt:
                    raise FloatingPointError(f"theory flow: no step size keeps the error under {cfg.tolerance:g} at t = {now:.6g}")
                continue
            if substeps > 1:  # the same step as `substeps` smaller ones: a check on the step size
                new = state
                for sub in range(substeps):
                    new = _dopri_step(flow, new, now + sub * size / substeps, size / substeps)[0]
                last = None
            state, now, taken, first = new, now + size, taken + 1, last
            grown = size * min(5.0, 0.9 * ratio**-0.2) if ratio > 0 else 5.0 * size
            h = min(cfg.dt, max(grown, h) if clipped else grown)
        now = end
        row = _row(flow, state, step)
        row["solver_steps"] = taken
        history.append(row)
        if report:
            report(row)
    return history


class _Flow:
    """The gradient flow's vector field on a flat state (s, t, δ, θ): velocities of s and t tangent
    to their spheres, of δ and of the temperature's parameters (numpy, float64)."""

    def __init__(self, temperature: Temperature, dt: float, n: int, m: int):
        self.temperature, self.dt, self.n, self.m = temperature, dt, n, m
        self.params = list(temperature.parameters())
        self.eye = np.eye(n)
        self.delta = 2 * n * m  # index of δ in the state; θ follows
        self.loaded: tuple | None = None  # the θ last loaded into the strategy
        self.slope = _SLOPES.get(type(temperature))

    def pack(self, s, t, delta: float, thetas: list[float]) -> np.ndarray:
        return np.concatenate([np.ravel(s), np.ravel(t), [delta], thetas]).astype(np.float64)

    def unpack(self, state: np.ndarray):
        nm = self.n * self.m
        return state[:nm].reshape(self.n, self.m), state[nm : 2 * nm].reshape(self.n, self.m), state[self.delta], state[self.delta + 1 :]

    def clamp(self, state: np.ndarray) -> np.ndarray:
        """δ into [0, 1) and θ under the strategy's cap on τ."""
        state[self.delta] = min(max(state[self.delta], 0.0), 1.0 - 1e-9)
        if self.params:
            self.set(state[self.delta + 1 :])
            state[self.delta + 1 :] = self.loaded
        return state

    def set(self, thetas) -> None:
        """Load θ into the strategy and apply its cap (nothing to do when it is loaded already)."""
        if self.loaded is not None and tuple(thetas) == self.loaded:
            return
        with torch.no_grad():
            for param, value in zip(self.params, thetas):
                param.fill_(float(value))
            self.temperature.clamp_()
        self.loaded = tuple(float(p.detach()) for p in self.params)

    def tau(self, time: float, thetas, slope: bool = False):
        """τ at a time (schedules are defined over steps of dt: a stage between steps gets a
        fractional step) and, with slope, dτ/dθ."""
        self.set(thetas)
        if not (slope and self.params):
            with torch.no_grad():
                tau = float(self.temperature.tau(time / self.dt))
            return (tau, []) if slope else tau
        if self.slope is not None:
            with torch.no_grad():
                tau = float(self.temperature.tau(time / self.dt))
            return tau, [self.slope(self.temperature, tau)]
        live = self.temperature.tau(time / self.dt)
        return float(live.detach()), [float(g) for g in torch.autograd.grad(live, self.params)]

    def __call__(self, state: np.ndarray, time: float) -> np.ndarray:
        """−∂L/∂(s, t) projected on the spheres' tangent spaces (taken at s/|s|, so the flow keeps
        |s|), −∂L/∂δ and −lr_scale·∂L/∂θ, by hand, for raygap.clip.loss.Clip."""
        s, t, delta, thetas = self.unpack(state)
        s = s / np.linalg.norm(s, axis=1, keepdims=True)
        t = t / np.linalg.norm(t, axis=1, keepdims=True)
        tau, slope = self.tau(time, thetas, slope=True)
        shared = s @ t.T
        sim = (1 - delta * delta) * shared - delta * delta  # ⟨x_i, y_j⟩
        logits = tau * sim
        # ∂L/∂logits: the loss is the mean of the row-wise and the column-wise cross-entropies.
        # Images and texts take the same operations in the same order, so shared parts that start
        # equal (matched init) stay equal to the last bit and the gap stays exactly 2δ.
        dlogits = (_softmax(logits) + _softmax(np.ascontiguousarray(logits.T)).T - 2 * self.eye) / (2 * self.n)
        dsim = tau * dlogits
        ds, dt = (1 - delta * delta) * (dsim @ t), (1 - delta * delta) * (np.ascontiguousarray(dsim.T) @ s)
        vs = (ds * s).sum(1, keepdims=True) * s - ds
        vt = (dt * t).sum(1, keepdims=True) * t - dt
        ddelta = -2 * delta * float((dsim * (shared + 1)).sum())
        dtau = float((dlogits * sim).sum())
        return self.pack(vs, vt, -ddelta, [-self.temperature.lr_scale * dtau * g for g in slope])

    def scales(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """What an error is measured against: 1 for s and t (unit rows), δ itself (so that the gap
        keeps its relative accuracy as it shrinks) and max(1, |θ|) for θ."""
        scale = np.ones_like(before)
        scale[self.delta] = max(abs(before[self.delta]), abs(after[self.delta]), 1e-300)
        scale[self.delta + 1 :] = np.maximum(1.0, np.maximum(abs(before[self.delta + 1 :]), abs(after[self.delta + 1 :])))
        return scale


# dτ/dθ from τ for the learned strategies (others: autograd through their tau).
_SLOPES = {
    Learned: lambda strategy, tau: tau,  # τ = exp(θ)
    ExpOverK: lambda strategy, tau: tau / strategy.k,  # τ = exp(θ/k)
    Softplus: lambda strategy, tau: -math.expm1(-tau),  # τ = softplus(θ): σ(θ) = 1 − exp(−τ)
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax of each row."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# Dormand–Prince 5(4) (FSAL): stage times, stage weights (the last row gives the 5th-order
# solution) and the weights of the difference to the embedded 4th-order solution.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


def _dopri_step(flow: _Flow, state: np.ndarray, now: float, h: float, first: np.ndarray | None = None):
    """One Dormand–Prince step of size h from `state` (whose velocity is `first`, when known).
    Returns the new state (5th order, rows renormalized), its error estimate (the largest
    difference to the 4th-order solution in units of flow.scales), and the velocities at the old
    and at the new state (the next step's first stage)."""
    stages = [first if first is not None else flow(state, now)]
    for c, weights in zip(_C[1:], _A[1:]):
        moved = flow.clamp(state + h * sum(a * k for a, k in zip(weights, stages) if a))
        stages.append(flow(moved, now + c * h))
    error = h * sum(e * k for e, k in zip(_E, stages) if e)
    error = float(np.max(np.abs(error) / flow.scales(state, moved)))
    s, t, delta, thetas = flow.unpack(moved)
    new = flow.pack(s / np.linalg.norm(s, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True), delta, thetas)
    return new, error, stages[0], stages[-1]


def _row(flow: _Flow, state: np.ndarray, step: int) -> dict:
    """A history row, in numpy (torch's threads cost more than these 8×8 sums on a busy machine);
    the same numbers as raygap.clip's Clip loss, modality_gap and pair_margins."""
    s, t, delta, thetas = flow.unpack(state)
    offset = np.full((flow.n, 1), delta)
    x = np.concatenate([math.sqrt(1 - delta * delta) * s, offset], 1)
    y = np.concatenate([math.sqrt(1 - delta * delta) * t, -offset], 1)
    tau = flow.tau(step * flow.dt, thetas)
    sim = x @ y.T
    own = sim.diagonal()
    logits = tau * sim
    loss = (_logsumexp(logits, 1) + _logsumexp(logits, 0) - 2 * tau * own).mean() / 2
    others = sim + np.diag(np.full(flow.n, -np.inf))
    # The gap: the centroids' distance, scaled first so that a tiny gap does not underflow when squared.
    diff = x.mean(0) - y.mean(0)
    scale = np.abs(diff).max()
    row = {
        "time": step * flow.dt,
        "step": step,
        "modality_gap": float(scale * np.linalg.norm(diff / scale)) if scale > 0 else 0.0,
        "delta": float(delta),
        "tau": tau,
        "margin": float((own - others.max(1)).min()),
        "loss": float(loss),
    }
    row["temperature"] = 1 / row["tau"]
    return row


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis, keepdims=True))).squeeze(axis)
