"""A seed run built from its configuration: data, model, temperature, swap, optimizer and the batch
pipeline, ready for the loop (raygap.clip.train) and the evaluators (raygap.clip.evaluate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from raygap.clip.loss import Loss, build_loss
from raygap.clip.model import ClipBundle, ClipForward, ClipModel, build_model, lock_towers
from raygap.clip.schedule import param_groups, total_steps_for, warmup_steps_for
from raygap.clip.swap import Swap, build_swap
from raygap.clip.temperature import Temperature, build_temperature
from raygap.config import TrialConfig
from raygap.data import load_source, training_batches

if TYPE_CHECKING:
    from raygap.data.pipelines import LoadedPairs, ResidentPairs, StreamedPairs
    from raygap.data.sets import ImageTextSet


@dataclass(kw_only=True)
class SeedRun:
    """Everything one seed run trains and measures with, built once by `build_seed_run`."""

    cfg: TrialConfig
    device: torch.device
    rank: int
    world_size: int
    bundle: ClipBundle
    forward: nn.Module
    """The towers, the temperature and the loss (DDP-wrapped with several workers)."""
    temperature: Temperature
    loss: Loss
    swap: Swap
    optimizer: torch.optim.Optimizer
    sampler: DistributedSampler[int]
    batches: ResidentPairs | StreamedPairs | LoadedPairs
    eval_set: ImageTextSet
    probe: tuple[ImageTextSet, ImageTextSet] | None
    """The probe's train and test splits, or None (data.probe null)."""
    mmvp: ImageTextSet | None
    """MMVP-VLM's images and prompts in pair order (data.mmvp), or None."""
    total_steps: int
    warmup_steps: int
    steps_per_epoch: int
    autocast: torch.autocast
    channels_last: bool

    @property
    def model(self) -> ClipModel:
        return self.bundle.model


def build_seed_run(cfg: TrialConfig, rank: int, world_size: int, device: torch.device) -> SeedRun:
    """Seed, load the data, build the model, temperature, swap, optimizer and the batch pipeline."""
    tc = cfg.train
    if tc.batch_size % (world_size * tc.accumulate):
        raise ValueError(f"train.batch_size {tc.batch_size} is not divisible by {world_size} worker(s) × accumulate {tc.accumulate}")
    torch.manual_seed(tc.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # a reused trial process reports this run's peak
    bundle = build_model(cfg.model.name, cfg.model.pretrained)
    lock_towers(bundle.model, cfg.model.lock_image, cfg.model.lock_text)
    train_set = load_source(cfg.data.train, bundle, train=True)
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    probe = None
    if cfg.data.probe is not None:
        probe = load_source(cfg.data.probe.train, bundle, train=False), load_source(cfg.data.probe.test, bundle, train=False)
    mmvp = load_source(cfg.data.mmvp, bundle, train=False) if cfg.data.mmvp is not None else None
    if len(train_set) < tc.batch_size:
        raise ValueError(f"data.train has {len(train_set)} pairs, fewer than train.batch_size {tc.batch_size}")

    total_steps = total_steps_for(cfg, len(train_set))
    temperature = build_temperature(cfg.temperature.model_dump(), total_steps)
    # Every rank draws the global batch's swap randomness from the same stream and keeps its rows.
    swap = build_swap(cfg.swap.model_dump(), seed=tc.seed + 1, rank=rank, world_size=world_size)
    loss = build_loss(cfg.loss, seed=tc.seed + 2)
    forward: nn.Module = ClipForward(bundle.model, temperature, loss, cfg.model.normalize, compile=tc.compile).to(device)
    if world_size > 1:
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)
    on_gpu = device.type == "cuda"
    channels_last = tc.channels_last and on_gpu
    if channels_last:
        bundle.model.to(memory_format=torch.channels_last)
    # Fused AdamW: one kernel for all parameters on a GPU instead of several per tensor.
    groups = param_groups(bundle.model, temperature, loss, tc.lr, tc.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=tc.lr, fused=on_gpu or None)

    # The sampler reads only the length of what it is given: the indices of the training pairs.
    pairs: Any = range(len(train_set))
    sampler: DistributedSampler[int] = DistributedSampler(
        pairs, num_replicas=world_size, rank=rank, shuffle=True, seed=tc.seed, drop_last=True
    )
    batches = training_batches(train_set, sampler, tc.batch_size // world_size, device, cfg.data.pipeline, cfg.data.loader_workers)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.precision == "bf16" and on_gpu)
    return SeedRun(
        cfg=cfg,
        device=device,
        rank=rank,
        world_size=world_size,
        bundle=bundle,
        forward=forward,
        temperature=temperature,
        loss=loss,
        swap=swap,
        optimizer=optimizer,
        sampler=sampler,
        batches=batches,
        eval_set=eval_set,
        probe=probe,
        mmvp=mmvp,
        total_steps=total_steps,
        warmup_steps=warmup_steps_for(cfg, len(train_set)),
        steps_per_epoch=len(batches),
        autocast=autocast,
        channels_last=channels_last,
    )
