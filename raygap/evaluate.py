"""Model + held-out data → metrics dict (names as in trials.parquet / history.parquet)."""

from __future__ import annotations

import torch
from torch import nn

from raygap import metrics
from raygap.data import ImageTextSet


@torch.no_grad()
def encode_images(model: nn.Module, data: ImageTextSet, device: torch.device, batch_size: int) -> torch.Tensor:
    out = [
        model.encode_image(data.images.batch(torch.arange(s, min(s + batch_size, len(data.images)))).to(device)).float().cpu()
        for s in range(0, len(data.images), batch_size)
    ]
    return torch.cat(out)


@torch.no_grad()
def encode_texts(model: nn.Module, tokens: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    out = [model.encode_text(tokens[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(tokens), batch_size)]
    return torch.cat(out)


def embedding_metrics(image: torch.Tensor, text: torch.Tensor, data: ImageTextSet) -> dict[str, float]:
    """Gap, uniformity, mismatch and pair cosine on one matched pair per image; recalls on all captions."""
    first = data.first_captions()
    x, y = image, text[first]
    out = {
        "modality_gap": metrics.modality_gap(x, y),
        "uniformity": metrics.uniformity(x, y),
        "mismatch_fraction": metrics.mismatch_fraction(x, y),
        "pair_cosine": metrics.pair_cosine(x, y),
    }
    out.update(metrics.recall_at_k(image, text, data.caption_image))
    out["mean_r1"] = (out["image_to_text_r1"] + out["text_to_image_r1"]) / 2
    return out


def probe_metrics(
    model: nn.Module,
    probe_train: ImageTextSet,
    probe_test: ImageTextSet,
    templates: list[str],
    tokenize,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """Zero-shot top-1 on the probe test split and linear-probe top-1 (train split → test split)."""
    test_images = encode_images(model, probe_test, device, batch_size)
    class_embeddings = []
    for name in probe_test.class_names:
        prompts = encode_texts(model, tokenize([t.format(label=name) for t in templates]), device, batch_size)
        # CLIP's prompt ensembling: average the normalized prompt embeddings of a class.
        class_embeddings.append(nn.functional.normalize(prompts, dim=-1).mean(0))
    train_images = encode_images(model, probe_train, device, batch_size)
    return {
        "zero_shot_top1": metrics.zero_shot_accuracy(test_images, torch.stack(class_embeddings), probe_test.labels),
        "linear_probe_top1": metrics.linear_probe_accuracy(train_images, probe_train.labels, test_images, probe_test.labels),
    }


def evaluate(model: nn.Module, data: ImageTextSet, device: torch.device, batch_size: int) -> dict[str, float]:
    """Embedding metrics of `model` on a held-out image–caption set."""
    was_training = model.training
    model.eval()
    try:
        image = encode_images(model, data, device, batch_size)
        text = encode_texts(model, data.tokens, device, batch_size)
    finally:
        model.train(was_training)
    return embedding_metrics(image, text, data)
