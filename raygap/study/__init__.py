"""The study engine: the only package that imports ray. `engine.run_study` is its entry point;
`plan` (how trials fit a cluster) and `folder` (what may be done with a results folder) are
ray-free, and importing them (or this package) does not import ray: names load on first use."""

from typing import TYPE_CHECKING

from raygap.lazy import lazy_names

# What mypy and editors see; at run time each name is imported on first use (_WHERE).
if TYPE_CHECKING:
    from raygap.study.engine import StudyStopped, run_study
    from raygap.study.folder import StudyInProgress, optuna_path

_WHERE = {
    "StudyStopped": "raygap.study.engine",
    "optuna_path": "raygap.study.folder",
    "run_study": "raygap.study.engine",
    "StudyInProgress": "raygap.study.folder",
}
__all__ = sorted(_WHERE)


__getattr__ = lazy_names("raygap.study", _WHERE)
