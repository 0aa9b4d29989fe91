"""GPU 1 and 1b. Throughput and model FLOP utilization: raygap's loop against the plain loop with
open_clip's reference models at 224 px (bf16 autocast, channels-last, fused AdamW), the batches
reaching the GPU by each `data.pipeline`."""

from __future__ import annotations

import torch

from raygap.bench.common import Stopwatch, timed_raw, to_config, trial_raw
from raygap.bench.loop import plain_loop_samples_per_s, raygap_loop_samples_per_s
from raygap.clip.loss import Clip
from raygap.clip.model import build_model
from raygap.clip.train import resolve_device
from raygap.config import TrialConfig

GPU_MODELS = ("RN50", "ViT-B-32")
GPU_BATCHES = (128, 256, 512)
GPU_STEPS = 30  # timed steps per configuration, after as many warm ones


def gpu_trial_raw(model: str, batch: int, steps: int, loader_workers: int = 4, probe: bool = False, pipeline: str = "auto") -> dict:
    raw = trial_raw({"model": model, "batch": batch}, steps, 256)
    raw["data"]["train"]["size"] = 2048
    if not probe:
        del raw["data"]["probe"]
    raw["data"].update(loader_workers=loader_workers, pipeline=pipeline)
    raw["train"].update(precision="bf16", device="cuda", channels_last=True)
    return timed_raw(raw, steps)


def matmul_tflops(device: torch.device, n: int = 8192, reps: int = 10) -> float:
    """The card's bf16 matrix-product rate as measured here: the denominator of model FLOP utilization."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    with Stopwatch(device) as clock:
        for _ in range(reps):
            a @ b
    return 2 * n**3 * reps / clock.seconds / 1e12


def flops_per_sample(cfg: TrialConfig) -> float:
    """Forward and backward FLOPs of one training sample (both towers and the loss), counted by
    torch.utils.flop_counter (matrix products and convolutions) on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    device = resolve_device(cfg.train.device)
    bundle = build_model(cfg.model.name)
    model = bundle.model.to(device).train()
    batch = cfg.train.batch_size
    images = torch.randn(batch, 3, bundle.image_size, bundle.image_size, device=device)
    tokens = bundle.tokenize(["a photo of a red circle"] * batch).to(device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.precision == "bf16"):
            image = model.encode_image(images, normalize=True)
            text = model.encode_text(tokens, normalize=True)
        Clip()(image.float(), text.float(), 1 / 0.07).backward()
    return counter.get_total_flops() / batch


def gpu_throughput(model: str, batch: int, peak_tflops: float, echo, pipeline: str = "resident") -> dict:
    """raygap's loop against the plain loop, both measured now, with the batches reaching the GPU
    by `pipeline` (resident: data on the GPU; streamed and loader: the paths for data that is not)."""
    cfg = to_config(gpu_trial_raw(model, batch, GPU_STEPS, pipeline=pipeline))
    flops = flops_per_sample(cfg)
    plain = plain_loop_samples_per_s(cfg, GPU_STEPS, warmup=GPU_STEPS)
    torch.cuda.empty_cache()
    ours, final = raygap_loop_samples_per_s(cfg)
    torch.cuda.empty_cache()
    row = {
        "model": model,
        "batch": batch,
        "data": pipeline,
        "plain_samples_per_s": plain,
        "raygap_samples_per_s": ours,
        "loop_efficiency": ours / plain,
        "gflops_per_sample": flops / 1e9,
        "mfu": ours * flops / (peak_tflops * 1e12),
        "gpu_peak_gb": final["gpu_peak_mb"] / 1024,
    }
    echo(
        f"  {model} batch {batch} ({row['data']}): raygap {ours:.0f} vs plain {plain:.0f} samples/s ({row['loop_efficiency']:.3f}), "
        f"{row['gflops_per_sample']:.1f} GFLOP/sample, MFU {row['mfu']:.3f}, {row['gpu_peak_gb']:.1f} GiB"
    )
    return row
