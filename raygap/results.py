"""Results folder: the Parquet contract between the engine and everything after it.

The only module that writes Parquet. A results folder is a local path or any URI that pyarrow's
filesystems take (file://, s3://, gs://, hdfs://…). A crash leaves the previous complete file or the
new one: on disks a file is written beside its target and renamed over it; an object store (s3://,
gs://) shows an object only once its upload completes, so there it is written in place.

- trials.parquet  — one row per (trial, seed): ids, `param.*` columns, status, error, final metrics
- history.parquet — one row per (trial, seed, evaluation point)
  Both grow by parts while a study runs (trials/, history/: one per seed, written once under a
  unique name) that compaction folds in; the compacted file's footer names the parts it holds, so
  a crash between writing it and deleting them never counts a row twice (docs/results.md).
- pareto.parquet  — one row per configuration: seed means/stds and its Pareto rank (1 = the front)
- spec.yaml / run.yaml — the study file as run; when and where it ran
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raygap.seed_record import SeedRecord

TRIALS = "trials.parquet"
HISTORY = "history.parquet"
PARETO = "pareto.parquet"
SPEC = "spec.yaml"
RUN = "run.yaml"
ARTIFACTS = "artifacts"  # artifacts/<trial id>/seed<n>/weights.pt and embeddings.parquet (the artifacts section)
RUNNING = "running.json"  # the running trials' latest evaluation points, rewritten while a study runs
STATUSES = ("completed", "failed", "pruned")
DATASETS = (TRIALS, HISTORY)  # a compacted file and its parts folder each
COMPACTED_PARTS = "raygap.compacted_parts"  # footer key: the part files a compacted file holds
OBJECT_STORES = ("s3", "gcs")  # no rename, but an object appears whole when its upload completes


class UnusableFolder(ValueError):
    """A results folder that cannot be opened, written or read (its location and why)."""


class ResultsFolder:
    """A results folder on a local disk or behind a URI."""

    def __init__(self, location: str | Path):
        text = str(location)
        if "://" in text:
            try:
                self.filesystem, self.path = pafs.FileSystem.from_uri(text)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise UnusableFolder(
                    f"{text}: {error}; expected a local folder or a URI pyarrow opens (s3://, gs://, hdfs://, file://)"
                ) from None
            self.location = text.rstrip("/")
        else:
            self.filesystem, self.path = pafs.LocalFileSystem(), str(Path(text).resolve())
            self.location = self.path
        self.is_local = isinstance(self.filesystem, pafs.LocalFileSystem)
        self.is_object_store = self.filesystem.type_name in OBJECT_STORES

    def __str__(self) -> str:
        return self.location

    def _file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def exists(self, name: str) -> bool:
        if name in DATASETS and self._parts(name):
            return True
        return self.filesystem.get_file_info(self._file(name)).type == pafs.FileType.File

    def _parts(self, name: str) -> list[str]:
        """Base names of the dataset's part files, oldest first (their names start with a clock)."""
        selector = pafs.FileSelector(self._file(parts_folder(name)), allow_not_found=True)
        names = [i.base_name for i in self.filesystem.get_file_info(selector) if i.type == pafs.FileType.File]
        return sorted(n for n in names if n.endswith(".parquet") and not n.startswith("."))

    def remove(self, *names: str) -> None:
        names = tuple(names) + tuple(parts_folder(n) for n in names if n in DATASETS)
        for name in names:
            info = self.filesystem.get_file_info(self._file(name))
            if info.type == pafs.FileType.File:
                self.filesystem.delete_file(info.path)
            elif info.type == pafs.FileType.Directory:
                self.filesystem.delete_dir(info.path)

    def _atomic_write(self, name: str, write) -> None:
        if self.is_object_store:  # one upload, no temporary: a reader sees the old object or the new
            with self.filesystem.open_output_stream(self._file(name)) as stream:
                write(stream)
            return
        folder, _, base = name.rpartition("/")
        self.filesystem.create_dir(self._file(folder) if folder else self.path, recursive=True)
        tmp = self._file(f"{folder + '/' if folder else ''}.{base}.{uuid.uuid4().hex}.tmp")
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
        stale = []
        for folder in (self.path, *(self._file(parts_folder(n)) for n in DATASETS)):
            infos = self.filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
            stale += [i.path for i in infos if i.base_name.startswith(".") and i.base_name.endswith(".tmp")]
        for path in stale:
            self.filesystem.delete_file(path)
        return len(stale)

    def write_parquet(self, name: str, frame: pl.DataFrame, metadata: dict[str, str] | None = None, parts: list[str] | None = None) -> None:
        """Atomically write `frame` with optional footer metadata. For a dataset, `frame` replaces the
        file and `parts` (default: all there now; pass what `read_parts` covered): named, then deleted."""
        parts = (self._parts(name) if parts is None else parts) if name in DATASETS else []
        if name in DATASETS:
            metadata = {**(metadata or {}), COMPACTED_PARTS: json.dumps(parts)}
        table = frame.to_arrow()
        if metadata:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
        self._atomic_write(name, lambda stream: pq.write_table(table, stream))
        for part in parts:
            self.filesystem.delete_file(self._file(f"{parts_folder(name)}/{part}"))

    def remove_empty_parts_folders(self) -> None:
        """Drop the parts folders compaction emptied (only when no writer runs)."""
        for name in DATASETS:
            folder = self._file(parts_folder(name))
            info = self.filesystem.get_file_info(folder)
            if info.type == pafs.FileType.Directory and not self.filesystem.get_file_info(pafs.FileSelector(folder)):
                self.filesystem.delete_dir(folder)

    def compact(self, name: str) -> int:
        """Fold a dataset's parts into its file (the single writer only); returns the parts folded."""
        if not self._parts(name):
            return 0
        frame, metadata, parts = self.read_parts(name)
        self.write_parquet(name, frame, metadata, parts)
        return len(parts)

    def write_bytes(self, name: str, data: bytes) -> None:
        self._atomic_write(name, lambda stream: stream.write(data))

    def write_text(self, name: str, text: str) -> None:
        self._atomic_write(name, lambda stream: stream.write(text.encode()))

    def read_text(self, name: str) -> str:
        with self.filesystem.open_input_stream(self._file(name)) as stream:
            return stream.read().decode()

    def _read_file(self, name: str) -> pl.DataFrame:
        with self.filesystem.open_input_file(self._file(name)) as handle:
            frame = pl.from_arrow(_read_table(handle, self.uri(name)))
        assert isinstance(frame, pl.DataFrame)  # a table, never a single column
        return frame

    def read(self, name: str) -> pl.DataFrame:
        """A file as a frame; a dataset as its compacted file and the parts it does not hold yet."""
        return self._read_file(name) if name not in DATASETS else self.read_parts(name)[0]

    def read_parts(self, name: str, attempts: int = 3) -> tuple[pl.DataFrame, dict[str, str], list[str]]:
        """A dataset as one frame, its compacted file's footer and the part files it covers. The parts
        are listed before the file is opened (footer and rows through one handle): a compaction
        meanwhile leaves each row counted once, and one that deletes a listed part starts the read
        again."""
        for _ in range(attempts - 1):
            try:
                return self._read_dataset(name)
            except FileNotFoundError:
                continue
        return self._read_dataset(name)

    def _read_dataset(self, name: str) -> tuple[pl.DataFrame, dict[str, str], list[str]]:
        listed = self._parts(name)
        frames: list[pl.DataFrame] = []
        held: set[str] = set()
        footer: dict[str, str] = {}
        if self.filesystem.get_file_info(self._file(name)).type == pafs.FileType.File:
            with self.filesystem.open_input_file(self._file(name)) as handle:
                table = _read_table(handle, self.uri(name))
            footer = _footer(table.schema)
            held = set(json.loads(footer.get(COMPACTED_PARTS, "[]")))
            compacted = pl.from_arrow(table)
            assert isinstance(compacted, pl.DataFrame)
            frames.append(compacted)
        frames += [self._read_file(f"{parts_folder(name)}/{part}") for part in listed if part not in held]
        if not frames:
            raise FileNotFoundError(self._file(name))
        if not footer and listed:  # no compacted file yet: the notes on the metrics are in the parts' footers
            footer = _footer(self.schema(name))
        frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        return frame, footer, listed  # every listed part is in `frame`: read, or held by the compacted file

    def schema(self, name: str) -> pa.Schema:
        """The Parquet schema and footer; a dataset's from its file, else its oldest part."""
        if name in DATASETS and self.filesystem.get_file_info(self._file(name)).type != pafs.FileType.File:
            name = f"{parts_folder(name)}/{self._parts(name)[0]}"
        with self.filesystem.open_input_file(self._file(name)) as handle:
            return pq.read_schema(handle)

    def append(self, name: str, rows: list[dict], metadata: dict[str, str] | None = None) -> None:
        """Add rows to a dataset as a new part (columns may differ between parts: missing ones read
        as null). Costs the same whatever the dataset holds."""
        if name not in DATASETS:
            raise ValueError(f"only {', '.join(DATASETS)} grow by parts, not {name}")
        table = pl.DataFrame(rows, infer_schema_length=None).to_arrow()
        if metadata:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
        part = f"{parts_folder(name)}/part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        self._atomic_write(part, lambda stream: pq.write_table(table, stream))  # written once, under a unique name

    def uri(self, name: str) -> str:
        """Where `name` lives, as something Ray or a person can use."""
        return f"{self.location}/{name}"


