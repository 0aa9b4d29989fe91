"""The study engine for real: Ray Tune + Optuna + Ray Train workers on this machine."""

import builtins
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from raygap.config import ResourcesSpec, SpecError, load_spec
from raygap.study.plan import plan_resources

STUDY = """
name: {name}
data:
  train: {{kind: synthetic, size: 512}}
  eval: {{kind: synthetic, size: 64, seed: 1, captions_per_image: 2}}
  probe: {{train: {{kind: synthetic, size: 64, seed: 2}}, test: {{kind: synthetic, size: 32, seed: 3}}}}
train: {{steps: 4, batch_size: 32, eval_interval: 2, warmup_steps: 1}}
temperature: {{kind: fixed, value: {{loguniform: [0.01, 0.4]}}}}
{extra}
"""


def write_study(tmp_path, name, extra):
    path = tmp_path / f"{name}.yaml"
    path.write_text(STUDY.format(name=name, extra=extra))
    return load_spec(path)


def test_plan_on_a_two_core_laptop_avoids_the_deadlock():
    two_workers = plan_resources(ResourcesSpec(workers_per_trial=2), cluster_cpus=2, cluster_gpus=0)
    assert (two_workers.max_concurrent, two_workers.cpus_per_worker, two_workers.use_gpu) == (1, 0.95, False)
    assert 2 * two_workers.cpus_per_worker + 0.1 <= 2
    # One worker trains in the Tune trial process itself: no separate driver share to leave room for.
    one_worker = plan_resources(ResourcesSpec(workers_per_trial=1), cluster_cpus=2, cluster_gpus=0)
    assert (one_worker.max_concurrent, one_worker.cpus_per_worker, one_worker.in_trial) == (2, 1.0, True)
    assert one_worker.trial_resources() == {"CPU": 1.0}
    grouped = plan_resources(ResourcesSpec(workers_per_trial=1, worker_group="always"), cluster_cpus=2, cluster_gpus=0)
    assert (grouped.max_concurrent, grouped.cpus_per_worker, grouped.in_trial) == (2, 0.9, False)
    assert grouped.trial_resources() == {"CPU": 0.1}


def test_plan_counts_loader_processes_as_cores():
    """A trial's DataLoader processes decode on cores of their own: two trials with a loader each
    on two cores would fight over them, so one runs at a time and holds both."""
    laptop = plan_resources(ResourcesSpec(), cluster_cpus=2, cluster_gpus=0, loader_workers=1)
    assert (laptop.max_concurrent, laptop.cpus_per_worker, laptop.threads_per_worker) == (1, 2.0, 1)
    assert "1 loader process(es)" in laptop.describe()
    workstation = plan_resources(ResourcesSpec(), cluster_cpus=16, cluster_gpus=0, loader_workers=3)
    assert (workstation.max_concurrent, workstation.cpus_per_worker, workstation.threads_per_worker) == (4, 4.0, 1)
    grouped = plan_resources(ResourcesSpec(workers_per_trial=2), cluster_cpus=16, cluster_gpus=0, loader_workers=1)
    assert (grouped.max_concurrent, grouped.cpus_per_worker) == (4, 1.95)  # 4 × (2 × 1.95 + 0.1) = 16
    gpus = plan_resources(ResourcesSpec(), cluster_cpus=64, cluster_gpus=8, loader_workers=8)
    assert (gpus.max_concurrent, gpus.cpus_per_worker, gpus.threads_per_worker) == (8, 7.9, 1)  # the cores there are
    assert plan_resources(ResourcesSpec(), cluster_cpus=64, cluster_gpus=8, loader_workers=2).cpus_per_worker == 4.0


def test_the_study_plan_counts_loaders_where_they_run():
    from raygap.study.plan import study_plan

    spec = load_spec("studies/coco/flt.yaml", check_paths=False)
    coco = spec.resolve(check_paths=False)  # a decoded copy, loader_workers: 8
    # On a GPU, images in memory (the decoded copy) reach it without loader processes: none is counted.
    on_gpus = study_plan(coco, cluster_cpus=64, cluster_gpus=8)
    assert coco.data.loader_workers == 8 and (on_gpus.loader_workers, on_gpus.cpus_per_worker, on_gpus.threads_per_worker) == (0, 4.0, 4)
    every_epoch = spec.resolve({"data.train.decoded_cache": False}, check_paths=False)
    assert study_plan(every_epoch, cluster_cpus=64, cluster_gpus=8).loader_workers == 8
    on_cpus = spec.resolve({"resources.use_gpu": False, "resources.workers_per_trial": 1}, check_paths=False)
    assert study_plan(on_cpus, cluster_cpus=64, cluster_gpus=0).loader_workers == 8  # a CPU's pipeline is the loader
    resident = spec.resolve({"resources.use_gpu": False, "resources.workers_per_trial": 1, "data.pipeline": "resident"}, check_paths=False)
    assert study_plan(resident, cluster_cpus=64, cluster_gpus=0).loader_workers == 0


