"""Checks of a trial's file-backed sources that run before any work starts (and not in a worker)."""

from __future__ import annotations

import sys

from raygap.data import cache
from raygap.data.registry import is_file_backed, read_file_source


def check_tables(cfg, file: str) -> None:
    """Read the index of every file-backed source of a trial now, so that a missing column, an
    empty table, an absent or unreadable image fails with the file and key before any work starts
    (and not inside a worker)."""
    from raygap.config import SpecError

    sources = {"data.train": cfg.data.train, "data.eval": cfg.data.eval}
    if cfg.data.probe is not None:
        sources.update({"data.probe.train": cfg.data.probe.train, "data.probe.test": cfg.data.probe.test})
    if cfg.data.mmvp is not None:
        sources["data.mmvp"] = cfg.data.mmvp
    for key, source in sources.items():
        if is_file_backed(source) and (why := cache.unusable(source.decoded_cache)):
            raise SpecError(f"{file}: {key}.decoded_cache: {why}")
        if is_file_backed(source):
            try:
                found = read_file_source(source)
            except ValueError as error:
                raise SpecError(f"{file}: {key}: {error}") from None
            if found.skipped:
                bad = found.skipped
                print(f"{file}: {key}: leaving out {len(bad)} unreadable image(s) (bad_images: skip), e.g. {bad[0]}", file=sys.stderr)
            if key.startswith("data.probe") and found.labels is None:
                raise SpecError(f"{file}: {key}: a probe split needs a class label per image; name the table's label column (label_column)")
            if key == "data.train" and cfg.theory is None and len(found.captions) < cfg.train.batch_size:
                raise SpecError(
                    f"{file}: train.batch_size: {cfg.train.batch_size} is larger than data.train, which holds {len(found.captions)} pairs"
                )
