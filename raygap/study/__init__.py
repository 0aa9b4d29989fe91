"""The study engine: the only package that imports ray. `engine.run_study` is its entry point;
`plan` (how trials fit a cluster) and `folder` (what may be done with a results folder) are
ray-free, and importing them (or this package) does not import ray: names load on first use."""

import importlib

_WHERE = {
    "StudyStopped": "raygap.study.engine",
    "optuna_path": "raygap.study.folder",
    "run_study": "raygap.study.engine",
    "StudyInProgress": "raygap.study.folder",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'raygap.study' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
