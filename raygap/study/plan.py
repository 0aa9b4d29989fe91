"""How a study's trials fit a cluster: workers, CPUs and GPUs per trial, trials at once. Ray-free."""

from __future__ import annotations

from dataclasses import dataclass

from raygap.config import ResourcesSpec, SpecError, TrialConfig

DRIVER_CPUS = 0.1  # the driver only waits on its trainer; a whole CPU would deadlock a 2-core laptop
MIN_CPUS_PER_WORKER = 0.25  # below this a worker's process waits more than it trains
WORKER_BASE_BYTES = 0.5e9  # a Train worker with torch and Ray imported, before its model (measured: 0.45-0.5 GB)
TRAINING_BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and AdamW's two moments, before activations


@dataclass(frozen=True)
class ResourcePlan:
    workers: int
    use_gpu: bool
    cpus_per_worker: float
    gpus_per_worker: float
    max_concurrent: int
    threads_per_worker: int
    placement: str = "PACK"
    in_trial: bool = False
    """Train inside the Tune trial process instead of starting a worker group."""
    loader_workers: int = 0
    """DataLoader processes each worker starts; counted in its CPUs."""
    group_per: str = "trial"
    """A worker group per trial (all its seeds) or per seed (resources.worker_group_per)."""

    def trial_resources(self) -> dict[str, float]:
        """What the Tune trial itself holds: a worker's share when it trains in-process."""
        return self.worker_resources() if self.in_trial else {"CPU": DRIVER_CPUS}

    def held(self) -> dict[str, float]:
        """What one trial holds while it runs (its driver and workers), for CPU/GPU-hours."""
        if self.in_trial:
            resources = self.trial_resources()
            return {"cpus_held": resources.get("CPU", 0.0), "gpus_held": resources.get("GPU", 0.0)}
        return {"cpus_held": DRIVER_CPUS + self.workers * self.cpus_per_worker, "gpus_held": self.workers * self.gpus_per_worker}

    def worker_resources(self) -> dict[str, float]:
        out = {"CPU": self.cpus_per_worker}
        if self.use_gpu:
            out["GPU"] = self.gpus_per_worker
        return out

    def describe(self) -> str:
        device = f"{self.gpus_per_worker:g} GPU + " if self.use_gpu else ""
        if self.loader_workers:
            device += f"{self.loader_workers} loader process(es) in "
        if self.in_trial:
            return (
                f"1 worker per trial, in the trial process ({device}{self.cpus_per_worker:.2f} CPU); "
                f"up to {self.max_concurrent} trial(s) at once"
            )
        return (
            f"{self.workers} worker(s) per trial × ({device}{self.cpus_per_worker:.2f} CPU), driver {DRIVER_CPUS} CPU; "
            f"up to {self.max_concurrent} trial(s) at once"
        )


def study_plan(cfg: TrialConfig, cluster_cpus: float, cluster_gpus: float) -> ResourcePlan:
    """The plan of a study's trials. A theory simulation runs on one CPU in its trial process
    (float64, no model): `resources` does not apply, and GPUs do not limit how many run at once."""
    if cfg.theory is not None:
        return plan_resources(ResourcesSpec(use_gpu=False), cluster_cpus, cluster_gpus)
    spec, data = cfg.resources, cfg.data
    loaders = data.loader_workers if data.loader_runs(on_gpu=uses_gpu(spec, cluster_gpus)) else 0
    return plan_resources(spec, cluster_cpus, cluster_gpus, loaders)


def uses_gpu(spec: ResourcesSpec, cluster_gpus: float) -> bool:
    return spec.use_gpu if spec.use_gpu is not None else cluster_gpus >= 1


