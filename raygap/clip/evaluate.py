"""Model + held-out data → metrics dict (names as in trials.parquet / history.parquet)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from raygap import catalog
from raygap.clip import finite_sample, gap_measures, metrics
from raygap.data import ImageTextSet
from raygap.data.sets import first_captions

if TYPE_CHECKING:  # the loop calls the evaluators with its SeedRun
    from raygap.clip.build import SeedRun
    from raygap.clip.model import ClipModel
    from raygap.config import EvalSpec


@torch.no_grad()
def _encode_sharded(encode: Callable[[torch.Tensor], torch.Tensor], n: int, batch_size: int, rank: int, world_size: int) -> torch.Tensor:
    """Encode items 0..n-1: each worker a contiguous shard, then all-gather (every rank gets all)."""
    per_rank = math.ceil(n / world_size)
    start, stop = min(rank * per_rank, n), min((rank + 1) * per_rank, n)
    # An empty shard still encodes one item, so that every rank knows the feature width.
    chunks = [encode(torch.arange(s, min(s + batch_size, stop))) for s in range(start, stop, batch_size)] or [encode(torch.arange(1))[:0]]
    local = torch.cat(chunks).float()
    if world_size == 1:
        return local.cpu()
    padded = torch.zeros(per_rank, local.shape[1], device=local.device)
    padded[: len(local)] = local
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded)
    sizes = [max(0, min(n, (r + 1) * per_rank) - min(r * per_rank, n)) for r in range(world_size)]
    return torch.cat([g[:size] for g, size in zip(gathered, sizes)]).cpu()


def encode_images(
    model: ClipModel, data: ImageTextSet, device: torch.device, batch_size: int, rank: int = 0, world_size: int = 1
) -> torch.Tensor:
    return _encode_sharded(
        lambda idx: model.encode_image(data.images.batch(idx).to(device)), len(data.images), batch_size, rank, world_size
    )


def encode_texts(
    model: ClipModel, tokens: torch.Tensor, device: torch.device, batch_size: int, rank: int = 0, world_size: int = 1
) -> torch.Tensor:
    return _encode_sharded(lambda idx: model.encode_text(tokens[idx].to(device)), len(tokens), batch_size, rank, world_size)


def gap_subset(n_pairs: int, gap_pairs: int | None, seed: int) -> torch.Tensor:
    """The pairs the gap is measured on: a fixed random subset, or all of them."""
    if gap_pairs is None or gap_pairs >= n_pairs:
        return torch.arange(n_pairs)
    return torch.randperm(n_pairs, generator=torch.Generator().manual_seed(seed))[:gap_pairs].sort().values


def embedding_metrics(
    image: torch.Tensor, text: torch.Tensor, caption_image: torch.Tensor, gap_pairs: int | None = None, seed: int = 0
) -> dict[str, float]:
    """Gap (on `gap_pairs` pairs; plain, bias-corrected and its interval), uniformity, mismatch and
    pair cosine on one matched pair per image; recalls on all captions; whether the model is
    degenerate (collapsed or at chance). `caption_image[c]` is caption c's image."""
    caption_image = torch.as_tensor(caption_image, dtype=torch.long)
    first = first_captions(caption_image, len(image))
    if bool((first < 0).any()):
        raise ValueError(f"every image needs a caption; {int((first < 0).sum())} of {len(image)} have none")
    x, y = image, text[first]
    subset = gap_subset(len(x), gap_pairs, seed)
    out = {
        "modality_gap": metrics.modality_gap(x[subset], y[subset]),
        **finite_sample.corrected_gap(x[subset], y[subset]),
        "gap_pairs": len(subset),
        "uniformity": metrics.uniformity(x, y),
        "mismatch_fraction": metrics.mismatch_fraction(x, y),
        "pair_cosine": metrics.pair_cosine(x, y),
        "gap_dimensions": gap_measures.gap_dimensions(x[subset], y[subset]),
        "instance_gap": gap_measures.instance_gap(image, text, caption_image),
        "relative_gap": gap_measures.relative_gap(image, text, caption_image),
        "alignment": gap_measures.alignment(x, y),
        "uniformity_loss": gap_measures.uniformity_loss(x, y),
        "image_cone": gap_measures.cone(x),
        "text_cone": gap_measures.cone(y),
    }
    out.update(metrics.recall_at_k(image, text, caption_image))
    out["mean_r1"] = (out["image_to_text_r1"] + out["text_to_image_r1"]) / 2
    chance = finite_sample.chance_r1(torch.bincount(caption_image, minlength=len(image)))
    out["degenerate"] = finite_sample.degenerate(out["uniformity"], out["mean_r1"], chance, len(image))
    return out


