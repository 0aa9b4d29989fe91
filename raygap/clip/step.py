"""One optimizer step: forward, swap, loss, backward, clip, update; whole or accumulated.

With `train.accumulate: k` the batch is cut into k micro-batches as open_clip's `--accum-freq`
does: the features of every micro-batch are computed first without gradients, then each
micro-batch's forward is redone with gradients and its features put in place of the cached ones,
and the loss over the whole batch is back-propagated. The gradients summed over the k passes are
those of the whole batch's loss, with only one micro-batch's activations held at a time, for towers
without batch norm or dropout (the built-in ViTs, open_clip's ViTs): a ResNet tower's batch norm
normalizes each micro-batch by its own statistics, as in open_clip. The step's
random draws (the swap's, the loss's) are replayed for each pass, so every pass sees the same ones.
The temperature and the loss's own parameters (SigLIP's bias) take their gradient from one pass.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from raygap.clip.build import SeedRun
from raygap.clip.schedule import lr_multiplier, set_lr


def train_step(run: SeedRun, images: torch.Tensor, tokens: torch.Tensor, step: int) -> torch.Tensor:
    """One optimizer step on one batch; returns the loss (detached, on the device)."""
    tc = run.cfg.train
    set_lr(run.optimizer, tc.lr, lr_multiplier(step, run.warmup_steps, run.total_steps))
    if run.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    run.optimizer.zero_grad(set_to_none=True)
    loss = backward(run, images, tokens, step)
    if tc.grad_clip_norm is not None:
        nn.utils.clip_grad_norm_([p for p in run.forward.parameters() if p.grad is not None], tc.grad_clip_norm)
    run.optimizer.step()
    # Clamp after the step: the optimizer may push θ past the cap.
    run.temperature.clamp_()
    return loss.detach()


def backward(run: SeedRun, images: torch.Tensor, tokens: torch.Tensor, step: int) -> torch.Tensor:
    """The batch's loss, its gradients added to the parameters' (whole, or over train.accumulate micro-batches)."""
    parts = run.cfg.train.accumulate
    if parts > 1:
        return _accumulated(run, images.chunk(parts), tokens.chunk(parts), step)
    with run.autocast:
        image, text, tau = run.forward(images, tokens, step)
    loss = _loss(run, image, text, tau)
    loss.backward()
    return loss


def _loss(run: SeedRun, image: torch.Tensor, text: torch.Tensor, tau: torch.Tensor, own_gradient: bool = True) -> torch.Tensor:
    """The loss of the swapped features; without `own_gradient`, τ and the loss's parameters are
    held constant (their gradient comes from one pass only)."""
    image, text = run.swap(image.float(), text.float())
    options = {"rank": run.rank, "world_size": run.world_size}
    if own_gradient:
        return run.loss(image, text, tau, **options)
    constants = {name: p.detach() for name, p in run.loss.named_parameters()}
    return torch.func.functional_call(run.loss, constants, (image, text, tau.detach()), options)


def _accumulated(run: SeedRun, images: tuple[torch.Tensor, ...], tokens: tuple[torch.Tensor, ...], step: int) -> torch.Tensor:
    wrapper = run.forward if isinstance(run.forward, nn.parallel.DistributedDataParallel) else None
    towers: nn.Module = wrapper.module if wrapper is not None else run.forward
    norms = [m for m in towers.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    running = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    with torch.no_grad(), run.autocast:
        cached = [towers(i, t, step)[:2] for i, t in zip(images, tokens)]
    for module, state in zip(norms, running):  # batch-norm statistics move with the gradient passes only
        module.load_state_dict(state)
    streams = random_streams(run)
    saved = [g.get_state() for g in streams]
    for j, (i, t) in enumerate(zip(images, tokens)):
        last = j == len(images) - 1
        # Gradients are all-reduced once, after the last pass.
        with wrapper.no_sync() if wrapper is not None and not last else contextlib.nullcontext():
            with run.autocast:
                image_j, text_j, tau = run.forward(i, t, step)
            image = torch.cat([image_j if k == j else c[0] for k, c in enumerate(cached)])
            text = torch.cat([text_j if k == j else c[1] for k, c in enumerate(cached)])
            for generator, state in zip(streams, saved):
                generator.set_state(state)
            # Every pass back-propagates the whole batch's loss: τ and the loss's own parameters
            # take their gradient in the last pass only, or they would get it k times.
            loss = _loss(run, image, text, tau, own_gradient=last)
            loss.backward()
    return loss


def random_streams(run: SeedRun) -> list:
    """The generators a step draws from besides torch's global one: the swap's and the loss's."""
    return [g for g in (getattr(run.swap, "generator", None), getattr(run.loss, "generator", None)) if g is not None]
