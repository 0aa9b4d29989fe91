"""The metric catalogue: what every number raygap reports is, in one place.

Each metric a trial reports (a column of trials.parquet / history.parquet) has one entry: which way
is better, its label on axes and tables, what it means, how it is measured, the worst value it can
take (the hypervolume's reference point) and where it appears. Study-file objectives are checked
against it; the report's "best" cells, its hypervolume reference and every axis label read it.
A pure module: no torch, no ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Metric:
    name: str
    better: Direction | None
    """Which way is better; None for a descriptive number with no better side (the temperature)."""
    label: str
    """Axis and table label."""
    description: str
    """What it means, in a sentence."""
    measured: str = ""
    """How it is measured; written into the Parquet footers of trials and history."""
    worst: float | None = None
    """The worst value it can take (the hypervolume's reference); None: the worst value seen."""
    table: bool = False
    """A column of the report's Table-2-style method table (the paper's Table 2)."""
    summarized: bool = False
    """Kept (seed mean and std) in pareto.parquet and the report's per-configuration summary."""
    default_objective: bool = False
    """One of a study's objectives when its file names none."""
    at_eval: bool = False
    """Measured at every evaluation point (a history.parquet column), not only at a seed's end."""


RECALL_MEASURED = (
    "image_to_text_r{k}: an image hits when any of its captions ranks in the top k; text_to_image_r{k}: "
    "the caption's image ranks in the top k; ties are broken at random and the expected recall is "
    "reported, so a collapsed model scores chance; NaN when every item would hit whatever the scores "
    "(k at least the number of candidates)"
)

# MMVP-VLM's visual-pattern groups (Tong et al., CVPR 2024), in the benchmark's order; each has a
# column mmvp_<group slug> beside their mean, mmvp_accuracy.
MMVP_GROUPS = (
    "Orientation and Direction",
    "Presence of Specific Features",
    "State and Condition",
    "Quantity and Count",
    "Positional and Relational Context",
    "Color and Appearance",
    "Structural Characteristics",
    "Texts",
    "Viewpoint and Perspective",
)
MMVP_MEASURED = (
    "pairs of images that differ in one visual pattern, each with the statement that describes it; a statement picks the "
    "image closer to its prompt 'a photo of <statement>' (cosine) and a pair counts when both pick their own image, as the "
    "benchmark scores it; a tie between the two images is broken at random (the expected score: collapsed features score "
    "the chance 0.25 where the benchmark's script would give the tie to the second image); a group's accuracy is over its pairs"
)


def mmvp_column(group: str) -> str:
    """The trials.parquet column of one MMVP-VLM group: 'Color and Appearance' → mmvp_color_and_appearance."""
    return "mmvp_" + "_".join(group.lower().split())


_METRICS = [
    Metric(
        "modality_gap",
        "min",
        "modality gap",
        "distance between the centroids of the normalized image and text embeddings",
        "centroid distance on gap_pairs random (image, first caption) pairs of the eval split, fixed by eval.seed; "
        "biased upwards by finite-sample noise, so compare at equal gap_pairs",
        worst=2.0,
        table=True,
        summarized=True,
        default_objective=True,
        at_eval=True,
    ),
    Metric(
        "uniformity",
        "max",
        "uniformity (−W₂, higher = more uniform)",
        "minus the Wasserstein-2 distance of the embeddings to N(0, I/m); 0 is perfectly uniform, −√2 fully collapsed",
        "-W2 to N(0, I/m) of the stacked image and first-caption features of the whole eval split",
        worst=-math.sqrt(2),
        table=True,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "modality_gap_corrected",
        "min",
        "modality gap (bias-corrected)",
        "the centroid distance without its finite-sample bias: about 0 for a model with no true gap, negative when none is detectable",
        "signed root of ‖d̄‖² − tr(S_d)/n over the gap pairs' differences d_i = x_i − y_i (unbiased for the squared gap)",
        worst=2.0,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "modality_gap_low",
        None,
        "gap interval, low",
        "lower end of the 95 % interval of the bias-corrected gap",
        "signed root of G − 1.96σ, G the squared corrected gap and Var G ≈ 4 d̄ᵀS_d d̄/n + 2 tr(S_d²)/n²",
        at_eval=True,
    ),
    Metric(
        "modality_gap_high",
        None,
        "gap interval, high",
        "upper end of the 95 % interval of the bias-corrected gap",
        "signed root of G + 1.96σ (see modality_gap_low)",
        at_eval=True,
    ),
    Metric(
        "degenerate",
        "min",
        "degenerate",
        "1 when the model collapsed or retrieves at chance; its seed mean is the share of such seeds",
        "1 when uniformity is within 0.01 of −√2 or mean R@1 is within 3 standard errors of a random ranking's; "
        "a configuration with any degenerate seed is flagged on the front, in the report and in study status",
        worst=1.0,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "zero_shot_top1",
        "max",
        "zero-shot top-1",
        "top-1 accuracy of classifying probe test images by their most similar class prompt",
        "class embedding = mean of the normalized prompt embeddings over eval.templates; ties broken at random (expected accuracy)",
        worst=0.0,
        table=True,
        summarized=True,
    ),
    Metric(
        "linear_probe_top1",
        "max",
        "linear probe top-1",
        "top-1 accuracy of a logistic regression on frozen image features",
        "L-BFGS multinomial logistic regression on the probe train split's normalized features, scored on its test split; "
        "ties between classes broken at random (expected accuracy), so constant features score the majority-class rate; its "
        "L2 strength fixed (eval.probe_l2, 200 iterations) or swept as CLIP's (eval.linear_probe: swept): the row's linear_probe_l2",
        worst=0.0,
        table=True,
        summarized=True,
    ),
    Metric(
        "linear_probe_l2",
        None,
        "linear probe L2 strength",
        "the L2 strength the linear probe ran with: eval.probe_l2, or the swept probe's choice",
        "swept: the strength from 1e-6 to 1e6 (one per decade) with the best accuracy on a validation fifth of the probe "
        "train split, the strongest among equals",
    ),
    Metric(
        "image_to_text_r1",
        "max",
        "image→text recall@1",
        "fraction of images whose caption is retrieved first",
        RECALL_MEASURED,
        worst=0.0,
        table=True,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "text_to_image_r1",
        "max",
        "text→image recall@1",
        "fraction of captions whose image is retrieved first",
        RECALL_MEASURED,
        worst=0.0,
        table=True,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "mean_r1",
        "max",
        "mean recall@1",
        "mean of image→text and text→image recall@1",
        "mean of image_to_text_r1 and text_to_image_r1",
        worst=0.0,
        summarized=True,
        default_objective=True,
        at_eval=True,
    ),
    Metric(
        "image_to_text_r5",
        "max",
        "image→text recall@5",
        "fraction of images with a caption in the top 5",
        RECALL_MEASURED,
        worst=0.0,
        at_eval=True,
    ),
    Metric(
        "text_to_image_r5",
        "max",
        "text→image recall@5",
        "fraction of captions with their image in the top 5",
        RECALL_MEASURED,
        worst=0.0,
        at_eval=True,
    ),
    Metric(
        "image_to_text_r10",
        "max",
        "image→text recall@10",
        "fraction of images with a caption in the top 10",
        RECALL_MEASURED,
        worst=0.0,
        at_eval=True,
    ),
    Metric(
        "text_to_image_r10",
        "max",
        "text→image recall@10",
        "fraction of captions with their image in the top 10",
        RECALL_MEASURED,
        worst=0.0,
        at_eval=True,
    ),
    Metric(
        "mismatch_fraction",
        "min",
        "mismatch fraction",
        "fraction of pairs with another text at least as close to the image as its own",
        "on one (image, first caption) pair per eval image; a tie counts as a mismatch",
        worst=1.0,
        at_eval=True,
    ),
    Metric(
        "pair_cosine",
        None,
        "matched-pair cosine",
        "mean cosine of matched image–text pairs (1 for collapsed embeddings too)",
        "on one (image, first caption) pair per eval image",
        at_eval=True,
    ),
    Metric(
        "instance_gap",
        "min",
        "instance gap L2I",
        "mean distance between each caption and its own image (Schrodi et al. 2025's L2I)",
        "over every caption of the eval split and its image, normalized features",
        worst=2.0,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "relative_gap",
        "min",
        "relative modality gap RMG",
        "matched-pair dissimilarity relative to the within-modality ones (Schrodi et al. 2025): 0 no gap, 1 the worst",
        "m / (m + (a + b)/2) with s = 1 − (cos + 1)/2: m over (caption, its image) floored at 1e-3, a over distinct images, "
        "b over distinct captions of the eval split, as the authors' code (collapsed towers score 1)",
        worst=1.0,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "alignment",
        "min",
        "alignment (Wang–Isola)",
        "mean squared distance between matched image and text embeddings (Wang & Isola 2020)",
        "over one (image, first caption) pair per eval image; 0 for identical pairs, 4 for opposite ones",
        worst=4.0,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "uniformity_loss",
        "min",
        "uniformity loss (Wang–Isola, t = 2)",
        "log of the mean Gaussian potential exp(−2‖z_i − z_j‖²) over distinct pairs of the pooled embeddings; lower is more "
        "uniform, 0 when every embedding coincides (Wang & Isola 2020; not the W₂ uniformity)",
        "over the images and first captions of the eval split pooled (2n embeddings)",
        worst=0.0,
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "image_cone",
        None,
        "image cone (mean cosine)",
        "mean cosine between distinct image embeddings: about 0 spread over the sphere, 1 all one way (Liang et al. 2022)",
        "over the eval split's images",
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "text_cone",
        None,
        "text cone (mean cosine)",
        "mean cosine between distinct caption embeddings (Liang et al. 2022's cone effect)",
        "over the eval split's first captions",
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "gap_dimensions",
        None,
        "gap dimensions (90 % of ‖Δ‖²)",
        "the fewest coordinates, largest |Δ_k| first, that carry 90 % of the squared centroid gap (Schrodi et al. 2025)",
        "on the gap pairs (gap_pairs); finite-sample noise spreads over every coordinate, so a small gap needs more of them",
        summarized=True,
        at_eval=True,
    ),
    Metric(
        "modality_separability",
        "min",
        "modality separability",
        "held-out accuracy of a linear classifier telling image from text embeddings: 0.5 indistinguishable, 1 split by a hyperplane",
        "raygap's linear probe (L-BFGS logistic regression) on the images and first captions of half the eval pairs, scored on "
        "the other half (a pair's image and caption on one side; halves drawn by eval.seed); once per seed, after the last step",
        worst=1.0,
        summarized=True,
    ),
    Metric("temperature", None, "temperature T = 1/τ", "the softmax temperature at the evaluation point", summarized=True, at_eval=True),
    Metric("tau", None, "τ (logit scale)", "the logit scale τ = 1/T at the evaluation point", at_eval=True),
    Metric(
        "logit_bias",
        None,
        "SigLIP bias b",
        "the sigmoid loss's bias b at the evaluation point (learned unless loss.learn_bias is false)",
        "loss.kind siglip only; null for the other losses",
        summarized=True,
        at_eval=True,
    ),
    Metric("loss", "min", "training loss", "mean contrastive loss over the steps since the last evaluation point", at_eval=True),
    Metric(
        "delta",
        "min",
        "δ",
        "theory model: the offset of the two modalities' planes (the gap is proportional to it)",
        worst=1.0,
        summarized=True,
    ),
    Metric(
        "margin",
        "max",
        "margin (own − closest other)",
        "theory model: own-pair similarity minus the closest other pair's, the worst pair",
        worst=-2.0,
        summarized=True,
    ),
    Metric(
        "mmvp_accuracy",
        "max",
        "MMVP-VLM accuracy",
        "MMVP-VLM pair accuracy, the mean over its 9 visual-pattern groups",
        f"mean of the 9 groups' accuracies; {MMVP_MEASURED}",
        worst=0.0,
        summarized=True,
    ),
    *[
        Metric(
            mmvp_column(group),
            "max",
            f"MMVP-VLM: {group.lower()}",
            f"MMVP-VLM pair accuracy on its '{group}' pairs",
            MMVP_MEASURED,
            worst=0.0,
        )
        for group in MMVP_GROUPS
    ],
    Metric("samples_per_s", "max", "samples/s", "training throughput over the trial's training steps"),
    Metric("train_seconds", "min", "training seconds", "time in training steps, without set-up and evaluation"),
    Metric("eval_seconds", "min", "evaluation seconds", "time spent evaluating"),
    Metric("wall_seconds", "min", "wall seconds", "a seed's wall-clock time, start-up included", summarized=True),
]

METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}

