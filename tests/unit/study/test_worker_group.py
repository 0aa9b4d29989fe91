import math

from raygap.study.worker_group import Progress, seed_means


def test_seed_means_average_what_every_seed_has():
    finals = [
        {"modality_gap": 0.5, "mean_r1": 0.25, "steps": 60, "resumed_from_step": 10, "device": "cpu", "degenerate": False},
        {"modality_gap": 0.7, "mean_r1": 0.35, "steps": 60, "resumed_from_step": None, "device": "cpu", "degenerate": False},
    ]
    means = seed_means(finals)
    assert set(means) == {"modality_gap", "mean_r1", "steps"}  # no mean of a number one seed lacks, of text, of a flag
    assert math.isclose(means["modality_gap"], 0.6) and math.isclose(means["mean_r1"], 0.3) and means["steps"] == 60


def test_progress_round_trips_through_its_file(tmp_path):
    progress = Progress(2, [{"modality_gap": 0.5}], records=[{"trial_id": "a", "seed": 0}])
    progress.write(tmp_path)
    assert Progress.read(tmp_path) == progress
