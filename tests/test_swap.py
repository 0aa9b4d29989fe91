import pytest
import torch

from raygap.swap import build_swap


def pair(n=64, m=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, m, generator=g), torch.randn(n, m, generator=g)


def test_none_is_identity():
    x, y = pair()
    sx, sy = build_swap({"kind": "none"}, seed=0)(x, y)
    assert sx is x and sy is y


def test_hard_exchanges_half_the_coordinates():
    x, y = pair(256, 64)
    sx, sy = build_swap({"kind": "hard", "p": 1.0}, seed=0)(x, y)
    exchanged = sx == y
    assert torch.equal(torch.where(exchanged, x, sx), x)  # every coordinate is kept or exchanged
    assert torch.equal(sy, torch.where(exchanged, x, y))
    assert 0.45 < exchanged.double().mean() < 0.55
    # Not whole rows: most rows mix both sources.
    assert (exchanged.any(1) & ~exchanged.all(1)).double().mean() > 0.9


def test_hard_row_exchanges_whole_pairs():
    x, y = pair(400, 8)
    sx, sy = build_swap({"kind": "hard_row", "p": 1.0}, seed=0)(x, y)
    rows = (sx == y).all(1)
    assert torch.equal(sx[rows], y[rows]) and torch.equal(sy[rows], x[rows])
    assert torch.equal(sx[~rows], x[~rows]) and torch.equal(sy[~rows], y[~rows])
    assert 0.4 < rows.double().mean() < 0.6


def test_soft_mixes_on_the_segment():
    x, y = pair()
    sx, sy = build_swap({"kind": "soft", "p": 1.0}, seed=0)(x, y)
    torch.testing.assert_close(sx + sy, x + y)
    lam = ((sx - y) / (x - y))  # per row constant λ ∈ [0, 1]
    assert torch.allclose(lam, lam[:, :1].expand_as(lam), atol=1e-4)
    assert (lam[:, 0] >= 0).all() and (lam[:, 0] <= 1).all()


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_active_on_fraction_p_of_steps(p):
    x, y = pair(4, 4)
    swap = build_swap({"kind": "hard_row", "p": p}, seed=3)
    active = sum(not torch.equal(swap(x, y)[0], x) for _ in range(2000))
    # An active hard_row step leaves x unchanged only when no row flips: probability 1/16.
    assert active / 2000 == pytest.approx(p * 15 / 16, abs=0.04)


def test_seeded_and_reproducible():
    x, y = pair()
    a = build_swap({"kind": "soft", "p": 0.5}, seed=7)
    b = build_swap({"kind": "soft", "p": 0.5}, seed=7)
    for _ in range(10):
        torch.testing.assert_close(a(x, y), b(x, y))


def test_probability_out_of_range():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        build_swap({"kind": "hard", "p": 1.5}, seed=0)
