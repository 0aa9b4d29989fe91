"""What a seed keeps beside its results (the `artifacts` section): its weights, final or at its
best evaluation point, and the eval split's embeddings. Made here, on the training device's rank
0; written by raygap.kept_files.record_artifacts wherever the results folder is."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch

from raygap import tolerance
from raygap.clip.evaluate import encode_split


@dataclass
class KeptArtifacts:
    """A seed's artifacts: weights (a saved open_clip state dict, as bytes) with the step they are
    from, and the eval split's embeddings (image (n, m), text (c, m), caption_image (c,))."""

    weights: bytes | None = None
    weights_step: int | None = None
    embeddings: dict[str, np.ndarray] | None = None
    shift: list[dict] | None = None
    """With the embeddings: Liang et al.'s shift curve of them (raygap.clip.measure.shift_curve), for the report."""


@dataclass
class BestWeights:
    """The weights at the evaluation point best by one objective so far (ties keep the earlier)."""

    objective: str
    direction: str
    value: float = math.nan
    step: int | None = None
    weights: dict | None = None

    def offer(self, model: torch.nn.Module, row: dict) -> None:
        value = row.get(self.objective)
        if value is None or not math.isfinite(value):
            return
        better = value < self.value if self.direction == "min" else value > self.value
        if self.step is None or (better and not tolerance.equal(value, self.value)):
            self.value, self.step = float(value), int(row["step"])
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def state_dict(self) -> dict:
        return {"value": self.value, "step": self.step, "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.step, self.weights = state["value"], state["step"], state["weights"]


def best_tracker(cfg) -> BestWeights | None:
    """A tracker when the run keeps its best weights: by the study's first objective, in its direction."""
    if cfg.artifacts.weights != "best":
        return None
    objective, direction = next(iter(cfg.search.objectives.items()))
    return BestWeights(objective, direction)


def collect(run, best: BestWeights | None, step: int) -> KeptArtifacts:
    """The artifacts the run's configuration asks for, after its last step."""
    wanted = run.cfg.artifacts
    kept = KeptArtifacts()
    if wanted.weights != "none":
        weights = best.weights if best is not None and best.weights is not None else run.model.state_dict()
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, buffer)
        kept.weights, kept.weights_step = buffer.getvalue(), best.step if best is not None and best.step is not None else step
    if wanted.embeddings:
        image, text = encode_split(run, run.eval_set)
        owner = np.asarray(torch.as_tensor(run.eval_set.caption_image).cpu())
        kept.embeddings = {"image": image.float().cpu().numpy(), "text": text.float().cpu().numpy(), "caption_image": owner}
        from raygap.clip.measure import shift_curve  # measure imports evaluate, as this module does

        kept.shift = shift_curve(image, text, owner)
    return kept
