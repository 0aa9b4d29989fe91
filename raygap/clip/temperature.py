"""Temperature strategies: who owns τ = 1/T and how it moves during training.

The study file speaks of the temperature T (init, value, start, end, low, high, floor); the model
multiplies logits by τ = 1/T. Settings arrive validated by raygap.config (TemperatureSpec); a plain
dict is validated the same way. A strategy is a small module: `tau(step)` gives the logit scale for a step (a tensor that carries
gradient when τ is learned) and `clamp_()` enforces the cap after each optimizer step. Learned
strategies expose their parameter through `parameters()` so the trainer can give it its own
learning-rate scale (SLRT).
"""

from __future__ import annotations

import math

import torch
from pydantic import TypeAdapter
from torch import nn

from raygap.config import TemperatureSpec

MIN_TEMPERATURE = 0.01  # OpenCLIP's cap on the logit scale, τ ≤ 100
_SECTION: TypeAdapter = TypeAdapter(TemperatureSpec)


class Temperature(nn.Module):
    """Base: `tau(step)` returns τ for the step; `learned` tells the trainer to optimise it."""

    learned = False
    lr_scale = 1.0

    def tau(self, step: float) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep τ within its cap; nothing to do for strategies that are not learned."""


class Learned(Temperature):
    """OpenCLIP's τ = exp(θ), θ₀ = ln(1/T₀); T kept ≥ `floor` (τ ≤ 1/floor) after each step."""

    learned = True

    def __init__(self, init: float = 0.07, floor: float = MIN_TEMPERATURE, lr_scale: float = 1.0):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(self.theta_for(1 / init)))
        self.max_theta = self.theta_for(1 / floor)
        self.lr_scale = lr_scale

    def theta_for(self, tau: float) -> float:
        return math.log(tau)

    def tau(self, step: float) -> torch.Tensor:
        return self.theta.exp()

    @torch.no_grad()
    def clamp_(self) -> None:
        self.theta.clamp_(max=self.max_theta)


class Softplus(Learned):
    """TR: τ = softplus(θ), learned; same initial τ and cap on τ as `Learned`."""

    def theta_for(self, tau: float) -> float:
        # softplus⁻¹(τ) = log(exp(τ) − 1), written to stay finite for large τ.
        return tau + math.log(-math.expm1(-tau))

    def tau(self, step: float) -> torch.Tensor:
        return nn.functional.softplus(self.theta)


class ExpOverK(Learned):
    """TR: τ = exp(θ/k), learned; k > 1 slows the growth of τ relative to exp(θ)."""

    def __init__(self, k: float, init: float = 0.07, floor: float = MIN_TEMPERATURE, lr_scale: float = 1.0):
        self.k = k
        super().__init__(init=init, floor=floor, lr_scale=lr_scale)

    def theta_for(self, tau: float) -> float:
        return self.k * math.log(tau)

    def tau(self, step: float) -> torch.Tensor:
        return (self.theta / self.k).exp()


class Fixed(Temperature):
    """FLT: T constant; nothing is learned."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def tau(self, step: float) -> torch.Tensor:
        return torch.tensor(1 / self.value)


class LinearSchedule(Temperature):
    """TS: T rises (or falls) linearly from `start` at step 0 to `end` at the last step."""

    def __init__(self, start: float, end: float, total_steps: int):
        super().__init__()
        self.start, self.end = start, end
        self.total_steps = total_steps

    def temperature(self, step: float) -> float:
        progress = min(step / max(self.total_steps - 1, 1), 1.0)
        return self.start + (self.end - self.start) * progress

    def tau(self, step: float) -> torch.Tensor:
        return torch.tensor(1 / self.temperature(step))


class CosineAlternation(Temperature):
    """TS-cos: T alternates between `low` and `high` along a cosine with `period` steps.

    T(0) = low, T(period/2) = high, T(period) = low again.
    """

    def __init__(self, low: float, high: float, period: int):
        super().__init__()
        self.low, self.high, self.period = low, high, period

    def temperature(self, step: float) -> float:
        phase = (1 - math.cos(2 * math.pi * step / self.period)) / 2
        return self.low + (self.high - self.low) * phase

    def tau(self, step: float) -> torch.Tensor:
        return torch.tensor(1 / self.temperature(step))


TEMPERATURES: dict[str, type[Temperature]] = {
    "learned": Learned,
    "softplus": Softplus,
    "exp_k": ExpOverK,
    "fixed": Fixed,
    "schedule": LinearSchedule,
    "cosine": CosineAlternation,
}


def build_temperature(section: TemperatureSpec | dict, total_steps: int) -> Temperature:
    """A strategy from the spec's `temperature` section (a dict is validated as the study file is:
    a bad value raises pydantic's ValidationError, a ValueError, naming the key)."""
    options = _SECTION.validate_python(section).model_dump() if isinstance(section, dict) else section.model_dump()
    cls = TEMPERATURES[options.pop("kind")]
    if cls is LinearSchedule:
        options["total_steps"] = total_steps
    return cls(**options)
