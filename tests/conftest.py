import pytest

from raygap.spec import TrialConfig


def tiny_config(**sections) -> TrialConfig:
    """A trial small enough for unit tests: tiny ViT, small synthetic sets, a handful of steps."""
    raw = {
        "name": "test",
        "data": {
            "train": {"kind": "synthetic", "size": 512, "seed": 0},
            "eval": {"kind": "synthetic", "size": 128, "seed": 1, "captions_per_image": 2},
            "probe": {"train": {"kind": "synthetic", "size": 128, "seed": 2}, "test": {"kind": "synthetic", "size": 64, "seed": 3}},
        },
        "train": {"steps": 4, "batch_size": 32, "eval_interval": 2, "warmup_steps": 1, "seed": 0},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return TrialConfig.model_validate(raw)


@pytest.fixture
def tiny():
    return tiny_config
