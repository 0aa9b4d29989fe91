"""The sections of a trial besides `data`, `model` (config.model), `temperature`
(config.temperature) and `loss` (config.losses): train, swap, eval, resources, theory, artifacts;
and `TrialConfig`, one trial's whole configuration."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from raygap import catalog
from raygap.config.base import PositiveFloat, PositiveInt, Probability, Strict
from raygap.config.data import DataSpec
from raygap.config.losses import ClipLossSpec, LossSpec
from raygap.config.model import ModelSpec
from raygap.config.search import SearchSpec
from raygap.config.temperature import LearnedTemperature, TemperatureSpec
from raygap.config.tracking import TrackingSpec


# --------------------------------------------------------------------------------------- train
class TrainSpec(Strict):
    steps: PositiveInt | None = None
    """Optimizer steps; give this or `epochs` (default: 300 steps)."""
    epochs: PositiveFloat | None = None
    """Training length in passes over data.train's pairs (⌈epochs × ⌊pairs / batch_size⌋⌉ steps); give this or `steps`."""
    batch_size: Annotated[int, Field(ge=2)] = 128
    """Global batch: pairs per optimizer step, split evenly over the trial's workers (a multiple of their number);
    each pair's negatives are the whole global batch."""
    accumulate: PositiveInt = 1
    """Split each step's batch into this many micro-batches (open_clip's accum_freq with feature caching): features of
    every micro-batch are computed without gradients, then each micro-batch's forward is redone with gradients against
    the whole batch, so the loss and its gradients are those of batch_size pairs (exactly, for towers without batch norm
    or dropout: a ResNet's batch norm sees each micro-batch's statistics) with about 1/accumulate of the towers'
    activations held at once, for one more forward pass a step (docs/losses.md has both measured). batch_size must divide
    by accumulate × workers."""
    grad_clip_norm: PositiveFloat | None = None
    """Clip the gradients' global L2 norm (model, temperature and loss parameters) to this before each step; none by default."""
    lr: PositiveFloat = 1e-3
    """Peak AdamW learning rate, reached after warmup, then decayed along a cosine toward 0 at the last step."""
    warmup_steps: Annotated[int, Field(ge=0)] = 20
    """Steps of linear learning-rate warmup, from lr / warmup_steps up to lr (0: none); or give `warmup_epochs`."""
    warmup_epochs: Annotated[float, Field(ge=0.0)] | None = None
    """Warmup as epochs of the training set instead of steps (the paper's Appendix E: 20)."""
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.1
    """AdamW weight decay of the model's parameters of 2 or more dimensions; 1-D gains, biases, norm layers and the
    temperature's θ get none."""
    eval_interval: Annotated[int, Field(ge=0)] = 100
    """Evaluate on the eval split every this many steps (0: only at the end)."""
    checkpoint_interval: Annotated[int, Field(ge=0)] = 0
    """In a study, save the trial's full state every this many steps, so a killed worker resumes
    from there instead of from scratch (0: no checkpoints)."""
    max_restarts: Annotated[int, Field(ge=0)] = 2
    """In a study, how often a trial whose process died is restarted (from its last checkpoint)."""
    seed: int = 0
    """Seeds torch (model init), the batch order and, as seed + 1, the swap draws; a study's repeat r uses seed + r."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 autocast applies on CUDA only; CPU runs in fp32."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Device of `raygap train` and the bench (auto: CUDA when available, else CPU); a study's trials use the
    device Ray assigns (resources.use_gpu)."""
    channels_last: bool = False
    """Images and weights in channels-last layout on CUDA: faster convolutions (ResNet towers)."""
    compile: bool = False
    """Compile both towers' training forward with torch.compile (evaluation stays eager). The first
    steps pay the compile time; `raygap bench --only compile` measures whether it pays."""

    @model_validator(mode="after")
    def _length(self) -> TrainSpec:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either steps or epochs, not both")
        if self.steps is None and self.epochs is None:
            self.steps = 300
        if self.batch_size % self.accumulate:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by accumulate {self.accumulate}")
        if self.warmup_epochs is not None and "warmup_steps" in self.model_fields_set:
            raise ValueError("give either warmup_steps or warmup_epochs, not both")
        return self


# ---------------------------------------------------------------------------------------- swap
class NoSwapSpec(Strict):
    kind: Literal["none"] = "none"


class HardSwapSpec(Strict):
    """HS: per-coordinate exchange on a fraction p of steps (the result is not renormalized)."""

    kind: Literal["hard"] = "hard"
    p: Probability = 1.0
    """Probability that a training step swaps, drawn afresh each step from the swap's own stream (seed train.seed + 1);
    1: every step."""


class HardRowSwapSpec(HardSwapSpec):
    """HS-row: whole-pair exchange on a fraction p of steps."""

    kind: Literal["hard_row"] = "hard_row"  # type: ignore[assignment]  # a variant narrows its base's kind


