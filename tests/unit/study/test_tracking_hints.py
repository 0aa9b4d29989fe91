"""The lines a study prints about where to watch it name only commands that can run here."""

import importlib.util

from raygap.config.tracking import TrackingSpec
from raygap.results import ResultsFolder
from raygap.study import tracking


def test_the_tensorboard_hint_says_how_to_get_the_viewer_where_it_is_missing(tmp_path, monkeypatch):
    folder = ResultsFolder(tmp_path / "study")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    [line, *_] = tracking.where_to_look(TrackingSpec(), "s", folder)
    assert line == f"TensorBoard: pip install 'raygap[tensorboard]', then tensorboard --logdir {folder.uri('ray')}"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "tensorboard" else real(name, *a))
    [line, *_] = tracking.where_to_look(TrackingSpec(), "s", folder)
    assert line == f"TensorBoard: tensorboard --logdir {folder.uri('ray')}"
    assert not any("TensorBoard" in line for line in tracking.where_to_look(TrackingSpec(tensorboard=False), "s", folder))
