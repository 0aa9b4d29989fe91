"""raygap measure: kept embeddings and a kept checkpoint measured again give the trial's own row."""

import numpy as np
import polars as pl
import pytest

from raygap import kept_files, results
from raygap.cli import main
from raygap.clip.train import train

MEASURES = ("modality_gap", "uniformity", "image_to_text_r1", "text_to_image_r1", "instance_gap", "relative_gap", "alignment", "image_cone")


@pytest.fixture(scope="module")
def kept(tiny, tmp_path_factory):
    """A short trial that keeps its final weights and embeddings, and its final row."""
    cfg = tiny(artifacts={"weights": "final", "embeddings": True}, data={"probe": None})
    artifacts = []
    final = train(cfg, keep=artifacts.append)
    folder = results.ResultsFolder(tmp_path_factory.mktemp("kept"))
    names = kept_files.record_artifacts(folder, "t", 0, artifacts[0].weights, artifacts[0].embeddings)
    return cfg, final, [folder.path + "/" + n for n in names]


def test_kept_embeddings_measure_as_the_trial_did(kept, tmp_path, capsys):
    cfg, final, (_, embeddings) = kept
    out = tmp_path / "m.parquet"
    assert main(["measure", "--embeddings", embeddings, "-o", str(out)]) == 0
    assert f"measures → {out}" in capsys.readouterr().out
    row = pl.read_parquet(out).row(0, named=True)
    for name in MEASURES:
        assert row[name] == pytest.approx(final[name], abs=1e-6), name
    assert row["modality_separability"] == pytest.approx(final["modality_separability"], abs=1e-9)


def test_a_kept_checkpoint_measures_as_the_trial_did(kept, tmp_path):
    cfg, final, (weights, _) = kept
    study = tmp_path / "data.yaml"
    study.write_text("name: m\ndata:\n  eval: {kind: synthetic, size: 128, seed: 1, captions_per_image: 2}\n  probe: null\n")
    out = tmp_path / "m.parquet"
    assert main(["measure", "--data", str(study), "--pretrained", weights, "-o", str(out)]) == 0
    row = pl.read_parquet(out).row(0, named=True)
    for name in MEASURES:
        assert row[name] == pytest.approx(final[name], abs=1e-6), name


def test_what_measure_refuses(tmp_path, capsys):
    assert main(["measure", "--embeddings", str(tmp_path / "none.parquet")]) == 2
    assert "--embeddings: file not found" in capsys.readouterr().err
    other = tmp_path / "other.parquet"
    pl.DataFrame({"x": [1.0]}).write_parquet(other)
    assert main(["measure", "--embeddings", str(other)]) == 2
    assert "not an embeddings file: no column modality, index, image_index, embedding" in capsys.readouterr().err
    assert main(["measure", "--embeddings", str(other), "--model", "small-vit"]) == 2
    assert "--model, --pretrained and --set choose what to measure with --data" in capsys.readouterr().err


def test_the_shift_curve_of_kept_embeddings(kept, tmp_path, capsys):
    cfg, final, (_, embeddings) = kept
    out = tmp_path / "m.parquet"
    assert main(["measure", "--embeddings", embeddings, "--shift", "-o", str(out)]) == 0
    assert "shift curve → " in capsys.readouterr().out
    curve = pl.read_parquet(tmp_path / "m-shift.parquet")
    unshifted = curve.filter(pl.col("shift") == 0.0).row(0, named=True)
    for name in ("modality_gap", "image_to_text_r1", "text_to_image_r1"):
        assert unshifted[name] == pytest.approx(final[name], abs=1e-6), name  # λ = 0 is the trial's own row
    gaps = curve.filter(pl.col("centred") == 0).sort("shift")["modality_gap"].to_list()
    assert gaps[0] > gaps[2] > gaps[4]  # −0.5, 0, 0.5: closing the gap as λ grows to ½
    assert curve.filter(pl.col("centred") == 1).height == 1
    assert main(["measure", "--data", "x.yaml", "--shift"]) == 2


def test_removing_the_coordinates_that_carry_the_gap(tmp_path):
    from raygap.clip.measure import ablation_curve

    rng = np.random.default_rng(5)
    shared = rng.normal(size=(60, 8))
    offset = np.zeros(8)
    offset[[2, 5]] = [3.0, -2.0]  # the gap lives in coordinates 2 and 5
    rows = ablation_curve(shared + offset, shared - offset, np.arange(60), removed=3)
    assert [r["dimension"] for r in rows] == [-1, 2, 5, rows[3]["dimension"]]
    assert rows[0]["modality_gap"] > 0.9 and rows[2]["modality_gap"] < 1e-9  # gone with its two coordinates
    assert rows[2]["image_to_text_r1"] == 1.0  # the rest still matches every pair
    assert rows[0]["relative_gap"] > rows[2]["relative_gap"]