DEFAULT_OBJECTIVES: dict[str, Direction] = {m.name: m.better for m in _METRICS if m.default_objective}  # type: ignore[misc]
TABLE_COLUMNS: list[str] = [m.name for m in _METRICS if m.table]
SUMMARIZED: list[str] = [m.name for m in _METRICS if m.summarized]
AT_EVAL: list[str] = [m.name for m in _METRICS if m.at_eval]
# Parquet footers of trials and history: how each metric was measured.
MEASURED: dict[str, str] = {m.name: m.measured for m in _METRICS if m.measured}

# Labels of searched parameters (`param.*` columns) on axes.
PARAMETER_LABELS = {
    "param.temperature.value": "fixed temperature T",
    "param.temperature.start": "schedule start T",
    "param.temperature.end": "schedule end T",
    "param.temperature.lr_scale": "temperature LR scale",
    "param.swap.p": "swap probability",
}


def label(column: str) -> str:
    """The label of a metric or a searched parameter column."""
    if column in METRICS:
        return METRICS[column].label
    return PARAMETER_LABELS.get(column, column.removeprefix("param.").replace("_", " "))


def study_objectives(spec: dict) -> dict[str, str]:
    """A stored study file's objectives (spec.yaml as a mapping), the defaults where it names none:
    what `study status` and the report both rank by."""
    named = (spec.get("search") or {}).get("objectives")
    return objectives_from(named) if named else dict(DEFAULT_OBJECTIVES)


