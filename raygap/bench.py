"""`raygap bench`: what a study costs on this machine, against the targets raygap holds itself to.

Every figure is a ratio or a time measured in the same run (machines are shared and noisy):
1. loop efficiency   — raygap's trial loop against a plain open_clip loop written here
2. per-trial overhead — Tune trial start → first step, last step → result on the head
3. study efficiency  — fraction of the workers' wall time spent in training steps
4. input pipeline    — samples/s the loader delivers against what the model consumes; for image
                       files, an epoch from the one-time decoded copy against decoding every JPEG
5. evaluation cost   — a full evaluation (recalls, gap, uniformity, linear probe) against an epoch
6. memory            — peak resident memory of the study's processes, and per trial
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch
import torch.nn.functional as F
import yaml

from raygap.data import PairDataset, keep_batch, load_source
from raygap.evaluate import evaluate, probe_metrics
from raygap.model import build_model
from raygap.config import TrialConfig, load_spec
from raygap.train import resolve_device, train

# size → model, batch, loop steps, eval pairs, study trials, study steps, worker-group trials, JPEGs and their batch
SIZES = {
    "ci": {"model": "tiny-vit", "batch": 32, "steps": 6, "eval_pairs": 256, "trials": 2, "study_steps": 4, "group_trials": 0, "photos": 32, "photo_batch": 16},
    "full": {"model": "tiny-vit", "batch": 128, "steps": 60, "eval_pairs": 5000, "trials": 6, "study_steps": 400, "group_trials": 2, "photos": 1024, "photo_batch": 64},
}
TARGETS = {"loop_efficiency": 0.95, "overhead_s": 5.0, "study_efficiency": 0.85}


def trial_config(size: dict, steps: int, eval_pairs: int) -> dict:
    """A synthetic-data trial of the bench's model and batch (as a study file's contents)."""
    return {
        "name": "bench",
        "data": {
            "train": {"kind": "synthetic", "size": max(4096, size["batch"] * 8), "seed": 0},
            "eval": {"kind": "synthetic", "size": eval_pairs, "seed": 1},
            "probe": {"train": {"kind": "synthetic", "size": 1024, "seed": 2}, "test": {"kind": "synthetic", "size": 512, "seed": 3}},
        },
        "model": {"name": size["model"]},
        "train": {"steps": steps, "batch_size": size["batch"], "lr": 0.002, "warmup_steps": 1, "eval_interval": 0, "seed": 0},
        "temperature": {"kind": "fixed", "value": 0.07},
        "eval": {"gap_pairs": min(512, eval_pairs)},
    }


def _config(raw: dict) -> TrialConfig:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(raw, handle)
    try:
        return load_spec(handle.name).defaults()
    finally:
        os.unlink(handle.name)


# ------------------------------------------------------------------------------ 1. loop efficiency
def plain_loop_samples_per_s(cfg: TrialConfig, steps: int, warmup: int = 1) -> float:
    """The obvious open_clip training loop: same model, batch, precision and memory layout, data
    already in memory (on a GPU: on the GPU), a fixed temperature, timed after `warmup` steps."""
    device = resolve_device(cfg.train.device)
    on_gpu = device.type == "cuda"
    torch.manual_seed(0)
    bundle = build_model(cfg.model.name)
    data = load_source(cfg.data.train, bundle, train=True)
    model = bundle.model.to(device).train()
    channels_last = on_gpu and cfg.train.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=0.1, fused=on_gpu or None)
    pixels, tokens, owners = data.images.pixels.to(device), data.tokens.to(device), data.caption_image.to(device)
    batch = cfg.train.batch_size
    labels = torch.arange(batch, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu and cfg.train.precision == "bf16")
    scale = 1 / 0.07

    def step() -> None:
        index = torch.randint(len(tokens), (batch,), device=device)
        images = data.images.normalize(pixels[owners[index]])
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast:
            image = model.encode_image(images, normalize=True)
            text = model.encode_text(tokens[index], normalize=True)
        logits = scale * image.float() @ text.float().T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):  # first-call allocations, kernel selection
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - started)


def raygap_loop_samples_per_s(cfg: TrialConfig) -> tuple[float, dict]:
    """samples/s of raygap's loop over its second half (see `timed_config`): the window between
    its two evaluations, warmed up, setup and evaluation excluded."""
    history: list[dict] = []
    final = train(cfg, history.append)
    return history[-1]["samples_per_s"], final


def timed_config(raw: dict, steps: int) -> dict:
    """Twice `steps` steps with one evaluation half-way: the second window is `steps` warm steps."""
    raw["train"].update(steps=2 * steps, eval_interval=steps)
    return raw


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loop_efficiency(size: dict, echo) -> dict:
    cfg = _config(timed_config(trial_config(size, size["steps"], 256), size["steps"]))
    plain, ours = [], []
    for round_ in range(2):  # alternate, keep each side's best: noise from other tenants only slows
        plain.append(plain_loop_samples_per_s(cfg, size["steps"], warmup=size["steps"]))  # warmed as long as raygap's timed window
        ours.append(raygap_loop_samples_per_s(cfg)[0])
        echo(f"  loop round {round_ + 1}: plain {plain[-1]:.0f} samples/s, raygap {ours[-1]:.0f} samples/s")
    return {"plain_samples_per_s": max(plain), "raygap_samples_per_s": max(ours), "loop_efficiency": max(ours) / max(plain)}


# ------------------------------------------------------------------------- 4. input pipeline
def input_pipeline(cfg: TrialConfig, consumed_samples_per_s: float, batches: int = 32) -> dict:
    """samples/s the training loader delivers to the model's device, as the loop loads it."""
    device = resolve_device(cfg.train.device)
    on_gpu = device.type == "cuda"
    bundle = build_model(cfg.model.name)
    pairs = PairDataset(load_source(cfg.data.train, bundle, train=True), raw_pixels=on_gpu)
    workers = cfg.data.loader_workers
    loader = torch.utils.data.DataLoader(pairs, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True, collate_fn=keep_batch,
                                         num_workers=workers, persistent_workers=workers > 0, pin_memory=on_gpu)  # fmt: skip
    iter(loader)  # start the loader's workers before the clock
    started, samples = time.perf_counter(), 0
    while samples < batches * cfg.train.batch_size:
        for images, _ in loader:
            images = pairs.normalize_on_device(images.to(device, non_blocking=True))
            samples += len(images)
    _sync(device)
    delivered = samples / (time.perf_counter() - started)
    return {"loader_samples_per_s": delivered, "loader_headroom": delivered / consumed_samples_per_s, "loader_workers": workers}


