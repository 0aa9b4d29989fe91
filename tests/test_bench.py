"""raygap bench in its CI size: every section runs (a real study included) and writes its figures."""

import json
import math

from raygap.bench import run_bench


def test_bench_ci_size_measures_every_section(tmp_path):
    lines = []
    figures = run_bench("ci", tmp_path, echo=lines.append)
    saved = json.loads((tmp_path / "bench-ci-cpu.json").read_text())
    assert saved == json.loads(json.dumps(figures))
    loop, study = figures["loop"], figures["study"]
    assert loop["plain_samples_per_s"] > 0 and loop["raygap_samples_per_s"] > 0
    assert math.isclose(loop["loop_efficiency"], loop["raygap_samples_per_s"] / loop["plain_samples_per_s"])
    assert study["trials"] == 2 and study["workers_per_trial"] == 1
    # Stamps come in order: trial start ≤ train() entry ≤ first step ≤ last step ≤ result on the head.
    assert 0 <= study["median_ray_start_s"] <= study["median_start_overhead_s"]
    assert 0 <= study["median_ray_end_s"] <= study["median_end_overhead_s"]
    assert 0 < study["study_efficiency"] <= 1 and study["study_efficiency_with_cluster_start"] <= study["study_efficiency"]
    assert study["peak_rss_gb"] > study["peak_trial_rss_gb"] > 0
    assert figures["input"]["loader_samples_per_s"] > 0 and figures["evaluation"]["eval_seconds"] > 0
    cache = figures["decoded_cache"]
    assert cache["images"] == 32 and cache["cache_build_seconds"] > 0
    assert math.isclose(cache["cache_speedup"], cache["cached_samples_per_s"] / cache["jpeg_samples_per_s"])
    assert any(line.startswith("loop efficiency") for text in lines for line in text.splitlines())
