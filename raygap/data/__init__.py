"""Image–caption sets for training and evaluation: one module per source, one registry.

- sets: ImageTextSet (what training and evaluation read); index: FileSet (a file source's index)
- registry: kind → reader; load_source, read_file_source
- synthetic, files, coco, webdataset, labelled (+ arrays): the sources' readers
- file_sets, cache, images: decoding image files; bad_images: the skip/fail policy
- pipelines: how training batches reach the device
- checks: file-backed sources checked before a study starts

Names are imported on first use (PEP 562), so `from raygap.data import check_tables` in Tune's head
process reads file indexes without importing torch.
"""

from typing import TYPE_CHECKING

from raygap.lazy import lazy_names

# What mypy and editors see; at run time each name is imported on first use (_WHERE).
if TYPE_CHECKING:
    from raygap.data.bad_images import drop_unreadable
    from raygap.data.checks import check_tables
    from raygap.data.images import TensorImages
    from raygap.data.index import FileImages, FileSet, template_captions
    from raygap.data.pipelines import LoadedPairs, PairDataset, ResidentPairs, StreamedPairs, fits_on_device, keep_batch, training_batches
    from raygap.data.registry import SOURCES, load_file_source, load_source, read_file_source
    from raygap.data.sets import ImageTextSet, tokenize_unique

_WHERE = {
    "drop_unreadable": "raygap.data.bad_images",
    "check_tables": "raygap.data.checks",
    "TensorImages": "raygap.data.images",
    "FileImages": "raygap.data.index",
    "FileSet": "raygap.data.index",
    "template_captions": "raygap.data.index",
    "LoadedPairs": "raygap.data.pipelines",
    "PairDataset": "raygap.data.pipelines",
    "ResidentPairs": "raygap.data.pipelines",
    "StreamedPairs": "raygap.data.pipelines",
    "fits_on_device": "raygap.data.pipelines",
    "keep_batch": "raygap.data.pipelines",
    "training_batches": "raygap.data.pipelines",
    "SOURCES": "raygap.data.registry",
    "load_file_source": "raygap.data.registry",
    "load_source": "raygap.data.registry",
    "read_file_source": "raygap.data.registry",
    "ImageTextSet": "raygap.data.sets",
    "tokenize_unique": "raygap.data.sets",
}
__all__ = sorted(_WHERE)
# Submodules (`from raygap.data import synthetic`) import as usual: the import system falls back to
# them when __getattr__ has no such name.


__getattr__ = lazy_names("raygap.data", _WHERE)
