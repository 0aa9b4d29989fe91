"""1. Loop efficiency: raygap's trial loop against a plain open_clip loop written here."""

from __future__ import annotations

import statistics

import torch

from raygap.bench.common import BenchSize, Stopwatch, timed_raw, to_config, trial_raw
from raygap.clip.loss import Clip
from raygap.clip.model import build_model
from raygap.clip.train import resolve_device, train
from raygap.config import TrialConfig
from raygap.data import load_source
from raygap.data.pipelines import in_memory


def plain_loop_samples_per_s(cfg: TrialConfig, steps: int, warmup: int = 1) -> float:
    """The obvious open_clip training loop: same model, batch, precision and memory layout, data
    already in memory (on a GPU: on the GPU), a fixed temperature, timed after `warmup` steps."""
    device = resolve_device(cfg.train.device)
    on_gpu = device.type == "cuda"
    torch.manual_seed(0)
    bundle = build_model(cfg.model.name)
    data = load_source(cfg.data.train, bundle, train=True)
    held = in_memory(data)  # the plain loop gathers pixels as the resident pipeline does
    model = bundle.model.to(device).train()
    channels_last = on_gpu and cfg.train.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=0.1, fused=on_gpu or None)
    pixels, tokens, owners = held.pixels.to(device), data.tokens.to(device), data.caption_image.to(device)
    batch = cfg.train.batch_size
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu and cfg.train.precision == "bf16")

    def step() -> None:
        index = torch.randint(len(tokens), (batch,), device=device)
        images = held.normalize(pixels[owners[index]])
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast:
            image = model.encode_image(images, normalize=True)
            text = model.encode_text(tokens[index], normalize=True)
        loss = Clip()(image.float(), text.float(), 1 / 0.07)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):  # first-call allocations, kernel selection
        step()
    with Stopwatch(device) as clock:
        for _ in range(steps):
            step()
    return steps * batch / clock.seconds


def raygap_loop_samples_per_s(cfg: TrialConfig) -> tuple[float, dict]:
    """samples/s of raygap's loop over its second half (see `timed_raw`): the window between its
    two evaluations, warmed up, setup and evaluation excluded."""
    history: list[dict] = []
    final = train(cfg, history.append)
    return history[-1]["samples_per_s"], final


def loop_efficiency(size: BenchSize, echo) -> dict:
    """The median over `loop_rounds` paired rounds (plain, then raygap, back to back) of raygap's
    samples/s over the plain loop's, with its min and max: one round alone moves by several
    percent on a shared machine, and pairing lets both sides see the same neighbours."""
    cfg = to_config(timed_raw(trial_raw(size, size["steps"], 256), size["steps"]))
    plain, ours = [], []
    for round_ in range(size["loop_rounds"]):
        plain.append(plain_loop_samples_per_s(cfg, size["steps"], warmup=size["steps"]))  # warmed as long as raygap's timed window
        ours.append(raygap_loop_samples_per_s(cfg)[0])
        echo(f"  loop round {round_ + 1}: plain {plain[-1]:.0f} samples/s, raygap {ours[-1]:.0f} samples/s ({ours[-1] / plain[-1]:.3f})")
    ratios = [o / p for o, p in zip(ours, plain)]
    return {
        "plain_samples_per_s": statistics.median(plain),
        "raygap_samples_per_s": statistics.median(ours),
        "loop_efficiency": statistics.median(ratios),
        "loop_efficiency_min": min(ratios),
        "loop_efficiency_max": max(ratios),
        "rounds": [{"plain_samples_per_s": p, "raygap_samples_per_s": o} for p, o in zip(plain, ours)],
    }
