"""MMVP-VLM (Tong et al., "Eyes Wide Shut?", CVPR 2024) from a local copy in its published layout:

    <root>/Questions.csv                           Question ID, Type, Statement (a header row, then one row per image)
    <root>/MLLM_VLM Images/<Type>/<Question ID>.jpg

Rows come in pairs (Question IDs 2k−1 and 2k, the same Type): two images that differ in one visual
pattern, each with the statement that describes it. The 9 Types are the visual-pattern groups. The
benchmark's prompt is "a photo of " + the statement. Scoring is raygap.clip.metrics.mmvp_scores.

Groups are read from the Type column, in either spelling: the long names of the benchmark's script
(MMVP_GROUPS, 'Color and Appearance') or the short type/folder names of the public copy
(SHORT_NAMES, 'Color', 'Camera_Perspective'), in any case, with '_' or spaces. The image folder is
the Type as written (as the script opens it), else a folder whose name spells the same group; the
images folder is 'MLLM_VLM Images' (the script's) or 'MMVP_VLM_Images' (the benchmark's README).
A Type that spells no group is an error, not a guess from row order: row order only says the group
on a full copy, and there the reader checks that Type agrees with it (see read_set).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from raygap.catalog import MMVP_GROUPS
from raygap.data.index import FileImages, FileSet

QUESTIONS = "Questions.csv"
IMAGES = ("MLLM_VLM Images", "MMVP_VLM_Images")
COLUMNS = ["Question ID", "Type", "Statement"]
PROMPT = "a photo of {statement}"
# The public copy's short type and folder names, in MMVP_GROUPS' order.
SHORT_NAMES = (
    "Orientation",
    "Presence",
    "State",
    "Quantity",
    "Spatial",
    "Color",
    "Structural Character",
    "Text",
    "Camera Perspective",
)
# A full copy: 15 pairs per group, the groups in MMVP_GROUPS' order; the benchmark's script assigns
# pair p to MMVP_GROUPS[p // 15] whatever its Type says.
PAIRS_PER_GROUP = 15
FULL_PAIRS = PAIRS_PER_GROUP * len(MMVP_GROUPS)


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


SPELLINGS: dict[str, str] = {_key(name): group for names in (MMVP_GROUPS, SHORT_NAMES) for name, group in zip(names, MMVP_GROUPS)}
EXPECTED = (
    f"one of MMVP-VLM's 9 groups: {', '.join(MMVP_GROUPS)}; or their short names: {', '.join(SHORT_NAMES)} (any case, '_' for spaces)"
)


def group_of(name: str) -> str | None:
    """The group (one of MMVP_GROUPS) a Type or folder name spells, or None."""
    return SPELLINGS.get(_key(name))


def _image_folders(root: Path) -> tuple[Path, dict[str, list[Path]]]:
    """The image folder, and its subfolders by the group each spelling names."""
    images = next((root / name for name in IMAGES if (root / name).is_dir()), None)
    if images is None:
        raise ValueError(f"{root}: no image folder; expected '{IMAGES[0]}' (or '{IMAGES[1]}') beside {QUESTIONS}")
    folders: dict[str, list[Path]] = {}
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        if (spelt := group_of(folder.name)) is not None:
            folders.setdefault(spelt, []).append(folder)
    return images, folders


def _statement_rows(table: Path) -> list[list[str]]:
    """The table's non-empty rows after a checked header, two per image pair."""
    with table.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows or [c.strip() for c in rows[0]] != COLUMNS:
        raise ValueError(f"{table}: the header must be {COLUMNS}, got {rows[0] if rows else 'an empty file'}")
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    if not body or len(body) % 2:
        raise ValueError(f"{table}: expected rows in pairs (two statements per image pair), got {len(body)} row(s)")
    return body


def read_set(source) -> FileSet:
    """The benchmark as a labelled file set: one image per row in pair order, its prompt as the
    caption, its group as the label. Each row's group is its Type (either spelling); on a full copy
    (135 pairs) it must also be the group the benchmark's script gives the pair by row order, so the
    two score the same pairs per group. Errors name the file, the row and what was expected."""
    root = Path(source.root)
    table = root / QUESTIONS
    layout = f"{QUESTIONS} and '{IMAGES[0]}/<Type>/<id>.jpg'"
    if not table.is_file():
        raise ValueError(f"{root}: no {QUESTIONS}; expected MMVP-VLM's layout ({layout})")
    images, folders = _image_folders(root)
    body = _statement_rows(table)
    full = len(body) == 2 * FULL_PAIRS
    paths, captions, groups = [], [], []
    for pair, (first, second) in enumerate(zip(body[::2], body[1::2])):
        for offset, row in enumerate((first, second)):
            where = f"{table}, data row {2 * pair + offset + 1}"
            if len(row) != 3:
                raise ValueError(f"{where}: expected 3 cells ({', '.join(COLUMNS)}), got {len(row)}")
            qid, name, statement = (cell.strip() for cell in row)
            if not qid.isdigit() or int(qid) != 2 * pair + offset + 1:
                raise ValueError(f"{where}: expected Question ID {2 * pair + offset + 1} (pairs of consecutive ids from 1), got {qid!r}")
            group = group_of(name)
            if group is None:
                raise ValueError(f"{where}: Type {name!r} is not {EXPECTED}")
            if group != group_of(first[1]):
                raise ValueError(f"{where}: both rows of a pair need the same Type, got {first[1].strip()!r} and {name!r}")
            if full and group != MMVP_GROUPS[pair // PAIRS_PER_GROUP]:
                raise ValueError(
                    f"{where}: Type {name!r} is the group '{group}', but on a full copy ({FULL_PAIRS} pairs) the benchmark's "
                    f"script puts pair {pair + 1} in '{MMVP_GROUPS[pair // PAIRS_PER_GROUP]}' by row order "
                    f"({PAIRS_PER_GROUP} pairs per group, in the order {', '.join(MMVP_GROUPS)})"
                )
            # The folder the script opens (the Type as written) first, then any spelling of the group.
            tried = list(dict.fromkeys([images / name, *folders.get(group, [])]))
            image = next((folder / f"{qid}.jpg" for folder in tried if (folder / f"{qid}.jpg").is_file()), None)
            if image is None:
                raise ValueError(f"{where}: image not found: {' or '.join(str(folder / f'{qid}.jpg') for folder in tried)}")
            paths.append(str(image))
            captions.append(PROMPT.format(statement=statement))
            groups.append(group)
    missing = [g for g in MMVP_GROUPS if g not in groups]
    if missing:
        raise ValueError(f"{table}: no pairs of group(s) {', '.join(missing)}; the score is a mean over all 9 groups")
    labels = np.array([MMVP_GROUPS.index(g) for g in groups])
    return FileSet(FileImages(paths), captions, np.arange(len(paths)), labels, list(MMVP_GROUPS))
