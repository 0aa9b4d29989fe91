"""The bad-image policy of file-backed sources (`bad_images`): fail, or leave the images out."""

from __future__ import annotations

import numpy as np

from raygap.data.index import FileSet, unreadable


def drop_unreadable(found: FileSet, policy: str, where) -> FileSet:
    """Fail on images PIL cannot open, or (policy skip) leave them and their captions out."""
    bad = unreadable(found.images)
    if not bad:
        return found
    names = [found.images.paths[i] for i in bad]
    if policy == "fail":
        raise ValueError(
            f"{where}: {len(bad)} image file(s) cannot be read as images, e.g. {names[0]}; set bad_images: skip to leave them out"
        )
    if len(bad) == len(found.images):
        raise ValueError(f"{where}: none of its {len(bad)} image file(s) can be read as images")
    keep = np.setdiff1d(np.arange(len(found.images)), bad)
    new_index = np.full(len(found.images), -1)
    new_index[keep] = np.arange(len(keep))
    kept_captions = np.flatnonzero(new_index[found.caption_image] >= 0)
    labels, class_names = found.labels, found.class_names
    if labels is not None:  # classes that only the skipped images had go with them
        assert class_names is not None  # a file set has both or neither (raygap.data.files)
        present = np.unique(labels[keep])
        class_names = [class_names[c] for c in present]
        labels = np.searchsorted(present, labels[keep])
    return FileSet(
        images=found.images.subset(keep.tolist()),
        captions=[found.captions[i] for i in kept_captions],
        caption_image=new_index[found.caption_image[kept_captions]],
        labels=labels,
        class_names=class_names,
        skipped=names,
    )
