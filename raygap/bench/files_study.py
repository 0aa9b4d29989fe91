"""Part 11: a study on image files against the same study on the same images held in memory.

The image set is real: scikit-learn's handwritten digits (training split, 1,437 images), brought
to the model's size and written as PNG files with a table of captions. The in-memory study reads
the same pixels through the `digits` source. A third study decodes the PNGs every epoch
(`decoded_cache: off`), how image files trained before the decoded copy was the default.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from raygap.bench.common import BenchSize, study_spec, trial_raw
from raygap.config import BUILTIN_MODELS, DigitsSource, StudySpec

TEMPLATE = DigitsSource().template  # the digits source's captions


def write_digit_files(folder: Path, image_size: int) -> tuple[Path, int]:
    """The digits training split at `image_size` px as PNGs (lossless: the same pixels the digits
    source holds) and a files table of path, caption and label; the table and the image count."""
    from PIL import Image

    from raygap.data.arrays import resized
    from raygap.data.labelled import read_digits

    pixels, labels, _ = read_digits(None, "train")
    pixels = resized(pixels, image_size)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(zip(pixels, labels)):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:05d}.png")
        rows.append(f"{i:05d}.png,{TEMPLATE.format(label=label)},{label}\n")
    table = folder / "pairs.csv"
    table.write_text("filepath,title,label\n" + "".join(rows))
    return table, len(rows)


def files_study_spec(size: BenchSize, train_source: dict, name: str) -> StudySpec:
    """A grid over the fixed temperature, trained on `train_source`, evaluated on the digits test split."""
    trials, steps = size["files_study_trials"], size["files_study_steps"]
    raw = trial_raw(size, steps, 256)
    raw["data"] = {"train": train_source, "eval": {"kind": "digits", "split": "test"}, "probe": None}
    raw.update(
        name=name,
        temperature={"kind": "fixed", "value": {"grid": [round(0.02 * 1.5**i, 4) for i in range(trials)]}},
        search={"sampler": "grid", "trials": trials, "objectives": {"modality_gap": "min", "mean_r1": "max"}},
    )
    return study_spec(raw)


def run_one(spec: StudySpec, scratch: Path, echo) -> dict:
    """Run the study; its pace is the training samples of all trials over the window from the
    first trial's start to the last result on the head (the cluster's start left out, the same
    for every variant)."""
    import polars as pl

    from raygap import study
    from raygap.results import TRIALS, ResultsFolder

    folder = ResultsFolder(scratch / spec.raw["name"])
    started = time.time()
    study.run_study(spec, folder, echo=lambda line: echo("    " + line), dashboard=False)
    wall = time.time() - started
    rows = folder.read(TRIALS).filter(pl.col("status") == "completed")
    window = float(rows.select(pl.col("recorded_at").max() - pl.col("trial_started_at").min()).item())
    samples = int(rows["steps"].sum()) * spec.raw["train"]["batch_size"]
    return {
        "trials": rows.height,
        "study_wall_s": wall,
        "window_s": window,
        "samples_per_s": samples / window,
        "median_trial_samples_per_s": float(rows.select(pl.col("samples_per_s").median()).item()),
    }


def files_study_speed(size: BenchSize, echo) -> dict:
    """`rounds` alternating pairs of the in-memory and the files study, then one study decoding the
    files every epoch. files / memory is the median over rounds of the pace ratio (target ≥ 0.9)."""
    image_size = BUILTIN_MODELS[size["model"]]["vision_cfg"]["image_size"]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        table, images = write_digit_files(scratch / "digits", image_size)
        files = {"kind": "files", "table": str(table), "label_column": "label", "decoded_cache": str(scratch / "decoded")}
        variants = {"memory": {"kind": "digits", "split": "train"}, "files": files}
        runs: dict[str, list[dict]] = {"memory": [], "files": []}
        for round_ in range(size["files_study_rounds"]):
            for variant, source in variants.items():
                echo(f"  round {round_ + 1}: {variant}")
                runs[variant].append(run_one(files_study_spec(size, source, f"digits-{variant}-{round_}"), scratch, echo))
        echo("  files decoded every epoch (decoded_cache: off)")
        every_epoch = run_one(files_study_spec(size, {**files, "decoded_cache": False}, "digits-every-epoch"), scratch, echo)
    ratios = [f["samples_per_s"] / m["samples_per_s"] for f, m in zip(runs["files"], runs["memory"])]
    memory_pace = statistics.median(r["samples_per_s"] for r in runs["memory"])
    return {
        "images": images,
        "image_size": image_size,
        "trials": size["files_study_trials"],
        "steps": size["files_study_steps"],
        "rounds": [{"memory": m, "files": f} for m, f in zip(runs["memory"], runs["files"])],
        "every_epoch": every_epoch,
        "files_over_memory": statistics.median(ratios),
        "files_over_memory_min": min(ratios),
        "files_over_memory_max": max(ratios),
        "every_epoch_over_memory": every_epoch["samples_per_s"] / memory_pace,
    }
