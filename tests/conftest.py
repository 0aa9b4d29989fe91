import glob
import os
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image

from raygap.config import TrialConfig

# Image files use a decoded copy in the per-user cache folder by default, and torch.compile keeps
# its kernels in a cache folder too: the suite's go to a folder of its own (inherited by the Ray
# processes it starts), removed when it ends. Its name carries this process's id, so that the end
# of the session finds the folder of a second copy of this file (one imported as a module).
# Tests take the helpers below as fixtures and never import this file.
CACHES_PREFIX = f"raygap-test-caches-{os.getpid()}-"
SUITE_CACHES = tempfile.mkdtemp(prefix=CACHES_PREFIX)
os.environ["RAYGAP_CACHE_DIR"] = os.path.join(SUITE_CACHES, "decoded")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(SUITE_CACHES, "inductor")

NO_CPP_COMPILER = not any(shutil.which(c) for c in ("g++", "c++", "clang++"))  # torch.compile on a CPU needs one


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


# Broken study files and the message each must give after "<file>: " (the spec tests and the
# bad-input tests through the command line both walk them: a test that takes `broken`).
BROKEN = [
    ("temperature: {kind: fixed, valu: 0.04}", "temperature.valu: unknown key; expected one of kind, value (did you mean 'value'?)"),
    (
        "trian: {steps: 3}",
        "trian: unknown key; expected one of artifacts, data, eval, loss, model, name, resources, results, search, swap, "
        "temperature, theory, tracking, train (did you mean 'train'?)",
    ),
    ("train: {batch_size: lots}", "train.batch_size: Input should be a valid integer, unable to parse string as an integer (got 'lots')"),
    ("temperature: {kind: fixed, value: 0}", "temperature.value: Input should be greater than 0 (got 0)"),
    ("temperature: {kind: learned, init: -0.07}", "temperature.init: Input should be greater than 0 (got -0.07)"),
    ("swap: {kind: hard, p: 1.5}", "swap.p: Input should be less than or equal to 1 (got 1.5)"),
    (
        "data: {train: {kind: synthetic, caption_noise: -0.1}}",
        "data.train.caption_noise: Input should be greater than or equal to 0 (got -0.1)",
    ),
    ("temperature: {kind: schedule, start: 0.01}", "temperature.end: required key is missing"),
    ("temperature: {kind: exp_k}", "temperature.k: required key is missing"),
    ("temperature: {kind: fixd, value: 1}", "temperature: Input tag 'fixd' found using 'kind' does not match any of the expected tags"),
    ("data: {train: {kind: files, table: /nowhere/pairs.csv}}", "data.train.table: data table not found: /nowhere/pairs.csv"),
    (
        "data: {train: {kind: webdataset, shards: x.tar, decoded_cache: off}, pipeline: resident}",
        "data: pipeline resident needs the training images in memory; "
        "data.train is decoded from its files every epoch (decoded_cache: off)",
    ),
    ("model: {name: ViT-B-3}", "model.name: unknown model 'ViT-B-3'; did you mean ViT-B-32"),
    ("train: {steps: 10, epochs: 1}", "train: give either steps or epochs, not both"),
    ("name: 'bad name!'", "name: String should match pattern"),
    ("eval: {templates: ['a photo']}", "eval: every template must contain '{label}'"),
    ("train: {steps: [1\n  lr: 2", "line 2, column 5: invalid YAML"),
    ("- a\n- b", "expected a mapping of sections at the top level, got list"),
    # search distributions: the distribution itself, and every value it can take
    ("temperature: {kind: fixed, value: {loguniform: [0.0, 0.4]}}", "temperature.value: loguniform needs 0 < low < high, got [0.0, 0.4]"),
    (
        "temperature: {kind: fixed, value: {uniform: [0.4, 0.1]}}",
        "temperature.value: uniform needs [low, high] with low < high, got [0.4, 0.1]",
    ),
    ("temperature: {kind: fixed, value: {choice: [0.04, -1]}}", "temperature.value: Input should be greater than 0 (got -1)"),
    ("swap: {kind: hard, p: {grid: [0.1, 1.01]}}", "swap.p: Input should be less than or equal to 1 (got 1.01)"),
    ("train: {steps: {int: [1.5, 10]}}", "train.steps: int needs two integers, got [1.5, 10]"),
    ("swap: {kind: {choice: []}}", "swap.kind: choice needs a non-empty list of values, got []"),
    # loss kinds, and what they cannot be combined with
    ("loss: {kind: siglp}", "loss: Input tag 'siglp' found using 'kind' does not match any of the expected tags: 'clip', 'siglip'"),
    ("loss: {kind: cyclip, in_modal: -1}", "loss.in_modal: Input should be greater than or equal to 0 (got -1)"),
    ("loss: {kind: m3mix}\nmodel: {normalize: false}", "<top level>: loss.kind 'm3mix' mixes features along the unit sphere's geodesics"),
    ("loss: {kind: siglip}\ntheory: {}", "<top level>: loss.kind 'siglip': theory trials simulate the CLIP loss only"),
    ("train: {batch_size: 10, accumulate: 4}", "train: batch_size 10 is not divisible by accumulate 4"),
    (
        "resources: {workers_per_trial: 3}\ntrain: {batch_size: 32}",
        "<top level>: train.batch_size 32 does not split evenly into resources.workers_per_trial 3 × train.accumulate 1 micro-batches",
    ),
]


