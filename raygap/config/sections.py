"""The sections of a trial besides `data` (model, train, temperature, swap, eval, resources,
theory) and `TrialConfig`, one trial's whole configuration."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from raygap import catalog
from raygap.config.base import PositiveFloat, PositiveInt, Probability, Strict, check_paths
from raygap.config.data import DataSpec
from raygap.config.losses import ClipLossSpec, LossSpec
from raygap.config.search import SearchSpec
from raygap.config.tracking import TrackingSpec

BUILTIN_MODELS: dict[str, dict] = {
    # Small ViTs for CPU studies (open_clip.CLIP's tower settings), with short captions (synthetic
    # captions are under 24 tokens). tiny-vit: 32 px in 8×8 patches, ≈0.15 s per batch-128 step on 2 cores.
    "tiny-vit": dict(
        embed_dim=64,
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=32),
        text_cfg=dict(context_length=24, width=64, heads=2, layers=2),
    ),
    "small-vit": dict(
        embed_dim=128,
        vision_cfg=dict(image_size=64, patch_size=8, width=128, layers=4, head_width=32),
        text_cfg=dict(context_length=24, width=128, heads=4, layers=4),
    ),
}


# --------------------------------------------------------------------------------------- model
class LockImage(Strict):
    """Freeze the image tower (open_clip's lock_image_tower, as LiT), but its last groups."""

    unlocked_groups: Annotated[int, Field(ge=0)] = 0
    """Last layer groups left trainable (0: the whole tower frozen)."""
    freeze_bn_stats: bool = False
    """Also freeze the batch-norm statistics of the frozen groups (ResNet towers)."""


class LockText(Strict):
    """Freeze the text tower (open_clip's lock_text_tower), but its last layers; its layer norms
    freeze with the layers they belong to (open_clip's CLIP cannot keep them training)."""

    unlocked_layers: Annotated[int, Field(ge=0)] = 0
    """Last transformer layers left trainable (0: the whole tower frozen)."""


class ModelSpec(Strict):
    name: str = "tiny-vit"
    """A built-in CPU config (tiny-vit, small-vit) or any open_clip model name; random init unless `pretrained`."""
    pretrained: Path | None = None
    """A local checkpoint to start from: a state dict of this architecture (torch.save of model.state_dict(), or an
    open_clip training checkpoint holding one), or a results folder whose run kept exactly one seed's weights
    (artifacts: {weights: final}); nothing is ever downloaded. Its logit scale is not used: the temperature is the
    `temperature` section's."""
    lock_image: LockImage | None = None
    """Freeze the image tower (`{}` for all of it, `{unlocked_groups: 1}` to train its last group); none by default."""
    lock_text: LockText | None = None
    """Freeze the text tower (`{}` for all of it, `{unlocked_layers: 1}` to train its last layer); none by default."""
    normalize: bool = True
    """False is the no-norm method: features enter the logits unnormalized (pair it with a fixed T)."""

    @field_validator("pretrained")
    @classmethod
    def _checkpoint_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        # A results folder becomes its one kept file even where paths go unchecked (a trial's
        # resolve): the trial must load a file.
        if path is None or path.is_file() or not (path.is_dir() or check_paths(info)):
            return path
        if not path.is_dir():
            raise ValueError(f"file not found: {path}")
        kept = sorted(path.glob("artifacts/*/seed*/weights.pt"))
        if len(kept) != 1 and not check_paths(info):
            return path
        if len(kept) != 1:
            found = f"{len(kept)}: " + ", ".join(str(k.relative_to(path)) for k in kept[:3]) if kept else "none"
            raise ValueError(
                f"{path} is a folder; expected a checkpoint file, or a results folder that kept one seed's weights "
                f"(artifacts: {{weights: final}}); kept weights found: {found}"
            )
        return kept[0]

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name in BUILTIN_MODELS:
            return name
        import open_clip  # only for names that are not built in: the import takes seconds

        if name not in open_clip.list_models():
            close = difflib.get_close_matches(name, [*BUILTIN_MODELS, *open_clip.list_models()], n=3)
            raise ValueError(f"unknown model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
        return name


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
