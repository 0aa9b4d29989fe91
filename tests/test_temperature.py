import math

import pytest
import torch

from raygap.temperature import MAX_TAU, build_temperature
from raygap.train import lr_multiplier, param_groups, set_lr


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
        ({"kind": "fixed", "value": 0.0}, "value must be > 0"),
        ({"kind": "schedule", "start": 0.01, "end": -1}, "end must be > 0"),
        ({"kind": "exp_k", "k": 0}, "k must be > 0"),
        ({"kind": "learned", "lr_scale": -0.1}, "lr_scale must be > 0"),
        ({"kind": "cosine", "low": 0.01, "high": 0.1, "period": 0}, "period must be >= 1"),
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
    optimizer = torch.optim.AdamW(param_groups(model, t, lr=1e-3, weight_decay=0.1))
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
