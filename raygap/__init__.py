"""raygap: hyperparameter studies of the modality gap in contrastive image–text (CLIP) training.

The Python API:
- `load_spec(path, overrides=())` reads and validates a study file (raises SpecError);
- `run_study(spec, folder, …)` runs it with Ray Tune and returns the Pareto summary (polars);
- `read_study(folder)` reads a results folder (path or URI) as polars frames.
"""

from importlib.metadata import PackageNotFoundError, version

from raygap.config import SpecError, StudySpec, load_spec
from raygap.results import StudyResults, read_study

try:
    __version__ = version("raygap")
except PackageNotFoundError:  # a checkout run without installing
    __version__ = "0+unknown"


def __getattr__(name: str):
    # run_study imports ray (seconds): only when it is asked for.
    if name == "run_study":
        from raygap.study import run_study

        return run_study
    raise AttributeError(f"module 'raygap' has no attribute {name!r}")


__all__ = ["SpecError", "StudyResults", "StudySpec", "__version__", "load_spec", "read_study", "run_study"]
