"""What a seed keeps (the artifacts section): weights that open_clip loads back to the trial's own
numbers, the best evaluation point's weights, and embeddings that polars and numpy read alone."""

import numpy as np
import polars as pl
import pytest
import torch

from raygap import kept_files, results
from raygap.clip.evaluate import evaluate
from raygap.clip.model import build_model
from raygap.clip.train import train
from raygap.config import SpecError, load_spec
from raygap.data import load_source


@pytest.fixture(scope="module")
def kept_run(tiny):
    cfg = tiny(artifacts={"weights": "final", "embeddings": True}, data={"probe": None})
    kept, history = [], []
    final = train(cfg, history.append, keep=kept.append)
    return cfg, final, history, kept


def test_kept_weights_give_the_trial_s_numbers_back(kept_run, tmp_path):
    cfg, final, _, kept = kept_run
    (artifacts,) = kept
    folder = results.ResultsFolder(tmp_path)
    names = kept_files.record_artifacts(folder, "t1", 0, artifacts.weights, artifacts.embeddings)
    assert names == ["artifacts/t1/seed0/weights.pt", "artifacts/t1/seed0/embeddings.parquet"]
    assert [name for name, _ in kept_files.list_artifacts(folder)] == sorted(names)
    assert artifacts.weights_step == cfg.train.steps
    bundle = build_model(cfg.model.name, tmp_path / names[0])  # open_clip's load_checkpoint reads the file
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    again = evaluate(bundle.model, eval_set, torch.device("cpu"), cfg.eval.batch_size, gap_pairs=cfg.eval.gap_pairs, seed=cfg.eval.seed)
    for name in ("modality_gap", "uniformity", "image_to_text_r1", "text_to_image_r1"):
        assert again[name] == pytest.approx(final[name], abs=1e-6), name


def test_kept_embeddings_read_with_polars_and_numpy_alone(kept_run, tmp_path):
    cfg, final, _, kept = kept_run
    folder = results.ResultsFolder(tmp_path)
    assert [row["shift"] for row in kept[0].shift][:3] == [-0.5, -0.25, 0.0]  # kept with the embeddings, for the report
    (name,) = kept_files.record_artifacts(folder, "t1", 0, embeddings=kept[0].embeddings)
    frame = pl.read_parquet(tmp_path / name)
    images, texts = frame.filter(pl.col("modality") == "image"), frame.filter(pl.col("modality") == "text")
    assert (images.height, texts.height) == (128, 256)  # 2 captions per eval image
    x, y = np.stack(images["embedding"].to_numpy()), np.stack(texts["embedding"].to_numpy())
    first = [texts["image_index"].to_list().index(i) for i in range(len(x))]  # each image's first caption
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y[first] / np.linalg.norm(y[first], axis=1, keepdims=True)
    assert float(np.linalg.norm(x.mean(0) - y.mean(0))) == pytest.approx(final["modality_gap"], abs=1e-5)


def test_best_weights_are_those_of_the_best_point(tiny):
    cfg = tiny(artifacts={"weights": "best"}, data={"probe": None}, train={"steps": 6, "eval_interval": 1})
    kept, history = [], []
    train(cfg, history.append, keep=kept.append)
    gaps = [row["modality_gap"] for row in history]
    assert kept[0].weights_step == history[int(np.argmin(gaps))]["step"]


def test_best_needs_an_objective_measured_at_every_point(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text("artifacts: {weights: best}\nsearch: {objectives: {zero_shot_top1: max, modality_gap: min}}\n")
    with pytest.raises(SpecError, match=r"artifacts.weights: best is judged by the first objective .* zero_shot_top1 is measured once"):
        load_spec(study)
