"""The unit tests' rule, enforced: no Ray cluster and no subprocess (those tests live in
tests/integration). A test that starts either fails here, naming what it started."""

import subprocess

import pytest


class _NoSubprocess(subprocess.Popen):
    def __init__(self, args, *rest, **options):
        raise AssertionError(f"a unit test started a process ({args!r}); it belongs in tests/integration")


@pytest.fixture(autouse=True)
def _unit_rules(monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", _NoSubprocess)
    yield
    import sys

    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized(), "a unit test started Ray; it belongs in tests/integration"
