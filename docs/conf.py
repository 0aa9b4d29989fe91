"""Sphinx configuration of raygap's docs (`make docs`: warnings are errors)."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))  # raygap_reference: the generated references
sys.path.insert(0, str(DOCS.parent))  # raygap itself, also from a checkout that was not installed

import raygap  # noqa: E402

project = "raygap"
author = "raygap"
release = raygap.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "raygap_reference",
]

source_suffix = {".md": "markdown"}
# reference/ is generated and included by study-file.md and metrics.md; _ext/ is code.
exclude_patterns = ["_build", "reference", "_ext"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

nitpicky = False

html_theme = "furo"
html_title = f"raygap {release}"
html_static_path: list[str] = []