def objectives_from(value: dict[str, str] | list[str]) -> dict[str, str]:
    """A study file's `search.objectives`: a mapping metric → min|max as it is, or a list of metric
    names, each optimised in its better direction."""
    if isinstance(value, dict):
        return dict(value)
    if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        raise ValueError(f"expected a mapping metric: min|max or a list of metric names, got {value!r}")
    objectives: dict[str, str] = {}
    for name in value:
        if name not in METRICS:
            raise ValueError(f"unknown objective {name!r}; metrics: {', '.join(METRICS)}")
        better = METRICS[name].better
        if better is None:
            raise ValueError(f"{name} has no better direction; give objectives as a mapping metric: min|max")
        objectives[name] = better
    return objectives


# What measures each metric: the CLIP evaluators need the probe split (zero-shot, linear probe) or
# an MMVP-VLM copy; a theory simulation measures only its own curve.
NEEDS_PROBE = {"zero_shot_top1", "linear_probe_top1"}
NEEDS_MMVP = {"mmvp_accuracy", *(mmvp_column(group) for group in MMVP_GROUPS)}
THEORY_MEASURES = {"modality_gap", "delta", "tau", "temperature", "margin", "loss", "train_seconds", "wall_seconds"}
CLIP_ONLY = {"delta", "margin"}