def _read_table(handle, where: str) -> pa.Table:
    try:
        return pq.read_table(handle)
    except pa.ArrowInvalid as error:  # cut short by a full disk or a copy, or not Parquet at all
        raise UnusableFolder(
            f"{where}: not a readable Parquet file ({error}); move it out of the folder, then run "
            "`raygap study status` to see what the study lost"
        ) from None


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


def _footer(schema: pa.Schema) -> dict[str, str]:
    """A Parquet footer's key/value metadata, without Arrow's own schema entry."""
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items() if not k.startswith(b"ARROW")}


def parts_folder(name: str) -> str:
    """trials.parquet → trials: where the dataset's parts live."""
    return name.removesuffix(".parquet")


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


def record_seed(folder: ResultsFolder, record: SeedRecord) -> dict:
    """The seed's row as a new part of trials, its evaluation points as one of history, with the
    catalogue's notes on how each metric was measured in the footers; returns the row."""
    from raygap.catalog import MEASURED

    row = trial_row(record.trial_id, record.seed, record.params, record.config, record.status, record.final, record.error)
    folder.append(TRIALS, [row], MEASURED)
    if record.history:
        folder.append(HISTORY, history_rows(record.trial_id, record.seed, record.history), MEASURED)
    return row


def history_rows(trial_id: str, seed: int, rows: list[dict]) -> list[dict]:
    return [{"trial_id": trial_id, "seed": seed, **row} for row in rows]
