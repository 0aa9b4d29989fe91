"""raygap bench in its CI size: every section runs (a real study included) and writes its results."""

import json
import math
import subprocess
import sys

import pytest
import torch

from raygap.bench import check_gpu_bench
from raygap.bench.common import to_config
from raygap.bench.overhead import bench_study
from raygap.bench.throughput import gpu_trial_raw


def test_bench_ci_size_measures_every_section(tmp_path):
    """The README's command (`raygap bench`, its default parts) at ci size, as a process of its own:
    its studies start and stop Ray several times, which is kept out of the test session (restarting
    Ray in one process can crash the interpreter at exit). Ray replaces builtins.print in the head
    once a worker's log line reaches it; test_runner's recorder test pins that cause down."""
    command = [sys.executable, "-m", "raygap", "bench", "--size", "ci", "-o", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "bench-ci-cpu.json").read_text())
    loop, study = results["loop"], results["study"]
    assert loop["plain_samples_per_s"] > 0 and loop["raygap_samples_per_s"] > 0
    ratios = sorted(r["raygap_samples_per_s"] / r["plain_samples_per_s"] for r in loop["rounds"])
    assert len(ratios) == 2 and math.isclose(loop["loop_efficiency"], (ratios[0] + ratios[1]) / 2)  # the median of two paired rounds
    assert (loop["loop_efficiency_min"], loop["loop_efficiency_max"]) == (ratios[0], ratios[1])
    assert study["trials"] == 2 and study["workers_per_trial"] == 1
    # Stamps come in order: trial start ≤ train() entry ≤ first step ≤ last step ≤ result on the head.
    assert 0 <= study["median_ray_start_s"] <= study["median_start_overhead_s"]
    assert 0 <= study["median_ray_end_s"] <= study["median_end_overhead_s"]
    assert 0 < study["study_efficiency"] <= 1 and study["study_efficiency_with_cluster_start"] <= study["study_efficiency"]
    assert study["peak_rss_gb"] > study["peak_trial_rss_gb"] > 0
    assert results["input"]["loader_samples_per_s"] > 0 and results["evaluation"]["eval_seconds"] > 0
    cache = results["decoded_cache"]
    assert cache["images"] == 32 and cache["cache_build_seconds"] > 0
    assert math.isclose(cache["cache_speedup"], cache["cached_samples_per_s"] / cache["jpeg_samples_per_s"])
    live = results["live"]
    assert live["points"] == 20 and live["live_result_seconds"] > 0 and live["eval_point_seconds"] > 0
    assert math.isclose(live["live_per_eval_point"], live["live_result_seconds"] / live["eval_point_seconds"])
    # 2b and 2c: one-worker trials in a Ray Train worker group, and two-worker trials.
    group, two = results["study_worker_group"], results["study_two_workers"]
    assert (group["trials"], group["workers_per_trial"], group["worker_group"]) == (1, 1, "always")
    assert (two["trials"], two["workers_per_trial"]) == (1, 2)
    assert all(0 <= part["median_ray_start_s"] <= part["median_start_overhead_s"] for part in (group, two))
    lines = run.stdout.splitlines()
    assert any(line.startswith("loop efficiency") for line in lines)
    assert any(line.startswith("per-trial overhead, 2-worker group") for line in lines)


def test_bench_configs_are_valid_without_a_study_file():
    """The GPU trials cannot run here; their configs still have to validate, and the study's spec
    (built in memory) has to search the temperature and nothing else."""
    cfg = to_config(gpu_trial_raw("small-vit", 256, 30, probe=True))
    assert (cfg.train.steps, cfg.train.eval_interval, cfg.train.device, cfg.data.train.size) == (60, 30, "cuda", 2048)
    spec = bench_study({"model": "tiny-vit", "batch": 32}, trials=2, steps=4, workers=1, worker_group="auto")
    assert list(spec.space) == ["temperature.value"]
    assert spec.defaults().search.trials == 2


