"""Each private part of another library raygap reaches (raygap.study.library_internals) exists in
the installed versions and means what raygap takes it to mean."""

import optuna
from ray.tune.search.optuna import OptunaSearch

from raygap.study import library_internals


def test_optuna_search_keeps_its_study_and_running_trials():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = OptunaSearch(space=lambda trial: {"x": trial.suggest_float("x", 0.0, 1.0)}, metric=["a", "b"], mode=["min", "max"], seed=0)
    search.set_search_properties(None, None, {})
    assert search.suggest("tune-1") is not None
    study = library_internals.optuna_study(search)
    assert isinstance(study, optuna.Study) and study.directions == [
        optuna.study.StudyDirection.MINIMIZE,
        optuna.study.StudyDirection.MAXIMIZE,
    ]
    trial = library_internals.optuna_trial(search, "tune-1")
    assert isinstance(trial, optuna.Trial) and trial.params["x"] == study.trials[0].params["x"]
    assert library_internals.optuna_trial(search, "never-asked") is None
    search.on_trial_complete("tune-1", {"a": 0.1, "b": 0.2})
    told = study.trials[0]
    assert told.state == optuna.trial.TrialState.COMPLETE and told.values == [0.1, 0.2]


def test_a_frozen_trials_storage_id_is_what_the_storage_takes(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}")
    study = optuna.create_study(storage=storage)
    study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    storage.set_trial_state_values(library_internals.storage_trial_id(frozen), optuna.trial.TrialState.FAIL)
    assert study.get_trials(deepcopy=False)[0].state == optuna.trial.TrialState.FAIL


def test_an_enqueued_trial_keeps_its_parameters_until_asked(tmp_path):
    """What a resume reads from a search.first configuration the stopped study never started."""
    study = optuna.create_study(storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}"))
    study.enqueue_trial({"loss": "clip", "swap.p": 0.25})
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))[0]
    assert waiting.params == {} and library_internals.enqueued_params(waiting) == {"loss": "clip", "swap.p": 0.25}


def test_gpus_are_counted_as_ray_counts_them(monkeypatch):
    """Ray's detector (nvidia-smi's library) on a node of 4 GPUs, as CUDA_VISIBLE_DEVICES narrows it."""
    from ray._private.accelerators import NvidiaGPUAcceleratorManager

    monkeypatch.setattr(NvidiaGPUAcceleratorManager, "get_current_node_num_accelerators", staticmethod(lambda: 4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert library_internals.visible_gpus() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert library_internals.visible_gpus() == 0
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert library_internals.visible_gpus() == 4


def test_ray_trains_report_logs_are_turned_down_by_the_loggers_they_use():
    """The loggers quiet_train_reports turns down are the ones Ray Train's report and checkpoint
    messages go through (an upgrade that renames them fails here)."""
    import inspect
    import logging

    from ray.train.v2._internal.execution import context, storage

    assert "Reporting training result" in inspect.getsource(context) and "Checkpoint successfully created" in inspect.getsource(storage)
    library_internals.quiet_train_reports()
    for module in (context, storage):
        assert not module.logger.isEnabledFor(logging.INFO)
