import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss

from raygap.clip.loss import BetaStream, Clip, build_loss, geodesic_mix, mixup_term
from raygap.clip.swap import build_swap

E = math.e
KINDS = ["clip", "siglip", "cyclip", "inmodal_separation", "m3mix"]


def test_hand_value_two_orthogonal_pairs():
    x = torch.eye(2)
    # logits [[1, 0], [0, 1]]: each row's cross-entropy is log(1 + e⁻¹).
    assert float(Clip()(x, x, 1.0)) == pytest.approx(math.log(1 + math.exp(-1)))


def test_equals_open_clip_cliploss():
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    y = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    tau = torch.tensor(1 / 0.07)
    assert float(Clip()(x, y, tau)) == pytest.approx(float(ClipLoss()(x, y, tau)), rel=1e-6)


# ------------------------------------------------------------------ hand values on a 3×3 case
# Images e1, e2, e3; captions e1, e1, e2; τ = 1. X·Yᵀ = [[1,1,0],[0,0,1],[0,0,0]], X·Xᵀ = I,
# Y·Yᵀ = [[1,1,0],[1,1,0],[0,0,1]].
HAND_X = torch.eye(3)
HAND_Y = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0]])
# CLIP: rows of X·Yᵀ against targets 0, 1, 2, then its columns.
HAND_CLIP = ((math.log(2 * E + 1) - 1 + math.log(2 + E) + math.log(3)) / 3 + (3 * math.log(E + 2) - 1) / 3) / 2


def test_clip_by_hand():
    assert float(Clip()(HAND_X, HAND_Y, 1.0)) == pytest.approx(HAND_CLIP, rel=1e-6)


def test_siglip_by_hand():
    # b = 0: pairs score 1, 0, 0 (−log σ(s)); the six others 1, 0, 0, 1, 0, 0 (−log σ(−s)); over n = 3.
    expected = (math.log(1 + 1 / E) + 2 * math.log(2) + 2 * math.log(1 + E) + 4 * math.log(2)) / 3
    assert float(build_loss({"kind": "siglip", "bias_init": 0.0})(HAND_X, HAND_Y, 1.0).detach()) == pytest.approx(expected, rel=1e-6)


def test_cyclip_by_hand():
    # In-modal: X·Xᵀ − Y·Yᵀ has two entries −1 → 2 / n; cross-modal: X·Yᵀ − (X·Yᵀ)ᵀ four entries ±1 → 4 / n.
    loss = build_loss({"kind": "cyclip", "in_modal": 0.25, "cross_modal": 0.5})(HAND_X, HAND_Y, 1.0)
    assert float(loss) == pytest.approx(HAND_CLIP + 0.25 * 2 / 3 + 0.5 * 4 / 3, rel=1e-6)


def test_inmodal_separation_by_hand():
    images = math.log(E + 2) - 1  # every row of X·Xᵀ = I
    captions = (2 * math.log(2 * E + 1) + math.log(E + 2)) / 3 - 1
    loss = build_loss({"kind": "inmodal_separation", "weight": 0.5, "clip_weight": 2.0})(HAND_X, HAND_Y, 1.0)
    assert float(loss) == pytest.approx(2.0 * 2 * HAND_CLIP + 0.5 * (images + captions), rel=1e-6)


def test_m3mix_term_by_hand():
    # Captions e2, e3, e1: every pair at θ = π/2, so at λ = ½ each mixture is (x_j + y_j)/√2; each row
    # of A and of B then holds one 1/√2 among its negatives and 0 at its pair.
    x, y = torch.eye(3), torch.tensor([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]])
    torch.testing.assert_close(geodesic_mix(x, y, 0.5), (x + y) / math.sqrt(2))
    term = mixup_term(x, y, x, y, 1.0, 0, 0.5)
    assert float(term) == pytest.approx(2 * math.log(2 + math.exp(1 / math.sqrt(2))), rel=1e-6)


def test_geodesic_mix_stays_on_the_sphere_at_the_given_angle():
    a, b = _features(n=32, m=6, seed=3)
    theta = torch.arccos((a * b).sum(1))
    for lam in (0.1, 0.3, 0.9):
        mixed = geodesic_mix(a, b, lam)
        torch.testing.assert_close(mixed.norm(dim=1), torch.ones(32, dtype=torch.float64))
        # λ of the way from b to a: the angle to b is λθ, to a (1 − λ)θ.
        torch.testing.assert_close(torch.arccos((mixed * b).sum(1)), lam * theta)
        torch.testing.assert_close(torch.arccos((mixed * a).sum(1)), (1 - lam) * theta)


# --------------------------------------------------------- independent references on random features
def _features(n=12, m=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, m, generator=g, dtype=dtype), dim=-1), F.normalize(
        torch.randn(n, m, generator=g, dtype=dtype), dim=-1
    )


