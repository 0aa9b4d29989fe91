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
    assert pl.read_parquet(folder.path + "/" + TRIALS).equals(frame)  # a plain Parquet file on disk


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
