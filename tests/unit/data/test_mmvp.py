"""MMVP-VLM: the pair score by hand and against the benchmark's own script (written out here as a
slow reference), its degenerate inputs, the reader of the published layout and its errors, and a
trained model scored end to end on a small copy written in that layout."""

import csv
import math

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from raygap import catalog
from raygap.cli import main
from raygap.clip.metrics import mmvp_scores
from raygap.config import MmvpSource, SpecError, load_spec
from raygap.data import mmvp

GROUPS = catalog.MMVP_GROUPS


def write_mmvp(root, pairs_per_group: int = 2, rows=None, names=GROUPS, folder=None, images="MLLM_VLM Images") -> None:
    """A copy of MMVP-VLM's layout: Questions.csv and 'MLLM_VLM Images/<Type>/<id>.jpg' (each
    pair's two images differ in colour, and so do their statements). `names` spells the 9 groups
    in the Type column; `folder` maps a Type to its image folder's name (the Type itself unless
    given)."""
    if rows is None:
        rows, qid = [], 1
        for name in names:
            for _ in range(pairs_per_group):
                rows += [[str(qid), name, "a red square"], [str(qid + 1), name, "a blue square"]]
                qid += 2
    root.mkdir(parents=True, exist_ok=True)
    with (root / "Questions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["Question ID", "Type", "Statement"], *rows])
    for qid, name, statement in rows:
        path = root / images / (folder(name) if folder else name) / f"{qid}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = (200, 30, 30) if "red" in statement else (30, 30, 200)
        Image.fromarray(np.full((8, 8, 3), colour, np.uint8)).save(path)


def benchmark_script_scores(image: np.ndarray, text: np.ndarray, groups: list[int], n_groups: int, scale: float = 100.0) -> list[float]:
    """MMVP-VLM's evaluate_vlm.py step by step: per pair, each statement's softmax over the two
    images' logits; it predicts img1 when img1's probability is over 0.5; the ground truth is img1
    for the odd question id (the first row); the pair counts when both predictions are right."""
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    correct, pairs = [0] * n_groups, [0] * n_groups
    for p in range(len(image) // 2):
        imgs = image[2 * p : 2 * p + 2]
        predictions = []
        for statement in (text[2 * p], text[2 * p + 1]):
            logits = scale * imgs @ statement
            probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            predictions.append("img1" if probs[0] > 0.5 else "img2")
        g = groups[2 * p]
        pairs[g] += 1
        correct[g] += predictions == ["img1", "img2"]
    return [c / n for c, n in zip(correct, pairs)]


def test_the_pair_score_by_hand():
    # Group 0, pair A: both statements pick their own image. Pair B: the second statement picks
    # the first image. Group 1, pair C: the first statement is equally close to both images (a
    # tie: 1/2), the second picks its own. Group accuracies 1/2 and 1/2, mean 1/2.
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.1], [1.0, 0.2], [1.0, 1.0], [0.0, 1.0]])
    groups = torch.tensor([0, 0, 0, 0, 1, 1])
    per_group, mean = mmvp_scores(image, text, groups, 2)
    assert per_group == [0.5, 0.5] and mean == 0.5


def test_the_pair_score_matches_the_benchmarks_script_on_random_features():
    rng = np.random.default_rng(0)
    for case in range(20):
        n_groups = 9
        pairs = rng.integers(1, 5, size=n_groups)
        groups = [g for g in range(n_groups) for _ in range(2 * pairs[g])]
        image, text = rng.normal(size=(len(groups), 8)), rng.normal(size=(len(groups), 8))
        if case % 2:  # a trained-looking model: each statement near its own image
            text = image + rng.normal(scale=0.8, size=image.shape)
        per_group, mean = mmvp_scores(torch.from_numpy(image), torch.from_numpy(text), torch.tensor(groups), n_groups)
        want = benchmark_script_scores(image, text, groups, n_groups)
        assert per_group == pytest.approx(want, abs=1e-12), case
        assert mean == pytest.approx(sum(want) / n_groups)