def _ce_rows(scores: list[list[float]]) -> float:
    return sum(-s[i] + math.log(sum(math.exp(v) for v in s)) for i, s in enumerate(scores)) / len(scores)


def _slow(kind: str, x, y, tau: float, options: dict, lam: float | None = None) -> float:
    """The loss written from its formula, a pair at a time in Python floats."""
    n = len(x)
    dot = lambda a, b: sum(float(p) * float(q) for p, q in zip(a, b))  # noqa: E731
    xy = [[tau * dot(x[i], y[j]) for j in range(n)] for i in range(n)]
    yx = [[tau * dot(y[i], x[j]) for j in range(n)] for i in range(n)]
    clip = (_ce_rows(xy) + _ce_rows(yx)) / 2
    if kind == "clip":
        return clip
    if kind == "cyclip":
        inmodal = sum((dot(x[j], x[k]) - dot(y[j], y[k])) ** 2 for j in range(n) for k in range(n)) / n
        cross = sum((dot(x[j], y[k]) - dot(x[k], y[j])) ** 2 for j in range(n) for k in range(n)) / n
        return clip + options["in_modal"] * inmodal + options["cross_modal"] * cross
    if kind == "inmodal_separation":
        xx = [[tau * dot(x[i], x[j]) for j in range(n)] for i in range(n)]
        yy = [[tau * dot(y[i], y[j]) for j in range(n)] for i in range(n)]
        return options["clip_weight"] * 2 * clip + options["weight"] * (_ce_rows(xx) + _ce_rows(yy))
    if kind == "m3mix":
        mixed = []
        for j in range(n):
            theta = math.acos(dot(x[j], y[j]))
            mixed.append(
                [(math.sin(lam * theta) * float(p) + math.sin((1 - lam) * theta) * float(q)) / math.sin(theta) for p, q in zip(x[j], y[j])]
            )
        a = [[tau * (dot(x[i], y[i]) if i == j else dot(x[i], mixed[j])) for j in range(n)] for i in range(n)]
        b = [[tau * (dot(y[i], x[i]) if i == j else dot(y[i], mixed[j])) for j in range(n)] for i in range(n)]
        return clip + options["weight"] * (_ce_rows(a) + _ce_rows(b))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, options",
    [
        ("clip", {}),
        ("cyclip", {"in_modal": 0.25, "cross_modal": 0.7}),
        ("inmodal_separation", {"weight": 0.5, "clip_weight": 1.5}),
        ("m3mix", {"weight": 0.3, "alpha": 0.5}),
    ],
)
def test_each_loss_equals_a_slow_loop_over_pairs(kind, options):
    x, y = _features()
    loss = build_loss({"kind": kind, **options}, seed=5)
    lam = None
    if kind == "m3mix":
        lam = BetaStream(options["alpha"], 5).draw()  # the draw the loss makes first
    assert float(loss(x, y, 7.0)) == pytest.approx(_slow(kind, x, y, 7.0, options, lam), rel=1e-10)


