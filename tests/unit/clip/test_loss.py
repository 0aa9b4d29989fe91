import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from raygap.clip.loss import contrastive_loss
from raygap.clip.swap import build_swap


def test_hand_value_two_orthogonal_pairs():
    x = torch.eye(2)
    # logits [[1, 0], [0, 1]]: each row's cross-entropy is log(1 + e⁻¹).
    assert float(contrastive_loss(x, x, 1.0)) == pytest.approx(math.log(1 + math.exp(-1)))


def test_equals_open_clip_cliploss():
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    y = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    tau = torch.tensor(1 / 0.07)
    assert float(contrastive_loss(x, y, tau)) == pytest.approx(float(ClipLoss()(x, y, tau)), rel=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _swapped_loss(x, y, tau, swap, steps, rank=0, world_size=1):
    """The sum over `steps` steps of the loss of the swapped pair, each step drawing a new swap."""
    total = 0
    for _ in range(steps):
        sx, sy = swap(x, y)
        total = total + contrastive_loss(sx, sy, tau, rank=rank, world_size=world_size)
    return total


SWAP_CASES = [
    {"kind": "none"},
    {"kind": "hard", "p": 0.75},
    {"kind": "hard_row", "p": 0.75},
    {"kind": "soft", "p": 0.75, "per": "pair"},
    {"kind": "soft", "p": 0.75, "per": "coordinate"},
]
SWAP_IDS = ["no-swap", "hard", "hard_row", "soft-pair", "soft-coordinate"]
SWAP_STEPS = 4
SWAP_SEED = 6  # with p = 0.75 and 8 × 4 features, every kind has active steps and an inactive one


def _inputs():
    g = torch.Generator().manual_seed(1)
    x = F.normalize(torch.randn(8, 4, generator=g), dim=-1)
    y = F.normalize(torch.randn(8, 4, generator=g), dim=-1)
    return x, y, torch.tensor(5.0)


def _worker(rank, world_size, port, x, y, tau, cases, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    shard = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
    for case, swap_options in enumerate(cases):
        xs, ys = x[shard].clone().requires_grad_(), y[shard].clone().requires_grad_()
        t = tau.clone().requires_grad_()
        # As train.py does: every rank seeds the same stream and swaps its rows of the global batch.
        swap = build_swap(swap_options, seed=SWAP_SEED, rank=rank, world_size=world_size)
        loss = _swapped_loss(xs, ys, t, swap, SWAP_STEPS, rank=rank, world_size=world_size)
        loss.backward()
        # DDP averages gradients over workers: do the same to compare with one big batch.
        grad_t = t.grad.clone()
        dist.all_reduce(grad_t)
        out[case, rank] = (loss.detach(), xs.grad * 1, ys.grad * 1, grad_t / world_size)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_worker_results():
    """Each case of SWAP_CASES run by 2 gloo workers (one spawn for all cases: starting workers is
    the slow part): {(case, rank): (loss, grad x shard, grad y shard, grad τ averaged)}."""
    x, y, tau = _inputs()
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), x, y, tau, SWAP_CASES, out), nprocs=2)
        return dict(out)


@pytest.mark.parametrize("case", range(len(SWAP_CASES)), ids=SWAP_IDS)
def test_two_workers_equal_one_big_batch(two_worker_results, case):
    """2 workers with half the batch each give the loss and gradients of 1 worker with the whole
    batch, with and without a modality swap (same seed; the swap applied before the gather)."""
    x, y, tau = _inputs()
    xb, yb, tb = x.clone().requires_grad_(), y.clone().requires_grad_(), tau.clone().requires_grad_()
    big = _swapped_loss(xb, yb, tb, build_swap(SWAP_CASES[case], seed=SWAP_SEED), SWAP_STEPS)
    big.backward()

    results = [two_worker_results[case, 0], two_worker_results[case, 1]]
    losses = torch.stack([r[0] for r in results])
    assert float(losses.mean()) == pytest.approx(float(big.detach()), rel=1e-6)
    # Each worker's input gradient, divided by the world size as DDP's mean does, is the big batch's.
    torch.testing.assert_close(torch.cat([r[1] for r in results]) / 2, xb.grad)
    torch.testing.assert_close(torch.cat([r[2] for r in results]) / 2, yb.grad)
    torch.testing.assert_close(results[0][3], tb.grad)
