"""The `model:` section: which CLIP model a trial trains, from random weights or a local checkpoint,
and which of its towers stay frozen."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from raygap.config.base import Strict, check_paths

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
