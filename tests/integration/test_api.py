"""The public Python API: README's example runs as written (a real Ray Tune study)."""

import re
import subprocess
import sys
from pathlib import Path

import raygap

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path):
    (tmp_path / "studies").symlink_to(ROOT / "studies")
    # The study's head is this process: torch and open_clip stay in the trials' processes.
    code = readme_example() + "\nimport sys; print('head imports:', 'torch' in sys.modules, 'open_clip' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    study = raygap.read_study(tmp_path / "results" / "api-demo")
    assert study.trials.height == 4 and set(study.trials["status"]) == {"completed"}
    assert study.spec["name"] == "theory-fixed" and study.pareto["rank"].min() == 1
    assert "modality_gap" in run.stdout and "head imports: False False" in run.stdout


def test_version_and_lazy_engine():
    code = "import sys, raygap; print(raygap.__version__); print('ray' in sys.modules, 'torch' in sys.modules)"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert printed == [raygap.__version__, "False", "False"]
    assert (
        subprocess.run([sys.executable, "-m", "raygap", "--version"], capture_output=True, text=True).stdout.strip()
        == f"raygap {raygap.__version__}"
    )
