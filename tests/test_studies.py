"""Every study file validates, dry-runs, and (shrunk) trains its default configuration."""

from pathlib import Path

import polars as pl
import pytest

from raygap.cli import main

STUDIES = sorted((Path(__file__).resolve().parent.parent / "studies").glob("*.yaml"))
SHRINK = [
    "data.train={kind: synthetic, size: 256}",
    "data.eval={kind: synthetic, size: 64, seed: 1}",
    "data.probe={train: {kind: synthetic, size: 64, seed: 2}, test: {kind: synthetic, size: 32, seed: 3}}",
    "train.steps=2",
    "train.batch_size=32",
    "train.eval_interval=1",
]


COCO = sorted((Path(__file__).resolve().parent.parent / "studies" / "coco").glob("[!_]*.yaml"))


@pytest.mark.parametrize("study", COCO, ids=[p.stem for p in COCO])
def test_paper_scale_studies_validate_without_their_data(study, capsys):
    assert main(["study", "run", str(study), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "3 seed(s)" in printed and "4 worker(s) on GPU" in printed
    # run for real without the data: a clear error naming the missing path, before anything starts
    assert main(["study", "run", str(study), "--results", "/nonexistent/never-written"]) == 2
    assert "data.train.annotations: file not found: /data/coco/annotations/captions_train2017.json" in capsys.readouterr().err


def test_the_library_is_complete():
    names = {p.stem for p in STUDIES}
    assert {"baseline", "flt", "ts", "ts-cos", "tr", "slrt", "hs", "hs-row", "ss", "no-norm", "all", "smoke"} <= names
    assert {"theory-learned", "theory-fixed", "theory-mismatch"} <= names


@pytest.mark.parametrize("study", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_dry_runs(study, capsys):
    assert main(["study", "run", str(study), "--dry-run"]) == 0
    assert "trial(s)" in capsys.readouterr().out
    assert study.read_text().startswith("#")  # each file says what it asks and what the paper found


@pytest.mark.parametrize("study", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_default_configuration_trains(study, tmp_path):
    args = ["train", str(study), "--quiet", "--results", str(tmp_path)]
    for item in SHRINK:
        args += ["--set", item]
    assert main(args) == 0
    row = pl.read_parquet(tmp_path / "trials.parquet").row(0, named=True)
    assert row["status"] == "completed"
    assert row["steps"] == 2 if "theory" not in study.stem else row["delta"] is not None
