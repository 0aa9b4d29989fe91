import os

import polars as pl
import pytest

from raygap.results import TRIALS, ResultsFolder, trial_row


@pytest.fixture(params=["path", "uri"])
def folder(request, tmp_path):
    location = tmp_path / "study"
    return ResultsFolder(location if request.param == "path" else f"file://{location}")


def test_append_keeps_rows_and_unions_columns(folder):
    folder.append(TRIALS, [trial_row("t1", 0, {"temperature.value": 0.04}, {}, "completed", {"modality_gap": 0.3})])
    folder.append(TRIALS, [trial_row("t2", 1, {}, {}, "failed", error="boom")])
    frame = folder.read(TRIALS)
    assert frame["trial_id"].to_list() == ["t1", "t2"]
    assert frame["param.temperature.value"].to_list() == [0.04, None]
    assert frame["status"].to_list() == ["completed", "failed"] and frame["error"].to_list() == [None, "boom"]
    # While a study runs: one plain Parquet part per append, readable by any Parquet reader.
    parts = pl.concat(
        [pl.read_parquet(f"{folder.path}/trials/{name}") for name in os.listdir(folder.path + "/trials")], how="diagonal_relaxed"
    )
    assert sorted(parts["trial_id"].to_list()) == ["t1", "t2"]
    assert folder.compact(TRIALS) == 2 and folder.compact(TRIALS) == 0
    assert pl.read_parquet(folder.path + "/" + TRIALS).equals(frame)  # compacted: one plain file
    assert os.listdir(folder.path + "/trials") == []
    folder.append(TRIALS, [trial_row("t3", 0, {}, {}, "completed", {"modality_gap": 0.1})])
    assert folder.read(TRIALS)["trial_id"].to_list() == ["t1", "t2", "t3"]  # the file, then newer parts


def test_a_crash_during_compaction_never_counts_a_row_twice(folder):
    for i in range(3):
        folder.append(TRIALS, [trial_row(f"t{i}", 0, {}, {}, "completed", {"x": float(i)})])
    # Compaction writes the file, naming the parts it holds, then deletes them. The state a crash
    # in between leaves: the file written and the parts still there (put back here).
    parts = {name: open(f"{folder.path}/trials/{name}", "rb").read() for name in os.listdir(folder.path + "/trials")}
    folder.compact(TRIALS)
    for name, data in parts.items():
        open(f"{folder.path}/trials/{name}", "wb").write(data)
    assert len(os.listdir(folder.path + "/trials")) == 3  # the parts are still there …
    assert ResultsFolder(folder.location).read(TRIALS)["trial_id"].to_list() == ["t0", "t1", "t2"]  # … and read once
    assert ResultsFolder(folder.location).compact(TRIALS) == 3
    assert ResultsFolder(folder.location).read(TRIALS).height == 3


def test_only_the_datasets_grow_by_parts(folder):
    with pytest.raises(ValueError, match="grow by parts"):
        folder.append("pareto.parquet", [{"x": 1}])


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status must be one of"):
        trial_row("t", 0, {}, {}, "done")


def test_interrupted_write_leaves_previous_file_intact(folder):
    folder.write_parquet(TRIALS, pl.DataFrame({"x": [1, 2]}))

    def crash(stream):
        stream.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        folder._atomic_write(TRIALS, crash)
    assert folder.read(TRIALS)["x"].to_list() == [1, 2]
    assert os.listdir(folder.path) == [TRIALS]  # no temporary file left behind


def test_metadata_remove_and_uri(folder):
    folder.write_parquet("h.parquet", pl.DataFrame({"x": [1]}), metadata={"gap_pairs": 512})
    assert folder.schema("h.parquet").metadata[b"gap_pairs"] == b"512"
    assert folder.uri("h.parquet").endswith("/study/h.parquet")
    folder.remove("h.parquet", "missing.parquet")
    assert not folder.exists("h.parquet")


def test_a_thousand_trials_keep_every_row_and_appends_stay_cheap(tmp_path):
    import time

    from raygap.pareto import summarize_trials

    folder = ResultsFolder(tmp_path / "study")
    seconds = []
    for i in range(1000):
        metrics = {"modality_gap": (i * 7919 % 1000) / 1000, "margin": (i * 104729 % 1000) / 1000, "delta": 0.1}
        row = trial_row(f"trial{i:04d}", 0, {"temperature.value": 0.05 + i / 1000}, {"n": 8}, "completed", metrics)
        started = time.perf_counter()
        folder.append(TRIALS, [row])
        seconds.append(time.perf_counter() - started)
    frame = folder.read(TRIALS)
    assert frame.height == 1000 and frame["trial_id"].n_unique() == 1000
    summary = summarize_trials(frame, {"modality_gap": "min", "margin": "max"}, ["delta"])
    assert summary.height == 1000 and summary["rank"].null_count() == 0
    late = sorted(seconds[-100:])[50]
    print(f"append at 1,000 trials: median {late * 1000:.1f} ms (first 100: {sorted(seconds[:100])[50] * 1000:.1f} ms)")
