import polars as pl
import pytest

from raygap.bench.overhead import per_seed_overhead


def _seed(trial: str, started: float, entered: float, first: float, last: float, left: float, recorded: float) -> dict:
    return {
        "trial_id": trial,
        "trial_started_at": started,
        "started_at": entered,
        "first_step_at": first,
        "last_step_at": last,
        "finished_at": left,
        "recorded_at": recorded,
    }


def test_per_seed_overhead_by_hand():
    rows = pl.DataFrame(
        [
            # trial a: 3 seeds from t=100; each seed 10 s in train(), 8 s of it stepping; last result at 142
            _seed("a", 100, 104, 105, 113, 114, 115),
            _seed("a", 100, 115, 116, 124, 125, 126),
            _seed("a", 100, 126, 127, 135, 136, 142),
            # trial b: one seed, 20 s wall, 10 s in train(), 6 s stepping
            _seed("b", 0, 5, 6, 12, 15, 20),
        ]
    )
    summary = per_seed_overhead(rows)
    assert summary["trials"] == 2 and summary["seed_runs"] == 4
    # a: ray (42 − 30) / 3 = 4, total (42 − 24) / 3 = 6; b: ray 10, total 14; medians of two values
    assert summary["median_per_seed_ray_overhead_s"] == pytest.approx((4 + 10) / 2)
    assert summary["median_per_seed_overhead_s"] == pytest.approx((6 + 14) / 2)
