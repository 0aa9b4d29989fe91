"""A study's curves reach the trackers as they are measured: every evaluation point is a Tune result,
read back here from Tune's TensorBoard event files, an MLflow store and W&B offline run files with
the libraries' own readers, and optuna-dashboard serves the study with its objectives named and metrics attached."""

import json
import struct
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from raygap.cli import main
from raygap.config import load_spec

STUDY = """
name: {name}
data:
  train: {{kind: synthetic, size: 256}}
  eval: {{kind: synthetic, size: 64, seed: 1, captions_per_image: 2}}
  probe: {{train: {{kind: synthetic, size: 64, seed: 2}}, test: {{kind: synthetic, size: 32, seed: 3}}}}
train: {{steps: 6, batch_size: 32, eval_interval: 2, warmup_steps: 1}}
temperature: {{kind: fixed, value: {{loguniform: [0.01, 0.4]}}}}
{extra}
"""


def tensorboard_scalars(folder: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """trial folder → tag → [(step, value)], from every TensorBoard event file under `folder`
    (TFRecord framing: length, its CRC, an Event protobuf, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict = defaultdict(lambda: defaultdict(list))
    for path in folder.rglob("events.out.tfevents.*"):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                scalars[path.parent.name][value.tag].append((event.step, value.simple_value))
    return scalars


def wandb_offline_runs(folder: Path) -> dict[str, dict]:
    """run id → its group, tags, config and series (key → values), from W&B's offline `.wandb`
    files read with W&B's own record store and protobufs."""
    from wandb.proto.wandb_internal_pb2 import Record
    from wandb.sdk.internal.datastore import DataStore

    runs = {}
    for path in folder.rglob("*.wandb"):
        store = DataStore()
        store.open_for_scan(str(path))
        run: dict = {"series": defaultdict(list)}
        while (data := store.scan_data()) is not None:
            record = Record.FromString(data)
            if record.WhichOneof("record_type") == "run":
                run.update(id=record.run.run_id, group=record.run.run_group, tags=list(record.run.tags))
                run["config"] = {item.key: json.loads(item.value_json) for item in record.run.config.update}
            elif record.WhichOneof("record_type") == "history":
                for item in record.history.item:
                    run["series"][item.key or "/".join(item.nested_key)].append(json.loads(item.value_json))
        store.close()
        runs[run["id"]] = run
    return runs


def run(tmp_path, name: str, extra: str) -> Path:
    from raygap.study import run_study

    path = tmp_path / f"{name}.yaml"
    path.write_text(STUDY.format(name=name, extra=extra))
    folder = tmp_path / name
    run_study(load_spec(path), folder, dashboard=False)
    return folder


def test_a_start_that_fails_inside_tune_leaves_no_folder(tmp_path, monkeypatch):
    """MLflow refusing its file store when Tune sets up its logger (raygap's own check turned off):
    the study raises after Ray and the Optuna study have started, and leaves neither its results
    folder nor the folders made for it, so a rerun is not refused."""
    from mlflow.exceptions import MlflowException

    from raygap.study import preflight, run_study

    monkeypatch.setattr(preflight, "check_tracking", lambda settings, file: None)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    path = tmp_path / "refused.yaml"
    path.write_text(
        STUDY.format(name="refused", extra=f"search: {{trials: 1}}\ntracking: {{mlflow: {{tracking_uri: 'file:{tmp_path}/mlruns'}}}}")
    )
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_FILE_STORE"):
        run_study(load_spec(path), tmp_path / "new" / "results", dashboard=False)
    assert not (tmp_path / "new").exists()


def test_every_evaluation_point_reaches_tensorboard_mlflow_and_wandb(tmp_path, free_port):
    """One-worker trials in the Tune trial's process, two seeds each: 4 points per seed, as its own series."""
    from mlflow.tracking import MlflowClient

    mlruns = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trackers = f"{{mlflow: {{tracking_uri: '{mlruns}'}}, wandb: {{mode: offline, dir: '{tmp_path / 'wandb'}'}}}}"
    folder = run(tmp_path, "live", f"search: {{trials: 2, repeats: 2}}\ntracking: {trackers}")
    trials = pl.read_parquet(folder / "trials.parquet")
    assert trials.height == 4 and set(trials["status"]) == {"completed"}

    scalars = tensorboard_scalars(folder / "ray")
    assert len(scalars) == 2
    for tags in scalars.values():
        for seed in (0, 1):
            points = tags[f"ray/tune/seed{seed}/modality_gap"]
            assert len(points) == 4 and all(0 <= value <= 2 for _, value in points)
            assert [value for _, value in tags[f"ray/tune/seed{seed}/step"]] == [0, 2, 4, 6]

    client = MlflowClient(tracking_uri=mlruns)
    experiment = client.get_experiment_by_name("live")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {run.data.tags["raygap.study"] for run in runs} == {"live"}
    assert {run.info.run_name.split()[0] for run in runs} == set(trials["trial_id"])
    for run_ in runs:
        assert "temperature.value" in run_.data.params
        for seed in (0, 1):
            history = client.get_metric_history(run_.info.run_id, f"seed{seed}/modality_gap")
            assert len(history) == 4

    # The head process wrote the same gaps to history.parquet as it sent to the trackers.
    history = pl.read_parquet(folder / "history.parquet").sort("trial_id", "seed", "step")
    assert history.height == 16

    runs = wandb_offline_runs(tmp_path / "wandb")
    assert set(runs) == set(trials["trial_id"])
    for trial_id, run_ in runs.items():
        assert run_["group"] == "live" and run_["tags"] == ["raygap.study=live"]
        assert "temperature.value" in run_["config"]
        for seed in (0, 1):
            recorded = history.filter((pl.col("trial_id") == trial_id) & (pl.col("seed") == seed))["modality_gap"]
            assert run_["series"][f"seed{seed}/modality_gap"] == pytest.approx(recorded.to_list(), rel=1e-6)

    dashboard_shows_the_study(folder, trials, free_port())


def dashboard_shows_the_study(folder: Path, trials: pl.DataFrame, port: int) -> None:
    """`raygap dashboard` serves the study on 127.0.0.1 at `port`: objectives named, final metrics as user attributes."""
    server = subprocess.Popen(
        [sys.executable, "-m", "raygap", "dashboard", str(folder), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        studies = None
        for _ in range(120):
            try:
                studies = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5))
                break
            except OSError:
                time.sleep(0.5)
        assert studies is not None, "optuna-dashboard did not answer"
        [summary] = studies["study_summaries"]
        assert summary["study_name"] == "live"
        detail = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=30))
        assert detail["objective_names"] == ["modality_gap", "mean_r1"]
        assert len(detail["trials"]) == 2
        for trial in detail["trials"]:
            attrs = {attr["key"]: attr["value"] for attr in trial["user_attrs"]}
            assert {"linear_probe_top1", "zero_shot_top1", "uniformity"} <= set(attrs)
            tune_id = attrs["tune_trial_id"]
            means = trials.filter(pl.col("trial_id") == tune_id)["uniformity"].mean()
            assert float(attrs["uniformity"]) == pytest.approx(means, rel=1e-6)
        page_renders(f"http://127.0.0.1:{port}/dashboard/studies/{summary['study_id']}", folder.parent / "dashboard.png")
    finally:
        server.kill()
        server.wait(timeout=30)


