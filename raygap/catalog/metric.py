"""One metric's entry in the catalogue, and the texts several entries share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Metric:
    name: str
    better: Direction | None
    """Which way is better; None for a descriptive number with no better side (the temperature)."""
    label: str
    """Axis and table label."""
    description: str
    """What it means, in a sentence."""
    measured: str = ""
    """How it is measured; written into the Parquet footers of trials and history."""
    worst: float | None = None
    """The worst value it can take (the hypervolume's reference); None: the worst value seen."""
    table: bool = False
    """A column of the report's Table-2-style method table (the paper's Table 2)."""
    summarized: bool = False
    """Kept (seed mean and std) in pareto.parquet and the report's per-configuration summary."""
    default_objective: bool = False
    """One of a study's objectives when its file names none."""
    at_eval: bool = False
    """Measured at every evaluation point (a history.parquet column), not only at a seed's end."""


RECALL_MEASURED = (
    "image_to_text_r{k}: an image hits when any of its captions ranks in the top k; text_to_image_r{k}: "
    "the caption's image ranks in the top k; ties are broken at random and the expected recall is "
    "reported, so a collapsed model scores chance; NaN when every item would hit whatever the scores "
    "(k at least the number of candidates)"
)

# MMVP-VLM's visual-pattern groups (Tong et al., CVPR 2024), in the benchmark's order; each has a
# column mmvp_<group slug> beside their mean, mmvp_accuracy.
MMVP_GROUPS = (
    "Orientation and Direction",
    "Presence of Specific Features",
    "State and Condition",
    "Quantity and Count",
    "Positional and Relational Context",
    "Color and Appearance",
    "Structural Characteristics",
    "Texts",
    "Viewpoint and Perspective",
)
MMVP_MEASURED = (
    "pairs of images that differ in one visual pattern, each with the statement that describes it; a statement picks the "
    "image closer to its prompt 'a photo of <statement>' (cosine) and a pair counts when both pick their own image, as the "
    "benchmark scores it; a tie between the two images is broken at random (the expected score: collapsed features score "
    "the chance 0.25 where the benchmark's script would give the tie to the second image); a group's accuracy is over its pairs"
)


def mmvp_column(group: str) -> str:
    """The trials.parquet column of one MMVP-VLM group: 'Color and Appearance' → mmvp_color_and_appearance."""
    return "mmvp_" + "_".join(group.lower().split())