def test_gpu_bench_refuses_unknown_parts():
    with pytest.raises(ValueError, match="unknown part"):
        check_gpu_bench(("throughput", "nope"))


@pytest.mark.slow  # a part that runs alone: whole studies (make test-all)
def test_the_early_stop_bench_runs_one_study_both_ways(tmp_path):
    from raygap.bench import run_early_stop_bench

    results = run_early_stop_bench("ci", tmp_path, echo=lambda line: None)["early_stop"]
    assert json.loads((tmp_path / "bench-ci-early-stop.json").read_text())["early_stop"] == json.loads(json.dumps(results))
    assert results["same_configurations"] and results["rule"]["kind"] == "pareto"
    full, stopped = results["full"], results["early_stop"]
    assert full["pruned_seeds"] == 0 and full["seed_seconds"] > 0 and full["hypervolume"] > 0
    assert results["compute_saved"] == pytest.approx(1 - stopped["seed_seconds"] / full["seed_seconds"])


def test_the_bookkeeping_bench_records_through_the_ledger_and_times_optuna(tmp_path):
    from raygap.bench import run_bookkeeping_bench

    results = run_bookkeeping_bench("ci", tmp_path, echo=lambda line: None)
    assert json.loads((tmp_path / "bench-ci-bookkeeping.json").read_text()) == json.loads(json.dumps(results))
    cost = results["bookkeeping"]
    assert cost["trials"] == 300 and cost["first_median_ms"] > 0 and cost["last_median_ms"] > 0
    assert cost["last_over_first_median"] == pytest.approx(cost["last_median_ms"] / cost["first_median_ms"])
    assert cost["front_size"] >= 1 and cost["whole_table_rewrite_ms"] > 0
    assert [r["storage"] for r in results["optuna_storage"]] == ["sqlite", "journal"]
    assert {(r["sampler"], r["trials"]) for r in results["optuna_samplers"]} == {("tpe", 300), ("nsga2", 300)}


@pytest.mark.slow  # a part that runs alone: whole studies (make test-all)
def test_the_study_scale_bench_runs_a_real_study_and_times_its_two_ends(tmp_path):
    from raygap.bench import run_study_scale_bench
    from raygap.results import TRIALS, ResultsFolder

    results = run_study_scale_bench("ci", tmp_path, echo=lambda line: None)
    assert json.loads((tmp_path / "bench-ci-study-scale.json").read_text()) == json.loads(json.dumps(results))
    scale = results["study_scale"]
    trials = ResultsFolder(scale["results"]).read(TRIALS)
    assert scale["trials"] == trials.height == 200 and set(trials["status"]) == {"completed"} and scale["window"] == 100
    stamps = trials.sort("recorded_at")["recorded_at"].to_list()
    assert scale["first_trials_per_s"] == pytest.approx(99 / (stamps[99] - stamps[0]))
    assert scale["last_trials_per_s"] == pytest.approx(99 / (stamps[-1] - stamps[-100]))
    assert scale["first_over_last"] == pytest.approx(scale["first_trials_per_s"] / scale["last_trials_per_s"])


def test_the_files_study_bench_writes_the_digits_the_memory_study_holds(tmp_path):
    """The PNG files hold exactly the pixels of the in-memory digits source, so the two studies of
    part 11 train on the same images."""
    from raygap.bench.files_study import write_digit_files
    from raygap.clip.model import build_model
    from raygap.config import DigitsSource, FilesSource
    from raygap.data import load_source

    bundle = build_model("tiny-vit")
    table, count = write_digit_files(tmp_path / "digits", 32)
    files = load_source(FilesSource(table=table, label_column="label", decoded_cache=False), bundle, train=False)
    memory = load_source(DigitsSource(split="train"), bundle, train=False)
    assert count == len(files.images) == len(memory.images) == 1437
    assert files.class_names == memory.class_names and torch.equal(files.labels, memory.labels)
    indices = [0, 1, 700, 1436]
    assert torch.allclose(files.images.batch(indices), memory.images.batch(indices), atol=1e-5)
    assert torch.equal(files.tokens, memory.tokens) and torch.equal(files.caption_image, memory.caption_image)


