"""Atomic writes of local files that are not results (report pages and figures, bench JSON, the
cluster record): a temporary file beside the target, then a rename; a folder written whole
(a report) is staged beside its target and swapped in."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def unwritable(folder: str | Path) -> str | None:
    """Why files could not be written in `folder` (it, or the first existing folder above it where
    it would be made, is a file or not writable), or None. Tried, not read from permissions (root
    passes every permission check, not /proc or a read-only mount); leaves nothing behind."""
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".raygap-probe-", dir=existing))
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror})" + (f" to make {folder}" if existing != folder else "")
    return None


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
    """A matplotlib figure as a PNG (150 dpi), PDF or SVG by the path's suffix, written atomically."""
    buffer = io.BytesIO()
    kind = Path(path).suffix.lstrip(".").lower()
    # No creation date in a PDF/SVG: one report's files are the same bytes on a rerun.
    metadata = {"CreationDate": None} if kind == "pdf" else {"Date": None} if kind == "svg" else None
    figure.savefig(buffer, format=kind, dpi=150, bbox_inches="tight", metadata=metadata)
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
