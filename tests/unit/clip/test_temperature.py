import math

import pytest
import torch

from raygap.clip.loss import Clip
from raygap.clip.schedule import lr_multiplier, param_groups, set_lr
from raygap.clip.temperature import MIN_TEMPERATURE, build_temperature

MAX_TAU = 1 / MIN_TEMPERATURE


@pytest.mark.parametrize("kind,extra", [("learned", {}), ("softplus", {}), ("exp_k", {"k": 10.0})])
def test_learned_kinds_start_at_init_and_respect_cap(kind, extra):
    t = build_temperature({"kind": kind, "init": 0.07, **extra}, total_steps=10)
    assert t.learned
    assert float(t.tau(0).detach()) == pytest.approx(1 / 0.07)
    with torch.no_grad():
        t.theta.add_(1e3)  # an optimizer step far past the cap
    t.clamp_()
    assert float(t.tau(0).detach()) == pytest.approx(MAX_TAU)


def test_reparameterizations_change_the_growth_rate():
    # dτ/dθ at the same τ₀: exp(θ) → τ; exp(θ/k) → τ/k; softplus(θ) → sigmoid(θ) < 1.
    grads = {}
    for kind, extra in [("learned", {}), ("exp_k", {"k": 2.0}), ("softplus", {})]:
        t = build_temperature({"kind": kind, **extra}, total_steps=1)
        t.tau(0).backward()
        grads[kind] = float(t.theta.grad)
    tau0 = 1 / 0.07
    assert grads["learned"] == pytest.approx(tau0)
    assert grads["exp_k"] == pytest.approx(tau0 / 2)
    assert grads["softplus"] == pytest.approx(1 / (1 + math.exp(-(tau0 + math.log(-math.expm1(-tau0))))))


def test_fixed_is_constant_and_not_learned():
    t = build_temperature({"kind": "fixed", "value": 0.04}, total_steps=10)
    assert not t.learned and list(t.parameters()) == []
    assert [float(t.tau(s)) for s in (0, 5, 9)] == pytest.approx([25.0] * 3)


def test_linear_schedule_endpoints_and_midpoint():
    t = build_temperature({"kind": "schedule", "start": 0.01, "end": 0.05}, total_steps=11)
    assert [t.temperature(s) for s in (0, 5, 10)] == pytest.approx([0.01, 0.03, 0.05])
    assert float(t.tau(10)) == pytest.approx(20.0)


def test_cosine_alternation():
    t = build_temperature({"kind": "cosine", "low": 0.02, "high": 0.1, "period": 100}, total_steps=1000)
    assert [t.temperature(s) for s in (0, 25, 50, 100, 150)] == pytest.approx([0.02, 0.06, 0.1, 0.02, 0.1])


@pytest.mark.parametrize(
    "options,message",
    [
        ({"kind": "fixed", "value": 0.0}, r"fixed\.value\n  Input should be greater than 0"),
        ({"kind": "schedule", "start": 0.01, "end": -1}, r"schedule\.end\n  Input should be greater than 0"),
        ({"kind": "exp_k", "k": 0}, r"exp_k\.k\n  Input should be greater than 0"),
        ({"kind": "learned", "lr_scale": -0.1}, r"learned\.lr_scale\n  Input should be greater than 0"),
        ({"kind": "cosine", "low": 0.01, "high": 0.1, "period": 0}, r"cosine\.period\n  Input should be greater than or equal to 1"),
        ({"kind": "learned", "max_tau": 50}, "max_tau is now floor"),
    ],
)
def test_bad_arguments_name_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        build_temperature(options, total_steps=10)