def probe_metrics(
    model: ClipModel,
    probe_train: ImageTextSet,
    probe_test: ImageTextSet,
    spec: EvalSpec,
    tokenize,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, float]:
    """Zero-shot top-1 on the probe test split and linear-probe top-1 (train split → test split),
    with the prompt templates and the probe (fixed or swept) of the `eval` section."""
    templates, batch_size = spec.templates, spec.batch_size
    test_labels, class_names = probe_test.classes()
    train_labels, _ = probe_train.classes()
    test_images = encode_images(model, probe_test, device, batch_size, rank, world_size)
    class_embeddings = []
    for name in class_names:
        prompts = encode_texts(model, tokenize([t.format(label=name) for t in templates]), device, batch_size)
        # CLIP's prompt ensembling: average the normalized prompt embeddings of a class.
        class_embeddings.append(nn.functional.normalize(prompts, dim=-1).mean(0))
    train_images = encode_images(model, probe_train, device, batch_size, rank, world_size)
    return {
        "zero_shot_top1": metrics.zero_shot_accuracy(test_images, torch.stack(class_embeddings), test_labels),
        **_linear_probe(train_images, train_labels, test_images, test_labels, spec.linear_probe == "swept", spec.probe_l2, spec.seed),
    }


def _linear_probe(train_images, train_labels, test_images, test_labels, swept: bool, l2: float, seed: int) -> dict[str, float]:
    if swept:
        accuracy, l2 = metrics.swept_linear_probe(train_images, train_labels, test_images, test_labels, seed)
    else:
        accuracy = metrics.linear_probe_accuracy(train_images, train_labels, test_images, test_labels, l2=l2)
    return {"linear_probe_top1": accuracy, "linear_probe_l2": l2}


def evaluate(
    model: nn.Module,
    data: ImageTextSet,
    device: torch.device,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    gap_pairs: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Embedding metrics of `model` on a held-out image–caption set.

    With several workers each encodes a shard and the features are gathered, so every rank (and
    rank 0, whose report Ray Train keeps) computes the metrics on the whole split.
    """
    was_training = model.training
    model.eval()
    try:
        image = encode_images(model, data, device, batch_size, rank, world_size)
        text = encode_texts(model, data.tokens, device, batch_size, rank, world_size)
    finally:
        model.train(was_training)
    return embedding_metrics(image, text, data.caption_image, gap_pairs, seed)


# ------------------------------------------------------------------------------ evaluators
# An evaluator maps the run to named numbers. Those of EVALUATORS run at every evaluation point
# (their numbers go into history.parquet); those of FINAL_EVALUATORS once, after the last step.
Evaluator = Callable[["SeedRun"], dict[str, Any]]


def embedding_evaluator(run: SeedRun) -> dict[str, Any]:
    """Gap, uniformity, recalls, mismatch and pair cosine on the eval split."""
    cfg = run.cfg
    return evaluate(run.model, run.eval_set, run.device, cfg.eval.batch_size, run.rank, run.world_size, cfg.eval.gap_pairs, cfg.eval.seed)


def probe_evaluator(run: SeedRun) -> dict[str, Any]:
    """Zero-shot and linear-probe top-1 on the probe splits (none without `data.probe`)."""
    if run.probe is None:
        return {}
    run.model.eval()
    try:
        cfg = run.cfg
        return probe_metrics(run.model, *run.probe, cfg.eval, run.bundle.tokenize, run.device, run.rank, run.world_size)
    finally:
        run.model.train()


def encode_split(run: SeedRun, data: ImageTextSet) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's image and caption embeddings under the run's model, in eval mode (collective
    over the run's workers: every rank gets all of them)."""
    batch = run.cfg.eval.batch_size
    run.model.eval()
    try:
        image = encode_images(run.model, data, run.device, batch, run.rank, run.world_size)
        text = encode_texts(run.model, data.tokens, run.device, batch, run.rank, run.world_size)
    finally:
        run.model.train()
    return image, text


def mmvp_evaluator(run: SeedRun) -> dict[str, Any]:
    """MMVP-VLM's accuracy and each group's (none without `data.mmvp`)."""
    if run.mmvp is None:
        return {}
    image, text = encode_split(run, run.mmvp)
    per_group, accuracy = metrics.mmvp_scores(image, text, run.mmvp.classes()[0], len(catalog.MMVP_GROUPS))
    return {"mmvp_accuracy": accuracy, **{catalog.mmvp_column(g): value for g, value in zip(catalog.MMVP_GROUPS, per_group)}}


def separability_evaluator(run: SeedRun) -> dict[str, Any]:
    """How well a linear classifier tells the eval split's image embeddings from its captions'
    (one matched pair per image): a probe fit, so once per seed rather than at every point."""
    image, text = encode_split(run, run.eval_set)
    return {"modality_separability": gap_measures.separability(image, text[run.eval_set.first_captions()], run.cfg.eval.seed)}


EVALUATORS: list[Evaluator] = [embedding_evaluator]
FINAL_EVALUATORS: list[Evaluator] = [probe_evaluator, mmvp_evaluator, separability_evaluator]
