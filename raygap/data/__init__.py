"""Image–caption sets for training and evaluation: one module per source, one registry.

- sets: ImageTextSet (what training and evaluation read), FileSet (a file source's index)
- registry: kind → reader; load_source, read_file_source
- synthetic, files, coco, webdataset, labelled (+ arrays): the sources' readers
- file_sets, cache, images: decoding image files; bad_images: the skip/fail policy
- pipelines: how training batches reach the device
- checks: file-backed sources checked before a study starts
"""

from raygap.data import synthetic
from raygap.data.bad_images import drop_unreadable
from raygap.data.checks import check_tables
from raygap.data.images import FileImages, TensorImages
from raygap.data.pipelines import LoadedPairs, PairDataset, ResidentPairs, StreamedPairs, fits_on_device, keep_batch, training_batches
from raygap.data.registry import SOURCES, load_file_source, load_source, read_file_source
from raygap.data.sets import FileSet, ImageTextSet, template_captions, tokenize_unique

__all__ = [
    "SOURCES",
    "FileImages",
    "FileSet",
    "ImageTextSet",
    "LoadedPairs",
    "PairDataset",
    "ResidentPairs",
    "StreamedPairs",
    "TensorImages",
    "check_tables",
    "drop_unreadable",
    "fits_on_device",
    "keep_batch",
    "load_file_source",
    "load_source",
    "read_file_source",
    "synthetic",
    "template_captions",
    "tokenize_unique",
    "training_batches",
]
