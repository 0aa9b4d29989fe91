"""The study engine: the only package that imports ray. `engine.run_study` is its entry point;
`plan` (how trials fit a cluster) and `folder` (what may be done with a results folder) are
ray-free."""

from raygap.study.engine import StudyStopped, optuna_path, run_study

__all__ = ["StudyStopped", "optuna_path", "run_study"]
