"""The catalogue's second part, after the paper's measures: the literature's other gap and
geometry measures, the training state (temperature, loss, a loss's learned bias), MMVP-VLM and a
run's cost. Entries keep the order of the columns they become."""

from __future__ import annotations

from raygap.catalog.metric import MMVP_GROUPS, MMVP_MEASURED, Metric, mmvp_column

FURTHER_MEASURES = [
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
