"""The `search:` section: the sampler, the objectives and early stopping."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, field_validator, model_validator

from raygap import catalog
from raygap.config.base import PositiveInt, Strict


class EarlyStopSpec(Strict):
    """Stopping hopeless trials at an evaluation point (their status: pruned). Both kinds read the
    objectives at evaluation points, so every objective must be measured there (not zero-shot or
    the probe, which are measured at a seed's end)."""

    kind: Literal["none", "pareto", "asha"] = "none"
    """pareto: stop a trial when, at a step, a finished trial on the same seeds is better in every
    objective by more than `margin` plus the seed noise (raygap.study.pareto_rule); asha: Tune's ASHA on
    the first objective of the first seed's curve; none: every trial runs to its last step. Neither
    judges step 0 (the untrained model) or a seed's last step."""
    grace_steps: NonNegativeInt = 0
    """No trial stops before this training step."""
    margin: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    """pareto: how much better, in every objective (its own units), a finished trial must be on
    top of the seed noise; with one seed per configuration (repeats 1) the only guard against it."""
    min_finished: PositiveInt = 3
    """pareto: finished trials needed before any trial is stopped."""
    reduction_factor: Annotated[float, Field(gt=1.0)] = 3.0
    """asha: 1 / the fraction of trials that go on at each rung."""


class SearchSpec(Strict):
    sampler: Literal["tpe", "nsga2", "random", "grid"] = "tpe"
    """grid runs every combination of the grid/choice values exactly once (trials is ignored)."""
    trials: PositiveInt = 8
    """Configurations the sampler draws, each run on `repeats` seeds (ignored by grid; 1 when nothing is searched)."""
    repeats: PositiveInt = 1
    """Seeds per sampled configuration (train.seed, +1, …); objectives are the seed means."""
    seed: int = 0
    """Seed of the Optuna sampler."""
    objectives: dict[str, Literal["min", "max"]] = catalog.DEFAULT_OBJECTIVES
    """Metric → min or max, in the metric's better direction (raygap.catalog); a list of metric
    names takes each one's better direction."""
    first: list[dict[str, Any]] = []
    """Configurations run before the sampler draws any, each a part of a study file naming searched settings
    (`{temperature: {kind: fixed, value: 0.04}}`): those take its values, the others are drawn as usual. Reference arms,
    or a known good start; counted in `trials`; not with the grid sampler."""
    early_stop: EarlyStopSpec = EarlyStopSpec()
    """Stopping hopeless trials at evaluation points (default: none; see docs/early-stopping.md)."""

    @field_validator("objectives", mode="before")
    @classmethod
    def _directions_from_the_catalogue(cls, objectives: Any) -> Any:
        return catalog.objectives_from(objectives) if isinstance(objectives, list) else objectives

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, objectives: dict[str, str]) -> dict[str, str]:
        catalog.check_objectives(objectives)
        return objectives

    @model_validator(mode="after")
    def _first_configurations_fit(self) -> SearchSpec:
        if self.first and self.sampler == "grid":
            raise ValueError("first: the grid sampler runs every configuration once already; expected no first configurations")
        if len(self.first) > self.trials:
            raise ValueError(f"first: {len(self.first)} configurations, more than search.trials ({self.trials})")
        return self

    @model_validator(mode="after")
    def _early_stop_reads_evaluation_points(self) -> SearchSpec:
        late = [name for name in self.objectives if name not in catalog.AT_EVAL]
        if self.early_stop.kind != "none" and late:
            raise ValueError(
                f"early_stop.kind {self.early_stop.kind!r} compares objectives at evaluation points, but "
                f"{', '.join(late)} is measured only at a seed's end; measured at every point: {', '.join(catalog.AT_EVAL)}"
            )
        if self.early_stop.kind == "asha" and len(self.objectives) > 1:
            raise ValueError(
                f"early_stop.kind 'asha' ranks trials on one objective, but the study has {len(self.objectives)} "
                f"({', '.join(self.objectives)}): it would stop trials on the first alone; use kind 'pareto', or one objective"
            )
        if self.early_stop.kind == "pareto" and self.repeats < 2 and self.early_stop.margin <= 0:
            raise ValueError(
                "early_stop.kind 'pareto' with one seed per configuration cannot measure the seed spread, so it would stop "
                "trials on seed noise: set repeats to 2 or more, or early_stop.margin (in the objectives' units)"
            )
        return self
