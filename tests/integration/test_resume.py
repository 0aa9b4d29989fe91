"""A study survives a SIGKILL of `raygap study run`: `raygap study resume` keeps every finished
trial exactly once, runs the rest, continues the Optuna study, and stops the killed cluster."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import polars as pl
import psutil
import pytest

from raygap import results
from raygap.study.folder import optuna_storage

STUDY = """
name: killed
theory: {n: 8, d: 16, delta: 0.5, init: matched, time: 100, dt: 0.05, records: 10}
temperature: {kind: fixed, value: {loguniform: [0.1, 1.0]}}
search: {sampler: tpe, trials: 6, seed: 0, objectives: {modality_gap: min}}
"""


def raygap(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "raygap", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def trials_of(folder) -> pl.DataFrame:
    """trials as raygap reads it: the compacted file and the parts a killed study left."""
    return results.ResultsFolder(folder).read(results.TRIALS)


def rows(folder) -> int:
    try:
        return trials_of(folder).height
    except (FileNotFoundError, OSError):
        return 0


def leftovers(record: dict) -> list[int]:
    """Processes of the recorded cluster still alive: heads, anything its raylet started, and
    anything with a file open in its session folder (read from /proc: Ray's agents retitle themselves
    over their environment)."""
    pids = {str(p["pid"]) for p in record["processes"]}
    alive = []
    for process in psutil.process_iter():
        try:
            if process.create_time() < record["recorded"] - 60:
                continue
            if process.environ().get("RAY_RAYLET_PID") in pids or writes_in(process.pid, record["session"]):
                alive.append(process.pid)
        except psutil.Error:
            continue
    for entry in record["processes"]:
        try:
            if abs(psutil.Process(entry["pid"]).create_time() - entry["created"]) < 1e-3:
                alive.append(entry["pid"])
        except psutil.Error:
            continue
    return alive


def writes_in(pid: int, folder: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(folder + "/"):
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def start_and_wait_for_two_rows(tmp_path) -> tuple[subprocess.Popen, object]:
    """`raygap study run` of STUDY, still running once two trials are in trials.parquet."""
    spec, out = tmp_path / "killed.yaml", tmp_path / "results"
    spec.write_text(STUDY)
    run = raygap("study", "run", str(spec), "--results", str(out), "--no-dashboard")
    deadline = time.time() + 240
    while rows(out) < 2 and time.time() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert run.poll() is None and rows(out) >= 2, "the study ended before it could be stopped"
    return run, out


def test_sigkill_then_resume_keeps_finished_trials_once(tmp_path, optuna_study):
    run, out = start_and_wait_for_two_rows(tmp_path)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    before = trials_of(out)
    assert before.height < 6
    record = json.loads((out / "ray-cluster.json").read_text())
    assert leftovers(record), "expected the killed driver's Ray processes to outlive it"
    numbers_before = [t.number for t in optuna_study(out, "killed").trials]

    resume = raygap("study", "resume", str(out), "--no-dashboard")
    log, _ = resume.communicate(timeout=400)
    assert resume.returncode == 0, log
    assert f"resuming: {before.height} finished trial(s) kept" in log

    after = trials_of(out)
    assert after.height == 6 and after["trial_id"].n_unique() == 6 and set(after["status"]) == {"completed"}
    kept = after.filter(pl.col("trial_id").is_in(before["trial_id"].implode()))
    assert kept.select(before.columns).drop("config").equals(before.drop("config"))  # finished trials exactly once, unchanged
    study = optuna_study(out, "killed")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6  # one Optuna study: the resumed trials were added to it, not restarted
    assert [t.number for t in study.trials][: len(numbers_before)] == numbers_before
    assert min(t.number for t in complete if t.number >= len(numbers_before)) >= len(numbers_before)
    assert not leftovers(record), "the killed cluster's processes are still running"
    assert not (out / "ray-cluster.json").exists()


def test_ctrl_c_stops_cleanly_then_resume_finishes_the_study(tmp_path, optuna_study):
    run, out = start_and_wait_for_two_rows(tmp_path)
    record = json.loads((out / "ray-cluster.json").read_text())
    run.send_signal(signal.SIGINT)
    log, _ = run.communicate(timeout=120)
    assert run.returncode == 130, log
    assert f"Continue with: raygap study resume {out}" in log
    assert not leftovers(record) and not (out / "ray-cluster.json").exists()  # Ray shut down, nothing orphaned
    before = trials_of(out)
    assert 2 <= before.height < 6

    resume = raygap("study", "resume", str(out), "--no-dashboard")
    log, _ = resume.communicate(timeout=400)
    assert resume.returncode == 0, log
    after = trials_of(out)
    assert after.height == 6 and after["trial_id"].n_unique() == 6 and set(after["status"]) == {"completed"}
    params = [c for c in after.columns if c.startswith("param.")]
    assert params == ["param.temperature.value"]  # a continuous range: a repeat is the sampler replaying its draws
    assert after.select(params).n_unique() == 6, after.select("trial_id", *params)
    study = optuna_study(out, "killed")
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 6


SEARCHED = """
name: searched
temperature: {{kind: fixed, value: {value}}}
swap: {{kind: hard, p: {p}}}
search: {{sampler: {sampler}, trials: 10, seed: 0, objectives: {{modality_gap: min, mean_r1: max}}}}
"""


def test_a_trial_stopped_twice_continues_the_first_ones_checkpoints(tmp_path):
    """A trial that continued a stopped one and was stopped in turn: the next resume hands its
    configuration both ids, its own first (its checkpoints are newer), the first trial's last
    (whose worker-group runs it kept using)."""
    from raygap.config import load_spec
    from raygap.results import ResultsFolder
    from raygap.study.optuna_search import make_searcher
    from raygap.study.resume import prepare_resume
    from raygap.study.space import CONTINUES

    path = tmp_path / "searched.yaml"
    path.write_text(SEARCHED.format(value="{loguniform: [0.01, 0.5]}", p="{uniform: [0.0, 1.0]}", sampler="tpe"))
    spec = load_spec(path)
    search, db, folder = spec.defaults().search, tmp_path / "optuna.db", ResultsFolder(tmp_path / "results")
    objectives = search.objectives
    first = make_searcher(spec, search, db, [])
    stopped = first.suggest("a")  # stopped mid-way
    _, rerun, continues = prepare_resume(folder, db, spec, objectives, 1, lambda line: None)
    second = make_searcher(spec, search, db, rerun, None, continues)
    again = second.suggest("b")  # continues a; stopped mid-way too
    assert again[CONTINUES] == ["a"] and {k: v for k, v in again.items() if k != CONTINUES} == stopped
    _, rerun, continues = prepare_resume(folder, db, spec, objectives, 1, lambda line: None)
    assert rerun == [stopped] and continues == [["b", "a"]]
    third = make_searcher(spec, search, db, rerun, None, continues)
    assert third.suggest("c")[CONTINUES] == ["b", "a"]


@pytest.mark.parametrize(
    "sampler, stop_after",
    [
        ("tpe", 1),
        ("tpe", 3),
        ("tpe", 5),
        ("nsga2", 1),
        ("nsga2", 3),
        ("nsga2", 5),
        ("random", 1),
        ("random", 3),
        ("random", 5),
        ("grid", 1),
        ("grid", 3),
    ],
)
def test_a_resumed_searcher_never_runs_a_configuration_twice(tmp_path, sampler, stop_after):
    """Ray Tune's side of a stop and resume, without the cluster: the searcher `run_study` builds,
    `stop_after` trials told, two still running at the stop; then `_prepare_resume` and a searcher
    built as a resume builds it (a fresh sampler, the study loaded from SQLite, the two unfinished
    trials to run again first). Every configuration finishes exactly once."""
    from raygap.config import load_spec
    from raygap.results import ResultsFolder
    from raygap.study.optuna_search import FailureAwareOptunaSearch, make_searcher
    from raygap.study.resume import prepare_resume
    from raygap.study.space import CONTINUES, grid_points, number_of_trials, recorded_params

    path = tmp_path / "searched.yaml"
    if sampler == "grid":
        path.write_text(SEARCHED.format(value="{grid: [0.01, 0.04, 0.2]}", p="{grid: [1.0, 0.1]}", sampler=sampler))
    else:
        path.write_text(SEARCHED.format(value="{loguniform: [0.01, 0.5]}", p="{uniform: [0.0, 1.0]}", sampler=sampler))
    spec = load_spec(path)
    objectives = spec.resolve(check_paths=False).search.objectives
    total, db = number_of_trials(spec, spec.defaults().search), tmp_path / "optuna.db"

    def searcher(rerun: list[dict], continues: list | None = None) -> FailureAwareOptunaSearch:  # as run_study builds it
        return make_searcher(spec, spec.defaults().search, db, rerun, None, continues)

    def run(search: FailureAwareOptunaSearch, trial_id: str) -> dict:
        config = search.suggest(trial_id)
        params = search._ot_trials[trial_id].params
        value = params["temperature.value"]
        search.on_trial_complete(trial_id, {"modality_gap": value * (1 + params["swap.p"]), "mean_r1": value})
        return config

    first = searcher([])
    for i in range(stop_after):
        run(first, f"first{i}")
    first.suggest("running0"), first.suggest("running1")  # Ctrl-C: two trials stopped mid-way
    _, rerun, continues = prepare_resume(ResultsFolder(tmp_path / "results"), db, spec, objectives, 1, lambda line: None)
    assert len(rerun) == 2 and continues == [["running0"], ["running1"]]
    remaining = total - stop_after
    resumed = searcher(rerun[:remaining], continues[:remaining])
    configs = [run(resumed, f"resumed{i}") for i in range(remaining)]
    # the two run again first, each naming the stopped trial whose checkpoints it continues
    assert [c.get(CONTINUES) for c in configs] == ([["running0"], ["running1"]] + [None] * remaining)[:remaining]
    for config, params in zip(configs, rerun):  # with the parameters the stopped trial had
        assert {k: v for k, v in config.items() if k != CONTINUES} == params
    assert all(CONTINUES not in recorded_params(c) for c in configs)

    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{db}")
    assert [t.number for t in study.trials] == list(range(total + 2))  # numbers continue
    complete = [tuple(sorted(t.params.items())) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == total and len(set(complete)) == total, "a configuration ran twice"
    assert [t.state.name for t in study.trials].count("FAIL") == 2  # the two stopped ones, run again
    if sampler == "grid":
        assert sorted(complete) == sorted(tuple(sorted(p.items())) for p in grid_points(spec))


@pytest.mark.parametrize("sampler", ["tpe", "grid"])
def test_a_fresh_head_rebuilds_the_optuna_study_from_trials_parquet(tmp_path, sampler):
    """A URI study keeps its Optuna file on the head; a resume on another head has only the
    bucket. The rebuilt study holds every finished trial with its parameters, outcome and Tune id,
    and the resumed search runs each remaining configuration once (grid: exactly the rest)."""
    from raygap.config import load_spec
    from raygap.results import ResultsFolder, trial_row
    from raygap.study.optuna_search import TUNE_TRIAL_ID, make_searcher
    from raygap.study.resume import prepare_resume
    from raygap.study.space import grid_points, number_of_trials

    path = tmp_path / "searched.yaml"
    values = (
        ("{grid: [0.01, 0.04, 0.2]}", "{grid: [1.0, 0.1]}") if sampler == "grid" else ("{loguniform: [0.01, 0.5]}", "{uniform: [0.0, 1.0]}")
    )
    path.write_text(SEARCHED.format(value=values[0], p=values[1], sampler=sampler))
    spec = load_spec(path)
    objectives = spec.resolve(check_paths=False).search.objectives
    folder, total = ResultsFolder(tmp_path / "bucket"), number_of_trials(spec, spec.defaults().search)
    (tmp_path / "head1").mkdir()
    first = make_searcher(spec, spec.defaults().search, tmp_path / "head1" / "optuna.log", [])
    outcomes = {"t0": "completed", "t1": "failed", "t2": "pruned", "t3": "completed"}
    for trial_id, status in outcomes.items():
        params = first.suggest(trial_id)
        metrics = {"modality_gap": params["temperature.value"], "mean_r1": params["swap.p"]} if status == "completed" else None
        folder.append("trials.parquet", [trial_row(trial_id, 0, params, {}, status, metrics)])
    first.suggest("running")  # the head dies with this one running and never recorded

    lines: list[str] = []
    fresh = tmp_path / "head2" / "optuna.log"
    fresh.parent.mkdir()
    finished, rerun, _ = prepare_resume(folder, fresh, spec, objectives, 1, lines.append)
    assert (finished, rerun) == (4, []) and "rebuilt it from the 4 finished trial(s)" in lines[0]
    rebuilt = optuna.load_study(study_name=spec.name, storage=optuna_storage(fresh)).trials
    rows = folder.read("trials.parquet")
    assert [t.user_attrs[TUNE_TRIAL_ID] for t in rebuilt] == list(outcomes)
    assert [t.state.name for t in rebuilt] == ["COMPLETE", "FAIL", "PRUNED", "COMPLETE"]
    for trial in rebuilt:
        row = rows.filter(pl.col("trial_id") == trial.user_attrs[TUNE_TRIAL_ID]).row(0, named=True)
        assert trial.params == {"temperature.value": row["param.temperature.value"], "swap.p": row["param.swap.p"]}
        if trial.state.name == "COMPLETE":
            assert trial.values == [row["modality_gap"], row["mean_r1"]]

    resumed = make_searcher(spec, spec.defaults().search, fresh, [])
    for i in range(total - finished):
        resumed.suggest(f"resumed{i}")
        resumed.on_trial_complete(f"resumed{i}", {"modality_gap": 0.1, "mean_r1": 0.2})
    study = optuna.load_study(study_name=spec.name, storage=optuna_storage(fresh))
    done = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(done) == total and len(set(done)) == total, "a configuration ran twice"
    if sampler == "grid":
        assert sorted(done) == sorted(tuple(sorted(p.items())) for p in grid_points(spec))


TRIAL = """
name: worker-kill
data:
  train: {kind: synthetic, size: 512, seed: 0}
  eval: {kind: synthetic, size: 128, seed: 1, captions_per_image: 2}
  probe: {train: {kind: synthetic, size: 128, seed: 2}, test: {kind: synthetic, size: 64, seed: 3}}
