"""The training loop: one trial of CLIP from scratch, measured on held-out data. No Ray here.

`train(cfg, report)` runs the same on a laptop, in `raygap train`, and inside each Ray Train
worker (with `rank`/`world_size`, after the caller has set up the process group).
"""

from __future__ import annotations

import math
import resource
import time
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from raygap.data import load_source, training_batches
from raygap.evaluate import evaluate, probe_metrics
from raygap.loss import contrastive_loss
from raygap.model import build_model
from raygap.spec import TrialConfig
from raygap.swap import build_swap
from raygap.temperature import Temperature, build_temperature


class TrainingDiverged(RuntimeError):
    """The loss or the temperature left the finite range; the trial cannot go on."""


class ClipForward(nn.Module):
    """Both towers and the temperature in one module, so a DDP wrapper syncs all their gradients."""

    def __init__(self, model: nn.Module, temperature: Temperature, normalize: bool):
        super().__init__()
        self.model, self.temperature, self.normalize = model, temperature, normalize

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, step: int):
        image = self.model.encode_image(images, normalize=self.normalize)
        text = self.model.encode_text(tokens, normalize=self.normalize)
        return image, text, self.temperature.tau(step)


def lr_multiplier(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at the last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, temperature: Temperature, lr: float, weight_decay: float) -> list[dict]:
    """AdamW groups: decayed weights, undecayed gains/biases (as open_clip), and θ at lr × lr_scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
        (no_decay if exclude else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    if temperature.learned:
        groups.append({"params": list(temperature.parameters()), "weight_decay": 0.0, "lr_scale": temperature.lr_scale})
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    return groups


def set_lr(optimizer: torch.optim.Optimizer, lr: float, multiplier: float) -> None:
    # Per group: θ's scale (SLRT) survives warmup and decay instead of being overwritten.
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"] * multiplier


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def total_steps_for(cfg: TrialConfig, n_pairs: int) -> int:
    if cfg.train.steps is not None:
        return cfg.train.steps
    return max(1, math.ceil(cfg.train.epochs * (n_pairs // cfg.train.batch_size)))


def train(
    cfg: TrialConfig,
    report: Callable[[dict], None] | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | None = None,
    progress: bool = False,
    checkpoint: Callable[[dict], None] | None = None,
    resume_from: dict | None = None,
) -> dict:
    """Train one trial; call `report(row)` at every evaluation point; return the final metrics.

    The global batch `train.batch_size` is split evenly over `world_size` workers. With
    `train.checkpoint_interval`, `checkpoint(state)` receives the whole training state (tensors and
    plain values only) every that many steps; `resume_from=state` continues from it, the same
    batches and random streams as a run that was never interrupted.
    """
    report = report or (lambda row: None)
    tc = cfg.train
    device = device or resolve_device(tc.device)
    if tc.batch_size % world_size:
        raise ValueError(f"train.batch_size {tc.batch_size} is not divisible by {world_size} workers")
    started = time.perf_counter()
    started_at = time.time()  # wall clock, to line up with Ray's own timestamps in `raygap bench`

    torch.manual_seed(tc.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # a reused trial process reports this trial's peak
    bundle = build_model(cfg.model.name)
    train_set = load_source(cfg.data.train, bundle, train=True)
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    probe = None
    if cfg.data.probe is not None:
        probe = load_source(cfg.data.probe.train, bundle, train=False), load_source(cfg.data.probe.test, bundle, train=False)
    if len(train_set) < tc.batch_size:
        raise ValueError(f"data.train has {len(train_set)} pairs, fewer than train.batch_size {tc.batch_size}")

    total_steps = total_steps_for(cfg, len(train_set))
    temperature = build_temperature(cfg.temperature.model_dump(), total_steps)
    # Every rank draws the global batch's swap randomness from the same stream and keeps its rows.
    swap = build_swap(cfg.swap.model_dump(), seed=tc.seed + 1, rank=rank, world_size=world_size)
    forward: nn.Module = ClipForward(bundle.model, temperature, cfg.model.normalize).to(device)
    model = bundle.model
    if world_size > 1:
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None)
    on_gpu = device.type == "cuda"
    channels_last = tc.channels_last and on_gpu
    if channels_last:
        model.to(memory_format=torch.channels_last)
    # Fused AdamW: one kernel for all parameters on a GPU instead of several per tensor.
    optimizer = torch.optim.AdamW(param_groups(model, temperature, tc.lr, tc.weight_decay), lr=tc.lr, fused=on_gpu or None)

    per_worker_batch = tc.batch_size // world_size
    sampler = DistributedSampler(range(len(train_set)), num_replicas=world_size, rank=rank, shuffle=True, seed=tc.seed, drop_last=True)
    batches = training_batches(train_set, sampler, per_worker_batch, device, cfg.data.pipeline, cfg.data.loader_workers)
    steps_per_epoch = len(batches)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.precision == "bf16" and device.type == "cuda")

    eval_seconds = 0.0
    history: list[dict] = []
    setup_seconds = time.perf_counter() - started

    def evaluation_point(step: int, loss: float | None, samples_per_s: float | None) -> dict:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        row = {"step": step, "epoch": step / steps_per_epoch, "loss": loss, **_temperature_state(temperature, step)}
        row.update(evaluate(model, eval_set, device, cfg.eval.batch_size, rank, world_size, cfg.eval.gap_pairs, cfg.eval.seed))
        row.update(samples_per_s=samples_per_s, lr=optimizer.param_groups[0]["lr"])
        eval_seconds += time.perf_counter() - t0
        history.append(row)
        report(row)
        return row

    step, epoch, loss_sum, loss_count = 0, 0, 0.0, 0
    if resume_from is None:
        # Step 0 is the initialization: the gap's early growth (the paper's finding 2) starts here.
        evaluation_point(0, None, None)
    else:
        step, epoch, loss_sum, loss_count = resume_from["step"], resume_from["epoch"], resume_from["loss_sum"], resume_from["loss_count"]
        model.load_state_dict(resume_from["model"])
        temperature.load_state_dict(resume_from["temperature"])
        optimizer.load_state_dict(resume_from["optimizer"])
        history.extend(resume_from["history"])
    skip = step - epoch * steps_per_epoch  # batches of this epoch that ran before the checkpoint
    if resume_from is not None and not skip:
        torch.set_rng_state(resume_from["rng"])
        _set_swap_rng(swap, resume_from["swap_rng"])

    def training_state() -> dict:
        return {
            "step": step, "epoch": epoch, "loss_sum": float(loss_sum), "loss_count": loss_count, "history": list(history),
            "model": model.state_dict(), "temperature": temperature.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(), "swap_rng": _swap_rng(swap),
        }  # fmt: skip

    first_step_at = time.time()
    window_start, window_samples = time.perf_counter(), 0
    bar = _progress_bar(total_steps, enabled=progress and rank == 0, initial=step)
    while step < total_steps:
        sampler.set_epoch(epoch)
        for images, tokens in batches:
            if skip:
                skip -= 1
                if not skip:  # the random streams continue from the checkpoint, not from the replayed batches
                    torch.set_rng_state(resume_from["rng"])
                    _set_swap_rng(swap, resume_from["swap_rng"])
                continue
            if step >= total_steps:
                break
            set_lr(optimizer, tc.lr, lr_multiplier(step, tc.warmup_steps, total_steps))
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                image, text, tau = forward(images, tokens, step)
            image, text = swap(image.float(), text.float())
            loss = contrastive_loss(image, text, tau, rank=rank, world_size=world_size)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Clamp after the step: the optimizer may push θ past the cap.
            temperature.clamp_()
            step += 1
            loss_sum += loss.detach()
            loss_count += 1
            window_samples += tc.batch_size
            bar.update(1)

            if step == total_steps or (tc.eval_interval and step % tc.eval_interval == 0):
                mean_loss = float(loss_sum) / loss_count
                rate = window_samples / (time.perf_counter() - window_start)
                if not math.isfinite(mean_loss):
                    raise TrainingDiverged(f"loss became {mean_loss} before step {step}")
                row = evaluation_point(step, mean_loss, rate)
                bar.set_postfix(loss=f"{mean_loss:.3f}", gap=f"{row['modality_gap']:.3f}", r1=f"{row['mean_r1']:.3f}")
                loss_sum, loss_count = 0.0, 0
                window_start, window_samples = time.perf_counter(), 0
            if checkpoint and tc.checkpoint_interval and step % tc.checkpoint_interval == 0 and step < total_steps:
                checkpoint(training_state())
        epoch += 1
    bar.close()
    last_step_at = time.time()

    final = dict(history[-1])
    if probe is not None:
        t0 = time.perf_counter()
        model.eval()
        final.update(probe_metrics(model, *probe, cfg.eval.templates, bundle.tokenize, device, cfg.eval.batch_size, rank, world_size))
        model.train()
        eval_seconds += time.perf_counter() - t0
    total = time.perf_counter() - started
    train_seconds = total - setup_seconds - eval_seconds
    final.update(
        steps=total_steps,
        total_seconds=total,
        setup_seconds=setup_seconds,
        eval_seconds=eval_seconds,
        train_seconds=train_seconds,
        samples_per_s=total_steps * tc.batch_size / max(train_seconds, 1e-9),
        device=str(device),
        workers=world_size,
        resumed_from_step=resume_from["step"] if resume_from is not None else None,  # a restart after a kill, from a checkpoint
        started_at=started_at,
        first_step_at=first_step_at,
        last_step_at=last_step_at,
        finished_at=time.time(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # this process's peak so far (Linux: KiB)
    )
    if device.type == "cuda":
        final["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return final


def _swap_rng(swap) -> torch.Tensor | None:
    generator = getattr(swap, "generator", None)
    return generator.get_state() if generator is not None else None


def _set_swap_rng(swap, state: torch.Tensor | None) -> None:
    if state is not None:
        swap.generator.set_state(state)


def _temperature_state(temperature: Temperature, step: int) -> dict:
    tau = float(temperature.tau(step).detach())
    if not (math.isfinite(tau) and tau > 0):
        raise TrainingDiverged(f"temperature collapsed: tau = {tau} at step {step}")
    return {"tau": tau, "temperature": 1 / tau}


def _progress_bar(total: int, enabled: bool, initial: int = 0):
    import sys

    from tqdm.auto import tqdm

    # Redraw often on a terminal, rarely into a log file.
    interval = 0.5 if sys.stderr.isatty() else 30
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, mininterval=interval)
