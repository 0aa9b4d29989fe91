"""The training loop: one seed run of CLIP from scratch, measured on held-out data. No Ray here.

`train(cfg, report)` runs the same on a laptop, in `raygap train`, and inside each Ray Train
worker (with `rank`/`world_size`, after the caller has set up the process group).
"""

from __future__ import annotations

import functools
import math
import resource
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from raygap.clip.artifacts import BestWeights, KeptArtifacts, best_tracker, collect
from raygap.clip.build import SeedRun, build_seed_run
from raygap.clip.evaluate import EVALUATORS, FINAL_EVALUATORS
from raygap.clip.step import train_step
from raygap.clip.temperature import Temperature
from raygap.config import TrialConfig


class TrainingDiverged(RuntimeError):
    """The loss or the temperature left the finite range; the run cannot go on."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


# ------------------------------------------------------------------------------ the state
@dataclass
class TrainState:
    """What changes while training, besides the weights: the position in the data, the loss since
    the last evaluation point and the history of evaluation points."""

    step: int = 0
    epoch: int = 0
    loss_sum: float | torch.Tensor = 0.0
    loss_count: int = 0
    history: list[dict] = field(default_factory=list)
    best: BestWeights | None = None
    """The best weights so far, where the run keeps them (artifacts.weights: best)."""

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "loss_sum": float(self.loss_sum),
            "loss_count": self.loss_count,
            "history": list(self.history),
            "best": self.best.state_dict() if self.best is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step, self.epoch, self.loss_sum, self.loss_count = state["step"], state["epoch"], state["loss_sum"], state["loss_count"]
        self.history = list(state["history"])
        if self.best is not None and state.get("best") is not None:
            self.best.load_state_dict(state["best"])


def checkpoint_state(run: SeedRun, state: TrainState) -> dict:
    """The whole training state as tensors and plain values: weights, optimizer, temperature, the
    loss's parameters, the TrainState and the random streams (the model's, the swap's, the loss's)."""
    return {
        **state.state_dict(),
        "model": run.model.state_dict(),
        "temperature": run.temperature.state_dict(),
        "loss_parameters": run.loss.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "swap_rng": _rng(run.swap),
        "loss_rng": _rng(run.loss),
    }


def restore(run: SeedRun, state: TrainState, saved: dict) -> None:
    """Load a checkpoint's weights and state; the random streams are restored by `epoch_batches`
    once it has replayed this epoch's batches that ran before the checkpoint."""
    state.load_state_dict(saved)
    run.model.load_state_dict(saved["model"])
    run.temperature.load_state_dict(saved["temperature"])
    run.loss.load_state_dict(saved.get("loss_parameters", {}))  # none in a checkpoint from before loss kinds
    run.optimizer.load_state_dict(saved["optimizer"])


