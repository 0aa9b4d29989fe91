"""What a running study shows (raygap.study.recorder): the running trials' latest evaluation points
in running.json for `raygap study status`, and a line per long trial now and then, driven through
the recorder's Tune callbacks with trial stand-ins (no Ray cluster)."""

import json
from types import SimpleNamespace

from raygap import results
from raygap.cli import main
from raygap.study import recorder as recording
from raygap.study.messages import EvalPoint

OBJECTIVES = {"modality_gap": "min", "mean_r1": "max"}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def point(step: int, gap: float) -> dict:
    return EvalPoint.of_row({"step": step, "steps": 300, "modality_gap": gap}, seed=0, objectives=OBJECTIVES).result()


def test_running_trials_are_listed_and_long_ones_print_now_and_then(tmp_path, monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(recording.time, "time", clock)
    folder = results.ResultsFolder(tmp_path / "study")
    (tmp_path / "study").mkdir()
    folder.write_text(results.RUNNING, "{}")  # a killed run's stale list: the next run removes it at once
    lines: list[str] = []
    recorder = recording.StudyRecorder(folder, OBJECTIVES, total=2, echo=lines.append)
    recorder.setup()
    assert not folder.exists(results.RUNNING)
    fast, slow = SimpleNamespace(trial_id="fast", config={"temperature.value": 0.02}), SimpleNamespace(trial_id="slow", config={})
    for trial in (fast, slow):
        recorder.on_trial_start(0, [], trial)
    recorder.on_trial_result(0, [], slow, point(0, 0.9))  # the first point is written at once
    written = json.loads(folder.read_text(results.RUNNING))
    assert written["updated_at"] == 1000.0
    assert written["trials"] == [
        {"trial_id": "slow", "seed": 0, "step": 0, "steps": 300, "modality_gap": 0.9, "mean_r1": None, "params": {}, "started_at": 1000.0}
    ]
    clock.now += recording.LIVE_EVERY / 2
    recorder.on_trial_result(0, [], fast, point(100, 0.5))  # inside LIVE_EVERY: not rewritten yet
    assert len(json.loads(folder.read_text(results.RUNNING))["trials"]) == 1
    clock.now = 1000.0 + recording.ECHO_EVERY
    recorder.on_trial_result(0, [], slow, point(200, 0.4))
    assert [t["step"] for t in json.loads(folder.read_text(results.RUNNING))["trials"]] == [100, 200]
    # only a trial that has run ECHO_EVERY seconds prints, and then not again before another ECHO_EVERY
    assert lines == [f"[{recording.ECHO_EVERY:6.0f}s] trial slow seed 0 step 200/300: modality_gap 0.400"]
    recorder.on_trial_result(0, [], slow, point(250, 0.3))
    assert len(lines) == 1

    assert main(["study", "status", str(folder)]) == 0  # before any seed finished: the running trials, exit 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"{folder}: 2 trial(s) running (as of {_clock_text(clock.now)}, 0 s ago)"  # time.time is the clock here too
    assert shown[1] == "  running fast seed 0 step 100/300: modality_gap 0.500 (temperature.value=0.02)"
    assert shown[2] == "  running slow seed 0 step 200/300: modality_gap 0.400"
    assert shown[3] == f"{folder}: no seed has finished yet"

    recorder.on_experiment_end([])
    assert not folder.exists(results.RUNNING)


def _clock_text(stamp: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(stamp))
