"""`raygap bench --size gpu`: the GPU measurements. Needs CUDA, not Ray (the trial loop is what
runs on the GPU); `parts` picks sections (a whole run takes about ten minutes on an H100)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from raygap.bench.common import save_results, to_config
from raygap.bench.compiled import compile_speedup, top_kernels
from raygap.bench.decoded_cache import decoded_cache_speedup
from raygap.bench.evaluation import evaluation_cost
from raygap.bench.input_pipeline import input_pipeline
from raygap.bench.loop import raygap_loop_samples_per_s
from raygap.bench.sharing import gpu_sharing
from raygap.bench.throughput import (
    GPU_BATCHES,
    GPU_MODELS,
    GPU_STEPS,
    flops_per_sample,
    gpu_throughput,
    gpu_trial_raw,
    matmul_tflops,
)

GPU_PARTS = ("throughput", "pipelines", "cache", "input", "evaluation", "sharing", "compile")
COCO_TRAIN_IMAGES = 118_287  # the epoch the evaluation cost is quoted against


def check_gpu_bench(parts: tuple[str, ...]) -> None:
    unknown = set(parts) - set(GPU_PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; parts: {', '.join(GPU_PARTS)}")
    if not torch.cuda.is_available():
        raise ValueError("raygap bench --size gpu needs a CUDA device; none is visible")


def run_gpu_bench(output: str | Path = "results/bench", echo=print, parts: tuple[str, ...] = GPU_PARTS) -> dict:
    """The GPU measurements of `parts`, printed as a table and saved as JSON under `output`."""
    check_gpu_bench(parts)
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    echo(f"raygap bench (gpu): {name}, torch {torch.__version__}, {os.cpu_count()} CPU(s); parts: {', '.join(parts)}")
    results: dict = {
        "size": "gpu",
        "device": name,
        "machine": f"{platform.node()} · {os.cpu_count()} CPU",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results["matmul_bf16_tflops"] = peak = matmul_tflops(device)
    echo(f"bf16 matrix product (8192³): {peak:.0f} TFLOP/s")
    results["throughput"] = []
    if "throughput" in parts:
        echo("1. loop efficiency, throughput and MFU (images resident on the GPU)")
        results["throughput"] += [gpu_throughput(m, b, peak, echo) for m in GPU_MODELS for b in GPU_BATCHES]
    if "pipelines" in parts:
        echo("1b. ViT-B-32 fed by each pipeline: resident, streamed (pinned memory, side stream), DataLoader")
        results["throughput"] += [
            gpu_throughput("ViT-B-32", b, peak, echo, pipeline) for b in (128, 512) for pipeline in ("resident", "streamed", "loader")
        ]
    if "cache" in parts:
        echo("4b. image files: JPEG decoding every epoch against the decoded copy (224 px, batch 256)")
        results["decoded_cache"] = decoded_cache_speedup(4096, 256, device, echo)
    if "input" in parts:
        echo("4. input pipeline (ViT-B-32, batch 512: the DataLoader, uint8 from pinned memory, normalized on the GPU)")
        results["input"] = input_pipeline(to_config(gpu_trial_raw("ViT-B-32", 512, GPU_STEPS)), _vit_rate(results, 512))
    if "evaluation" in parts:
        echo("5. evaluation cost (ViT-B-32, 5,000 pairs)")
        raw = gpu_trial_raw("ViT-B-32", 256, GPU_STEPS, probe=True)
        raw["data"]["eval"]["size"] = 5000
        results["evaluation"] = evaluation_cost(to_config(raw), _vit_rate(results, 256), COCO_TRAIN_IMAGES)
    if "compile" in parts:
        echo("1c. the compiled loop (train.compile: true) against eager, MFU of both; the compiled loop's top kernels at batch 512")
        results["compile"] = [gpu_compile(m, b, peak, echo) for m in GPU_MODELS for b in (256, 512)]
    if "sharing" in parts:
        echo("6. several small trials sharing the GPU (small-vit, batch 256)")
        results["sharing"] = gpu_sharing(gpu_trial_raw("small-vit", 256, 300), (1, 2, 4), echo)
    echo(format_gpu_table(results))
    suffix = "" if tuple(parts) == GPU_PARTS else "-" + "-".join(parts)
    save_results(results, Path(output) / f"bench-gpu-{name.replace(' ', '-')}{suffix}.json", echo)
    return results


def gpu_compile(model: str, batch: int, peak_tflops: float, echo) -> dict:
    """Eager and compiled trial loops of `model` at `batch` (two paired rounds), with MFU."""
    raw = gpu_trial_raw(model, batch, GPU_STEPS)
    row = compile_speedup(raw, rounds=2, echo=echo)
    flops = flops_per_sample(to_config(raw))
    row.update(
        gflops_per_sample=flops / 1e9,
        mfu_eager=row["eager_samples_per_s"] * flops / (peak_tflops * 1e12),
        mfu_compiled=row["compiled_samples_per_s"] * flops / (peak_tflops * 1e12),
    )
    if batch == 512:
        row["top_kernels"] = top_kernels(raw, compile_=True)
        echo("  top kernels: " + ", ".join(f"{k['name'][:60]} {k['share']:.0%}" for k in row["top_kernels"]))
    echo(
        f"  {model} batch {batch}: MFU eager {row['mfu_eager']:.3f}, compiled {row['mfu_compiled']:.3f}; "
        f"compile {row['cold_compile_s']:.0f} s cold"
    )
    torch.cuda.empty_cache()
    return row


def _vit_rate(results: dict, batch: int) -> float:
    """ViT-B-32's resident samples/s at `batch` from this run, measured now if it is not there."""
    for row in results["throughput"]:
        if row["model"] == "ViT-B-32" and row["batch"] == batch and row["data"] == "resident":
            return row["raygap_samples_per_s"]
    return raygap_loop_samples_per_s(to_config(gpu_trial_raw("ViT-B-32", batch, GPU_STEPS)))[0]