def write_photos(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` JPEGs of COCO's typical size (640×480, quality 90: shapes on a background, blurred
    by the upscale, with sensor-like noise) and a files table naming them."""
    import numpy as np
    from PIL import Image

    from raygap.data import synthetic

    rng = np.random.default_rng(seed)
    pixels = synthetic.generate(count, 160, seed=seed)[0]
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(pixels):
        photo = np.asarray(Image.fromarray(image.transpose(1, 2, 0)).resize((640, 480), Image.BICUBIC), dtype=np.int16)
        photo = np.clip(photo + rng.integers(-8, 9, photo.shape), 0, 255).astype(np.uint8)
        Image.fromarray(photo).save(folder / f"{i:06d}.jpg", quality=90)
    table = folder / "pairs.csv"
    table.write_text("filepath,title\n" + "".join(f"{i:06d}.jpg,photo {i}\n" for i in range(count)))
    return table


def decoded_cache_speedup(count: int, batch: int, device: torch.device, echo, image_size: int = 224) -> dict:
    """An epoch over JPEG files (decoded and cropped by open_clip's training transform every epoch)
    against an epoch over raygap's one-time decoded copy (crops drawn on the training device), at
    the paper's 224 px; the copy's one-time build is timed too."""
    from open_clip.transform import PreprocessCfg

    from raygap.data import ImageTextSet, LoadedPairs
    from raygap.model import ClipBundle
    from raygap.config import FilesSource

    on_gpu = device.type == "cuda"
    workers = min(8, len(os.sched_getaffinity(0)))
    bundle = ClipBundle(model=None, tokenize=lambda texts: torch.zeros(len(texts), 8, dtype=torch.long), preprocess=PreprocessCfg(size=image_size))

    def epoch(data: ImageTextSet) -> float:
        """samples/s of the second epoch (the loader's processes already started)."""
        pairs = PairDataset(data, raw_pixels=on_gpu)
        loader = torch.utils.data.DataLoader(pairs, batch_size=batch, shuffle=True, drop_last=True, collate_fn=keep_batch,
                                             num_workers=workers, persistent_workers=True, pin_memory=on_gpu, prefetch_factor=4)  # fmt: skip
        for _ in LoadedPairs(loader, device):
            pass
        started, samples = time.perf_counter(), 0
        for images, _ in LoadedPairs(loader, device):
            samples += len(images)
        _sync(device)
        return samples / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as scratch:
        echo(f"  writing {count} 640×480 JPEGs")
        table = write_photos(Path(scratch, "photos"), count)
        files_rate = epoch(load_source(FilesSource(table=table), bundle, train=True))
        started = time.perf_counter()
        cached = load_source(FilesSource(table=table, decoded_cache=Path(scratch, "cache")), bundle, train=True)
        build_seconds = time.perf_counter() - started
        cached_rate = epoch(cached)
    epoch_saving = count / files_rate - count / cached_rate
    row = {"images": count, "image_size": image_size, "loader_workers": workers, "jpeg_samples_per_s": files_rate, "cached_samples_per_s": cached_rate,
           "cache_speedup": cached_rate / files_rate, "cache_build_seconds": build_seconds, "cache_pays_back_after_epochs": build_seconds / epoch_saving}  # fmt: skip
    echo(f"  JPEG files {files_rate:.0f} samples/s, decoded copy {cached_rate:.0f} samples/s ({row['cache_speedup']:.1f}×); "
         f"built once in {build_seconds:.1f} s, repaid after {row['cache_pays_back_after_epochs']:.2f} epochs")  # fmt: skip
    return row


# ------------------------------------------------------------------------- 5. evaluation cost
def evaluation_cost(cfg: TrialConfig, samples_per_s: float, epoch_pairs: int) -> dict:
    """A full evaluation (recalls, gap, uniformity, zero-shot and linear probe) against the time
    of one training epoch of `epoch_pairs` pairs at `samples_per_s`."""
    device = resolve_device(cfg.train.device)
    bundle = build_model(cfg.model.name)
    model = bundle.model.to(device)
    eval_set = load_source(cfg.data.eval, bundle, train=False)
    probe = load_source(cfg.data.probe.train, bundle, train=False), load_source(cfg.data.probe.test, bundle, train=False)
    started = time.perf_counter()
    evaluate(model, eval_set, device, cfg.eval.batch_size, gap_pairs=cfg.eval.gap_pairs)
    probe_metrics(model, *probe, cfg.eval.templates, bundle.tokenize, device, cfg.eval.batch_size)
    _sync(device)
    seconds = time.perf_counter() - started
    epoch = epoch_pairs / samples_per_s
    return {"eval_pairs": len(eval_set), "eval_seconds": seconds, "epoch_pairs": epoch_pairs, "epoch_seconds": epoch, "eval_per_epoch": seconds / epoch}


# ------------------------------------------------------------------ 2, 3, 6. studies through Ray
class PeakMemory:
    """Peak summed resident memory of this process and all its descendants (Ray's included)."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def study_overheads(size: dict, trials: int, steps: int, workers: int, echo, worker_group: str = "auto") -> dict:
    """Run a real study (Ray Tune + Optuna) of `trials` short trials and read the stamps back."""
    import polars as pl

    from raygap import study
    from raygap.study.cluster import plan_for_this_machine
    from raygap.results import TRIALS, ResultsFolder

    raw = trial_config(size, steps, 256)
    raw.update(
        name=f"bench-{workers}w-{worker_group}",
        temperature={"kind": "fixed", "value": {"loguniform": [0.02, 0.2]}},
        search={"sampler": "random", "trials": trials, "objectives": {"modality_gap": "min", "mean_r1": "max"}},
        resources={"workers_per_trial": workers, "worker_group": worker_group},
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "bench.yaml")
        path.write_text(yaml.safe_dump(raw))
        spec = load_spec(path)
        folder = ResultsFolder(Path(scratch, "results"))
        started = time.time()
        with PeakMemory() as memory:
            study.run_study(spec, folder, echo=lambda line: echo("    " + line), dashboard=False)
        ended = time.time()
        rows = folder.read(TRIALS).filter(pl.col("status") == "completed")
    plan_concurrency = min(trials, plan_for_this_machine(spec).max_concurrent)
    first_start, last_result = rows["trial_started_at"].min(), rows["recorded_at"].max()
    stepping = (rows["last_step_at"] - rows["first_step_at"]).sum()
    return {
        "trials": rows.height,
        "workers_per_trial": workers,
        "worker_group": worker_group,
        "median_start_overhead_s": float((rows["first_step_at"] - rows["trial_started_at"]).median()),
        "median_ray_start_s": float((rows["started_at"] - rows["trial_started_at"]).median()),
        "median_end_overhead_s": float((rows["recorded_at"] - rows["last_step_at"]).median()),
        "median_ray_end_s": float((rows["recorded_at"] - rows["finished_at"]).median()),
        "median_train_seconds": float((rows["last_step_at"] - rows["first_step_at"]).median()),
        "cluster_start_s": float(first_start - started),
        "study_wall_s": float(ended - started),
        "study_efficiency": float(stepping / (plan_concurrency * (last_result - first_start))),
        "study_efficiency_with_cluster_start": float(stepping / (plan_concurrency * (ended - started))),
        "peak_rss_gb": memory.peak / 2**30,
        "peak_trial_rss_gb": float(rows["peak_rss_mb"].max()) / 1024 if "peak_rss_mb" in rows.columns else None,
    }


# ---------------------------------------------------------------------------------------- GPU
# open_clip's reference models at 224 px, bf16 autocast, channels-last, fused AdamW.
GPU_MODELS = ("RN50", "ViT-B-32")
GPU_BATCHES = (128, 256, 512)
GPU_STEPS = 30  # timed steps per configuration, after as many warm ones
COCO_TRAIN_IMAGES = 118_287  # the epoch the evaluation cost is quoted against


def gpu_trial_config(model: str, batch: int, steps: int, loader_workers: int = 4, probe: bool = False, pipeline: str = "auto") -> dict:
    raw = trial_config({"model": model, "batch": batch}, steps, 256)
    raw["data"]["train"]["size"] = 2048
    if not probe:
        del raw["data"]["probe"]
    raw["data"].update(loader_workers=loader_workers, pipeline=pipeline)
    raw["train"].update(precision="bf16", device="cuda", channels_last=True)
    return timed_config(raw, steps)


def matmul_tflops(device: torch.device, n: int = 8192, reps: int = 10) -> float:
    """The card's bf16 matrix-product rate as measured here: the denominator of model FLOP utilization."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    _sync(device)
    started = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - started) / 1e12


def flops_per_sample(cfg: TrialConfig) -> float:
    """Forward and backward FLOPs of one training sample (both towers and the loss), counted by
    torch.utils.flop_counter (matrix products and convolutions) on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    device = resolve_device(cfg.train.device)
    bundle = build_model(cfg.model.name)
    model = bundle.model.to(device).train()
    batch = cfg.train.batch_size
    images = torch.randn(batch, 3, bundle.image_size, bundle.image_size, device=device)
    tokens = bundle.tokenize(["a photo of a red circle"] * batch).to(device)
    labels = torch.arange(batch, device=device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.precision == "bf16"):
            image = model.encode_image(images, normalize=True)
            text = model.encode_text(tokens, normalize=True)
        logits = image.float() @ text.float().T / 0.07
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        loss.backward()
    return counter.get_total_flops() / batch


def gpu_throughput(model: str, batch: int, peak_tflops: float, echo, pipeline: str = "resident") -> dict:
    """raygap's loop against the plain loop, both measured now, with the batches reaching the GPU
    by `pipeline` (resident: data on the GPU; streamed and loader: the paths for data that is not)."""
    cfg = _config(gpu_trial_config(model, batch, GPU_STEPS, pipeline=pipeline))
    flops = flops_per_sample(cfg)
    plain = plain_loop_samples_per_s(cfg, GPU_STEPS, warmup=GPU_STEPS)
    torch.cuda.empty_cache()
    ours, final = raygap_loop_samples_per_s(cfg)
    torch.cuda.empty_cache()
    row = {"model": model, "batch": batch, "data": pipeline, "plain_samples_per_s": plain, "raygap_samples_per_s": ours,
           "loop_efficiency": ours / plain, "gflops_per_sample": flops / 1e9, "mfu": ours * flops / (peak_tflops * 1e12), "gpu_peak_gb": final["gpu_peak_mb"] / 1024}  # fmt: skip
    echo(f"  {model} batch {batch} ({row['data']}): raygap {ours:.0f} vs plain {plain:.0f} samples/s ({row['loop_efficiency']:.3f}), "
         f"{row['gflops_per_sample']:.1f} GFLOP/sample, MFU {row['mfu']:.3f}, {row['gpu_peak_gb']:.1f} GiB")  # fmt: skip
    return row


_START_TOGETHER = None


def _hold_start(barrier) -> None:
    global _START_TOGETHER
    _START_TOGETHER = barrier


def _shared_trial(raw: dict) -> dict:
    """One trial in its own process; every process starts stepping when all have set up."""
    started = []

    def report(row: dict) -> None:
        if not started:  # the step-0 evaluation: set-up is done, the first step comes next
            started.append(True)
            _START_TOGETHER.wait()

    final = train(_config(raw), report)
    return {"first_step_at": final["first_step_at"], "last_step_at": final["last_step_at"], "steps": final["steps"], "gpu_peak_mb": final.get("gpu_peak_mb", 0.0)}


def gpu_sharing(raw: dict, counts: tuple[int, ...], echo) -> list[dict]:
    """Several small trials on one GPU (as fractional GPUs run them): total samples/s against one alone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    rows = []
    for count in counts:
        barrier = context.Barrier(count)
        with ProcessPoolExecutor(count, mp_context=context, initializer=_hold_start, initargs=(barrier,)) as pool:
            outs = list(pool.map(_shared_trial, [raw] * count))
        window = max(o["last_step_at"] for o in outs) - min(o["first_step_at"] for o in outs)
        total = sum(o["steps"] for o in outs) * raw["train"]["batch_size"] / window
        rows.append({"trials": count, "total_samples_per_s": total, "gpu_peak_gb_per_trial": max(o["gpu_peak_mb"] for o in outs) / 1024})
        rows[-1]["speedup"] = total / rows[0]["total_samples_per_s"]
        echo(f"  {count} trial(s) on one GPU: {total:.0f} samples/s in all ({rows[-1]['speedup']:.2f}× one alone)")
    return rows


GPU_PARTS = ("throughput", "pipelines", "cache", "input", "evaluation", "sharing")


def run_gpu_bench(output: str | Path = "results/bench", echo=print, parts: tuple[str, ...] = GPU_PARTS) -> dict:
    """The GPU figures; needs CUDA, not Ray (the trial loop is what runs on the GPU). `parts`
    picks sections (a whole run takes about ten minutes on an H100)."""
    check_gpu_bench(parts)
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    echo(f"raygap bench (gpu): {name}, torch {torch.__version__}, {os.cpu_count()} CPU(s); parts: {', '.join(parts)}")
    figures: dict = {"size": "gpu", "device": name, "machine": f"{platform.node()} · {os.cpu_count()} CPU", "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    figures["matmul_bf16_tflops"] = matmul_tflops(device)
    echo(f"bf16 matrix product (8192³): {figures['matmul_bf16_tflops']:.0f} TFLOP/s")
    figures["throughput"] = []
    if "throughput" in parts:
        echo("1. loop efficiency, throughput and MFU (images resident on the GPU)")
        figures["throughput"] += [gpu_throughput(m, b, figures["matmul_bf16_tflops"], echo) for m in GPU_MODELS for b in GPU_BATCHES]
    if "pipelines" in parts:
        echo("1b. ViT-B-32 fed by each pipeline: resident, streamed (pinned memory, side stream), DataLoader")
        figures["throughput"] += [gpu_throughput("ViT-B-32", b, figures["matmul_bf16_tflops"], echo, pipeline)
                                  for b in (128, 512) for pipeline in ("resident", "streamed", "loader")]  # fmt: skip
    if "cache" in parts:
        echo("4b. image files: JPEG decoding every epoch against the decoded copy (224 px, batch 256)")
        figures["decoded_cache"] = decoded_cache_speedup(4096, 256, device, echo)
    if "input" in parts:
        echo("4. input pipeline (ViT-B-32, batch 512: the DataLoader, uint8 from pinned memory, normalized on the GPU)")
        figures["input"] = input_pipeline(_config(gpu_trial_config("ViT-B-32", 512, GPU_STEPS)), _vit_rate(figures, 512))
    if "evaluation" in parts:
        echo("5. evaluation cost (ViT-B-32, 5,000 pairs)")
        raw = gpu_trial_config("ViT-B-32", 256, GPU_STEPS, probe=True)
        raw["data"]["eval"]["size"] = 5000
        figures["evaluation"] = evaluation_cost(_config(raw), _vit_rate(figures, 256), COCO_TRAIN_IMAGES)
    if "sharing" in parts:
        echo("6. several small trials sharing the GPU (small-vit, batch 256)")
        figures["sharing"] = gpu_sharing(gpu_trial_config("small-vit", 256, 300), (1, 2, 4), echo)
    echo(format_gpu_table(figures))
    suffix = "" if tuple(parts) == GPU_PARTS else "-" + "-".join(parts)
    save_figures(figures, Path(output) / f"bench-gpu-{name.replace(' ', '-')}{suffix}.json", echo)
    return figures


def check_gpu_bench(parts: tuple[str, ...]) -> None:
    unknown = set(parts) - set(GPU_PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; parts: {', '.join(GPU_PARTS)}")
    if not torch.cuda.is_available():
        raise ValueError("raygap bench --size gpu needs a CUDA device; none is visible")


def _vit_rate(figures: dict, batch: int) -> float:
    """ViT-B-32's resident samples/s at `batch` from this run, measured now if it is not there."""
    for row in figures["throughput"]:
        if row["model"] == "ViT-B-32" and row["batch"] == batch and row["data"] == "resident":
            return row["raygap_samples_per_s"]
    return raygap_loop_samples_per_s(_config(gpu_trial_config("ViT-B-32", batch, GPU_STEPS)))[0]


def save_figures(figures: dict, path: Path, echo) -> None:
    from raygap.results import write_local_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_local_text(path, json.dumps(figures, indent=2))
    echo(f"figures: {path}")


def format_gpu_table(figures: dict) -> str:
    lines = [f"{'model':<9} {'batch':>5} {'data':>8} {'raygap/s':>9} {'plain/s':>9} {'ratio':>6} {'GFLOP':>6} {'MFU':>6} {'GiB':>5}"]
    for r in figures["throughput"]:
        lines.append(f"{r['model']:<9} {r['batch']:>5} {r['data']:>8} {r['raygap_samples_per_s']:>9.0f} {r['plain_samples_per_s']:>9.0f} "
                     f"{r['loop_efficiency']:>6.3f} {r['gflops_per_sample']:>6.1f} {r['mfu']:>6.3f} {r['gpu_peak_gb']:>5.1f}")  # fmt: skip
    if "decoded_cache" in figures:
        c = figures["decoded_cache"]
        lines.append(f"image files ({c['images']} JPEGs, {c['image_size']} px, {c['loader_workers']} loader workers): decoding every epoch "
                     f"{c['jpeg_samples_per_s']:.0f} samples/s, decoded copy {c['cached_samples_per_s']:.0f} ({c['cache_speedup']:.1f}×), "
                     f"built in {c['cache_build_seconds']:.1f} s, repaid after {c['cache_pays_back_after_epochs']:.2f} epochs")  # fmt: skip
    if "input" in figures:
        inp = figures["input"]
        lines.append(f"input: loader delivers {inp['loader_samples_per_s']:.0f} samples/s = {inp['loader_headroom']:.2f}× what ViT-B-32 at batch 512 consumes")
    if "evaluation" in figures:
        ev = figures["evaluation"]
        lines.append(f"evaluation: {ev['eval_pairs']} pairs + probe in {ev['eval_seconds']:.1f} s = {ev['eval_per_epoch']:.3f} of a {ev['epoch_pairs']}-sample epoch")
    if "sharing" in figures:
        lines.append("sharing: " + ", ".join(f"{r['trials']} trial(s) {r['total_samples_per_s']:.0f}/s ({r['speedup']:.2f}×, {r['gpu_peak_gb_per_trial']:.2f} GiB each)" for r in figures["sharing"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- runner
def run_bench(size_name: str = "ci", output: str | Path = "results/bench", echo=print) -> dict:
    size = SIZES[size_name]
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    echo(f"raygap bench ({size_name}): {size['model']}, batch {size['batch']}, {os.cpu_count()} CPU(s), torch {torch.__version__}")
    figures: dict = {"size": size_name, "machine": f"{platform.node()} · {os.cpu_count()} CPU · {platform.processor() or platform.machine()}",
                     "device": "cpu", "date": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    echo("1. loop efficiency")
    figures["loop"] = loop_efficiency(size, echo)
    echo("4. input pipeline")
    figures["input"] = input_pipeline(_config(trial_config(size, 1, 256)), figures["loop"]["raygap_samples_per_s"])
    echo("4b. image files: JPEG decoding every epoch against the decoded copy (224 px)")
    figures["decoded_cache"] = decoded_cache_speedup(size["photos"], size["photo_batch"], torch.device("cpu"), echo)
    echo("5. evaluation cost")
    cfg = _config(trial_config(size, 1, size["eval_pairs"]))
    figures["evaluation"] = evaluation_cost(cfg, figures["loop"]["raygap_samples_per_s"], cfg.data.train.size)
    echo(f"2/3/6. a study of {size['trials']} one-worker trials × {size['study_steps']} steps")
    figures["study"] = study_overheads(size, size["trials"], size["study_steps"], 1, echo)
    if size["group_trials"]:
        # The same one-worker trials through a Ray Train worker group: how every trial ran before
        # one-worker trials moved into the Tune trial process (the baseline for 2 and 3).
        echo(f"2b. baseline: {size['group_trials']} one-worker trials × {size['study_steps']} steps, each in a Ray Train worker group")
        figures["study_worker_group"] = study_overheads(size, size["group_trials"], size["study_steps"], 1, echo, worker_group="always")
        echo(f"2c. {size['group_trials']} two-worker trials × 20 steps (a worker group is needed)")
        figures["study_two_workers"] = study_overheads(size, size["group_trials"], 20, 2, echo)
    echo(format_table(figures))
    save_figures(figures, Path(output) / f"bench-{size_name}-{figures['device']}.json", echo)
    return figures


def format_table(figures: dict) -> str:
    loop, study = figures["loop"], figures["study"]
    rows = [
        ("loop efficiency (raygap / plain open_clip loop)", f"{loop['loop_efficiency']:.3f}", f"≥ {TARGETS['loop_efficiency']}",
         f"{loop['raygap_samples_per_s']:.0f} vs {loop['plain_samples_per_s']:.0f} samples/s"),
        ("per-trial overhead, 1 worker (start + end, s)", f"{study['median_ray_start_s'] + study['median_ray_end_s']:.2f}", f"≤ {TARGETS['overhead_s']:g}",
         f"incl. data/model setup and evaluation: {study['median_start_overhead_s']:.2f} + {study['median_end_overhead_s']:.2f} s"),
        ("study efficiency (training steps / worker wall)", f"{study['study_efficiency']:.3f}", f"≥ {TARGETS['study_efficiency']}",
         f"{study['study_efficiency_with_cluster_start']:.3f} counting the {study['cluster_start_s']:.1f} s cluster start; "
         f"{study['median_train_seconds']:.1f} s of steps per trial"),
        ("input pipeline (delivered / consumed)", f"{figures['input']['loader_headroom']:.1f}×", "> 1", f"{figures['input']['loader_samples_per_s']:.0f} samples/s"),
        ("image files: decoded copy / JPEG decoding", f"{figures['decoded_cache']['cache_speedup']:.2f}×", "",
         f"{figures['decoded_cache']['cached_samples_per_s']:.0f} vs {figures['decoded_cache']['jpeg_samples_per_s']:.0f} samples/s at 224 px; "
         f"built once in {figures['decoded_cache']['cache_build_seconds']:.1f} s, repaid after {figures['decoded_cache']['cache_pays_back_after_epochs']:.2f} epochs"),
        ("evaluation / one epoch", f"{figures['evaluation']['eval_per_epoch']:.3f}", "", f"{figures['evaluation']['eval_pairs']} pairs in {figures['evaluation']['eval_seconds']:.1f} s; "
         f"epoch of {figures['evaluation']['epoch_pairs']} pairs {figures['evaluation']['epoch_seconds']:.1f} s"),
        ("peak memory of the study (GiB)", f"{study['peak_rss_gb']:.2f}", "", "Ray's processes included" + (f"; one trial process {study['peak_trial_rss_gb']:.2f} GiB" if study["peak_trial_rss_gb"] else "")),
    ]  # fmt: skip
    for key, name in (("study_worker_group", "1 worker in a worker group (baseline)"), ("study_two_workers", "2-worker group")):
        if key in figures:
            group = figures[key]
            rows.append((f"per-trial overhead, {name} (s)", f"{group['median_ray_start_s'] + group['median_ray_end_s']:.2f}", "",
                         f"group start {group['median_ray_start_s']:.1f} s, end {group['median_ray_end_s']:.1f} s; "
                         f"study efficiency {group['study_efficiency']:.3f}"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>8}  {'target':>7}  detail"]
    lines += [f"{name:<{width}}  {value:>8}  {target:>7}  {detail}" for name, value, target, detail in rows]
    return "\n".join(lines)