def test_lr_multiplier_warmup_then_cosine():
    assert [lr_multiplier(s, 4, 20) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_multiplier(4, 4, 20) == pytest.approx(1.0)
    assert lr_multiplier(12, 4, 20) == pytest.approx(0.5)
    assert lr_multiplier(20, 4, 20) == pytest.approx(0.0)


def test_slrt_scale_holds_at_every_step():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    t = build_temperature({"kind": "learned", "lr_scale": 0.1}, total_steps=50)
    optimizer = torch.optim.AdamW(param_groups(model, t, Clip(), lr=1e-3, weight_decay=0.1))
    theta_group = next(g for g in optimizer.param_groups if any(p is t.theta for p in g["params"]))
    assert theta_group["weight_decay"] == 0.0
    seen = []
    for step in range(50):
        set_lr(optimizer, 1e-3, lr_multiplier(step, 10, 50))
        others = {g["lr"] for g in optimizer.param_groups if g is not theta_group}
        assert len(others) == 1
        seen.append(others.pop())
        assert theta_group["lr"] == pytest.approx(0.1 * seen[-1], rel=1e-12, abs=0)
    assert seen[0] < seen[9] and seen[-1] < seen[10]  # warmup and decay both happened


# ------------------------------------------------------------------ TR's exp(θ/k) is SLRT with lr_scale 1/k
# With φ = θ/k the gradient of θ is 1/k of φ's; Adam's m̂/(√v̂ + ε) undoes that scale (ε becomes k·ε), and
# τ moves by the step divided by k: exactly SLRT's step at learning rate η/k. Needs θ without weight decay
# (param_groups gives it none; with decay the two differ) and θ₀ = k·ln(1/T₀) (ExpOverK.theta_for).
def _tau_trajectory(options: dict, steps: int = 200, lr: float = 0.01, capped: bool = False) -> torch.Tensor:
    """τ after each of `steps` AdamW steps on the CLIP loss, raygap's param groups, LR schedule and clamp."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool only costs time on a shared machine
    try:
        return _tau_steps(options, steps, lr, capped)
    finally:
        torch.set_num_threads(threads)


def _tau_steps(options: dict, steps: int, lr: float, capped: bool) -> torch.Tensor:

    image_in, text_in = torch.randn(64, 16), torch.randn(64, 16)
    towers = torch.nn.ModuleDict({"image": torch.nn.Linear(16, 8), "text": torch.nn.Linear(16, 8)})
    t = build_temperature(options, total_steps=steps)
    optimizer = torch.optim.AdamW(param_groups(towers, t, Clip(), lr=lr, weight_decay=0.1))
    taus = [float(t.tau(0).detach())]
    for step in range(steps):
        set_lr(optimizer, lr, lr_multiplier(step, 20, steps))
        if capped:  # matched pairs that never move: the loss only falls as τ grows, up to the cap
            image = text = torch.nn.functional.normalize(image_in[:, :8], dim=-1)
        else:
            image = torch.nn.functional.normalize(towers["image"](image_in), dim=-1)
            text = torch.nn.functional.normalize(towers["text"](text_in), dim=-1)
        loss = Clip()(image, text, t.tau(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        t.clamp_()
        taus.append(float(t.tau(step + 1).detach()))
    return torch.tensor(taus, dtype=torch.float64)


@pytest.mark.parametrize("capped", [False, True], ids=["free", "capped"])
# k = 2 is bit-exact in float32 (θ/2 rounds nothing). k = 10 is not: θ = 10·φ holds φ with 10× coarser float32
# steps, θ₀ = 10·ln τ₀ and the cap 10·ln 100 round differently; measured 1.2e-6 (free) and 1.3e-5 (capped).
@pytest.mark.parametrize("k,rel", [(2.0, 1e-6), (10.0, 5e-5)])
def test_exp_k_under_adamw_is_slrt_with_lr_scale_one_over_k(k, rel, capped):
    init, lr = (0.0125, 0.05) if capped else (0.07, 0.01)  # capped: τ₀ = 80, driven into the cap of 100
    exp_k = _tau_trajectory({"kind": "exp_k", "init": init, "k": k}, lr=lr, capped=capped)
    slrt = _tau_trajectory({"kind": "learned", "init": init, "lr_scale": 1 / k}, lr=lr, capped=capped)
    plain = _tau_trajectory({"kind": "learned", "init": init}, lr=lr, capped=capped)
    worst = float(((exp_k - slrt).abs() / slrt).max())
    assert worst <= rel, f"exp_k (k={k}) vs learned (lr_scale=1/{k}): max relative τ difference {worst:.3g}"
    assert float(((plain - slrt).abs() / slrt).max()) > 1e-2  # the scale matters: plain exp(θ) moves elsewhere
    assert float((exp_k - exp_k[0]).abs().max() / exp_k[0]) > 0.01  # τ really moved
    if capped:
        assert float(exp_k[-1]) == pytest.approx(MAX_TAU) and float(slrt[-1]) == pytest.approx(MAX_TAU)


def test_exp_k_and_slrt_train_the_same_tau_history(tiny):
    """The same through raygap.clip.train.train: the whole model, its data, schedule and clamp."""
    from raygap.clip.train import train

    histories = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster than contending for two shared cores
    try:
        for name, temperature in [
            ("exp_k", {"kind": "exp_k", "init": 0.07, "k": 2.0}),
            ("slrt", {"kind": "learned", "init": 0.07, "lr_scale": 0.5}),
        ]:
            rows: list[dict] = []
            train(tiny(train={"steps": 100, "eval_interval": 5, "lr": 0.005}, temperature=temperature), rows.append)
            histories[name] = torch.tensor([r["tau"] for r in rows], dtype=torch.float64)
    finally:
        torch.set_num_threads(threads)
    exp_k, slrt = histories["exp_k"], histories["slrt"]
    assert len(exp_k) == len(slrt) == 21
    assert float(((exp_k - slrt).abs() / slrt).max()) <= 1e-6
    assert float((exp_k - exp_k[0]).abs().max()) > 0  # τ was learned, not left at its start