def epoch_batches(run: SeedRun, state: TrainState, resume_from: dict | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches until the last step, epoch after epoch (`state.epoch` advances here). After a
    resume, the epoch's batches that ran before the checkpoint are drawn again and skipped (the
    sampler's order depends only on the epoch), then the random streams continue from it."""

    def restore_streams(saved: dict) -> None:
        torch.set_rng_state(saved["rng"])
        _set_rng(run.swap, saved["swap_rng"])
        _set_rng(run.loss, saved.get("loss_rng"))

    skip = state.step - state.epoch * run.steps_per_epoch if resume_from is not None else 0
    if resume_from is not None and not skip:
        restore_streams(resume_from)
    while state.step < run.total_steps:
        run.sampler.set_epoch(state.epoch)
        for batch in run.batches:
            if skip:
                skip -= 1
                if not skip and resume_from is not None:  # (skip > 0 only after a resume)
                    restore_streams(resume_from)
                continue
            if state.step >= run.total_steps:
                break
            yield batch
        state.epoch += 1


# ------------------------------------------------------------------------------- the loop
def train(
    cfg: TrialConfig,
    report: Callable[[dict], None] | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | None = None,
    progress: bool = False,
    checkpoint: Callable[[dict], None] | None = None,
    resume_from: dict | None = None,
    keep: Callable[[KeptArtifacts], None] | None = None,
) -> dict:
    """Train one run; call `report(row)` at every evaluation point; return the final metrics.
    Rank 0 hands what the `artifacts` section asks to keep to `keep` after the last step.

    The global batch `train.batch_size` is split evenly over `world_size` workers. With
    `train.checkpoint_interval`, `checkpoint(state)` receives the whole training state (tensors and
    plain values only) every that many steps; `resume_from=state` continues from it, the same
    batches and random streams as a run that was never interrupted.
    """
    report = report or (lambda row: None)
    started, started_at = time.perf_counter(), time.time()  # wall clock too, to line up with Ray's stamps
    run = build_seed_run(cfg, rank, world_size, device or resolve_device(cfg.train.device))
    state = TrainState(best=best_tracker(cfg))
    clock = {"eval_seconds": 0.0, "setup_seconds": time.perf_counter() - started}
    evaluate = functools.partial(_evaluation_point, run, state, clock, report)

    if resume_from is None:
        # Step 0 is the initialization: the gap's early growth (the paper's finding 2) starts here.
        evaluate(None, None)
    else:
        restore(run, state, resume_from)

    first_step_at = time.time()
    _run_steps(run, state, evaluate, checkpoint, resume_from, progress=progress and rank == 0)
    last_step_at = time.time()

    final = _final_metrics(run, state, clock)
    if cfg.artifacts.weights != "none" or cfg.artifacts.embeddings:
        kept = collect(run, state.best, state.step)  # every rank: encoding the eval split is collective
        if keep is not None and rank == 0:
            keep(kept)
    return _with_timings(final, run, resume_from, clock, time.perf_counter() - started, started_at, first_step_at, last_step_at)


def _evaluation_point(
    run: SeedRun, state: TrainState, clock: dict, report: Callable[[dict], None], loss: float | None, samples_per_s: float | None
) -> dict:
    """Run every evaluator, append the row to the history and report it; its time counts as
    evaluation, not training, in `clock`."""
    t0 = time.perf_counter()
    row = {
        "step": state.step,
        "epoch": state.step / run.steps_per_epoch,
        "steps": run.total_steps,  # the seed's length: an early stopper never judges its last point
        "loss": loss,
        **_temperature_state(run.temperature, state.step),
        **run.loss.logged(),
    }
    for evaluator in EVALUATORS:
        row.update(evaluator(run))
    row.update(samples_per_s=samples_per_s, lr=run.optimizer.param_groups[0]["lr"])
    clock["eval_seconds"] += time.perf_counter() - t0
    state.history.append(row)
    if state.best is not None:
        state.best.offer(run.model, row)
    report(row)
    return row


def _run_steps(
    run: SeedRun,
    state: TrainState,
    evaluate: Callable[[float | None, float | None], dict],
    checkpoint: Callable[[dict], None] | None,
    resume_from: dict | None,
    progress: bool,
) -> None:
    """Step until the last step, evaluating at every `eval_interval` and the end and checkpointing at
    every `checkpoint_interval`; throughput is measured over each window between evaluations."""
    tc = run.cfg.train
    window_start, window_samples = time.perf_counter(), 0
    bar = _progress_bar(run.total_steps, enabled=progress, initial=state.step)
    for images, tokens in epoch_batches(run, state, resume_from):
        state.loss_sum += train_step(run, images, tokens, state.step)
        state.step += 1
        state.loss_count += 1
        window_samples += tc.batch_size
        bar.update(1)

        if state.step == run.total_steps or (tc.eval_interval and state.step % tc.eval_interval == 0):
            mean_loss = float(state.loss_sum) / state.loss_count
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(f"loss became {mean_loss} before step {state.step}")
            row = evaluate(mean_loss, window_samples / (time.perf_counter() - window_start))
            bar.set_postfix(loss=f"{mean_loss:.3f}", gap=f"{row['modality_gap']:.3f}", r1=f"{row['mean_r1']:.3f}")
            state.loss_sum, state.loss_count = 0.0, 0
            window_start, window_samples = time.perf_counter(), 0
        if checkpoint and tc.checkpoint_interval and state.step % tc.checkpoint_interval == 0 and state.step < run.total_steps:
            checkpoint(checkpoint_state(run, state))
    bar.close()


def _final_metrics(run: SeedRun, state: TrainState, clock: dict) -> dict:
    """The last evaluation point's row plus the final-only evaluators, timed as evaluation."""
    final = dict(state.history[-1])
    t0 = time.perf_counter()
    for evaluator in FINAL_EVALUATORS:
        final.update(evaluator(run))
    clock["eval_seconds"] += time.perf_counter() - t0
    return final


def _with_timings(
    final: dict, run: SeedRun, resume_from, clock: dict, total: float, started_at: float, first_step_at: float, last_step_at: float
) -> dict:
    """The final metrics with the run's timings, throughput, device and memory."""
    train_seconds = total - clock["setup_seconds"] - clock["eval_seconds"]
    final.update(
        steps=run.total_steps,
        total_seconds=total,
        setup_seconds=clock["setup_seconds"],
        eval_seconds=clock["eval_seconds"],
        train_seconds=train_seconds,
        samples_per_s=run.total_steps * run.cfg.train.batch_size / max(train_seconds, 1e-9),
        device=str(run.device),
        workers=run.world_size,
        resumed_from_step=resume_from["step"] if resume_from is not None else None,  # a restart after a kill, from a checkpoint
        started_at=started_at,
        first_step_at=first_step_at,
        last_step_at=last_step_at,
        finished_at=time.time(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # this process's peak so far (Linux: KiB)
    )
    if run.device.type == "cuda":
        final["gpu_peak_mb"] = torch.cuda.max_memory_allocated(run.device) / 2**20
    return final


def _rng(owner) -> torch.Tensor | dict | None:
    """The state of a swap's or a loss's own generator, if it has one."""
    generator = getattr(owner, "generator", None)
    return generator.get_state() if generator is not None else None


def _set_rng(owner, state: torch.Tensor | dict | None) -> None:
    if state is not None:
        owner.generator.set_state(state)


def _temperature_state(temperature: Temperature, step: int) -> dict:
    tau = float(temperature.tau(step).detach())
    if not (math.isfinite(tau) and tau > 0):
        raise TrainingDiverged(f"temperature collapsed: tau = {tau} at step {step}")
    return {"tau": tau, "temperature": 1 / tau}


def _progress_bar(total: int, enabled: bool, initial: int = 0):
    import sys

    from tqdm.auto import tqdm

    # Redraw often on a terminal, rarely into a log file.
    interval = 0.5 if sys.stderr.isatty() else 30
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, mininterval=interval)