train: {steps: 150, batch_size: 32, eval_interval: 50, checkpoint_interval: 10, warmup_steps: 1, seed: 0}
temperature: {kind: learned, init: 0.07}
search: {trials: 1}
"""


def trial_processes(driver: int, title: str) -> list[psutil.Process]:
    """The Tune trial actors (or other Ray processes by their title) of the cluster that `driver` started."""
    raylets = {str(p.pid) for p in psutil.Process(driver).children() if "raylet" in p.name()}
    found = []
    for process in psutil.process_iter():
        try:
            if process.cmdline()[:1] and process.cmdline()[0].startswith(title) and process.environ().get("RAY_RAYLET_PID") in raylets:
                found.append(process)
        except (psutil.Error, IndexError):
            continue
    return found


def kill_after_first_checkpoint(run: subprocess.Popen, out, title: str, count: int, registered: bool = False, seeds_done: int = 0) -> int:
    """Wait until a training-state checkpoint is in the results folder and `count` processes
    titled `title` run, SIGKILL the last of them, and return the checkpoint's step. `registered`:
    wait, too, until Ray Train's checkpoint manager lists it (its snapshot file): a worker group
    killed between the copy and the registration restarts without it, a race a loaded machine loses.
    `seeds_done`: a worker group's checkpoint taken after that many of its seeds finished."""
    deadline = time.time() + 240
    step, victims = None, []
    while (step is None or len(victims) < count) and time.time() < deadline and run.poll() is None:
        step = step if step is not None else checkpointed_step(out, registered, seeds_done)
        victims = trial_processes(run.pid, title) if step is not None else []
        time.sleep(0.1)
    assert step is not None and len(victims) == count, f"expected {count} running {title} process(es) after the first checkpoint"
    victims[-1].kill()
    return step


