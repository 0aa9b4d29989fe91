"""The unit tests' rule, enforced: no Ray cluster and no subprocess (those tests live in
tests/integration). A test that starts either fails here, naming what it started."""

import subprocess

import pytest

LIBRARY_PROBES = {"ldconfig"}  # ctypes.util.find_library asks it where a shared library is (an import, not a test's process)


class _NoSubprocess(subprocess.Popen):
    def __init__(self, args, *rest, **options):
        program = args[0] if isinstance(args, (list, tuple)) else str(args).split()[0]
        if str(program).rsplit("/", 1)[-1] not in LIBRARY_PROBES:
            raise AssertionError(f"a unit test started a process ({args!r}); it belongs in tests/integration")
        super().__init__(args, *rest, **options)


@pytest.fixture(autouse=True)
def _unit_rules(monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", _NoSubprocess)
    yield
    import sys

    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized(), "a unit test started Ray; it belongs in tests/integration"