def stop_processes(processes, grace: float = 20) -> None:
    """SIGTERM the given psutil processes, SIGKILL what is left after `grace` seconds, and wait."""
    import psutil

    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)


def forget_ray_start(port: int) -> None:
    """`ray start --head` names its cluster in /tmp/ray/ray_current_cluster for later `ray.init()`
    calls; `ray stop` would remove it. Remove it when it names the cluster on `port`."""
    from pathlib import Path

    current = Path("/tmp/ray/ray_current_cluster")
    if current.is_file() and current.read_text().strip().endswith(f":{port}"):
        current.unlink()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def save_jpegs(folder, shapes, seed=0):
    """Noisy JPEGs of the given (height, width): non-square, so resizing and cropping matter."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (h, w) in enumerate(shapes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)
        names.append(f"{i}.jpg")
    table = folder / "pairs.csv"
    table.write_text("filepath,title\n" + "".join(f"{name},picture {i}\n" for i, name in enumerate(names)))
    return table


@pytest.fixture(scope="session")
def tiny():
    return tiny_config


@pytest.fixture
def cpp_compiler():
    """Skips the test where torch.compile (inductor) cannot build kernels on a CPU."""
    if NO_CPP_COMPILER:
        pytest.skip("torch.compile (inductor) on a CPU needs a C++ compiler")


def pytest_generate_tests(metafunc):
    """A test that takes `broken` runs once per broken study file: (text, expected message)."""
    if "broken" in metafunc.fixturenames:
        metafunc.parametrize("broken", BROKEN, ids=[e.split(":")[0] for _, e in BROKEN])


@pytest.fixture(name="stop_processes", scope="session")  # a plain function: module fixtures use it too
def _stop_processes():
    return stop_processes


@pytest.fixture(name="forget_ray_start")
def _forget_ray_start():
    return forget_ray_start


@pytest.fixture(name="save_jpegs")
def _save_jpegs():
    return save_jpegs


@pytest.fixture(name="free_port", scope="session")
def _free_port():
    return free_port


@pytest.fixture(name="optuna_study")
def _optuna_study():
    return optuna_study


def pytest_sessionfinish(session, exitstatus):
    """Nothing a test started outlives the suite: a Ray driver still connected or a child process
    left running can crash the interpreter at exit and disturbs the next run. Such leftovers are
    stopped here and fail the session, naming them."""
    import psutil
    import ray

    shutil.rmtree(SUITE_CACHES, ignore_errors=True)
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
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), CACHES_PREFIX + "*")):
        shutil.rmtree(folder, ignore_errors=True)
        leftovers.append(f"{folder}: the caches folder of a second copy of conftest.py (a test imported it; take its fixtures)")
    if leftovers:
        print("\nleft behind by the tests (now stopped or removed):\n  " + "\n  ".join(leftovers))
        if session.exitstatus == 0:
            session.exitstatus = 1


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:
        return []


def optuna_study(folder, name: str):
    """The Optuna study a raygap study keeps beside its results (journal file or SQLite)."""
    import optuna

    from raygap.results import ResultsFolder
    from raygap.study.folder import optuna_path, optuna_storage

    return optuna.load_study(study_name=name, storage=optuna_storage(optuna_path(ResultsFolder(folder), name)))
