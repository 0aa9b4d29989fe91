"""A writer process killed mid-write leaves complete files."""

from raygap.results import TRIALS, ResultsFolder

WRITER = """
import sys
import polars as pl
from raygap.results import TRIALS, ResultsFolder, trial_row

folder = ResultsFolder(sys.argv[1])
print("ready", flush=True)
while True:  # the recorder's pattern: add a part of rows, forever, until killed
    folder.append(TRIALS, [trial_row(f"t{i}", 0, {}, {}, "completed", {"x": float(i), "pad": "x" * 2000}) for i in range(500)])
"""


def test_sigkill_during_writes_leaves_a_complete_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    study = tmp_path / "study"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(study)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    deadline = time.time() + 60
    while not (study / "trials").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # several parts written: the kill lands inside one of them
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    frame = ResultsFolder(study).read(TRIALS)
    assert frame.height > 0 and frame.height % 500 == 0  # whole batches only: complete parts
    leftover = [p.name for p in (study / "trials").iterdir() if p.name.endswith(".tmp")]
    assert ResultsFolder(study).sweep_temporaries() == len(leftover)
    assert [p.name for p in study.iterdir()] == ["trials"]
    assert all(p.name.startswith("part-") and p.suffix == ".parquet" for p in (study / "trials").iterdir())