def test_degenerate_features_score_chance_or_nan_never_perfect():
    groups = torch.tensor([0, 0, 1, 1])
    collapsed = torch.ones(4, 3)
    assert mmvp_scores(collapsed, collapsed, groups, 2) == ([0.25, 0.25], 0.25)  # every statement ties
    nan = torch.ones(4, 3)
    nan[1, 0] = math.nan
    per_group, mean = mmvp_scores(nan, torch.ones(4, 3), groups, 2)
    assert all(math.isnan(v) for v in per_group) and math.isnan(mean)
    zero = torch.ones(4, 3)
    zero[2] = 0
    assert math.isnan(mmvp_scores(torch.ones(4, 3), zero, groups, 2)[1])
    per_group, mean = mmvp_scores(torch.eye(4), torch.eye(4), groups, 3)  # group 2 has no pairs
    assert per_group[:2] == [1.0, 1.0] and math.isnan(per_group[2]) and math.isnan(mean)
    with pytest.raises(ValueError, match="pairs"):
        mmvp_scores(torch.eye(3), torch.eye(3), torch.tensor([0, 0, 1]), 2)


def test_the_reader_takes_the_published_layout(tmp_path):
    write_mmvp(tmp_path / "MMVP_VLM")
    found = mmvp.read_set(MmvpSource(root=tmp_path / "MMVP_VLM"))
    assert len(found.images) == len(found.captions) == 9 * 2 * 2
    assert found.captions[:2] == ["a photo of a red square", "a photo of a blue square"]
    assert found.images.paths[0].endswith("MLLM_VLM Images/Orientation and Direction/1.jpg")
    assert found.labels.tolist() == [g for g in range(9) for _ in range(4)] and found.class_names == list(GROUPS)
    assert found.caption_image.tolist() == list(range(36))


SHORT = ("Orientation", "Presence", "State", "Quantity", "Spatial", "Color", "Structural Character", "Text", "Camera Perspective")


@pytest.mark.parametrize(
    "names, folder, images",
    [
        # The long names of the benchmark's script, as Type and folder.
        (GROUPS, None, "MLLM_VLM Images"),
        # The public copy's short names, as Type and folder (the script opens '<images>/<Type>/').
        (SHORT, None, "MLLM_VLM Images"),
        # Short names with spaces in Type, '_' in the folders, as the benchmark's README lays them out.
        (SHORT, lambda name: name.replace(" ", "_"), "MMVP_VLM_Images"),
        # '_' for spaces in Type and folder, in another case.
        (tuple(n.replace(" ", "_").upper() for n in SHORT), None, "MLLM_VLM Images"),
        # Long names in Type, short folder names.
        (GROUPS, lambda name: SHORT[GROUPS.index(name)].replace(" ", "_"), "MLLM_VLM Images"),
    ],
    ids=["long", "short", "short-readme-folders", "upper-underscores", "long-types-short-folders"],
)
def test_the_reader_takes_both_spellings_of_the_groups(tmp_path, names, folder, images):
    write_mmvp(tmp_path / "MMVP_VLM", names=names, folder=folder, images=images)
    found = mmvp.read_set(MmvpSource(root=tmp_path / "MMVP_VLM"))
    assert found.class_names == list(GROUPS)  # the groups keep their long names (and columns)
    assert found.labels.tolist() == [g for g in range(9) for _ in range(4)]
    last = folder(names[-1]) if folder else names[-1]
    assert found.images.paths[-1].endswith(f"{images}/{last}/36.jpg")
    assert found.captions[-2:] == ["a photo of a red square", "a photo of a blue square"]


