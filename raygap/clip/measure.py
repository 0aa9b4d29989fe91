"""`raygap measure`: every measure of the catalogue for embeddings already made, or for a model
(random weights, or a local checkpoint) on a study file's data; no training, no Ray."""

from __future__ import annotations

import math

import numpy as np
import torch

from raygap.clip import gap_measures, metrics
from raygap.clip.evaluate import embedding_metrics, encode_images, encode_texts, probe_metrics
from raygap.clip.model import build_model
from raygap.config import TrialConfig
from raygap.data import load_source
from raygap.data.sets import first_captions


def measure_embeddings(image, text, caption_image, gap_pairs: int | None = 512, seed: int = 0) -> dict[str, float]:
    """The embedding measures (the gap and its other measures, uniformity, retrieval,
    separability) of image embeddings (n, m) and caption embeddings (c, m), caption c of image
    `caption_image[c]`; the gap on `gap_pairs` pairs drawn by `seed`, as a run measures it."""
    image, text = torch.tensor(np.asarray(image)), torch.tensor(np.asarray(text))  # a copy: the arrays may be read-only
    caption_image = torch.tensor(np.asarray(caption_image), dtype=torch.long)
    out = embedding_metrics(image, text, caption_image, gap_pairs, seed)
    out["modality_separability"] = gap_measures.separability(image, text[first_captions(caption_image, len(image))], seed)
    return out


SHIFTS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
"""Liang et al.'s shift λ, from widening the gap (λ < 0) through closing it (0.5) to swapping sides (1)."""


def shift_curve(image, text, caption_image, shifts=SHIFTS) -> list[dict[str, float]]:
    """The gap and retrieval as both modalities move along the gap vector by λ (gap_measures.shifted),
    one row per λ, and a last row for each modality centred (shift NaN, `centred` 1)."""
    image, text = torch.tensor(np.asarray(image)), torch.tensor(np.asarray(text))
    caption_image = torch.tensor(np.asarray(caption_image), dtype=torch.long)
    first = first_captions(caption_image, len(image))
    rows = []
    for shift, (x, y) in [*((s, gap_measures.shifted(image, text, s)) for s in shifts), (float("nan"), gap_measures.centred(image, text))]:
        recall = metrics.recall_at_k(x, y, caption_image)
        rows.append(
            {
                "shift": shift,
                "centred": int(math.isnan(shift)),
                "modality_gap": metrics.modality_gap(x, y[first]),
                "image_to_text_r1": recall["image_to_text_r1"],
                "text_to_image_r1": recall["text_to_image_r1"],
                "mean_r1": (recall["image_to_text_r1"] + recall["text_to_image_r1"]) / 2,
            }
        )
    return rows


def ablation_curve(image, text, caption_image, removed: int = 20) -> list[dict[str, float]]:
    """Schrodi et al.'s dimension ablation (their analysis/gap_ablate_dims.py): the coordinates
    taken by |Δ_k| largest first (Δ the centroid difference of the unit image and caption
    embeddings, every caption), removed one more at a time with the rest renormalized; per number
    removed, the gap (centroid distance, L2I, RMG) and both R@1. A gap carried by a few coordinates
    falls fast while retrieval holds."""
    image, text = torch.tensor(np.asarray(image)), torch.tensor(np.asarray(text))
    caption_image = torch.tensor(np.asarray(caption_image), dtype=torch.long)
    x, y = torch.nn.functional.normalize(image.double(), dim=1), torch.nn.functional.normalize(text.double(), dim=1)
    order = (x.mean(0) - y.mean(0)).abs().argsort(descending=True).tolist()
    rows = []
    for count in range(min(removed, x.shape[1] - 1) + 1):
        keep = sorted(set(range(x.shape[1])) - set(order[:count]))
        kx, ky = x[:, keep], y[:, keep]
        recall = metrics.recall_at_k(kx, ky, caption_image)
        rows.append(
            {
                "removed": count,
                "dimension": order[count - 1] if count else -1,
                "modality_gap": metrics.modality_gap(kx, ky),
                "instance_gap": gap_measures.instance_gap(kx, ky, caption_image),
                "relative_gap": gap_measures.relative_gap(kx, ky, caption_image),
                "image_to_text_r1": recall["image_to_text_r1"],
                "text_to_image_r1": recall["text_to_image_r1"],
            }
        )
    return rows


def measure_model(cfg: TrialConfig) -> dict[str, float]:
    """Every measure of `cfg.model` (random weights drawn by train.seed, or `model.pretrained`) on
    `cfg`'s eval split, and zero-shot and the linear probe on its probe splits where it has them."""
    torch.manual_seed(cfg.train.seed)
    bundle = build_model(cfg.model.name, cfg.model.pretrained)
    bundle.model.eval()
    device, batch = torch.device("cpu"), cfg.eval.batch_size
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    # the eval split encoded once: the embedding measures and separability share it
    image, text = encode_images(bundle.model, eval_set, device, batch), encode_texts(bundle.model, eval_set.tokens, device, batch)
    out = embedding_metrics(image, text, eval_set.caption_image, cfg.eval.gap_pairs, cfg.eval.seed)
    if cfg.data.probe is not None:
        probe = load_source(cfg.data.probe.train, bundle, train=False), load_source(cfg.data.probe.test, bundle, train=False)
        out.update(probe_metrics(bundle.model, *probe, cfg.eval, bundle.tokenize, device))
    out["modality_separability"] = gap_measures.separability(image, text[eval_set.first_captions()], cfg.eval.seed)
    return out
