import pytest
import torch

from raygap.clip.swap import build_swap


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
    lam = (sx - y) / (x - y)  # per row constant λ ∈ [0, 1]
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


# ---------------------------------------------------------------- soft swap granularity (per)
def test_soft_per_pair_hand_example():
    """One λ_i per pair, read from an identically seeded generator: first the step's coin, then
    an (n, 1) draw."""
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.6, 0.8]])
    g = torch.Generator().manual_seed(5)
    torch.rand((), generator=g)  # the step's swap-or-not coin (p = 1: always active)
    lam = torch.rand((2, 1), generator=g)[:, 0].tolist()
    sx, sy = build_swap({"kind": "soft", "p": 1.0, "per": "pair"}, seed=5)(x, y)
    l0, l1 = lam
    expected_x = torch.tensor([[l0, 0.0, 1 - l0], [0.0, l1 + 0.6 * (1 - l1), 0.8 * (1 - l1)]])
    expected_y = torch.tensor([[1 - l0, 0.0, l0], [0.0, 0.6 * l1 + (1 - l1), 0.8 * l1]])
    torch.testing.assert_close(sx, expected_x)
    torch.testing.assert_close(sy, expected_y)


def test_soft_per_coordinate_hand_example():
    """An independent λ_ij per coordinate, read from an identically seeded generator (the coin,
    then an (n, m) draw in row-major order), applied entry by entry."""
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    y = torch.tensor([[0.0, 1.0], [0.8, -0.6]])
    g = torch.Generator().manual_seed(11)
    torch.rand((), generator=g)
    lam = torch.rand((2, 2), generator=g).tolist()
    sx, sy = build_swap({"kind": "soft", "p": 1.0, "per": "coordinate"}, seed=11)(x, y)
    (a, b), (c, d) = lam
    expected_x = torch.tensor([[a, 1 - b], [0.6 * c + 0.8 * (1 - c), 0.8 * d - 0.6 * (1 - d)]])
    expected_y = torch.tensor([[1 - a, b], [0.8 * c + 0.6 * (1 - c), -0.6 * d + 0.8 * (1 - d)]])
    torch.testing.assert_close(sx, expected_x)
    torch.testing.assert_close(sy, expected_y)
    assert len({round(v, 6) for row in lam for v in row}) == 4  # distinct λ within a row, unlike per pair


@pytest.mark.parametrize(
    "per, lam, expected_x, expected_y",
    [
        ("pair", [[0.25]], [[0.25, 0.75]], [[0.75, 0.25]]),
        ("coordinate", [[0.25, 0.5]], [[0.25, 0.5]], [[0.75, 0.5]]),
    ],
)
def test_soft_fixed_lambda_hand_values(monkeypatch, per, lam, expected_x, expected_y):
    """x = e₁, y = e₂ with fixed λ: x̂ = λx + (1−λ)y, ŷ = λy + (1−λ)x by hand; norms below 1."""
    swap = build_swap({"kind": "soft", "p": 1.0, "per": per}, seed=0)
    monkeypatch.setattr(swap, "_uniform", lambda columns, like: torch.tensor(lam).expand(like.shape[0], columns))
    sx, sy = swap(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(sx, torch.tensor(expected_x))
    torch.testing.assert_close(sy, torch.tensor(expected_y))
    assert float(sx.norm()) < 1 and float(sy.norm()) < 1  # not renormalized


def test_soft_per_coordinate_mixes_each_entry_independently():
    x, y = pair(256, 32)
    sx, sy = build_swap({"kind": "soft", "p": 1.0, "per": "coordinate"}, seed=0)(x, y)
    torch.testing.assert_close(sx + sy, x + y)
    lam = (sx - y) / (x - y)
    assert (lam > -1e-4).all() and (lam < 1 + 1e-4).all()
    assert lam.std(dim=1).mean() > 0.2  # λ varies within a row (U[0,1] has std ≈ 0.29)


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_swapped_features_are_not_renormalized(kind):
    x, y = (torch.nn.functional.normalize(t, dim=-1) for t in pair(128, 16))
    sx, _ = build_swap({"kind": kind, "p": 1.0}, seed=0)(x, y)
    assert not torch.allclose(sx.norm(dim=1), torch.ones(128), atol=1e-3)


def test_soft_default_per_is_pair_and_spec_checks_the_value():
    from pydantic import ValidationError

    from raygap.config import SoftSwapSpec

    assert SoftSwapSpec().per == "pair"
    assert build_swap(SoftSwapSpec(p=0.5).model_dump(), seed=0).per == "pair"
    assert build_swap(SoftSwapSpec(per="coordinate").model_dump(), seed=0).per == "coordinate"
    with pytest.raises(ValidationError, match="per"):
        SoftSwapSpec(per="entry")
    with pytest.raises(ValueError, match="per must be 'pair' or 'coordinate', got 'entry'"):
        build_swap({"kind": "soft", "p": 1.0, "per": "entry"}, seed=0)


# ------------------------------------------------------------------------------ across workers
SWAP_KINDS = [
    {"kind": "hard", "p": 0.6},
    {"kind": "hard_row", "p": 0.6},
    {"kind": "soft", "p": 0.6, "per": "pair"},
    {"kind": "soft", "p": 0.6, "per": "coordinate"},
]
SWAP_IDS = ["hard", "hard_row", "soft-pair", "soft-coordinate"]


@pytest.mark.parametrize("options", SWAP_KINDS, ids=SWAP_IDS)
@pytest.mark.parametrize("world_size", [2, 3])
def test_workers_get_their_rows_of_the_global_batch_swap(options, world_size):
    """Each rank's output, step after step (some steps inactive), is its rows of the swap one
    worker applies to the whole global batch with the same seed."""
    x, y = pair(6 * world_size, 5)
    n = 6
    whole = build_swap(options, seed=4)
    ranks = [build_swap(options, seed=4, rank=r, world_size=world_size) for r in range(world_size)]
    for _ in range(12):
        big_x, big_y = whole(x, y)
        outs = [s(x[r * n : (r + 1) * n], y[r * n : (r + 1) * n]) for r, s in enumerate(ranks)]
        torch.testing.assert_close(torch.cat([o[0] for o in outs]), big_x)
        torch.testing.assert_close(torch.cat([o[1] for o in outs]), big_y)
    # The generators stay in step: any rank's state resumes every rank.
    assert all(torch.equal(s.generator.get_state(), whole.generator.get_state()) for s in ranks)


def test_rank_out_of_range():
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\), got rank 2 of world_size 2"):
        build_swap({"kind": "hard", "p": 1.0}, seed=0, rank=2, world_size=2)
