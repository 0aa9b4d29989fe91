"""MMVP-VLM (Tong et al., "Eyes Wide Shut?", CVPR 2024) from a local copy in its published layout:

    <root>/Questions.csv                           Question ID, Type, Statement (a header row, then one row per image)
    <root>/MLLM_VLM Images/<Type>/<Question ID>.jpg

Rows come in pairs (Question IDs 2k−1 and 2k, the same Type): two images that differ in one visual
pattern, each with the statement that describes it. The 9 Types are the visual-pattern groups. The
benchmark's prompt is "a photo of " + the statement. Scoring is raygap.clip.metrics.mmvp_scores.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from raygap.catalog import MMVP_GROUPS
from raygap.data.index import FileImages, FileSet

QUESTIONS = "Questions.csv"
IMAGES = "MLLM_VLM Images"
COLUMNS = ["Question ID", "Type", "Statement"]
PROMPT = "a photo of {statement}"


def read_set(source) -> FileSet:
    """The benchmark as a labelled file set: one image per row in pair order, its prompt as the
    caption, its group as the label. Errors name the file, the row and what was expected."""
    root = Path(source.root)
    table = root / QUESTIONS
    if not table.is_file():
        raise ValueError(f"{root}: no {QUESTIONS}; expected MMVP-VLM's layout ({QUESTIONS} and '{IMAGES}/<Type>/<id>.jpg')")
    with table.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows or [c.strip() for c in rows[0]] != COLUMNS:
        raise ValueError(f"{table}: the header must be {COLUMNS}, got {rows[0] if rows else 'an empty file'}")
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    if not body or len(body) % 2:
        raise ValueError(f"{table}: expected rows in pairs (two statements per image pair), got {len(body)} row(s)")
    paths, captions, groups = [], [], []
    for line, (first, second) in enumerate(zip(body[::2], body[1::2])):
        for offset, row in enumerate((first, second)):
            where = f"{table}, data row {2 * line + offset + 1}"
            if len(row) != 3:
                raise ValueError(f"{where}: expected 3 cells ({', '.join(COLUMNS)}), got {len(row)}")
            qid, group, statement = (cell.strip() for cell in row)
            if not qid.isdigit() or int(qid) != 2 * line + offset + 1:
                raise ValueError(f"{where}: expected Question ID {2 * line + offset + 1} (pairs of consecutive ids from 1), got {qid!r}")
            if group not in MMVP_GROUPS:
                raise ValueError(f"{where}: Type {group!r} is not one of MMVP-VLM's 9 groups: {', '.join(MMVP_GROUPS)}")
            if group != first[1].strip():
                raise ValueError(f"{where}: both rows of a pair need the same Type, got {first[1].strip()!r} and {group!r}")
            image = root / IMAGES / group / f"{qid}.jpg"
            if not image.is_file():
                raise ValueError(f"{where}: image not found: {image}")
            paths.append(str(image))
            captions.append(PROMPT.format(statement=statement))
            groups.append(group)
    missing = [g for g in MMVP_GROUPS if g not in groups]
    if missing:
        raise ValueError(f"{table}: no pairs of group(s) {', '.join(missing)}; the score is a mean over all 9 groups")
    labels = np.array([MMVP_GROUPS.index(g) for g in groups])
    return FileSet(FileImages(paths), captions, np.arange(len(paths)), labels, list(MMVP_GROUPS))