def checkpointed_step(out, registered: bool = False, seeds_done: int = 0) -> int | None:
    """The step of a checkpoint Tune has finished writing to the results folder, or None yet."""
    import torch

    for path in out.glob("ray/**/checkpoint_*/training.pt"):
        snapshot = path.parent.parent / "checkpoint_manager_snapshot.json"
        if registered and not (snapshot.is_file() and path.parent.name in snapshot.read_text()):
            continue
        progress = path.parent / "progress.json"
        if seeds_done and not (progress.is_file() and json.loads(progress.read_text())["next"] == seeds_done):
            continue
        try:
            return torch.load(path, weights_only=True)["step"]
        except (RuntimeError, EOFError, OSError, KeyError):
            continue  # still being copied into storage
    return None


def test_a_killed_trial_process_continues_from_its_checkpoint(tmp_path):
    import torch

    from raygap.clip.train import train
    from raygap.config import load_spec

    spec, out = tmp_path / "trial.yaml", tmp_path / "results"
    spec.write_text(TRIAL)
    run = raygap("study", "run", str(spec), "--results", str(out), "--no-dashboard")
    step_at_kill = kill_after_first_checkpoint(run, out, "ray::ImplicitFunc.train", 1)
    log, _ = run.communicate(timeout=400)
    assert run.returncode == 0, log
    assert 10 <= step_at_kill < 150

    trials = trials_of(out)
    history = pl.read_parquet(out / "history.parquet")
    assert trials["status"].to_list() == ["completed"] and history["step"].to_list() == [0, 50, 100, 150]
    assert step_at_kill <= trials["resumed_from_step"][0] < 150  # restarted from a checkpoint, not from step 0
    torch.set_num_threads(1)  # as the trial ran: same reductions, same numbers
    uninterrupted = train(load_spec(spec).defaults())
    row = trials.row(0, named=True)
    for key in ("modality_gap", "uniformity", "mean_r1", "temperature", "loss", "linear_probe_top1"):
        assert abs(row[key] - uninterrupted[key]) <= 1e-6 * max(1.0, abs(uninterrupted[key])), (key, row[key], uninterrupted[key])
    print(
        f"killed at a checkpoint of step {step_at_kill}; "
        f"resumed gap {row['modality_gap']:.6f} vs uninterrupted {uninterrupted['modality_gap']:.6f}"
    )