def test_plan_on_gpus_and_overrides():
    plan = plan_resources(ResourcesSpec(workers_per_trial=2), cluster_cpus=64, cluster_gpus=8)
    assert plan.use_gpu and plan.max_concurrent == 4 and plan.worker_resources() == {"CPU": plan.cpus_per_worker, "GPU": 1.0}
    plan = plan_resources(ResourcesSpec(workers_per_trial=1, use_gpu=False, cpus_per_worker=0.45), cluster_cpus=2, cluster_gpus=1)
    assert not plan.use_gpu and plan.cpus_per_worker == 0.45 and plan.max_concurrent == 2
    with pytest.raises(SpecError, match="a trial needs 4 GPUs but the cluster has 2"):
        plan_resources(ResourcesSpec(workers_per_trial=4, use_gpu=True), cluster_cpus=8, cluster_gpus=2)


def test_theory_trials_take_a_cpu_each_even_on_a_gpu_cluster():
    from raygap.study.plan import study_plan

    theory = load_spec("studies/theory-search.yaml").resolve(check_paths=False)
    plan = study_plan(theory, cluster_cpus=64, cluster_gpus=8)
    assert not plan.use_gpu and plan.in_trial and plan.max_concurrent == 64 and plan.trial_resources() == {"CPU": 1.0}
    training = load_spec("studies/flt.yaml").resolve(check_paths=False)
    assert study_plan(training, cluster_cpus=64, cluster_gpus=8).max_concurrent == 8  # a GPU per one-worker trial


def test_the_recorder_pickles_whatever_it_echoes_with(tmp_path, monkeypatch, capsys):
    """Tune pickles its callbacks when the Tuner is built. Ray replaces builtins.print in the head
    once a worker's log line reaches it (tqdm_ray): print, the echo of `raygap bench`, can then no
    longer be pickled, and a later study failed to start."""
    from ray import cloudpickle

    from raygap.results import ResultsFolder
    from raygap.study.recorder import StudyRecorder

    recorder = StudyRecorder(ResultsFolder(tmp_path), {"modality_gap": "min"}, 1, print)
    original = builtins.print
    monkeypatch.setattr(builtins, "print", lambda *args, **kwargs: original(*args, **kwargs))
    copy = cloudpickle.loads(cloudpickle.dumps(recorder))
    copy.echo("a copy prints")
    assert capsys.readouterr().out == "a copy prints\n"


def test_study_end_to_end(tmp_path, capsys, optuna_study):
    """Optuna multi-objective (TPE) in Ray Tune, 3 trials, each a TorchTrainer with 2 CPU workers."""
    from raygap.study import run_study

    spec = write_study(
        tmp_path,
        "e2e",
        "search: {sampler: tpe, trials: 3}\nresources: {workers_per_trial: 2}\nartifacts: {weights: final, embeddings: true}",
    )
    folder = tmp_path / "results"
    summary = run_study(spec, folder, dashboard=False)

    trials = pl.read_parquet(folder / "trials.parquet")
    assert trials.height == 3 and trials["trial_id"].n_unique() == 3
    assert trials["status"].to_list() == ["completed"] * 3
    assert trials["workers"].to_list() == [2, 2, 2]
    values = trials["param.temperature.value"].to_list()
    assert all(0.01 <= v <= 0.4 for v in values) and len(set(values)) == 3
    # each trial really ran at its sampled temperature
    assert trials["temperature"].to_list() == pytest.approx(values, rel=1e-5)
    for column in ("modality_gap", "uniformity", "mean_r1", "zero_shot_top1", "linear_probe_top1"):
        assert trials[column].null_count() == 0

    history = pl.read_parquet(folder / "history.parquet")
    assert history.height == 9 and sorted(set(history["step"])) == [0, 2, 4]

    pareto = pl.read_parquet(folder / "pareto.parquet")
    assert pareto.height == 3 and pareto.equals(summary)
    assert (pareto["rank"] == 1).sum() >= 1
    assert set(pareto["modality_gap"].to_list()) == set(trials["modality_gap"].to_list())

    study = optuna_study(folder, "e2e")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert sorted(t.values[0] for t in study.trials) == sorted(trials["modality_gap"].to_list())
    assert "3/3 finished" in capsys.readouterr().out

    from raygap.cli import main

    assert main(["study", "status", str(folder)]) == 0  # Parquet only: Ray is down by now
    status = capsys.readouterr().out
    assert "3 trial(s), 3 seed run(s): 3 completed" in status and "Pareto front:" in status
    # each seed's artifacts, written by rank 0 of its worker group into the results folder
    kept = sorted(p.relative_to(folder).as_posix() for p in (folder / "artifacts").rglob("*") if p.is_file())
    files = ("weights.pt", "embeddings.parquet", "shift.parquet")
    assert kept == sorted(f"artifacts/{t}/seed{0}/{f}" for t in trials["trial_id"] for f in files)
    assert "artifacts: 9 file(s)" in status and "artifacts/" + trials["trial_id"][0] in status
    # the report's shift curves read them: at λ = 0 each front configuration's own gap (every eval pair measured)
    from raygap import report

    curves = report.shift_curves(report.load_study(folder)).filter(pl.col("shift") == 0.0)
    gaps = dict(zip(trials["trial_id"], trials["modality_gap"]))
    assert curves.height >= 1 and all(g == pytest.approx(gaps[t], abs=1e-6) for t, g in zip(curves["trial_id"], curves["modality_gap"]))


