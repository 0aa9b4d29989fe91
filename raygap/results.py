"""Results folder: the Parquet contract between the engine and everything after it.

The only module that writes Parquet. A results folder is a local path or any URI that pyarrow's
filesystems take (file://, s3://, gs://, hdfs://…), so a multi-node cluster can write to shared
storage. Every write goes to a temporary file beside its target and is then moved over it, so a
crash leaves either the previous complete file or the new one (atomic on local disks).

- trials.parquet  — one row per (trial, seed): ids, `param.*` columns, status, error, final metrics
- history.parquet — one row per (trial, seed, evaluation point)
- pareto.parquet  — one row per configuration: seed means/stds and its Pareto rank (1 = the front)
- spec.yaml       — the study file as run
- run.yaml        — when and where it ran (cluster resources, resource plan, versions)
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

TRIALS = "trials.parquet"
HISTORY = "history.parquet"
PARETO = "pareto.parquet"
SPEC = "spec.yaml"
RUN = "run.yaml"
STATUSES = ("completed", "failed", "pruned")


class ResultsFolder:
    """A results folder on a local disk or behind a URI."""

    def __init__(self, location: str | Path):
        text = str(location)
        if "://" in text:
            self.filesystem, self.path = pafs.FileSystem.from_uri(text)
            self.location = text.rstrip("/")
        else:
            self.filesystem, self.path = pafs.LocalFileSystem(), str(Path(text).resolve())
            self.location = self.path
        self.is_local = isinstance(self.filesystem, pafs.LocalFileSystem)

    def __str__(self) -> str:
        return self.location

    def _file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def exists(self, name: str) -> bool:
        return self.filesystem.get_file_info(self._file(name)).type == pafs.FileType.File

    def remove(self, *names: str) -> None:
        for name in names:
            info = self.filesystem.get_file_info(self._file(name))
            if info.type == pafs.FileType.File:
                self.filesystem.delete_file(info.path)
            elif info.type == pafs.FileType.Directory:
                self.filesystem.delete_dir(info.path)

    def _atomic_write(self, name: str, write) -> None:
        self.filesystem.create_dir(self.path, recursive=True)
        tmp = self._file(f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            with self.filesystem.open_output_stream(tmp) as stream:
                write(stream)
            self.filesystem.move(tmp, self._file(name))
        except BaseException:
            if self.filesystem.get_file_info(tmp).type == pafs.FileType.File:
                self.filesystem.delete_file(tmp)
            raise

    def sweep_temporaries(self) -> int:
        """Delete temporary files a killed writer left (a SIGKILL leaves no time to clean up); call
        only when no writer runs, as a study does before it starts its single writer."""
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        stale = [i.path for i in self.filesystem.get_file_info(selector) if i.base_name.startswith(".") and i.base_name.endswith(".tmp")]
        for path in stale:
            self.filesystem.delete_file(path)
        return len(stale)

    def write_parquet(self, name: str, frame: pl.DataFrame, metadata: dict[str, str] | None = None) -> None:
        """Atomically write `frame`, with optional key/value metadata in the Parquet footer."""
        table = frame.to_arrow()
        if metadata:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
        self._atomic_write(name, lambda stream: pq.write_table(table, stream))

    def write_text(self, name: str, text: str) -> None:
        self._atomic_write(name, lambda stream: stream.write(text.encode()))

    def read_text(self, name: str) -> str:
        with self.filesystem.open_input_stream(self._file(name)) as stream:
            return stream.read().decode()

    def read(self, name: str) -> pl.DataFrame:
        with self.filesystem.open_input_file(self._file(name)) as handle:
            frame = pl.from_arrow(pq.read_table(handle))
        assert isinstance(frame, pl.DataFrame)  # a table, never a single column
        return frame

    def schema(self, name: str) -> pa.Schema:
        with self.filesystem.open_input_file(self._file(name)) as handle:
            return pq.read_schema(handle)

    def append(self, name: str, rows: list[dict], metadata: dict[str, str] | None = None) -> pl.DataFrame:
        """Append rows to a Parquet table (columns may differ: missing ones become null)."""
        new = pl.DataFrame(rows, infer_schema_length=None)
        frame = pl.concat([self.read(name), new], how="diagonal_relaxed") if self.exists(name) else new
        self.write_parquet(name, frame, metadata)
        return frame

    def uri(self, name: str) -> str:
        """Where `name` lives, as something Ray or a person can use."""
        return f"{self.location}/{name}"


@dataclass
class StudyResults:
    """A study folder as polars frames (empty where a file is not there yet) and its spec."""

    location: str
    spec: dict
    """spec.yaml: the study file as run."""
    trials: pl.DataFrame
    history: pl.DataFrame
    pareto: pl.DataFrame
    run: dict
    """run.yaml: when and where it ran."""


def read_study(location: str | Path) -> StudyResults:
    """Read a results folder (a path or a URI) that holds a study."""
    import yaml

    folder = ResultsFolder(location)
    if not folder.exists(TRIALS):
        raise FileNotFoundError(f"{folder}: no {TRIALS}; is this a raygap results folder?")

    def frame(name: str) -> pl.DataFrame:
        return folder.read(name) if folder.exists(name) else pl.DataFrame()

    def mapping(name: str) -> dict:
        return (yaml.safe_load(folder.read_text(name)) or {}) if folder.exists(name) else {}

    return StudyResults(str(folder), mapping(SPEC), frame(TRIALS), frame(HISTORY), frame(PARETO), mapping(RUN))


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


def record_seed(
    folder: ResultsFolder,
    trial_id: str,
    seed: int,
    params: dict,
    config: dict,
    status: str,
    final: dict | None = None,
    error: str | None = None,
    history: list[dict] | None = None,
) -> None:
    """Append one seed's row to trials.parquet and its evaluation points to history.parquet, with
    the catalogue's notes on how each metric was measured in the footers."""
    from raygap.catalog import MEASURED

    folder.append(TRIALS, [trial_row(trial_id, seed, params, config, status, final, error)], MEASURED)
    if history:
        folder.append(HISTORY, history_rows(trial_id, seed, history), MEASURED)


def history_rows(trial_id: str, seed: int, rows: list[dict]) -> list[dict]:
    return [{"trial_id": trial_id, "seed": seed, **row} for row in rows]


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
