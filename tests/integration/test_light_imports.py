"""Modules that must stay light, imported in a fresh interpreter."""

import subprocess
import sys


def test_the_catalogue_imports_no_torch():
    code = "import sys, raygap.catalog, raygap.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
