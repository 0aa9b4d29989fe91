"""A trial built from its configuration: data, model, temperature, swap, optimizer and the batch
pipeline, ready for the loop (raygap.clip.train) and the evaluators (raygap.clip.evaluate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from raygap.clip.loss import Loss, build_loss
from raygap.clip.model import ClipForward, build_model, lock_towers
from raygap.clip.schedule import param_groups, total_steps_for, warmup_steps_for
from raygap.clip.swap import build_swap
from raygap.clip.temperature import Temperature, build_temperature
from raygap.config import TrialConfig
from raygap.data import load_source, training_batches


@dataclass
class Trial:
    """Everything one trial trains and measures with, built once by `build_trial`."""

    cfg: TrialConfig
    device: torch.device
    rank: int
    world_size: int
    bundle: Any
    forward: nn.Module
    """The towers and the temperature (DDP-wrapped with several workers)."""
    temperature: Temperature
    loss: Loss
    swap: Any
    optimizer: torch.optim.Optimizer
    sampler: DistributedSampler
    batches: Any
    eval_set: Any
    probe: tuple | None
    mmvp: Any
    """MMVP-VLM's images and prompts in pair order (data.mmvp), or None."""
    total_steps: int
    warmup_steps: int
    steps_per_epoch: int
    autocast: Any
    channels_last: bool

    @property
    def model(self) -> nn.Module:
        return self.bundle.model


def build_trial(cfg: TrialConfig, rank: int, world_size: int, device: torch.device) -> Trial:
    """Seed, load the data, build the model, temperature, swap, optimizer and the batch pipeline."""
    tc = cfg.train
    if tc.batch_size % (world_size * tc.accumulate):
        raise ValueError(f"train.batch_size {tc.batch_size} is not divisible by {world_size} worker(s) × accumulate {tc.accumulate}")
    torch.manual_seed(tc.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # a reused trial process reports this trial's peak
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

    sampler = DistributedSampler(range(len(train_set)), num_replicas=world_size, rank=rank, shuffle=True, seed=tc.seed, drop_last=True)
    batches = training_batches(train_set, sampler, tc.batch_size // world_size, device, cfg.data.pipeline, cfg.data.loader_workers)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.precision == "bf16" and on_gpu)
    return Trial(
        cfg,
        device,
        rank,
        world_size,
        bundle,
        forward,
        temperature,
        loss,
        swap,
        optimizer,
        sampler,
        batches,
        eval_set,
        probe,
        mmvp,
        total_steps,
        warmup_steps_for(cfg, len(train_set)),
        len(batches),
        autocast,
        channels_last,
    )