class SoftSwapSpec(HardSwapSpec):
    """SS: λ-mixing of each pair on a fraction p of steps (the result is not renormalized)."""

    kind: Literal["soft"] = "soft"  # type: ignore[assignment]
    per: Literal["pair", "coordinate"] = "pair"
    """pair: one λ_i ~ U[0,1] per pair, shared by all its coordinates (x̂_i = λ_i x_i + (1−λ_i) y_i);
    coordinate: an independent λ_ij per coordinate j of each pair i (x̂_ij = λ_ij x_ij + (1−λ_ij) y_ij),
    the soft counterpart of HS's per-coordinate exchange. The paper's wording ("swaps entries in a
    soft way", λ sampled independently, like HS's entries) suggests coordinate; the default pair
    keeps the meaning of existing studies (one λ per pair, as the method table of docs/study-file.md has it)."""


SwapSpec = Annotated[Union[NoSwapSpec, HardSwapSpec, HardRowSwapSpec, SoftSwapSpec], Field(discriminator="kind")]


# ------------------------------------------------------------------------- eval, search, resources
class EvalSpec(Strict):
    templates: list[str] = ["a photo of a {label}."]
    """Zero-shot prompt templates; each class embedding is the mean over templates."""
    batch_size: PositiveInt = 512
    """Images or captions each worker encodes per forward pass when evaluating (eval split, probe splits, MMVP)."""
    gap_pairs: PositiveInt | None = 512
    """The gap is measured on this many random eval pairs (all when the split has fewer; null: all).
    A centroid distance from n samples is biased upwards by noise of order 1/√n, so gaps compare
    only at equal gap_pairs; the count used is stored in the gap_pairs column."""
    seed: int = 0
    """Seed of the random choice of gap pairs (the same pairs at every evaluation)."""
    linear_probe: Literal["fixed", "swept"] = "fixed"
    """fixed: L2 strength `probe_l2`, 200 L-BFGS iterations (fast); swept: as CLIP's probe, the strength chosen from
    10⁻⁶ to 10⁶ (one per decade) on a validation fifth of the probe's train split (drawn by `seed`), then refit on
    the whole train split (1,000 iterations); the strength used is the row's linear_probe_l2."""
    probe_l2: PositiveFloat = 1e-4
    """The fixed probe's L2 strength."""

    @model_validator(mode="after")
    def _templates_have_label(self) -> EvalSpec:
        if not self.templates or any("{label}" not in t for t in self.templates):
            raise ValueError("every template must contain '{label}'")
        return self


class ResourcesSpec(Strict):
    workers_per_trial: PositiveInt = 1
    """Data-parallel training workers per trial; train.batch_size is split evenly over them (theory trials use one CPU)."""
    use_gpu: bool | None = None
    """None: use GPUs when the cluster has them."""
    cpus_per_worker: PositiveFloat | None = None
    """CPUs Ray reserves for each worker (fractions allowed); None: a share fitted to the cluster and the loader
    processes (raygap.study.plan)."""
    gpus_per_worker: PositiveFloat | None = None
    """GPUs Ray reserves for each worker when trials use GPUs (a fraction shares a GPU); None: 1."""
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    """Ray placement strategy for a trial's workers (SPREAD puts them on different nodes)."""
    worker_group: Literal["auto", "always"] = "auto"
    """auto: a one-worker trial trains inside its Tune trial process (no Ray Train worker group,
    which costs seconds per trial); always: every trial gets a TorchTrainer worker group."""
    worker_group_per: Literal["trial", "seed"] = "trial"
    """trial: one worker group trains all of a trial's seeds in sequence (its start is paid once);
    seed: a group per seed (as before; `raygap bench` measures the difference)."""


class TheorySpec(Strict):
    """Makes the trial a gradient-flow simulation of the paper's theory model (raygap.theory.simulation)
    instead of CLIP training; the `temperature` section drives it, data/model/train are unused."""

    n: Annotated[int, Field(ge=2)] = 8
    """Pairs."""
    d: Annotated[int, Field(ge=3)] = 16
    """Embedding dimension."""
    delta: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    """Initial offset δ₀ (the matched-pair gap is 2δ)."""
    init: Literal["matched", "random"] = "matched"
    """matched: both modalities' shared parts identical and orthonormal (needs n ≤ d − 1); random: drawn independently
    on the sphere."""
    time: PositiveFloat = 100.0
    """Flow time simulated (rounded to a multiple of dt); a temperature schedule counts t / dt as its step."""
    dt: PositiveFloat = 0.05
    """The largest integration step (steps adapt below it); records fall on multiples of it."""
    records: Annotated[int, Field(ge=2)] = 100
    """History points, spaced evenly in log time (and at t = 0)."""
    seed: int = 0
    """Seed of the initial shared parts; a study's repeat r uses seed + r."""
    tolerance: PositiveFloat = 1e-6
    """Largest local error per integration step (relative for δ; see raygap.theory.simulation)."""

    @model_validator(mode="after")
    def _steps(self) -> TheorySpec:
        if self.init == "matched" and self.n > self.d - 1:
            raise ValueError(f"matched init needs n ≤ d − 1, got n={self.n}, d={self.d}")
        if self.time / self.dt > 1_000_000:
            raise ValueError(f"time / dt = {self.time / self.dt:.0f} steps; at most 1,000,000")
        return self


