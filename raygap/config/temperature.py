"""The `temperature:` section: how T (the logits are multiplied by τ = 1/T) is set or learned, one
model per kind (raygap.clip.temperature builds each)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from raygap.config.base import PositiveFloat, PositiveInt, Strict


# --------------------------------------------------------------------------------- temperature
class LearnedTemperature(Strict):
    """Baseline: τ = exp(θ), learned, T kept ≥ floor. Every key is a temperature T (τ = 1/T)."""

    kind: Literal["learned"] = "learned"
    init: PositiveFloat = 0.07
    """Initial temperature T₀ (τ₀ = 1/T₀)."""
    floor: PositiveFloat = 0.01
    """The smallest T (OpenCLIP caps τ = 1/T at 100); θ is clamped after each step."""
    lr_scale: PositiveFloat = 1.0
    """SLRT: θ's learning rate is lr × lr_scale at every step, warmup and cosine included."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        if isinstance(data, dict) and "max_tau" in data:
            raise ValueError("max_tau is now floor, a temperature like every key of this section: floor = 1 / max_tau (0.01 for 100)")
        return data


class SoftplusTemperature(LearnedTemperature):
    """TR: τ = softplus(θ), learned."""

    kind: Literal["softplus"] = "softplus"  # type: ignore[assignment]  # a variant narrows its base's kind


class ExpKTemperature(LearnedTemperature):
    """TR: τ = exp(θ/k), learned."""

    kind: Literal["exp_k"] = "exp_k"  # type: ignore[assignment]
    k: PositiveFloat
    """The k of τ = exp(θ/k), θ starting at k·ln(1/init); under AdamW τ moves as with lr_scale 1/k (SLRT), up to Adam's ε."""


class FixedTemperature(Strict):
    """FLT: T constant."""

    kind: Literal["fixed"] = "fixed"
    value: PositiveFloat
    """The temperature T at every step; the logits are multiplied by τ = 1/value."""


class ScheduleTemperature(Strict):
    """TS: T linear from start (first step) to end (last step)."""

    kind: Literal["schedule"] = "schedule"
    start: PositiveFloat
    """T at step 0 (τ = 1/T)."""
    end: PositiveFloat
    """T at the last step; in between T is linear in the step."""


class CosineTemperature(Strict):
    """TS-cos: T alternates low → high → low along a cosine of `period` steps."""

    kind: Literal["cosine"] = "cosine"
    low: PositiveFloat
    """T at step 0 and every `period` steps after (τ = 1/T)."""
    high: PositiveFloat
    """T half a period after each `low` point."""
    period: PositiveInt
    """Steps of one low → high → low cycle (in a theory trial a step is theory.dt of time)."""


TemperatureSpec = Annotated[
    Union[
        LearnedTemperature,
        SoftplusTemperature,
        ExpKTemperature,
        FixedTemperature,
        ScheduleTemperature,
        CosineTemperature,
    ],
    Field(discriminator="kind"),
]
