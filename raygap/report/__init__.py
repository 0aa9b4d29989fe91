"""`raygap report`: study folders → a static page (index.html), each figure as PNG, PDF and SVG, and report.md.

Reads nothing but results folders. The arrows run one way: `studies` (and `explore`, `correlation`,
`rates`, `beside_paper`, `hypervolume`) computes every figure's numbers (Parquet → polars frames, each tested on
its own), `figures` draws them (matplotlib), `page`
writes the files.
"""

from raygap.report.comparison import comparison_notes, method_table, paired_differences, study_settings
from raygap.report.hypervolume import hypervolume_progress, hypervolume_reference
from raygap.report.page import table_cells, write_report
from raygap.report.rates import fit_notes
from raygap.report.studies import (
    Study,
    configurations,
    dynamics,
    front_panels,
    front_trial_ids,
    header,
    load_study,
    log_power_fit,
    parameter_effects,
    shift_curves,
    stopped_early,
)

__all__ = [
    "Study",
    "comparison_notes",
    "configurations",
    "dynamics",
    "fit_notes",
    "front_panels",
    "front_trial_ids",
    "header",
    "hypervolume_progress",
    "hypervolume_reference",
    "load_study",
    "log_power_fit",
    "method_table",
    "paired_differences",
    "parameter_effects",
    "shift_curves",
    "stopped_early",
    "study_settings",
    "table_cells",
    "write_report",
]