def format_gpu_table(results: dict) -> str:
    lines = [f"{'model':<9} {'batch':>5} {'data':>8} {'raygap/s':>9} {'plain/s':>9} {'ratio':>6} {'GFLOP':>6} {'MFU':>6} {'GiB':>5}"]
    for r in results["throughput"]:
        lines.append(
            f"{r['model']:<9} {r['batch']:>5} {r['data']:>8} {r['raygap_samples_per_s']:>9.0f} {r['plain_samples_per_s']:>9.0f} "
            f"{r['loop_efficiency']:>6.3f} {r['gflops_per_sample']:>6.1f} {r['mfu']:>6.3f} {r['gpu_peak_gb']:>5.1f}"
        )
    if "decoded_cache" in results:
        c = results["decoded_cache"]
        lines.append(
            f"image files ({c['images']} JPEGs, {c['image_size']} px, {c['loader_workers']} loader workers): decoding every epoch "
            f"{c['jpeg_samples_per_s']:.0f} samples/s, decoded copy {c['cached_samples_per_s']:.0f} ({c['cache_speedup']:.1f}×), "
            f"built in {c['cache_build_seconds']:.1f} s, repaid after {c['cache_pays_back_after_epochs']:.2f} epochs"
        )
    if "input" in results:
        inp = results["input"]
        lines.append(
            f"input: loader delivers {inp['loader_samples_per_s']:.0f} samples/s = "
            f"{inp['loader_headroom']:.2f}× what ViT-B-32 at batch 512 consumes"
        )
    if "evaluation" in results:
        ev = results["evaluation"]
        lines.append(
            f"evaluation: {ev['eval_pairs']} pairs + probe in {ev['eval_seconds']:.1f} s = "
            f"{ev['eval_per_epoch']:.3f} of a {ev['epoch_pairs']}-sample epoch"
        )
    for r in results.get("compile", []):
        lines.append(
            f"compiled {r['model']} batch {r['batch']}: "
            f"{r['compiled_samples_per_s']:.0f} vs eager {r['eager_samples_per_s']:.0f} samples/s "
            f"({r['speedup']:.3f}), MFU {r['mfu_compiled']:.3f} vs {r['mfu_eager']:.3f}, compile {r['cold_compile_s']:.0f} s cold"
        )
    if "sharing" in results:
        lines.append(
            "sharing: "
            + ", ".join(
                f"{r['trials']} trial(s) {r['total_samples_per_s']:.0f}/s ({r['speedup']:.2f}×, {r['gpu_peak_gb_per_trial']:.2f} GiB each)"
                for r in results["sharing"]
            )
        )
    return "\n".join(lines)
