"""What seeds keep in a results folder beside their rows (the `artifacts` section): weights and
embeddings, written and listed through raygap.results.ResultsFolder (local or object store); and
the embeddings and measure rows `raygap measure` reads and writes. Pure: numpy and polars, no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.fs as pafs

from raygap.results import ARTIFACTS, ResultsFolder


def record_artifacts(
    folder: ResultsFolder,
    trial_id: str,
    seed: int,
    weights: bytes | None = None,
    embeddings: dict[str, np.ndarray] | None = None,
    shift: list[dict] | None = None,
) -> list[str]:
    """Write what a seed keeps: `weights` (a saved state dict, as bytes) as weights.pt and
    `embeddings` ({"image": (n, m), "text": (c, m), "caption_image": (c,)}) as embeddings.parquet
    and `shift` (rows of the shift curve) as shift.parquet,
    one row per embedding: modality, index, image_index (a caption's image; an image's own index),
    embedding (a fixed-size float32 list). Each file written atomically; returns their names."""
    base = f"{ARTIFACTS}/{trial_id}/seed{seed}"
    written = []
    if weights is not None:
        folder.write_bytes(f"{base}/weights.pt", weights)
        written.append(f"{base}/weights.pt")
    if embeddings is not None:
        image, text, owner = (np.asarray(embeddings[k]) for k in ("image", "text", "caption_image"))
        frame = pl.DataFrame(
            {
                "modality": ["image"] * len(image) + ["text"] * len(text),
                "index": np.concatenate([np.arange(len(image)), np.arange(len(text))]).astype(np.int32),
                "image_index": np.concatenate([np.arange(len(image)), owner]).astype(np.int32),
                "embedding": np.concatenate([image, text]).astype(np.float32),
            }
        )
        folder.write_parquet(f"{base}/embeddings.parquet", frame)
        written.append(f"{base}/embeddings.parquet")
    if shift is not None:
        folder.write_parquet(f"{base}/shift.parquet", pl.DataFrame(shift))
        written.append(f"{base}/shift.parquet")
    return written


def read_shift_curves(folder: ResultsFolder, trial_ids: list[str]) -> pl.DataFrame:
    """The kept shift curves (shift.parquet) of the given trials' seeds, with trial_id and seed
    columns; empty where none was kept."""
    frames = []
    for name, _ in list_artifacts(folder):
        parts = name.split("/")
        if len(parts) == 4 and parts[1] in trial_ids and parts[3] == "shift.parquet":
            seed = int(parts[2].removeprefix("seed"))
            frames.append(folder.read(name).with_columns(pl.lit(parts[1]).alias("trial_id"), pl.lit(seed).alias("seed")))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def list_artifacts(folder: ResultsFolder) -> list[tuple[str, int]]:
    """(name relative to the folder, bytes) of every kept artifact, sorted by name."""
    selector = pafs.FileSelector(f"{folder.path}/{ARTIFACTS}", allow_not_found=True, recursive=True)
    infos = [i for i in folder.filesystem.get_file_info(selector) if i.type == pafs.FileType.File and not i.base_name.startswith(".")]
    return sorted((i.path[len(folder.path) + 1 :], i.size) for i in infos)


def read_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (n, m), text (c, m), caption_image (c,)) from an embeddings.parquet as
    record_artifacts writes it; a ValueError names what the file lacks."""
    frame = pl.read_parquet(path)
    missing = [c for c in ("modality", "index", "image_index", "embedding") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: not an embeddings file: no column {', '.join(missing)} (expected modality, index, image_index, embedding)"
        )
    images = frame.filter(pl.col("modality") == "image").sort("index")
    texts = frame.filter(pl.col("modality") == "text").sort("index")
    if images.is_empty() or texts.is_empty():
        raise ValueError(f"{path}: needs rows of both modalities, found {images.height} image and {texts.height} text row(s)")
    image, text = (np.asarray(part["embedding"].to_list(), dtype=np.float32) for part in (images, texts))
    owner = texts["image_index"].to_numpy()
    if owner.min() < 0 or owner.max() >= len(image):
        raise ValueError(f"{path}: image_index of a text row must name one of the {len(image)} images")
    return image, text, owner


def write_measures(path: str | Path, rows: list[dict]) -> None:
    """Rows of measures as a Parquet file (atomically)."""
    path = Path(path)
    ResultsFolder(path.parent.absolute()).write_parquet(path.name, pl.DataFrame(rows))