def test_a_killed_worker_of_a_two_worker_trial_continues_from_the_groups_checkpoint(tmp_path):
    """One worker group trains both seeds; a worker killed in the second seed: Ray Train restarts
    the group from rank 0's last training state, the first seed is neither lost nor run again, and
    the trial ends with the numbers of the same two-worker trial run without a kill."""
    spec = tmp_path / "trial.yaml"
    spec.write_text(
        TRIAL.replace("steps: 150", "steps: 60")
        .replace("eval_interval: 50", "eval_interval: 20")
        .replace("trials: 1", "trials: 1, repeats: 2")
        + "resources: {workers_per_trial: 2}\n"
    )
    killed, calm = tmp_path / "killed", tmp_path / "calm"
    run = raygap("study", "run", str(spec), "--results", str(killed), "--no-dashboard")
    step_at_kill = kill_after_first_checkpoint(run, killed, "ray::RayTrainWorker", 2, registered=True, seeds_done=1)
    log, _ = run.communicate(timeout=400)
    assert run.returncode == 0, log
    assert 10 <= step_at_kill < 60
    uninterrupted = raygap("study", "run", str(spec), "--results", str(calm), "--no-dashboard")
    log, _ = uninterrupted.communicate(timeout=400)
    assert uninterrupted.returncode == 0, log

    rows, reference = (pl.read_parquet(folder / "trials.parquet").sort("seed") for folder in (killed, calm))
    assert rows["status"].to_list() == ["completed"] * 2 and rows["seed"].to_list() == [0, 1] and rows["workers"].to_list() == [2, 2]
    assert rows["resumed_from_step"][0] is None and step_at_kill <= rows["resumed_from_step"][1] < 60
    assert reference["resumed_from_step"].to_list() == [None, None]
    history = results.ResultsFolder(killed).read(results.HISTORY).sort("seed", "step")
    assert history["seed"].to_list() == [0] * 4 + [1] * 4 and history["step"].to_list() == [0, 20, 40, 60] * 2
    assert [p.name for p in killed.glob("ray/train/*") if p.is_dir()] == [f"{rows['trial_id'][0]}-seeds"]  # one group for both seeds
    for seed in (0, 1):
        row, want = rows.row(seed, named=True), reference.row(seed, named=True)
        for key in ("modality_gap", "uniformity", "mean_r1", "temperature", "loss", "linear_probe_top1"):
            assert abs(row[key] - want[key]) <= 1e-6 * max(1.0, abs(want[key])), (seed, key, row[key], want[key])
    print(
        f"worker killed at a checkpoint of seed 1, step {step_at_kill}; resumed gap {rows['modality_gap'][1]:.6f} "
        f"vs uninterrupted {reference['modality_gap'][1]:.6f}"
    )


