import pytest

from raygap.spec import TrialConfig


def tiny_config(**sections) -> TrialConfig:
    """A trial small enough for unit tests: tiny ViT, small synthetic sets, a handful of steps."""
    raw = {
        "name": "test",
        "data": {
            "train": {"kind": "synthetic", "size": 512, "seed": 0},
            "eval": {"kind": "synthetic", "size": 128, "seed": 1, "captions_per_image": 2},
            "probe": {"train": {"kind": "synthetic", "size": 128, "seed": 2}, "test": {"kind": "synthetic", "size": 64, "seed": 3}},
        },
        "train": {"steps": 4, "batch_size": 32, "eval_interval": 2, "warmup_steps": 1, "seed": 0},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return TrialConfig.model_validate(raw)


@pytest.fixture
def tiny():
    return tiny_config


def pytest_sessionfinish(session, exitstatus):
    """Nothing a test started outlives the suite: a Ray driver still connected or a child process
    left running can crash the interpreter at exit and disturbs the next run. Such leftovers are
    stopped here and fail the session, naming them."""
    import psutil
    import ray

    leftovers = []
    if ray.is_initialized():
        ray.shutdown()
        leftovers.append("a Ray driver was still connected")
    # multiprocessing's resource tracker lives until the interpreter exits: it is not a test's.
    children = [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(_cmdline(p))]
    for child in children:
        leftovers.append(f"process {child.pid} still running: {' '.join(_cmdline(child))[:120]}")
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=10)
    if leftovers:
        print("\nleft running by the tests (now stopped):\n  " + "\n  ".join(leftovers))
        if session.exitstatus == 0:
            session.exitstatus = 1


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:
        return []
