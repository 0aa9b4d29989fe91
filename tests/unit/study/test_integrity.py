"""A study folder whose files were changed behind raygap's back: a copied part, a deleted part, a
Parquet file cut short, a damaged Optuna journal. `study status` says what disagrees (exit 1, or
exit 2 naming a file it cannot read), and `study resume` refuses before Ray starts."""

import shutil

import optuna
import pytest
import ray

from raygap import results
from raygap.cli import main

SPEC = "name: tampered\ntrain: {steps: 20}\nsearch: {trials: 3}\n"


@pytest.fixture
def study(tmp_path):
    """A folder as a study leaves it after two finished trials: their parts (not compacted), their
    history, and an Optuna journal that holds both as COMPLETE."""
    folder = results.ResultsFolder(tmp_path / "study")
    folder.write_text(results.SPEC, SPEC)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study" / "optuna.log")))
    optuna_study = optuna.create_study(study_name="tampered", storage=storage, directions=["minimize", "maximize"])
    for trial_id, gap in (("t0", 0.5), ("t1", 0.4)):
        metrics = {"modality_gap": gap, "mean_r1": 0.2}
        folder.append(results.TRIALS, [results.trial_row(trial_id, 0, {}, {}, "completed", metrics)])
        folder.append(results.HISTORY, [{"trial_id": trial_id, "seed": 0, "step": 20, **metrics}])
        trial = optuna_study.ask()
        trial.set_user_attr("tune_trial_id", trial_id)
        optuna_study.tell(trial, [gap, 0.2])
    return tmp_path / "study"


def parts(folder, name: str = "trials") -> list:
    return sorted((folder / name).glob("part-*.parquet"))


def status(folder, capsys) -> tuple[int, str]:
    code = main(["study", "status", str(folder)])
    return code, capsys.readouterr().err


def refused_resume(folder, capsys) -> str:
    assert main(["study", "resume", str(folder), "--no-dashboard"]) == 2
    assert not ray.is_initialized()
    return capsys.readouterr().err


def test_an_untouched_folder_agrees(study, capsys):
    assert status(study, capsys) == (0, "")


def test_a_copied_part_is_named_and_refused(study, capsys):
    first = parts(study)[0]
    shutil.copy(first, first.with_name("part-99999999999999999999-copy0000.parquet"))
    code, err = status(study, capsys)
    assert code == 1 and "warning: 1 seed run(s) recorded more than once (a copied part in trials/?): t0 seed 0" in err
    assert "cannot resume, the study's files disagree: 1 seed run(s) recorded more than once" in refused_resume(study, capsys)


def test_a_deleted_part_is_named_and_refused(study, capsys):
    parts(study)[1].unlink()  # t1's row, which Optuna holds as finished
    code, err = status(study, capsys)
    assert code == 1
    assert "warning: history rows of 1 trial(s) that trials.parquet lacks (a deleted part?): t1" in err
    assert "warning: 1 trial(s) finished in the Optuna study but absent from trials.parquet (a deleted part?): t1" in err
    assert "absent from trials.parquet" in refused_resume(study, capsys)


def test_a_parquet_part_cut_short_is_named(study, capsys):
    part = parts(study)[0]
    part.write_bytes(part.read_bytes()[:100])
    code, err = status(study, capsys)
    assert code == 2 and f"error: {study}/trials/{part.name}: not a readable Parquet file" in err
    assert f"{part.name}: not a readable Parquet file" in refused_resume(study, capsys)


@pytest.mark.parametrize("damage", ["cut", "appended"])
def test_a_damaged_optuna_journal_is_named(study, capsys, damage):
    journal = study / "optuna.log"
    lines = journal.read_bytes()
    journal.write_bytes(lines[:-20] if damage == "cut" else lines + b"garbage{")
    err = refused_resume(study, capsys)
    assert f"error: {journal}: line " in err and "of the Optuna journal is damaged; move the file aside" in err
