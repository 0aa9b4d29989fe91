"""Atomic writes of local files that are not results (report pages and figures, bench JSON, the
cluster record): a temporary file beside the target, then a rename."""

from __future__ import annotations

import io
import os
import uuid
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