def unmeasured(name: str, *, theory: bool, probe: bool, mmvp: bool) -> str | None:
    """Why a trial of this configuration never measures metric `name`, or None when it does."""
    if theory:
        return None if name in THEORY_MEASURES else f"theory trials measure only {', '.join(sorted(THEORY_MEASURES))}"
    if name in CLIP_ONLY:
        return f"{name} is measured by theory trials (a theory: section) only"
    if name in NEEDS_PROBE and not probe:
        return f"{name} needs the probe split, and data.probe is null"
    if name in NEEDS_MMVP and not mmvp:
        return f"{name} needs an MMVP-VLM copy (data.mmvp), and none is given"
    return None


def check_objectives(objectives: dict[str, str]) -> None:
    """Raise ValueError unless every objective is a catalogue metric optimised in its better direction."""
    if not objectives:
        raise ValueError("objectives needs at least one metric")
    for name, direction in objectives.items():
        metric = METRICS.get(name)
        if metric is None:
            raise ValueError(f"unknown objective {name!r}; metrics: {', '.join(METRICS)}")
        if direction not in ("min", "max"):
            raise ValueError(f"{name}: expected min or max, got {direction!r}")
        if metric.better is not None and direction != metric.better:
            word = "smaller" if metric.better == "min" else "larger"
            raise ValueError(
                f"{name}: {word} is better ({metric.description}), so it is optimised with {metric.better!r}, not {direction!r}"
            )


def best(values: list[float], name: str) -> float | None:
    """The best of `values` by the metric's direction, NaN and None ignored; None if none is left
    or the metric has no better side."""
    direction = METRICS[name].better
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if direction is None or not finite:
        return None
    return min(finite) if direction == "min" else max(finite)
