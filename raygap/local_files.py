"""Atomic writes of local files that are not results (report pages and figures, bench JSON, the
cluster record): a temporary file beside the target, then a rename; a folder written whole
(a report) is staged beside its target and swapped in."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def write_local_bytes(path: str | Path, data: bytes) -> None:
    """Atomically write a local file (a report page or figure): a temporary file, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_local_text(path: str | Path, text: str) -> None:
    write_local_bytes(path, text.encode())


def write_figure(path: str | Path, figure) -> None:
    """A matplotlib figure as a PNG, written atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    write_local_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """A hidden folder beside `target` to write into; when the block ends normally it replaces
    `target` (the old one moved aside, then removed), and on any error or Ctrl-C it is removed, so
    `target` is either the old folder or the new one whole, never a part of one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.writing")
    staging.mkdir()
    try:
        yield staging
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
