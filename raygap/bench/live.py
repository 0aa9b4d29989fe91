"""7. Live tracking: what sending one evaluation point to Tune (and its loggers) costs, against the
evaluation that produced it."""

from __future__ import annotations

from raygap.bench.common import Stopwatch
from raygap.clip.evaluate import evaluate
from raygap.clip.model import build_model
from raygap.clip.train import resolve_device
from raygap.config import TrialConfig
from raygap.data import load_source
from raygap.study.tracking import live_result_cost


def live_tracking_cost(cfg: TrialConfig, points: int) -> dict:
    """Seconds per live Tune result (`points` of them, through the CSV/JSON/TensorBoard loggers)
    against one evaluation point's metrics (gap, uniformity, recalls) on `cfg`'s eval set."""
    device = resolve_device(cfg.train.device)
    bundle = build_model(cfg.model.name)
    model = bundle.model.to(device)
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    evaluate(model, eval_set, device, cfg.eval.batch_size, gap_pairs=cfg.eval.gap_pairs)  # warm-up
    with Stopwatch(device) as clock:
        row = evaluate(model, eval_set, device, cfg.eval.batch_size, gap_pairs=cfg.eval.gap_pairs)
    row = {k: float(v) for k, v in row.items() if isinstance(v, (int, float))}
    per_result = live_result_cost(points, {**row, "loss": 1.0, "tau": 14.3, "samples_per_s": 1000.0, "lr": 1e-3}, cfg)
    return {
        "live_result_seconds": per_result,
        "eval_point_seconds": clock.seconds,
        "eval_pairs": len(eval_set),
        "live_per_eval_point": per_result / clock.seconds,
        "points": points,
    }
