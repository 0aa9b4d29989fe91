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
            if key == "data.eval" and (warning := shared_captions(found)):
                print(f"{file}: {key}: warning: {warning}", file=sys.stderr)
            if key.startswith("data.probe") and found.labels is None:
                raise SpecError(f"{file}: {key}: a probe split needs a class label per image; name the table's label column (label_column)")
            if key == "data.train" and cfg.theory is None and len(found.captions) < cfg.train.batch_size:
                raise SpecError(
                    f"{file}: train.batch_size: {cfg.train.batch_size} is larger than data.train, which holds {len(found.captions)} pairs"
                )


def shared_captions(found) -> str | None:
    """What to say of an eval split in which different images share a caption (compared after
    trimming spaces and case), or None. Retrieval cannot tell such images apart: their captions
    embed identically, so which image ranks first is a near-tie that the smallest change of the
    image embeddings (another batch size, another machine) can flip, and R@1 moves with it."""
    owners: dict[str, set[int]] = {}
    for caption, image in zip(found.captions, found.caption_image.tolist()):
        owners.setdefault(" ".join(caption.split()).casefold(), set()).add(image)
    shared = [images for images in owners.values() if len(images) > 1]
    if not shared:
        return None
    images = len(set().union(*shared))
    total = len(set(found.caption_image.tolist()))
    return (
        f"{images} of {total} images share a caption with another image ({len(shared)} caption(s) shared, "
        f"{len(owners)} distinct in all): retrieval cannot tell them apart, and R@1 on them rests on near-ties "
        "that rounding can flip; deduplicate the eval split, or compare R@1 only between runs of one setup"
    )
