import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from raygap.loss import contrastive_loss


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


def _worker(rank, world_size, port, x, y, tau, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    shard = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
    xs, ys = x[shard].clone().requires_grad_(), y[shard].clone().requires_grad_()
    t = tau.clone().requires_grad_()
    loss = contrastive_loss(xs, ys, t, rank=rank, world_size=world_size)
    loss.backward()
    # DDP averages gradients over workers: do the same to compare with one big batch.
    grad_t = t.grad.clone()
    dist.all_reduce(grad_t)
    out[rank] = (loss.detach(), xs.grad * 1, ys.grad * 1, grad_t / world_size)
    dist.destroy_process_group()


def test_two_workers_equal_one_big_batch():
    g = torch.Generator().manual_seed(1)
    x = F.normalize(torch.randn(8, 4, generator=g), dim=-1)
    y = F.normalize(torch.randn(8, 4, generator=g), dim=-1)
    tau = torch.tensor(5.0)

    xb, yb, tb = x.clone().requires_grad_(), y.clone().requires_grad_(), tau.clone().requires_grad_()
    big = contrastive_loss(xb, yb, tb)
    big.backward()

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), x, y, tau, out), nprocs=2)
        results = [out[0], out[1]]
    losses = torch.stack([r[0] for r in results])
    assert float(losses.mean()) == pytest.approx(float(big.detach()), rel=1e-6)
    # Each worker's input gradient, divided by the world size as DDP's mean does, is the big batch's.
    torch.testing.assert_close(torch.cat([r[1] for r in results]) / 2, xb.grad)
    torch.testing.assert_close(torch.cat([r[2] for r in results]) / 2, yb.grad)
    torch.testing.assert_close(results[0][3], tb.grad)
