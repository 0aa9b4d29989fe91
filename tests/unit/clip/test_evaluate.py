import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raygap.clip.evaluate import evaluate, probe_metrics
from raygap.clip.model import build_model
from raygap.config import EvalSpec, SyntheticSource
from raygap.data import load_source


def _setup():
    torch.manual_seed(0)
    bundle = build_model("tiny-vit")
    bundle.model.eval()
    # 37 images (odd, so the shards differ in size) with 2 captions each.
    data = load_source(SyntheticSource(size=37, seed=1, captions_per_image=2), bundle, train=False)
    probe = (
        load_source(SyntheticSource(size=30, seed=2), bundle, train=False),
        load_source(SyntheticSource(size=21, seed=3), bundle, train=False),
    )
    return bundle, data, probe


def _metrics(rank: int, world_size: int) -> dict:
    bundle, data, probe = _setup()
    device = torch.device("cpu")
    out = evaluate(bundle.model, data, device, batch_size=8, rank=rank, world_size=world_size)
    out.update(probe_metrics(bundle.model, *probe, EvalSpec(batch_size=8), bundle.tokenize, device, rank, world_size))
    return out


def _worker(rank, world_size, port, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    results[rank] = _metrics(rank, world_size)
    dist.destroy_process_group()


def test_sharded_evaluation_equals_single_process():
    single = _metrics(0, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, port, results), nprocs=2)
        sharded = [dict(results[0]), dict(results[1])]
    assert sharded[0] == pytest.approx(single, rel=1e-5, nan_ok=True)
    assert sharded[1] == pytest.approx(single, rel=1e-5, nan_ok=True)


def test_gap_subset_is_fixed_and_bounded():
    from raygap.clip.evaluate import gap_subset

    a, b = gap_subset(1000, 100, seed=3), gap_subset(1000, 100, seed=3)
    assert torch.equal(a, b) and len(a) == 100 and len(set(a.tolist())) == 100
    assert not torch.equal(a, gap_subset(1000, 100, seed=4))
    assert torch.equal(gap_subset(50, 100, seed=0), torch.arange(50))  # fewer pairs than asked: all
    assert torch.equal(gap_subset(50, None, seed=0), torch.arange(50))


def test_gap_of_pure_noise_shrinks_with_more_pairs():
    # The statistical trap gap_pairs guards against: two samples of the same distribution have a
    # centroid distance of order √(2/n), not 0.
    from raygap.clip.metrics import modality_gap

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20000, 16, generator=g), torch.randn(20000, 16, generator=g)
    small, large = modality_gap(x[:100], y[:100]), modality_gap(x, y)
    assert small == pytest.approx((2 / 100) ** 0.5, rel=0.3)
    assert large == pytest.approx((2 / 20000) ** 0.5, rel=0.3)