def test_two_node_cluster_spreads_a_trial_and_repeats_seeds(tmp_path):
    """Two Ray nodes on this machine; a trial's two workers land on different nodes; 2 seeds."""
    import ray
    from ray.cluster_utils import Cluster

    from raygap.study import run_study

    spec = write_study(
        tmp_path,
        "twonode",
        "search: {sampler: random, trials: 1, repeats: 2}\n"
        "resources: {workers_per_trial: 2, cpus_per_worker: 0.45, placement: STRICT_SPREAD}",
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address)
        cluster.wait_for_nodes()
        summary = run_study(spec, tmp_path / "results")
    finally:
        ray.shutdown()
        cluster.shutdown()
    trials = pl.read_parquet(tmp_path / "results" / "trials.parquet")
    assert trials["seed"].to_list() == [0, 1] and trials["status"].to_list() == ["completed"] * 2
    assert trials["nodes"].to_list() == [2, 2]  # the workers of each seed ran on two different nodes
    assert summary.height == 1 and summary["seeds"].to_list() == [2]
    assert summary["modality_gap"][0] == pytest.approx(trials["modality_gap"].mean())


def test_conditional_study_through_the_engine(tmp_path):
    """studies/all.yaml (method as a categorical choice), shrunk, as a real Ray Tune study."""
    from pathlib import Path

    from raygap.study import run_study

    study = Path(__file__).resolve().parents[2] / "studies" / "all.yaml"
    shrink = [
        "data={train: {kind: synthetic, size: 256}, eval: {kind: synthetic, size: 64, seed: 1}, probe: null}",
        "train.steps=2",
        "train.batch_size=32",
        "search.trials=2",
        "search.sampler=random",
    ]
    spec = load_spec(study, shrink)
    run_study(spec, tmp_path / "results", dashboard=False)
    trials = pl.read_parquet(tmp_path / "results" / "trials.parquet")
    assert trials["status"].to_list() == ["completed", "completed"]
    for row in trials.iter_rows(named=True):
        config = __import__("json").loads(row["config"])
        # the recorded label names the branch that really ran
        assert row["param.temperature"].split("(")[0].split("#")[0] == config["temperature"]["kind"]
        assert row["param.swap"].split("(")[0] == config["swap"]["kind"]


def test_failed_trials_are_recorded_and_never_on_the_front(tmp_path, capsys, optuna_study):

    from raygap.cli import main
    from raygap.pareto import summarize_trials

    spec = write_study(tmp_path, "broken", "search: {sampler: random, trials: 2}")
    folder = tmp_path / "results"
    # The loss becomes NaN: the command says no trial completed (exit 1) and writes no report.
    command = ["study", "run", str(spec.path), "--results", str(folder), "--set", "train.lr=1.0e+30", "--no-dashboard", "--report"]
    assert main(command) == 1
    assert "no trial completed (seed runs: 0 completed, 2 failed)" in capsys.readouterr().err and not (folder / "report").exists()
    trials = pl.read_parquet(folder / "trials.parquet")
    summary = summarize_trials(trials, {"modality_gap": "min", "mean_r1": "max"}, [])
    assert trials["status"].to_list() == ["failed", "failed"]
    assert all(e.startswith("TrainingDiverged: loss became nan") for e in trials["error"].to_list())
    assert summary.is_empty() and not (folder / "pareto.parquet").exists()
    study = optuna_study(folder, "broken")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]


