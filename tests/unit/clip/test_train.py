import math

import pytest
import torch

from raygap.clip.train import train

SHORT_RUN = dict(
    data={"train": {"kind": "synthetic", "size": 4096, "seed": 0}, "eval": {"kind": "synthetic", "size": 256, "seed": 1}, "probe": None},
    train={"steps": 150, "batch_size": 128, "lr": 0.002, "warmup_steps": 10, "eval_interval": 50},
)


@pytest.fixture(scope="module")
def short_runs(tiny):
    """150 real training steps of the tiny model with a learned T; 20 with a fixed T (enough to see it stay)."""
    fixed_run = {**SHORT_RUN, "train": {**SHORT_RUN["train"], "steps": 20, "eval_interval": 10}}
    runs = {}
    for name, temperature, run in [("learned", {"kind": "learned"}, SHORT_RUN), ("fixed", {"kind": "fixed", "value": 0.04}, fixed_run)]:
        history = []
        final = train(tiny(temperature=temperature, **run), report=history.append)
        runs[name] = final, history
    return runs


def test_short_run_retrieves_far_above_chance(short_runs):
    final, history = short_runs["learned"]
    chance = 1 / 256
    assert history[0]["mean_r1"] < 3 * chance  # random init
    assert final["mean_r1"] > 10 * chance
    assert final["loss"] < history[1]["loss"]
    assert final["modality_gap"] < history[0]["modality_gap"]


def test_learned_temperature_rises_while_fixed_stays(short_runs):
    learned = [row["tau"] for row in short_runs["learned"][1]]
    fixed = [row["temperature"] for row in short_runs["fixed"][1]]
    assert learned[0] == pytest.approx(1 / 0.07)
    assert learned[-1] > learned[0]
    assert len(fixed) == 3 and fixed == [0.04] * 3


def test_history_has_one_row_per_evaluation_point(short_runs):
    final, history = short_runs["learned"]
    assert [row["step"] for row in history] == [0, 50, 100, 150]
    assert final["steps"] == 150 and final["workers"] == 1 and final["device"] == "cpu"
    assert final["train_seconds"] > 0 and final["samples_per_s"] > 0


@pytest.mark.parametrize(
    "sections",
    [
        {"temperature": {"kind": "softplus"}},
        {"temperature": {"kind": "exp_k", "k": 2.0}},
        {"temperature": {"kind": "learned", "lr_scale": 0.1}},
        {"temperature": {"kind": "schedule", "start": 0.01, "end": 0.05}},
        {"temperature": {"kind": "cosine", "low": 0.02, "high": 0.1, "period": 4}},
        {"swap": {"kind": "hard", "p": 1.0}},
        {"swap": {"kind": "hard_row", "p": 0.5}},
        {"swap": {"kind": "soft", "p": 1.0}},
        {"model": {"normalize": False}, "temperature": {"kind": "fixed", "value": 1.0}},
        {"loss": {"kind": "siglip"}},
        {"loss": {"kind": "siglip", "learn_bias": False}, "temperature": {"kind": "fixed", "value": 0.1}},
        {"loss": {"kind": "cyclip"}},
        {"loss": {"kind": "inmodal_separation"}},
        {"loss": {"kind": "m3mix", "weight": 0.5}, "swap": {"kind": "soft", "p": 0.5}},
        {"train": {"accumulate": 4, "grad_clip_norm": 1.0}},
    ],
    ids=[
        "softplus",
        "exp_k",
        "slrt",
        "schedule",
        "cosine",
        "hard",
        "hard_row",
        "soft",
        "no_norm",
        "siglip",
        "siglip-fixed",
        "cyclip",
        "inmodal_separation",
        "m3mix-soft-swap",
        "accumulate-clip",
    ],
)
def test_every_method_trains_in_the_loop(sections, tiny):
    history = []
    final = train(tiny(**sections), report=history.append)
    assert [row["step"] for row in history] == [0, 2, 4]
    assert all(math.isfinite(row["loss"]) for row in history[1:])
    assert 0 <= final["zero_shot_top1"] <= 1 and 0 <= final["linear_probe_top1"] <= 1
    if sections.get("temperature", {}).get("kind") == "schedule":
        assert history[0]["temperature"] == pytest.approx(0.01)
        assert history[-1]["temperature"] == pytest.approx(0.05)
    siglip = sections.get("loss", {}).get("kind") == "siglip"
    assert ("logit_bias" in final) == siglip
    if siglip:
        # SigLIP starts at T = 0.1 and b = −10; a learned bias moves, a frozen one stays.
        assert history[0]["temperature"] == pytest.approx(0.1) and history[0]["logit_bias"] == -10.0
        assert (history[-1]["logit_bias"] != -10.0) == sections["loss"].get("learn_bias", True)


def test_same_seed_same_numbers(tiny):
    first, second = [], []
    train(tiny(), report=first.append)
    train(tiny(), report=second.append)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]  # noqa: E731
    assert strip(first) == strip(second)