def plan_resources(spec: ResourcesSpec, cluster_cpus: float, cluster_gpus: float, loader_workers: int = 0) -> ResourcePlan:
    """Fit trials to the cluster: on GPUs, GPUs // (workers × GPUs per worker) trials at once; on
    CPUs, whole cores per worker where possible and fractional shares otherwise, so that the
    driver plus its workers always fit (the default 1 CPU each deadlocks a 2-core machine). Each
    of a worker's `loader_workers` DataLoader processes (those that start) counts as a core of its
    own: trials that decode images on cores taken by other trials slow each other down."""
    workers = spec.workers_per_trial
    use_gpu = uses_gpu(spec, cluster_gpus)
    cores = 1.0 + loader_workers  # what one worker keeps busy: its trainer and its loader processes
    if use_gpu:
        gpus = spec.gpus_per_worker or 1.0
        if workers * gpus > cluster_gpus:
            raise SpecError(f"resources: a trial needs {workers * gpus:g} GPUs but the cluster has {cluster_gpus:g}")
        concurrent = max(1, int(cluster_gpus // (workers * gpus)))
        share = (cluster_cpus - DRIVER_CPUS * concurrent) / (workers * concurrent)
        cpus = spec.cpus_per_worker or max(0.5, min(max(4.0, cores), share))
    else:
        gpus = 0.0
        concurrent = max(1, int(cluster_cpus // (workers * cores)))  # about `cores` per worker where there are enough
        cpus = spec.cpus_per_worker or min(cores, (cluster_cpus - DRIVER_CPUS * concurrent) / (workers * concurrent))
        if cpus < MIN_CPUS_PER_WORKER:
            fit = max(1, int((cluster_cpus - DRIVER_CPUS) // MIN_CPUS_PER_WORKER))
            raise SpecError(
                f"resources.workers_per_trial: {workers} workers would get {cpus:.2f} CPU each, under the "
                f"{MIN_CPUS_PER_WORKER} a worker needs; the cluster's {cluster_cpus:g} CPU fit at most {fit} worker(s) per trial"
            )
        if workers * cpus + DRIVER_CPUS > cluster_cpus:
            raise SpecError(f"resources: a trial needs {workers * cpus + DRIVER_CPUS:g} CPUs but the cluster has {cluster_cpus:g}")
        concurrent = max(1, min(concurrent, int(cluster_cpus // (workers * cpus + DRIVER_CPUS))))
    in_trial = workers == 1 and spec.worker_group == "auto"
    if in_trial and not use_gpu and not spec.cpus_per_worker:
        cpus = min(cores, cluster_cpus / concurrent)  # no separate driver to leave room for
    threads = max(1, int(cpus + 0.5) - loader_workers)  # the trainer's torch threads; the loaders take the rest
    return ResourcePlan(
        workers, use_gpu, round(cpus, 3), gpus, concurrent, threads, spec.placement, in_trial, loader_workers, spec.worker_group_per
    )


def check_fits_one_node(cfg: TrialConfig, plan: ResourcePlan, nodes: int, memory_bytes: float) -> None:
    """A trial that could never start on a cluster of `nodes` alike nodes with `memory_bytes` free
    each: STRICT_SPREAD with more workers than nodes waits forever; workers whose model, gradients
    and optimizer state exceed the memory are killed. Each a SpecError that says what would fit."""
    if plan.placement == "STRICT_SPREAD" and not plan.in_trial and plan.workers > nodes:
        raise SpecError(
            f"resources.placement: STRICT_SPREAD puts each of the {plan.workers} workers on a node of its own, but the "
            f"cluster has {nodes} node(s); expected workers_per_trial ≤ {nodes}, or placement PACK or SPREAD"
        )
    per_worker = worker_bytes(cfg, plan)
    together = plan.workers if plan.placement in ("PACK", "STRICT_PACK") or nodes == 1 else -(-plan.workers // nodes)
    if together * per_worker > memory_bytes:
        fit = int(memory_bytes // per_worker)
        raise SpecError(
            f"model.name: a {cfg.model.name} worker needs at least {per_worker / 1e9:.1f} GB (its process, and "
            f"{TRAINING_BYTES_PER_PARAMETER} bytes per parameter for weights, gradients and AdamW)"
            + (f", {together} workers on one node {together * per_worker / 1e9:.1f} GB" if together > 1 else "")
            + f", but a node has {memory_bytes / 1e9:.1f} GB free; "
            + (f"at most {fit} worker(s) fit" if fit else "a smaller model fits")
        )


def worker_bytes(cfg: TrialConfig, plan: ResourcePlan) -> float:
    """What one worker of `cfg` holds in host memory at least: its process, and its model's
    training state (only the weights where a GPU holds the rest)."""
    if cfg.theory is not None:
        return WORKER_BASE_BYTES
    from raygap.config import BUILTIN_MODELS

    if cfg.model.name in BUILTIN_MODELS:  # a few million parameters at most
        return WORKER_BASE_BYTES
    from raygap.clip.model import parameter_count  # torch: open_clip is imported to check the name anyway

    per_parameter = 4 if plan.use_gpu else TRAINING_BYTES_PER_PARAMETER
    return WORKER_BASE_BYTES + per_parameter * parameter_count(cfg.model.name)