def test_a_diverged_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path, capsys, optuna_study):

    from raygap.cli import main

    spec = write_study(tmp_path, "diverge", "search: {sampler: grid}")
    folder = tmp_path / "results"
    # The second trial's loss becomes NaN: a finding, not an error (exit 0), and the last line counts it.
    sets = ["--set", "temperature.value=0.07", "--set", "train.lr={grid: [0.002, 1.0e+30]}"]
    assert main(["study", "run", str(spec.path), "--results", str(folder), "--no-dashboard", *sets]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"diverge: seed runs: 1 completed, 1 failed; `raygap study status {folder}` lists the errors"
    summary = pl.read_parquet(folder / "pareto.parquet")
    trials = pl.read_parquet(folder / "trials.parquet").sort("param.train.lr")
    assert trials["status"].to_list() == ["completed", "failed"]
    assert trials["error"][1].startswith("TrainingDiverged: loss became nan")
    assert summary["trial_id"].to_list() == [trials["trial_id"][0]]  # the front ignores the failed trial
    study = optuna_study(folder, "diverge")
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "FAIL"]


def test_resume_tells_optuna_about_trials_finished_before_the_stop(tmp_path):
    """The driver can die between a trial's last row and telling Optuna: resuming keeps the row
    and completes the Optuna trial with its seed means, instead of running it again."""
    import optuna

    from raygap.results import ResultsFolder, trial_row
    from raygap.study.optuna_search import TUNE_TRIAL_ID
    from raygap.study.resume import prepare_resume

    folder = ResultsFolder(tmp_path)
    rows = [
        trial_row("done", 0, {"x": 1.0}, {}, "completed", {"modality_gap": 0.2, "mean_r1": 0.5}),
        trial_row("done", 1, {"x": 1.0}, {}, "completed", {"modality_gap": 0.4, "mean_r1": 0.3}),
        trial_row("half", 0, {"x": 2.0}, {}, "completed", {"modality_gap": 0.9, "mean_r1": 0.1}),
        trial_row("broken", 0, {"x": 3.0}, {}, "failed", error="boom"),
    ]
    folder.append("trials.parquet", rows)
    db = tmp_path / "optuna.db"
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{db}", directions=["minimize", "maximize"])
    asked = {}
    for tune_id, x in (("done", 1.0), ("half", 2.0), ("broken", 3.0)):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 10)})
        assert trial.params["x"] is not None
        trial.set_user_attr(TUNE_TRIAL_ID, tune_id)
        asked[tune_id] = trial.number
    lines = []
    spec = SimpleNamespace(name="s")  # the Optuna file exists: the resume needs only the study's name
    finished, rerun, _ = prepare_resume(folder, db, spec, {"modality_gap": "min", "mean_r1": "max"}, 2, lines.append)

    assert finished == 2  # "done" (both seeds) and "broken" (a failed seed ends its trial)
    trials = {t.number: t for t in optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials}
    done = trials[asked["done"]]
    assert done.state == optuna.trial.TrialState.COMPLETE and done.values == pytest.approx([0.3, 0.4])
    assert trials[asked["broken"]].state == optuna.trial.TrialState.FAIL
    assert trials[asked["half"]].state == optuna.trial.TrialState.FAIL
    assert rerun == [trials[asked["half"]].params]
    assert sorted(folder.read("trials.parquet")["trial_id"].unique()) == ["broken", "done"]
    assert lines == ["resuming: 2 finished trial(s) kept, 1 unfinished one(s) to run again; 2 finished one(s) told to Optuna"]


@pytest.mark.slow
def test_a_ten_thousand_trial_theory_study_keeps_every_trial(tmp_path):
    """Scale through the real engine (Ray Tune, Optuna's journal file, the head's writer, the front
    after every trial): `raygap bench --only study-scale`'s 10,000 short theory trials, about 10
    minutes on 2 cores. Every trial is recorded once, with its history and its Optuna trial."""
    import optuna

    from raygap.bench.study_scale import study_scale
    from raygap.results import HISTORY, PARETO, TRIALS, ResultsFolder
    from raygap.study import optuna_path
    from raygap.study.folder import optuna_storage

    scale = study_scale(10_000, tmp_path, echo=print)
    folder = ResultsFolder(scale["results"])
    trials = folder.read(TRIALS)
    assert trials.height == 10_000 and trials["trial_id"].n_unique() == 10_000
    assert trials["status"].to_list() == ["completed"] * 10_000
    assert folder.read(HISTORY).height == 10_000 * 6  # t = 0 and five records per trial
    assert folder.read(PARETO).height == 10_000
    study = optuna.load_study(study_name="scale", storage=optuna_storage(optuna_path(folder, "scale")))
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 10_000
    assert sorted(p.name for p in Path(scale["results"]).iterdir() if p.suffix == ".parquet") == [HISTORY, PARETO, TRIALS]  # compacted
    print(
        f"10,000 trials in {scale['seconds']:.0f} s; trials/s {scale['first_trials_per_s']:.1f} over the first 1,000, "
        f"{scale['last_trials_per_s']:.1f} over the last (ratio {scale['first_over_last']:.2f})"
    )
