"""Results folder: the Parquet contract between the engine and everything after it.

The only module that writes Parquet. Every write goes to a temporary file in the same folder and
is renamed over the target, so a crash leaves either the previous complete file or the new one.

- trials.parquet  — one row per (trial, seed): ids, `param.*` columns, status, error, final metrics
- history.parquet — one row per (trial, seed, evaluation point)
- spec.yaml       — the study file as run
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

TRIALS = "trials.parquet"
HISTORY = "history.parquet"
SPEC = "spec.yaml"
STATUSES = ("completed", "failed", "pruned")


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(path: Path, frame: pl.DataFrame, metadata: dict[str, str] | None = None) -> None:
    """Atomically write `frame`, with optional key/value metadata in the Parquet footer."""
    table = frame.to_arrow()
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
    _atomic_write(Path(path), lambda handle: pq.write_table(table, handle))


def write_text(path: Path, text: str) -> None:
    _atomic_write(Path(path), lambda handle: handle.write(text.encode()))


def append_rows(path: Path, rows: list[dict]) -> pl.DataFrame:
    """Append rows to a Parquet table (columns may differ: missing ones become null)."""
    path = Path(path)
    new = pl.DataFrame(rows, infer_schema_length=None)
    frame = pl.concat([pl.read_parquet(path), new], how="diagonal_relaxed") if path.exists() else new
    write_parquet(path, frame)
    return frame


def trial_row(
    trial_id: str,
    seed: int,
    params: dict,
    config: dict,
    status: str,
    metrics: dict | None = None,
    error: str | None = None,
) -> dict:
    """One trials.parquet row: searched parameters as `param.<path>`, the full config as JSON."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    row = {"trial_id": trial_id, "seed": seed, "status": status, "error": error}
    row.update({f"param.{k}": v for k, v in params.items()})
    row.update(metrics or {})
    row["config"] = json.dumps(config, sort_keys=True, default=str)
    return row


def history_rows(trial_id: str, seed: int, rows: list[dict]) -> list[dict]:
    return [{"trial_id": trial_id, "seed": seed, **row} for row in rows]


def read_trials(folder: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(folder) / TRIALS)


def read_history(folder: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(folder) / HISTORY)


def schema_of(path: str | Path) -> pa.Schema:
    return pq.read_schema(path)
