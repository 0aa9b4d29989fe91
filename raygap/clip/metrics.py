"""Embedding-space metrics: pure functions on torch tensors.

Every function L2-normalizes its feature inputs itself, works in float64 for stable sums, and
returns plain Python numbers. Formulas follow the paper (docs/metrics.md); which way each metric is better
lives in the catalogue (raygap/catalog/), not here.

Undefined never looks good: a metric whose features contain a NaN or ±inf, or a row of zero norm
(a direction that normalization cannot define), returns float('nan'), as does one whose answer is
trivial whatever the model (one class, k at least the number of candidates, a single pair, no
rows). Ties are never resolved in favour of the correct item: ranks and argmaxes are taken under
uniformly random tie-breaking and the expected value is returned, so collapsed embeddings score
chance.

What ties is decided from the data, never by exact float equality: two scores tie when they differ
by at most raygap.tolerance.score_tolerance of the features' dtype and dimension (float32 features
at m = 512: 4.8e-7), the most a one-ulp change of the features or the float64 dot product's
rounding can move a score. So a result does not depend on which BLAS kernel ran or how rows were
chunked, and features perturbed by one ulp give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from raygap import tolerance
from raygap.clip import ranks

NAN = float("nan")


def unit_rows(features: torch.Tensor) -> torch.Tensor | None:
    """Rows scaled to unit L2 norm, in float64; None when any entry is non-finite or any row has zero
    (or non-finite) norm, so that no metric silently runs on an undefined direction."""
    z = features.detach().to(torch.float64)
    if not bool(torch.isfinite(z).all()):
        return None
    norm = torch.linalg.vector_norm(z, dim=-1, keepdim=True)
    if not bool(((norm > 0) & torch.isfinite(norm)).all()):
        return None
    return z / norm


def _score_tolerance(*features: torch.Tensor, scale: float = 1.0) -> float:
    """The tie tolerance of scores computed from `features` (the coarsest dtype among them decides)."""
    eps = max(torch.finfo(f.dtype).eps if f.is_floating_point() else tolerance.FLOAT64_EPS for f in features)
    return tolerance.score_tolerance(eps, features[0].shape[-1], scale)


def check_pairs(image: torch.Tensor, text: torch.Tensor) -> None:
    if image.ndim != 2 or image.shape != text.shape:
        raise ValueError(f"expected paired features of equal shape (n, m), got {tuple(image.shape)} and {tuple(text.shape)}")


def _labels(labels: torch.Tensor, n: int, n_classes: int, what: str) -> torch.Tensor:
    out = torch.as_tensor(labels, dtype=torch.long)
    if out.shape != (n,):
        raise ValueError(f"{what} must have one label per row ({n}), got shape {tuple(out.shape)}")
    if len(out) and (int(out.min()) < 0 or int(out.max()) >= n_classes):
        raise ValueError(f"{what} must lie in [0, {n_classes}), got values from {int(out.min())} to {int(out.max())}")
    return out


def _expected_top1(scores: torch.Tensor, labels: torch.Tensor, tol: float) -> float:
    """Expected top-1 accuracy when ties for the highest score (within `tol` of it) are broken
    uniformly at random: a row scores 1/|tied set| when its label is in the tied set, else 0."""
    is_best = scores >= scores.max(1, keepdim=True).values - tol
    hit = is_best.gather(1, labels[:, None]).squeeze(1).double() / is_best.sum(1).double()
    return float(hit.mean()) if len(hit) else NAN


def modality_gap(image: torch.Tensor, text: torch.Tensor) -> float:
    """Distance between the centroids of the image and text embeddings (Liang et al. 2022).

    NaN when either side is empty or has a NaN/inf entry or a zero-norm row. Collapsed towers give
    their true centroid distance (0 when both collapsed onto the same point).
    """
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) == 0 or len(y) == 0:
        return NAN
    return float(torch.linalg.vector_norm(x.mean(0) - y.mean(0)))


def uniformity(image: torch.Tensor, text: torch.Tensor) -> float:
    """−W₂ between the stacked features and N(0, I/m) (Fang et al.); 0 is perfectly uniform.

    W₂² = ‖μ‖² + 1 + tr(Σ) − (2/√m)·tr(Σ^½), μ and Σ (divided by N) over all 2n features. Fully
    collapsed features (every row the same point) give μ unit and Σ = 0, so −√2, the worst value.
    NaN when there are no rows or a NaN/inf entry or a zero-norm row.
    """
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) + len(y) == 0:
        return NAN
    z = torch.cat([x, y])
    m = z.shape[1]
    mu = z.mean(0)
    centred = z - mu
    cov = centred.T @ centred / z.shape[0]
    # Σ is symmetric PSD: tr(Σ^½) is the sum of the square roots of its eigenvalues.
    sqrt_trace = torch.linalg.eigvalsh(cov).clamp_min(0).sqrt().sum()
    w2_squared = mu @ mu + 1 + torch.trace(cov) - 2 / math.sqrt(m) * sqrt_trace
    return -math.sqrt(max(float(w2_squared), 0.0))


def recall_at_k(
    image: torch.Tensor,
    text: torch.Tensor,
    text_to_image: torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Expected retrieval recall@k in both directions under uniformly random tie-breaking.

    `image` is (n_images, m), `text` is (n_texts, m) and `text_to_image[j]` is the index of caption
    j's image; every image needs at least one caption.

    Ties: candidates whose cosines differ by at most the features' score tolerance (module
    docstring) are put in a uniformly random order and the expected
    recall over that order is returned, so ties never favour the correct item and a collapsed model
    scores chance (k/n), never 1.
    - text→image: with g other images strictly above the own image and t other images tied with it,
      P(hit@k) = clip((k − g)/(t + 1), 0, 1).
    - image→text (a hit when ANY own caption is in the top k): with s* the best own-caption score,
      g non-own captions strictly above s*, t non-own and o own captions tied at s*,
      P(hit@k) = 1 − C(t, k − g)/C(t + o, k − g) for 0 < k − g ≤ t, 0 for k ≤ g, 1 for k − g > t.

    NaN: every key when the features contain a NaN/inf entry or a zero-norm row, or there are no
    images; text_to_image_r{k} when k ≥ n_images and image_to_text_r{k} when k > n_texts − (fewest
    captions of an image), i.e. whenever every item is a hit whatever the scores.
    """
    owner, captions_per_image = ranks.retrieval_owner(image, text, text_to_image, ks)
    n_images, n_texts = image.shape[0], text.shape[0]
    nan = {f"{d}_r{k}": NAN for k in ks for d in ("image_to_text", "text_to_image")}
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or n_images == 0:
        return nan
    tol = _score_tolerance(image, text)
    i2t = ranks.image_to_text_counts(x, y, ranks.captions_of(owner, captions_per_image), chunk_size, tol)
    t2i = ranks.text_to_image_counts(x, y, owner, chunk_size, tol)

    max_i2t_rank = n_texts - int(captions_per_image.min())  # the worst rank an image's best own caption can have
    out = {}
    for k in ks:
        i2t_hit = ranks.tied_hit_probability(i2t[0], i2t[1], i2t[2], k)
        t2i_hit = ranks.tied_hit_probability(t2i[0], t2i[1], torch.ones_like(t2i[1]), k)
        out[f"image_to_text_r{k}"] = NAN if k > max_i2t_rank else float(i2t_hit.mean())
        out[f"text_to_image_r{k}"] = NAN if k >= n_images else float(t2i_hit.mean())
    return out


