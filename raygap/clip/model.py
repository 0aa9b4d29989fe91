"""open_clip models from random weights, plus the small built-in ones (raygap.config.BUILTIN_MODELS) that train on a CPU.

raygap owns the temperature (raygap.clip.temperature): the model's own `logit_scale` is frozen and
never used, so open_clip's initialisation and clamping of it cannot interfere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeAlias

import open_clip
import torch
from open_clip.transform import PreprocessCfg
from torch import nn

from raygap.clip.temperature import Temperature
from raygap.config import BUILTIN_MODELS

ClipModel: TypeAlias = open_clip.CLIP | open_clip.CustomTextCLIP
"""open_clip's two model classes (encode_image, encode_text, the tower locks); open_clip ships no
type information, so to mypy this is Any: the name says what a signature takes."""


@dataclass
class ClipBundle:
    """A model with what it needs to see data: its tokenizer and its image preprocessing."""

    model: ClipModel
    tokenize: Callable[[list[str]], torch.Tensor]
    preprocess: PreprocessCfg

    @property
    def image_size(self) -> int:
        size = self.preprocess.size
        return size if isinstance(size, int) else size[0]


def build_model(name: str, pretrained: Path | None = None) -> ClipBundle:
    """A CLIP model: a built-in config name or any open_clip model name, from random weights or
    from the local checkpoint `pretrained` (nothing is ever downloaded)."""
    if name in BUILTIN_MODELS:
        model = _builtin(name)
        config = BUILTIN_MODELS[name]
        preprocess = PreprocessCfg(size=config["vision_cfg"]["image_size"])
        tokenizer = open_clip.SimpleTokenizer(context_length=config["text_cfg"]["context_length"])
    else:
        # pretrained=None and no tower weights: nothing is downloaded, the paper trains from scratch.
        model = open_clip.create_model(name, pretrained=None, pretrained_image=False, pretrained_text=False)
        preprocess = PreprocessCfg(**open_clip.get_model_preprocess_cfg(model))
        tokenizer = open_clip.get_tokenizer(name)
    if pretrained is not None:
        open_clip.load_checkpoint(model, str(pretrained), strict=True)
    model.logit_scale.requires_grad_(False)
    return ClipBundle(model=model, tokenize=tokenizer, preprocess=preprocess)


def _builtin(name: str) -> ClipModel:
    config = BUILTIN_MODELS[name]
    return open_clip.CLIP(
        embed_dim=config["embed_dim"],
        vision_cfg=open_clip.CLIPVisionCfg(**config["vision_cfg"]),
        text_cfg=open_clip.CLIPTextCfg(**config["text_cfg"]),
    )


def lock_towers(model: ClipModel, lock_image, lock_text) -> None:
    """Freeze the towers a model section asks to (open_clip's LiT-style locking); their weights
    then have no gradient and stay out of the optimizer (raygap.clip.schedule.param_groups)."""
    if lock_image is not None:
        model.lock_image_tower(unlocked_groups=lock_image.unlocked_groups, freeze_bn_stats=lock_image.freeze_bn_stats)
    if lock_text is not None:
        model.lock_text_tower(unlocked_layers=lock_text.unlocked_layers)


def checkpoint_mismatch(name: str, path: Path) -> str | None:
    """Why the checkpoint at `path` cannot start model `name` (unreadable, keys missing or extra,
    shapes that differ), or None; compared with the architecture built on the meta device, so
    nothing of the model's size is allocated."""
    try:
        state = open_clip.factory.load_state_dict(str(path), weights_only=True)
    except Exception as error:  # torch.load's errors are many (pickle, zip, safetensors)
        return f"{path} cannot be read as a checkpoint ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    with torch.device("meta"):
        expected = (_builtin(name) if name in BUILTIN_MODELS else open_clip.create_model(name, pretrained=None, device="meta")).state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (the model's {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        *([f"missing {len(missing)} key(s), e.g. {', '.join(missing[:3])}"] if missing else []),
        *([f"{len(extra)} key(s) the model does not have, e.g. {', '.join(extra[:3])}"] if extra else []),
        *([f"{len(shapes)} shape(s) differ, e.g. {'; '.join(shapes[:2])}"] if shapes else []),
    ]
    return f"{path} does not fit {name}: {'; '.join(problems)}" if problems else None


def parameter_count(name: str) -> int:
    """Parameters of an open_clip model, counted on the meta device: no memory, no weights."""
    import logging

    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # open_clip's "no pretrained weights" line
    try:
        with torch.device("meta"):
            model = open_clip.create_model(name, pretrained=None, pretrained_image=False, pretrained_text=False, device="meta")
    finally:
        logging.getLogger().disabled = was
    return sum(parameter.numel() for parameter in model.parameters())


class ClipForward(nn.Module):
    """Both towers, the temperature and the loss (whose parameters, SigLIP's bias, are learned too) in
    one module, so a DDP wrapper syncs all their gradients; the loss is applied by the caller, after the swap.
    With `compile`, the towers' encoders are compiled here only: evaluation calls the model's own
    (eager) encoders on batches of other sizes, and the temperature stays eager (it reads the step)."""

    def __init__(self, model: ClipModel, temperature: Temperature, loss: nn.Module, normalize: bool, compile: bool = False):
        super().__init__()
        self.model, self.temperature, self.loss, self.normalize = model, temperature, loss, normalize
        self.encode_image, self.encode_text = model.encode_image, model.encode_text
        if compile:
            self.encode_image, self.encode_text = torch.compile(model.encode_image), torch.compile(model.encode_text)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, step: int):
        image = self.encode_image(images, normalize=self.normalize)
        text = self.encode_text(tokens, normalize=self.normalize)
        return image, text, self.temperature.tau(step)