@pytest.mark.slow  # a part that runs alone: whole studies (make test-all)
def test_the_files_study_bench_runs_three_real_studies(tmp_path):
    from raygap.bench import run_files_study_bench

    results = run_files_study_bench("ci", tmp_path, echo=lambda line: None)
    assert json.loads((tmp_path / "bench-ci-files-study.json").read_text()) == json.loads(json.dumps(results))
    speed = results["files_study"]
    (round_,) = speed["rounds"]
    for run in (round_["memory"], round_["files"], speed["every_epoch"]):
        assert run["trials"] == 2 and run["samples_per_s"] == pytest.approx(2 * 4 * 32 / run["window_s"])
    assert speed["files_over_memory"] == pytest.approx(round_["files"]["samples_per_s"] / round_["memory"]["samples_per_s"])


@pytest.mark.slow  # a part that runs alone: whole studies (make test-all)
@pytest.mark.usefixtures("cpp_compiler")
def test_the_compile_bench_pairs_eager_and_compiled_trials_and_profiles_both(tmp_path):
    from raygap.bench import run_compile_bench

    results = run_compile_bench("ci", tmp_path, echo=lambda line: None)
    assert json.loads((tmp_path / "bench-ci-compile.json").read_text()) == json.loads(json.dumps(results))
    speed = results["compile"]
    ratios = sorted(r["compiled"]["samples_per_s"] / r["eager"]["samples_per_s"] for r in speed["rounds"])
    assert len(ratios) == 2 and speed["speedup"] == pytest.approx(sum(ratios) / 2)
    # The first compile starts from an empty kernel cache; the second trial, in the same process, finds its kernels.
    assert speed["cold_compile_s"] > speed["same_process_compile_s"] and speed["graphs_compiled"][0] >= 2
    for mode in ("eager", "compiled"):
        ops = speed["top_operators"][mode]
        assert ops and all(0 < op["share"] <= 1 for op in ops) and sum(op["share"] for op in ops) <= 1 + 1e-9


@pytest.mark.slow  # a part that runs alone: seven trials and two fresh processes (make test-all)
def test_the_losses_bench_times_every_kind_and_accumulation_in_fresh_processes(tmp_path):
    from raygap.bench.alone import run_losses_bench

    results = run_losses_bench("ci", tmp_path, echo=lambda line: None)
    assert json.loads((tmp_path / "bench-ci-losses.json").read_text()) == json.loads(json.dumps(results))
    costs, accumulation = results["losses"], results["accumulation"]
    assert set(costs["over_clip"]) == {"clip", "siglip", "cyclip", "inmodal_separation", "m3mix"} and costs["over_clip"]["clip"] == 1.0
    assert accumulation["accumulate"] == 4 and accumulation["whole"]["step_peak_mb"] > 0
    whole, split = accumulation["whole"]["seconds_per_sample"], accumulation["accumulated"]["seconds_per_sample"]
    assert accumulation["time_ratio"] == pytest.approx(split / whole)


@pytest.mark.slow  # a part that runs alone: two studies of worker groups (make test-all)
def test_the_worker_groups_bench_runs_both_ways_and_times_each_seed(tmp_path):
    from raygap.bench.alone import run_worker_groups_bench

    results = run_worker_groups_bench("ci", tmp_path, echo=lambda line: None)
    assert json.loads((tmp_path / "bench-ci-worker-groups.json").read_text()) == json.loads(json.dumps(results))
    bench = results["worker_groups"]
    for per in ("per_seed", "per_trial"):
        assert bench[per]["trials"] == 1 and bench[per]["seed_runs"] == 3
        assert 0 < bench[per]["median_per_seed_ray_overhead_s"] < bench[per]["median_per_seed_overhead_s"]
    # a group per trial starts once where a group per seed starts three times
    assert bench["ray_overhead_ratio"] < 0.75