def test_a_full_copy_is_grouped_as_the_benchmarks_script_groups_it(tmp_path):
    # 15 pairs per group in the benchmark's order: Type and row order (categories[pair // 15]) agree.
    write_mmvp(tmp_path / "MMVP_VLM", pairs_per_group=15, names=SHORT, folder=lambda name: name.replace(" ", "_"))
    found = mmvp.read_set(MmvpSource(root=tmp_path / "MMVP_VLM"))
    assert found.labels.tolist() == [row // 2 // 15 for row in range(270)]
    # Two groups' Types swapped: the script would score those pairs under the other group.
    swapped = tmp_path / "swapped"
    write_mmvp(swapped, pairs_per_group=15, names=(SHORT[1], SHORT[0], *SHORT[2:]))
    with pytest.raises(ValueError) as error:
        mmvp.read_set(MmvpSource(root=swapped))
    assert f"{swapped / 'Questions.csv'}, data row 1: Type 'Presence' is the group 'Presence of Specific Features'" in str(error.value)
    assert "puts pair 1 in 'Orientation and Direction' by row order" in str(error.value)


@pytest.mark.parametrize("name", ["Shapes", "", "Orientation and"])
def test_a_type_that_names_no_group_is_an_error_naming_the_file_row_and_groups(tmp_path, name):
    root = tmp_path / "MMVP_VLM"
    write_mmvp(root, names=SHORT)
    _rewrite(root, lambda rows: [[r[0], name, r[2]] if i == 2 else r for i, r in enumerate(rows)])
    with pytest.raises(ValueError) as error:
        mmvp.read_set(MmvpSource(root=root))
    message = str(error.value)
    assert message.startswith(f"{root / 'Questions.csv'}, data row 3: Type {name!r} is not one of MMVP-VLM's 9 groups")
    assert all(group in message for group in (*GROUPS, *SHORT)) and "'_' for spaces" in message


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "Questions.csv").unlink(), "no Questions.csv; expected MMVP-VLM's layout"),
        (lambda root: (root / "Questions.csv").write_text("id,type,text\n1,Texts,a\n"), "the header must be"),
        (lambda root: _rewrite(root, lambda rows: rows[:-1]), "expected rows in pairs"),
        (
            lambda root: _rewrite(root, lambda rows: [[r[0], r[1]] if i == 2 else r for i, r in enumerate(rows)]),
            "data row 3: expected 3 cells",
        ),
        (
            lambda root: _rewrite(root, lambda rows: [["7", *r[1:]] if i == 1 else r for i, r in enumerate(rows)]),
            "data row 2: expected Question ID 2",
        ),
        (lambda root: _rewrite(root, lambda rows: [[r[0], "Texts", r[2]] if i == 1 else r for i, r in enumerate(rows)]), "same Type"),
        (
            lambda root: _rewrite(root, lambda rows: [[r[0], "Shapes", r[2]] if i < 2 else r for i, r in enumerate(rows)]),
            "not one of MMVP-VLM's 9 groups",
        ),
        (lambda root: (root / "MLLM_VLM Images" / "Texts" / "29.jpg").unlink(), "image not found"),
        (lambda root: (root / "MLLM_VLM Images").rename(root / "images"), "no image folder; expected 'MLLM_VLM Images'"),
        (lambda root: _rewrite(root, lambda rows: rows[:4]), "no pairs of group(s)"),
    ],
)
def test_a_malformed_copy_is_a_clear_error_before_any_work(tmp_path, damage, message):
    root = tmp_path / "MMVP_VLM"
    write_mmvp(root)
    damage(root)
    spec = tmp_path / "study.yaml"
    spec.write_text(f"name: m\ndata: {{mmvp: {{kind: mmvp, root: '{root}'}}}}\n")
    from raygap.data.checks import check_tables

    with pytest.raises(SpecError, match="data.mmvp: ") as error:
        check_tables(load_spec(spec).defaults(), str(spec))
    assert message in str(error.value)


def _rewrite(root, change) -> None:
    with (root / "Questions.csv").open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    with (root / "Questions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *change(rows)])


def test_a_missing_copy_is_named_when_the_spec_is_read(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(f"name: m\ndata: {{mmvp: {{kind: mmvp, root: '{tmp_path / 'absent'}'}}}}\n")
    with pytest.raises(SpecError, match="data.mmvp.root"):
        load_spec(spec).resolve(check_paths=True)


def test_a_trained_model_is_scored_on_the_benchmark(tmp_path):
    write_mmvp(tmp_path / "MMVP_VLM")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: mmvp\n"
        "data:\n"
        "  train: {kind: synthetic, size: 256}\n"
        "  eval: {kind: synthetic, size: 64, seed: 1}\n"
        "  probe: null\n"
        f"  mmvp: {{kind: mmvp, root: '{tmp_path / 'MMVP_VLM'}'}}\n"
        "train: {steps: 3, batch_size: 32, eval_interval: 3}\n"
        "search: {objectives: {mmvp_accuracy: max, modality_gap: min}}\n"
    )
    out = tmp_path / "results"
    assert main(["train", str(spec), "--results", str(out), "--quiet"]) == 0
    row = pl.read_parquet(out / "trials.parquet").row(0, named=True)
    groups = [row[catalog.mmvp_column(g)] for g in GROUPS]
    assert all(0.0 <= v <= 1.0 for v in groups) and row["mmvp_accuracy"] == pytest.approx(sum(groups) / 9)