@pytest.mark.parametrize("bias", [-10.0, 0.0, 2.5])
def test_siglip_equals_open_clip_sigliploss(bias):
    x, y = _features(n=16, m=8, dtype=torch.float32)
    tau = torch.tensor(10.0)
    ours = build_loss({"kind": "siglip", "bias_init": bias})(x, y, tau)
    theirs = SigLipLoss()(x, y, tau, torch.tensor(bias))
    assert float(ours.detach()) == pytest.approx(float(theirs), rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_pass_gradcheck_in_float64(kind):
    """Autograd's gradients against finite differences, for the features, τ and SigLIP's bias."""
    x, y = _features(n=5, m=4, seed=2)
    x, y = x.requires_grad_(), y.requires_grad_()
    tau = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    loss = build_loss({"kind": kind, "bias_init": -1.0} if kind == "siglip" else {"kind": kind}).double()
    generator = getattr(loss, "generator", None)
    start = generator.get_state() if generator is not None else None

    def value(x, y, tau, *parameters):
        if start is not None:
            generator.set_state(start)  # the same λ at every evaluation
        return loss(x, y, tau)

    assert torch.autograd.gradcheck(value, (x, y, tau, *loss.parameters()))


def test_siglip_learns_its_bias_and_logs_it():
    loss = build_loss({"kind": "siglip"})
    x, y = _features(n=8, m=4, dtype=torch.float32)
    loss(x, y, 10.0).backward()
    # Almost every pair is a negative and b = −10 scores them near 0 loss: the pull on b is from the 8 pairs, upward.
    assert float(loss.bias.grad) < 0
    assert loss.logged() == {"logit_bias": -10.0}
    assert not build_loss({"kind": "siglip", "learn_bias": False}).bias.requires_grad


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _swapped_loss(x, y, tau, swap, loss, steps, rank=0, world_size=1):
    """The sum over `steps` steps of the loss of the swapped pair, each step drawing a new swap."""
    total = 0
    for _ in range(steps):
        sx, sy = swap(x, y)
        total = total + loss(sx, sy, tau, rank=rank, world_size=world_size)
    return total


# (swap, loss): every swap with CLIP's loss, every loss without a swap, and SigLIP with one.
CASES = [
    ({"kind": "none"}, {"kind": "clip"}),
    ({"kind": "hard", "p": 0.75}, {"kind": "clip"}),
    ({"kind": "hard_row", "p": 0.75}, {"kind": "clip"}),
    ({"kind": "soft", "p": 0.75, "per": "pair"}, {"kind": "clip"}),
    ({"kind": "soft", "p": 0.75, "per": "coordinate"}, {"kind": "clip"}),
    ({"kind": "none"}, {"kind": "siglip", "bias_init": -2.0}),
    ({"kind": "none"}, {"kind": "cyclip"}),
    ({"kind": "none"}, {"kind": "inmodal_separation"}),
    ({"kind": "none"}, {"kind": "m3mix", "weight": 0.5}),
    ({"kind": "hard", "p": 0.75}, {"kind": "siglip", "bias_init": -2.0}),
]
CASE_IDS = ["no-swap", "hard", "hard_row", "soft-pair", "soft-coordinate", "siglip", "cyclip", "inmodal_separation", "m3mix", "siglip-hard"]
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
    for case, (swap_options, loss_options) in enumerate(cases):
        xs, ys = x[shard].clone().requires_grad_(), y[shard].clone().requires_grad_()
        t = tau.clone().requires_grad_()
        # As train.py does: every rank seeds the same streams and swaps its rows of the global batch.
        swap = build_swap(swap_options, seed=SWAP_SEED, rank=rank, world_size=world_size)
        loss_fn = build_loss(loss_options, seed=SWAP_SEED)
        loss = _swapped_loss(xs, ys, t, swap, loss_fn, SWAP_STEPS, rank=rank, world_size=world_size)
        loss.backward()
        # DDP averages gradients over workers: do the same to compare with one big batch.
        grads = [t.grad.clone(), *(p.grad.clone() for p in loss_fn.parameters())]
        for grad in grads:
            dist.all_reduce(grad)
        out[case, rank] = (loss.detach(), xs.grad * 1, ys.grad * 1, [g / world_size for g in grads])
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_worker_results():
    """Each case of CASES run by 2 gloo workers (one spawn for all cases: starting workers is the
    slow part): {(case, rank): (loss, grad x shard, grad y shard, [grad τ, grads of the loss's parameters] averaged)}."""
    x, y, tau = _inputs()
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), x, y, tau, CASES, out), nprocs=2)
        return dict(out)


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASE_IDS)
def test_two_workers_equal_one_big_batch(two_worker_results, case):
    """2 workers with half the batch each give the loss and gradients of 1 worker with the whole
    batch, for every loss kind, with and without a modality swap (same seeds; the swap applied
    before the gather)."""
    x, y, tau = _inputs()
    swap_options, loss_options = CASES[case]
    xb, yb, tb = x.clone().requires_grad_(), y.clone().requires_grad_(), tau.clone().requires_grad_()
    loss_fn = build_loss(loss_options, seed=SWAP_SEED)
    big = _swapped_loss(xb, yb, tb, build_swap(swap_options, seed=SWAP_SEED), loss_fn, SWAP_STEPS)
    big.backward()

    results = [two_worker_results[case, 0], two_worker_results[case, 1]]
    losses = torch.stack([r[0] for r in results])
    assert float(losses.mean()) == pytest.approx(float(big.detach()), rel=1e-6)
    # Each worker's input gradient, divided by the world size as DDP's mean does, is the big batch's.
    torch.testing.assert_close(torch.cat([r[1] for r in results]) / 2, xb.grad)
    torch.testing.assert_close(torch.cat([r[2] for r in results]) / 2, yb.grad)
    for worker_grad, big_grad in zip(results[0][3], [tb.grad, *(p.grad for p in loss_fn.parameters())]):
        torch.testing.assert_close(worker_grad, big_grad)


def test_geodesic_mix_takes_the_rows_directions_so_swapped_rows_mix_on_the_sphere():
    """A hard or soft swap leaves rows off the unit sphere: the mixture is that of their directions."""
    a, b = _features(n=8, m=5, seed=4)
    torch.testing.assert_close(geodesic_mix(2.0 * a, 0.5 * b, 0.3), geodesic_mix(a, b, 0.3))
    torch.testing.assert_close(geodesic_mix(2.0 * a, 0.5 * b, 0.3).norm(dim=1), torch.ones(8, dtype=torch.float64))
