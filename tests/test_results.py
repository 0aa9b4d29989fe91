import os

import polars as pl
import pytest

from raygap import results


def test_append_keeps_rows_and_unions_columns(tmp_path):
    path = tmp_path / "trials.parquet"
    results.append_rows(path, [results.trial_row("t1", 0, {"temperature.value": 0.04}, {}, "completed", {"modality_gap": 0.3})])
    results.append_rows(path, [results.trial_row("t2", 1, {}, {}, "failed", error="boom")])
    frame = pl.read_parquet(path)
    assert frame["trial_id"].to_list() == ["t1", "t2"]
    assert frame["param.temperature.value"].to_list() == [0.04, None]
    assert frame["status"].to_list() == ["completed", "failed"] and frame["error"].to_list() == [None, "boom"]


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status must be one of"):
        results.trial_row("t", 0, {}, {}, "done")


def test_interrupted_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "trials.parquet"
    results.write_parquet(path, pl.DataFrame({"x": [1, 2]}))

    def crash(handle):
        handle.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        results._atomic_write(path, crash)
    assert pl.read_parquet(path)["x"].to_list() == [1, 2]
    assert os.listdir(tmp_path) == ["trials.parquet"]  # no temporary file left behind


def test_metadata_is_stored_in_the_footer(tmp_path):
    path = tmp_path / "h.parquet"
    results.write_parquet(path, pl.DataFrame({"x": [1]}), metadata={"gap_pairs": 512})
    assert results.schema_of(path).metadata[b"gap_pairs"] == b"512"
