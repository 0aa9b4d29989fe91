"""5. Evaluation cost: a full evaluation (recalls, gap, uniformity, linear probe) against an epoch."""

from __future__ import annotations

from raygap.bench.common import Stopwatch
from raygap.clip.evaluate import evaluate, probe_metrics
from raygap.clip.model import build_model
from raygap.clip.train import resolve_device
from raygap.config import TrialConfig
from raygap.data import load_source


def evaluation_cost(cfg: TrialConfig, samples_per_s: float, epoch_pairs: int) -> dict:
    """A full evaluation (recalls, gap, uniformity, zero-shot and linear probe) against the time
    of one training epoch of `epoch_pairs` pairs at `samples_per_s`."""
    device = resolve_device(cfg.train.device)
    bundle = build_model(cfg.model.name)
    model = bundle.model.to(device)
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    if cfg.data.probe is None:
        raise ValueError("evaluation_cost times the linear probe too: the trial needs data.probe")
    probe = load_source(cfg.data.probe.train, bundle, train=False), load_source(cfg.data.probe.test, bundle, train=False)
    with Stopwatch(device) as clock:
        evaluate(model, eval_set, device, cfg.eval.batch_size, gap_pairs=cfg.eval.gap_pairs)
        probe_metrics(model, *probe, cfg.eval, bundle.tokenize, device)
    epoch = epoch_pairs / samples_per_s
    return {
        "eval_pairs": len(eval_set),
        "eval_seconds": clock.seconds,
        "epoch_pairs": epoch_pairs,
        "epoch_seconds": epoch,
        "eval_per_epoch": clock.seconds / epoch,
    }