class ArtifactsSpec(Strict):
    """What each seed keeps beside its results, under artifacts/<trial>/seed<n>/ of the results folder."""

    weights: Literal["none", "final", "best"] = "none"
    """The model's weights as an open_clip state dict (weights.pt): after the last step, at the evaluation point
    best by the study's first objective, or none."""
    embeddings: bool = False
    """The eval split's image and caption embeddings after the last step (embeddings.parquet)."""


class TrialConfig(Strict):
    """One trial's fully concrete configuration (no search distributions left)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    """Name of the study or run (letters, digits, `.`, `_`, `-`; first a letter or digit); the default results folder is results/<name>."""
    results: str | None = None
    """Results folder or URI; default results/<name>."""
    data: DataSpec = DataSpec()
    """Training, eval, probe and MMVP data sources (default: built-in synthetic sets)."""
    model: ModelSpec = ModelSpec()
    """The CLIP model (random init) and whether its features are normalized."""
    train: TrainSpec = TrainSpec()
    """Length, batch, optimizer, seed and device of training."""
    temperature: TemperatureSpec = LearnedTemperature()
    """How T (the logits are multiplied by τ = 1/T) is set or learned; default: learned as in OpenCLIP, T₀ = 0.07."""
    swap: SwapSpec = NoSwapSpec()
    """Modality swap (HS, HS-row or SS) on a fraction p of training steps; default: none."""
    loss: LossSpec = ClipLossSpec()
    """The contrastive loss: clip (the paper's, default), siglip, cyclip, inmodal_separation or m3mix (docs/losses.md)."""
    eval: EvalSpec = EvalSpec()
    """Evaluation: zero-shot prompt templates, encoding batch size, and the gap's pairs and seed."""
    search: SearchSpec = SearchSpec()
    """A study's sampler, number of trials, seeds per configuration, objectives and early stopping."""
    resources: ResourcesSpec = ResourcesSpec()
    """Workers, CPUs and GPUs per trial of a study, and their placement (theory trials run on one CPU)."""
    tracking: TrackingSpec = TrackingSpec()
    """Where a study's curves go besides its Parquet results: TensorBoard, MLflow, W&B."""
    theory: TheorySpec | None = None
    """Set to simulate the theory model instead of training CLIP."""
    artifacts: ArtifactsSpec = ArtifactsSpec()
    """Weights and embeddings each seed keeps (none by default)."""

    @model_validator(mode="after")
    def _loss_fits(self) -> TrialConfig:
        kind = self.loss.kind
        if self.theory is not None and kind != "clip":
            raise ValueError(
                f"loss.kind {kind!r}: theory trials simulate the CLIP loss only; expected loss.kind clip, or no theory section"
            )
        if kind == "m3mix" and not self.model.normalize:
            raise ValueError("loss.kind 'm3mix' mixes features along the unit sphere's geodesics; expected model.normalize true")
        if kind == "siglip" and "temperature" not in self.model_fields_set:
            self.temperature = LearnedTemperature(init=0.1)  # SigLIP's T₀ (τ₀ = 10)
        return self

    @model_validator(mode="after")
    def _batch_splits(self) -> TrialConfig:
        workers, parts = self.resources.workers_per_trial, self.train.accumulate
        if self.theory is None and self.train.batch_size % (workers * parts):
            raise ValueError(
                f"train.batch_size {self.train.batch_size} does not split evenly into resources.workers_per_trial {workers} × "
                f"train.accumulate {parts} micro-batches; expected a multiple of {workers * parts}"
            )
        return self

    @model_validator(mode="after")
    def _best_weights_need_an_objective_at_every_point(self) -> TrialConfig:
        first = next(iter(self.search.objectives))
        if self.artifacts.weights == "best" and not catalog.METRICS[first].at_eval:
            raise ValueError(
                f"artifacts.weights: best is judged by the first objective at every evaluation point, and {first} is "
                "measured once after the last step; put an objective measured at every point first, or keep final weights"
            )
        return self

    @model_validator(mode="after")
    def _early_stop_needs_live_points(self) -> TrialConfig:
        if self.theory is not None and self.search.early_stop.kind != "none":
            raise ValueError("search.early_stop: theory trials report their curve when a seed ends, so nothing could stop them early")
        grace, steps = self.search.early_stop.grace_steps, self.train.steps
        if self.search.early_stop.kind != "none" and steps is not None and grace >= steps:
            raise ValueError(
                f"search.early_stop.grace_steps: {grace} is not below train.steps ({steps}), so no trial could ever be "
                f"stopped; expected fewer than {steps} steps, or early_stop.kind none"
            )
        return self

    def unmeasured_objective(self) -> str | None:
        """Why one of the study's objectives is never measured by this configuration's trials
        (zero-shot without a probe split, say), or None. A study checks it; one trial needs none."""
        for name in self.search.objectives:
            why = catalog.unmeasured(
                name, theory=self.theory is not None, probe=self.data.probe is not None, mmvp=self.data.mmvp is not None
            )
            if why:
                return f"search.objectives: {name} is never measured in this study: {why}"
        return None
