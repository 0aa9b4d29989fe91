import torch

from raygap.bench.common import SIZES, trial_raw
from raygap.bench.losses import _reset_high_water_mark, _status_mb, accumulation_run, seconds_per_step


def _raw(batch: int) -> dict:
    raw = trial_raw({**SIZES["ci"], "batch": batch}, 1000, 64)
    raw["data"]["train"]["size"] = 256
    return raw


def test_a_step_of_each_loss_is_timed_on_the_bench_s_trial():
    assert 0 < seconds_per_step(_raw(16), "siglip", 1) < 60
    assert 0 < seconds_per_step(_raw(16), "m3mix", 1) < 60


def test_the_high_water_mark_sees_memory_that_was_freed_before_it_was_read():
    """What the accumulation part reports: the peak over the steps, not what is resident after them."""
    before = _status_mb("VmRSS")
    _reset_high_water_mark()
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, written
    del block
    assert _status_mb("VmHWM") - before > 60


def test_accumulation_run_times_steps_and_measures_their_peak():
    raw = _raw(32)
    raw["train"]["accumulate"] = 2
    run = accumulation_run(raw, steps=1)
    assert 0 < run["seconds_per_sample"] < 10 and run["step_peak_mb"] >= 0