def pair_margins(image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Per pair i: ⟨x_i, y_i⟩ − max_{j≠i} ⟨x_i, y_j⟩ (negative when another text is closer, 0 on a tie).

    All NaN when the features contain a NaN/inf entry or a zero-norm row; +inf for a single pair
    (no other text).
    """
    check_pairs(image, text)
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None:
        return torch.full((image.shape[0],), NAN, dtype=torch.float64)
    sim = x @ y.T
    own = sim.diagonal().clone()
    if len(own) == 0:
        return own
    return own - sim.fill_diagonal_(-math.inf).max(1).values


def mismatch_fraction(image: torch.Tensor, text: torch.Tensor) -> float:
    """Fraction of pairs i with some text y_j (j ≠ i) at least as close to x_i as its own y_i.

    A tie (a margin within the score tolerance of 0) counts as a mismatch, so collapsed features
    give 1, never 0. NaN for fewer than two pairs or features with a NaN/inf entry or a zero-norm row.
    """
    margins = pair_margins(image, text)
    if len(margins) < 2 or bool(margins.isnan().any()):
        return NAN
    return float((margins <= _score_tolerance(image, text)).double().mean())


def pair_cosine(image: torch.Tensor, text: torch.Tensor) -> float:
    """Mean cosine similarity of matched pairs.

    NaN for no pairs or features with a NaN/inf entry or a zero-norm row; collapsed features give 1
    (a descriptive number, not a score).
    """
    check_pairs(image, text)
    x, y = unit_rows(image), unit_rows(text)
    if x is None or y is None or len(x) == 0:
        return NAN
    return float((x * y).sum(1).mean())


def zero_shot_accuracy(image: torch.Tensor, class_text: torch.Tensor, labels: torch.Tensor) -> float:
    """Expected top-1 accuracy of classifying each image as its most similar class embedding.

    `class_text` is (n_classes, m): one (template-averaged) text embedding per class; `labels` index
    its rows. Ties for the highest similarity (within the score tolerance) are broken uniformly at random and the expected
    accuracy is returned (identical class embeddings give 1/n_classes). NaN for fewer than two
    classes (trivially 1), no images, or features with a NaN/inf entry or a zero-norm row.
    """
    labels = _labels(labels, image.shape[0], class_text.shape[0], "labels")
    x, c = unit_rows(image), unit_rows(class_text)
    if x is None or c is None or c.shape[0] < 2:
        return NAN
    return _expected_top1(x @ c.T, labels, _score_tolerance(image, class_text))


def linear_probe_accuracy(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    l2: float = 1e-4,
    max_iter: int = 200,
) -> float:
    """Expected top-1 test accuracy of a multinomial logistic regression on frozen, normalized features.

    Full-batch L-BFGS in float64 from zero weights: deterministic for given inputs. Ties between
    class logits (within the score tolerance scaled by the logits' size) are broken uniformly at
    random (expected accuracy). Constant features leave only
    the class biases, so the probe scores the majority-class rate: that is the chance level here.
    NaN when the training labels hold fewer than two classes (nothing to learn), there are no test
    rows, or the features contain a NaN/inf entry or a zero-norm row.
    """
    y_train = torch.as_tensor(train_labels, dtype=torch.long)
    y_test = torch.as_tensor(test_labels, dtype=torch.long)
    n_classes = int(max(y_train.max() if len(y_train) else -1, y_test.max() if len(y_test) else -1)) + 1
    y_train = _labels(y_train, train_feats.shape[0], n_classes, "train_labels")
    y_test = _labels(y_test, test_feats.shape[0], n_classes, "test_labels")
    x_train, x_test = unit_rows(train_feats), unit_rows(test_feats)
    if x_train is None or x_test is None or len(y_train.unique()) < 2 or len(y_test) == 0:
        return NAN
    weight = torch.zeros(x_train.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x_train @ weight + bias, y_train) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    weight, bias = weight.detach(), bias.detach()
    # Logits are not cosines: the tolerance scales with the largest |x|·|w| + |b| among them.
    scale = float((x_test.abs() @ weight.abs() + bias.abs()).max()) if len(x_test) else 1.0
    return _expected_top1(x_test @ weight + bias, y_test, _score_tolerance(train_feats, test_feats, scale=max(scale, 1.0)))


PROBE_STRENGTHS = tuple(10.0**k for k in range(-6, 7))
"""The swept probe's L2 strengths, one per decade from 10⁻⁶ to 10⁶ (CLIP's range)."""


def swept_linear_probe(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    seed: int = 0,
    strengths: Sequence[float] = PROBE_STRENGTHS,
) -> tuple[float, float]:
    """(test accuracy, chosen L2 strength) of the probe whose strength is chosen as CLIP's is: fit
    on four fifths of the train split (drawn by `seed`) at each strength, keep the one with the
    best validation accuracy (the strongest among equals, within the score tolerance: the simplest
    model), refit on the whole train split with 1,000 iterations and score the test split."""
    labels = torch.as_tensor(train_labels, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    held = order[: max(1, len(order) // 5)]
    fit = order[len(held) :]
    if len(labels[fit].unique()) < 2:
        return NAN, NAN
    scores = [
        linear_probe_accuracy(train_feats[fit], labels[fit], train_feats[held], labels[held], l2=l2, max_iter=1000) for l2 in strengths
    ]
    if any(math.isnan(v) for v in scores):
        return NAN, NAN
    best = max(scores)
    chosen = max(l2 for l2, v in zip(strengths, scores) if v >= best - tolerance.RELATIVE)
    return linear_probe_accuracy(train_feats, labels, test_feats, test_labels, l2=chosen, max_iter=1000), chosen


def mmvp_scores(image: torch.Tensor, text: torch.Tensor, groups: torch.Tensor, n_groups: int) -> tuple[list[float], float]:
    """MMVP-VLM's pair accuracy per group and their mean.

    Rows come in pairs (2p, 2p + 1): two images and the two statements' prompts, statement i
    describing image i. A statement picks the image closer to it (cosine); a pair counts when both
    statements pick their own image. A tie between the two images (cosines within the score
    tolerance) is broken uniformly at random and
    the expected score is used (a statement scores 1/2), so collapsed features score the chance
    0.25. `groups` gives each row's group (both rows of a pair share one). Each group's accuracy is
    over its pairs (NaN without pairs); the mean is over groups, NaN when any group's is. Every
    score is NaN for features with a NaN/inf entry or a zero-norm row.
    """
    check_pairs(image, text)
    if image.shape[0] % 2:
        raise ValueError(f"expected rows in pairs, got {image.shape[0]}")
    groups = _labels(groups, image.shape[0], n_groups, "groups")[0::2]
    x, t = unit_rows(image), unit_rows(text)
    if x is None or t is None:
        return [NAN] * n_groups, NAN

    tol = _score_tolerance(image, text)

    def picks_own(own: torch.Tensor, other: torch.Tensor, statement: torch.Tensor) -> torch.Tensor:
        a, b = (own * statement).sum(1), (other * statement).sum(1)
        return (a > b + tol).double() + 0.5 * ((a - b).abs() <= tol).double()

    first, second = x[0::2], x[1::2]
    pair = picks_own(first, second, t[0::2]) * picks_own(second, first, t[1::2])
    per_group = [float(pair[groups == g].mean()) if bool((groups == g).any()) else NAN for g in range(n_groups)]
    return per_group, sum(per_group) / n_groups