def page_renders(url: str, shot: Path) -> None:
    """The dashboard's page in headless Chromium: its script draws the study (the objectives' names
    in the DOM) and the screenshot is not blank."""
    import os
    import shutil

    import numpy as np
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        assert not os.environ.get("RAYGAP_REQUIRE_BROWSER"), "no chromium"
        return
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=15000"]
    dom = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "modality_gap" in dom and "mean_r1" in dom, dom[-2000:]
    subprocess.run([*command, "--window-size=1400,1000", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1000, 1400) and pixels.std() > 20


def test_a_two_worker_trial_reports_every_evaluation_point(tmp_path):
    """A TorchTrainer's rank 0 rows reach the Tune trial through Ray's TuneReportCallback."""
    folder = run(tmp_path, "group", "search: {trials: 1}\nresources: {workers_per_trial: 2}\ntracking: {tensorboard: true}")
    assert pl.read_parquet(folder / "trials.parquet")["workers"].to_list() == [2]
    [tags] = tensorboard_scalars(folder / "ray").values()
    assert len(tags["ray/tune/seed0/modality_gap"]) == 4


@pytest.mark.parametrize(("tracker", "setting"), [("mlflow", "experiment=x"), ("wandb", "mode=offline")])
def test_a_missing_tracker_is_an_error_before_ray_starts(tmp_path, capsys, monkeypatch, tracker, setting):
    import ray

    from raygap.study import preflight

    monkeypatch.setitem(preflight.EXTRAS, tracker, ("raygap_tracker_that_is_not_installed", f"pip install 'raygap[{tracker}]'"))
    spec = tmp_path / "study.yaml"
    spec.write_text("search: {trials: 1}\n")
    command = ["study", "run", str(spec), "--results", str(tmp_path / "out"), "--no-dashboard", "--set", f"tracking.{tracker}.{setting}"]
    assert main(command) == 2
    assert f"{spec}: tracking.{tracker} needs: pip install 'raygap[{tracker}]'" in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "out").exists()


def test_running_trials_export_their_gap_as_ray_metrics(tmp_path, free_port):
    """While the study runs, the node's Prometheus export (Ray's metrics agent) holds raygap_modality_gap
    for the running trial, tagged with the study and the trial."""
    import threading

    import ray

    port = free_port()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", _metrics_export_port=port)
    seen: list[str] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set() and not seen:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                seen.extend(line for line in text.splitlines() if line.startswith("ray_raygap_modality_gap{"))
            except OSError:
                pass
            done.wait(1.0)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        long = STUDY.replace("steps: 6, batch_size: 32, eval_interval: 2", "steps: 200, batch_size: 32, eval_interval: 5")
        path = tmp_path / "metrics.yaml"
        path.write_text(long.format(name="metrics", extra="search: {trials: 1}"))
        from raygap.study import run_study

        run_study(load_spec(path), tmp_path / "metrics", dashboard=False)
    finally:
        done.set()
        scraper.join()
        ray.shutdown()
    assert seen, "no raygap_modality_gap in the node's metrics export"
    assert 'study="metrics"' in seen[0] and 'seed="0"' in seen[0]
    value = float(seen[0].rsplit(" ", 1)[1])
    assert 0 <= value <= 2