def test_warmup_in_epochs_is_counted_in_steps_of_the_training_set(tiny):
    from raygap.config import TrialConfig

    raw = tiny().model_dump(mode="json")
    raw["train"] = {"steps": 6, "batch_size": 128, "eval_interval": 1, "warmup_epochs": 2, "lr": 0.01, "seed": 0}
    cfg = TrialConfig.model_validate(raw)
    rows = []
    train(cfg, report=rows.append)
    # 512 pairs at batch 128: 4 steps an epoch, so 8 warmup steps; the lr logged after step s
    # (s = 1..6) was set for step s − 1: 0.01 × s / 8, still warming up at the last step.
    assert [round(r["lr"], 10) for r in rows if r["step"] > 0] == [round(0.01 * s / 8, 10) for s in range(1, 7)]
    with pytest.raises(ValueError, match="either warmup_steps or warmup_epochs"):
        TrialConfig.model_validate({**raw, "train": {**raw["train"], "warmup_steps": 3}})


def test_batch_larger_than_the_data_is_refused(tiny):
    with pytest.raises(ValueError, match=r"data.train has 512 pairs, fewer than train.batch_size 1024"):
        train(tiny(train={"batch_size": 1024}))


@pytest.mark.parametrize(
    "sections",
    [{}, {"swap": {"kind": "hard", "p": 0.5}}, {"loss": {"kind": "siglip"}}, {"loss": {"kind": "m3mix", "weight": 0.5}}],
    ids=["learned", "hard-swap", "siglip", "m3mix"],
)
def test_resume_from_a_checkpoint_matches_an_uninterrupted_run(tmp_path, sections, tiny):
    """Steps 1–20 over 16 batches per epoch: a checkpoint inside the second epoch, written with
    torch.save and read back with weights_only=True, continues exactly as if never stopped."""
    cfg = tiny(train={"steps": 20, "eval_interval": 10, "checkpoint_interval": 6}, **sections)
    saved = []

    def save(state):  # at once, as a study does: the state holds the live tensors
        saved.append(tmp_path / f"step{state['step']}.pt")
        torch.save(state, saved[-1])

    uninterrupted = train(cfg, checkpoint=save)
    assert [p.name for p in saved] == ["step6.pt", "step12.pt", "step18.pt"]
    for path in saved[1:]:  # inside the first epoch, and inside the second
        state = torch.load(path, weights_only=True)
        resumed = train(cfg, resume_from=state)
        for key in ("modality_gap", "uniformity", "mean_r1", "loss", "temperature", "linear_probe_top1", "logit_bias"):
            assert resumed.get(key) == uninterrupted.get(key), key


def test_a_trial_on_image_files_trains_from_the_decoded_copy(tmp_path, tiny, save_jpegs):
    """Files decoded once into decoded_cache feed training (random crops) and evaluation, and a
    second trial on the same files reads the same copy without decoding again."""
    table = save_jpegs(tmp_path / "data", [(48, 64), (64, 48), (40, 40), (70, 50)] * 16)
    source = {"kind": "files", "table": str(table), "decoded_cache": str(tmp_path / "cache")}
    cfg = tiny(data={"train": source, "eval": source, "probe": None}, train={"batch_size": 16, "steps": 4, "eval_interval": 2})
    history = []
    final = train(cfg, report=history.append)
    assert [row["step"] for row in history] == [0, 2, 4] and math.isfinite(final["loss"]) and 0 <= final["modality_gap"] <= 2
    (copy,) = (tmp_path / "cache").glob("*.npy")
    stamp = copy.stat().st_mtime_ns
    assert train(cfg)["loss"] == final["loss"]  # same seed, same crops, same numbers
    assert copy.stat().st_mtime_ns == stamp


def test_open_clip_attention_runs_through_scaled_dot_product_attention():
    """Both towers' attention goes through F.scaled_dot_product_attention (flash and memory-efficient
    kernels on a GPU), one call per layer: open_clip's blocks ask nn.MultiheadAttention for no weights."""
    from torch.profiler import ProfilerActivity, profile

    from raygap.clip.model import build_model

    bundle = build_model("tiny-vit")  # 2 vision and 2 text layers
    images, tokens = torch.randn(4, 3, 32, 32), bundle.tokenize(["a photo of a red circle"] * 4)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        bundle.model.encode_image(images)
        bundle.model.encode_text(tokens)
    calls = {event.key: event.count for event in prof.key_averages()}
    assert calls.get("aten::scaled_dot_product_attention") == 4


def test_the_row_says_which_probe_ran(tiny):
    from raygap.clip.metrics import PROBE_STRENGTHS

    fixed = train(tiny(eval={"probe_l2": 0.01}))
    swept = train(tiny(eval={"linear_probe": "swept"}))
    assert fixed["linear_probe_l2"] == 0.01 and swept["linear_probe_l2"] in PROBE_STRENGTHS
    assert 0 <= swept["linear_probe_top1"] <= 1
