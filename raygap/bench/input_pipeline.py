"""4. Input pipeline: samples/s the training DataLoader delivers against what the model consumes."""

from __future__ import annotations

from torch.utils.data import RandomSampler

from raygap.bench.common import Stopwatch
from raygap.clip.model import build_model
from raygap.clip.train import resolve_device
from raygap.config import TrialConfig
from raygap.data import LoadedPairs, load_source, training_batches


def input_pipeline(cfg: TrialConfig, consumed_samples_per_s: float, batches: int = 32) -> dict:
    """samples/s the training loader delivers to the model's device, as the loop loads it (the
    DataLoader path of `data.pipeline`, whatever the spec picks)."""
    device = resolve_device(cfg.train.device)
    data = load_source(cfg.data.train, build_model(cfg.model.name), train=True)
    workers = cfg.data.loader_workers
    loaded = training_batches(data, RandomSampler(data), cfg.train.batch_size, device, "loader", workers)
    assert isinstance(loaded, LoadedPairs)  # the "loader" pipeline is always a DataLoader's
    iter(loaded.loader)  # start the loader's workers before the clock
    samples = 0
    with Stopwatch(device) as clock:
        while samples < batches * cfg.train.batch_size:
            for images, _ in loaded:
                samples += len(images)
    delivered = samples / clock.seconds
    return {"loader_samples_per_s": delivered, "loader_headroom": delivered / consumed_samples_per_s, "loader_workers": workers}
