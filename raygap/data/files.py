"""Image–caption tables on disk: CSV, TSV or Parquet with an image-path and a caption column.

open_clip's CSV layout (columns `filepath` and `title`) works as it is. Rows that name the same
image are grouped: the image is stored once and each row's caption points at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from raygap.data.index import FileImages, FileSet


@dataclass
class Table:
    image_paths: list[str]
    captions: list[str]
    caption_image: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None


def read_table(source) -> Table:
    """Read and group a `files` source. Errors name the table and the missing column or file."""
    import polars as pl

    path = Path(source.table)
    frame = _read_frame(path, source.separator)
    if source.limit is not None:
        frame = frame.head(source.limit)
    # A labelled table (a probe split) needs no caption column: its captions are the template.
    captioned = source.caption_column in frame.columns or not source.label_column
    wanted = [source.image_column] + ([source.caption_column] if captioned else []) + ([source.label_column] if source.label_column else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; the table has {frame.columns}")
    if frame.height == 0:
        raise ValueError(f"{path}: the table has no rows")

    _refuse_empty_cells(frame, wanted, path)
    root = Path(source.root) if source.root is not None else path.parent
    names = frame[source.image_column].cast(pl.Utf8)
    resolved = {
        name: str(_inside_root(root, name, source.allow_outside_root, path)) for name in names.unique(maintain_order=True).to_list()
    }
    absent = [p for p in resolved.values() if not Path(p).is_file()]
    if absent:
        raise ValueError(f"{path}: {len(absent)} image file(s) not found, e.g. {absent[0]}")
    raw_paths = frame[source.image_column].cast(pl.Utf8).to_list()
    image_paths: list[str] = []
    caption_image: list[int] = []
    first_row: dict[str, int] = {}
    for name in raw_paths:
        if name not in first_row:
            first_row[name] = len(image_paths)
            image_paths.append(resolved[name])
        caption_image.append(first_row[name])

    labels = class_names = None
    if source.label_column:
        per_image: dict[int, str] = {}
        for name, label in zip(raw_paths, frame[source.label_column].cast(pl.Utf8).to_list()):
            per_image.setdefault(first_row[name], label)
        class_names = sorted(set(per_image.values()))
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[per_image[i]] for i in range(len(image_paths))])
    if captioned:
        captions = frame[source.caption_column].cast(pl.Utf8).to_list()
    else:
        captions = [source.template.format(label=label) for label in frame[source.label_column].cast(pl.Utf8).to_list()]
    return Table(
        image_paths=image_paths,
        captions=captions,
        caption_image=np.array(caption_image),
        labels=labels,
        class_names=class_names,
    )


def _read_frame(path: Path, separator: str | None):
    """The table as strings; a file polars cannot read is a ValueError naming it and what was expected."""
    import polars as pl

    parquet = path.suffix.lower() == ".parquet"
    try:
        if parquet:
            return pl.read_parquet(path)
        return pl.read_csv(path, separator=separator or ("\t" if path.suffix.lower() == ".tsv" else ","), infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as error:  # polars' own message names no file
        expected = "a Parquet file" if parquet else 'UTF-8 text with a header row, cells quoted with " where they hold the separator'
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: cannot read the table ({reason}); expected {expected}") from None


def _refuse_empty_cells(frame, columns: list[str], path: Path) -> None:
    """An empty image or caption cell would fail later with no file or row named."""
    import polars as pl

    for column in columns:
        empty = frame.with_row_index("row").filter(pl.col(column).cast(pl.Utf8).str.strip_chars().fill_null("") == "")
        if empty.height:
            rows = ", ".join(str(r + 1) for r in empty["row"].head(5).to_list())
            raise ValueError(
                f"{path}: column {column!r} is empty in {empty.height} data row(s) ({rows}{', …' if empty.height > 5 else ''})"
            )


def read_set(source) -> FileSet:
    """A `files` source's index, images not yet decoded."""
    table = read_table(source)
    return FileSet(FileImages(table.image_paths), table.captions, table.caption_image, table.labels, table.class_names)


def _inside_root(root: Path, name: str, allowed: bool, table: Path) -> Path:
    """A table's image path, which must stay under the root (a shared table cannot point a
    trial at /etc or ../../) unless the source sets allow_outside_root."""
    full = (root / name).resolve()
    if not allowed and not full.is_relative_to(root.resolve()):
        raise ValueError(f"{table}: image path {name!r} leads outside the root folder {root}; set allow_outside_root: true to allow it")
    return full