def test_a_resumed_study_continues_a_stopped_trial_from_its_checkpoint(tmp_path):
    """Ctrl-C while a one-worker trial trains its second seed, after a checkpoint; the resumed
    study runs the configuration again as a new trial that continues from that checkpoint: the
    first seed is reported again (not trained again), the second resumes mid-way and ends with the
    numbers of a run never stopped."""
    import torch

    from raygap.clip.train import train
    from raygap.config import load_spec

    spec, out = tmp_path / "trial.yaml", tmp_path / "results"
    spec.write_text(
        TRIAL.replace("steps: 150", "steps: 60")
        .replace("eval_interval: 50", "eval_interval: 20")
        .replace("trials: 1", "trials: 1, repeats: 2")
    )
    run = raygap("study", "run", str(spec), "--results", str(out), "--no-dashboard")
    deadline, step = time.time() + 300, None
    while step is None and time.time() < deadline and run.poll() is None:
        step = trial_checkpoint_step(out, seeds_done=1)
        time.sleep(0.1)
    assert step is not None, "no checkpoint in the second seed"
    before = trials_of(out)
    run.send_signal(signal.SIGINT)
    log, _ = run.communicate(timeout=120)
    assert run.returncode == 130, log
    assert before["seed"].to_list() == [0]

    resume = raygap("study", "resume", str(out), "--no-dashboard")
    log, _ = resume.communicate(timeout=400)
    assert resume.returncode == 0, log
    assert "1 unfinished one(s) to run again" in log and "1/1 finished, 0 running, 0 failed" in log
    after = trials_of(out).sort("seed")
    assert after["seed"].to_list() == [0, 1] and set(after["status"]) == {"completed"} and after["trial_id"].n_unique() == 1
    assert after["trial_id"][0] != before["trial_id"][0]  # the new trial, with the stopped one's first seed
    assert after.row(0, named=True)["modality_gap"] == before.row(0, named=True)["modality_gap"]  # reported again, not retrained
    assert step <= after["resumed_from_step"][1] < 60
    history = results.ResultsFolder(out).read(results.HISTORY).sort("seed", "step")
    assert history["seed"].to_list() == [0] * 4 + [1] * 4 and history["step"].to_list() == [0, 20, 40, 60] * 2
    torch.set_num_threads(1)  # as the trial ran
    cfg = load_spec(spec).defaults()
    uninterrupted = train(cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": 1})}))
    row = after.row(1, named=True)
    for key in ("modality_gap", "uniformity", "mean_r1", "temperature", "loss"):
        assert abs(row[key] - uninterrupted[key]) <= 1e-6 * max(1.0, abs(uninterrupted[key])), (key, row[key], uninterrupted[key])
    print(f"stopped at a checkpoint of seed 1, step {step}; resumed from {row['resumed_from_step']}")


def trial_checkpoint_step(out, seeds_done: int) -> int | None:
    """The step of a one-worker trial's checkpoint taken after `seeds_done` seeds finished."""
    import torch

    for path in out.glob("ray/tune*/trial-*/checkpoint_*/training.pt"):
        try:
            if json.loads((path.parent / "trial.json").read_text())["repeat"] == seeds_done:
                return torch.load(path, weights_only=True)["step"]
        except (RuntimeError, EOFError, OSError, KeyError, ValueError):
            continue  # still being written
    return None
