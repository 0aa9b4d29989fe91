import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raygap.clip.build import build_seed_run
from raygap.clip.step import backward, train_step

KINDS = ["clip", "siglip", "cyclip", "inmodal_separation", "m3mix"]
CPU = torch.device("cpu")


def _gradients(cfg, rank=0, world_size=1) -> tuple[float, dict[str, torch.Tensor]]:
    """The loss of the first batch of a freshly built run and the gradients it leaves."""
    run = build_seed_run(cfg, rank, world_size, CPU)
    images, tokens = next(iter(run.batches))
    loss = backward(run, images, tokens, step=0)
    named = {f"model.{k}": p for k, p in run.model.named_parameters()}
    named.update({f"temperature.{k}": p for k, p in run.temperature.named_parameters()})
    named.update({f"loss.{k}": p for k, p in run.loss.named_parameters()})
    return float(loss.detach()), {k: p.grad.clone() for k, p in named.items() if p.grad is not None}


def _config(tiny, kind: str, accumulate: int, **sections):
    return tiny(train={"batch_size": 128, "accumulate": accumulate}, loss={"kind": kind}, **sections)


def _assert_same(whole, accumulated):
    assert accumulated[0] == pytest.approx(whole[0], rel=1e-5)
    assert accumulated[1].keys() == whole[1].keys() and len(whole[1]) > 10
    for name, grad in whole[1].items():
        torch.testing.assert_close(accumulated[1][name], grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("kind", KINDS)
def test_accumulating_four_micro_batches_gives_the_whole_batch(tiny, kind):
    """4 × 32 with feature caching: the loss and every gradient of one batch of 128 (the same
    weights, the same batch, the same draws of m3mix's λ)."""
    _assert_same(_gradients(_config(tiny, kind, 1)), _gradients(_config(tiny, kind, 4)))


def test_accumulation_replays_the_step_s_swap(tiny):
    swap = {"swap": {"kind": "hard", "p": 1.0}}
    _assert_same(_gradients(_config(tiny, "clip", 1, **swap)), _gradients(_config(tiny, "clip", 4, **swap)))


def _worker(rank, port, cfgs, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    for case, cfg in enumerate(cfgs):
        out[case, rank] = _gradients(cfg, rank, 2)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_worker_accumulation(tiny, free_port):
    """Two gloo workers (DDP) training the tiny model on batches of 128, whole and as 2 × 32 per
    worker (accumulate 2), for CLIP, SigLIP and m3mix."""
    cfgs = [tiny(train={"batch_size": 128, "accumulate": a}, loss={"kind": k}) for k in ("clip", "siglip", "m3mix") for a in (1, 2)]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(free_port(), cfgs, out), nprocs=2)
        return dict(out)


@pytest.mark.parametrize("kind_index, kind", list(enumerate(["clip", "siglip", "m3mix"])))
def test_accumulation_on_two_workers_gives_the_whole_batch(two_worker_accumulation, kind_index, kind):
    for rank in (0, 1):
        whole, accumulated = two_worker_accumulation[2 * kind_index, rank], two_worker_accumulation[2 * kind_index + 1, rank]
        _assert_same(whole, accumulated)
    # DDP leaves both workers with the same (averaged) gradients.
    for name, grad in two_worker_accumulation[2 * kind_index, 0][1].items():
        torch.testing.assert_close(two_worker_accumulation[2 * kind_index, 1][1][name], grad)


def test_gradient_clipping_bounds_the_update_norm(tiny):
    """With grad_clip_norm, the global gradient norm at the optimizer step is at most the cap."""
    cfg = tiny(train={"batch_size": 64, "grad_clip_norm": 0.01})
    run = build_seed_run(cfg, 0, 1, CPU)
    images, tokens = next(iter(run.batches))
    seen = []
    step = run.optimizer.step

    def recording_step(*args, **kwargs):
        grads = [p.grad for group in run.optimizer.param_groups for p in group["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return step(*args, **kwargs)

    run.optimizer.step = recording_step
    train_step(run, images, tokens, 0)
    unclipped = _gradients(tiny(train={"batch_size": 64}))[1]
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in unclipped.values()])))
    assert norm > 0.1 and seen[0] == pytest.approx(0.01, rel=1e-4)


def test_the_cached_pass_leaves_batch_norm_statistics_to_the_gradient_passes(tiny):
    """A tower with batch norm: its running statistics move once per micro-batch's gradient pass (4),
    not also in the pass that caches features without gradients (which would make 8)."""
    run = build_seed_run(_config(tiny, "clip", 4), 0, 1, CPU)
    norm = torch.nn.BatchNorm1d(64)
    run.forward.norm = norm  # a submodule of the towers' module, as a ResNet's batch norm is
    encode = run.forward.encode_image
    run.forward.encode_image = lambda images, normalize: torch.nn.functional.normalize(norm(encode(images, normalize=False)), dim=-1)
    images, tokens = next(iter(run.batches))
    backward(run, images, tokens, step=0)
    assert int(norm.num_batches_tracked) == 4
