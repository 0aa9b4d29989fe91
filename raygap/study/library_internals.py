"""The one place raygap reaches into other libraries' private parts, each because no public API
gives the same (say why beside each). tests/unit/study/test_library_internals.py checks every one
against the installed versions, so an upgrade that moves one fails there, not mid-study."""

from __future__ import annotations

import optuna


def optuna_study(search) -> optuna.Study:
    """The Optuna study a Ray Tune OptunaSearch asks and tells (Tune keeps it private; raygap names
    its objectives for optuna-dashboard)."""
    return search._ot_study


def optuna_trial(search, tune_trial_id: str) -> optuna.Trial | None:
    """The Optuna trial OptunaSearch asked for a Tune trial, while it runs (raygap records the Tune
    id and the final metrics on it as user attributes)."""
    return search._ot_trials.get(tune_trial_id)


def storage_trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage, which `BaseStorage.set_trial_state_values` takes (Optuna's
    public trial objects carry only the per-study `number`); a resume tells finished trials."""
    return trial._trial_id


def enqueued_params(trial: optuna.trial.FrozenTrial) -> dict:
    """The parameters a trial was enqueued with (`Study.enqueue_trial`) while it waits to be asked:
    Optuna keeps them in a system attribute until then, so a resume can run it."""
    return dict(trial.system_attrs.get("fixed_params", {}))


def visible_gpus() -> int:
    """GPUs on this machine as Ray counts them (nvidia-smi's library, CUDA_VISIBLE_DEVICES),
    without importing torch in the head (about 1 GB and seconds)."""
    from ray._private.accelerators import NvidiaGPUAcceleratorManager

    visible = NvidiaGPUAcceleratorManager.get_current_process_visible_accelerator_ids()
    count = NvidiaGPUAcceleratorManager.get_current_node_num_accelerators()
    return min(count, len(visible)) if visible is not None else count


def quiet_train_reports() -> None:
    """Ray Train (V2) logs every `ray.train.report` of every worker at INFO, metrics included, and
    each checkpoint it persists: a seed's record (its whole history) would fill a cluster job's log.
    Their modules' loggers (one named by its file's path) have no setting that turns them down."""
    import logging

    from ray.train.v2._internal.execution import context, storage

    for module in (context, storage):
        module.logger.setLevel(logging.WARNING)
