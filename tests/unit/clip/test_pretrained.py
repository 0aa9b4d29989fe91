"""Starting from a local checkpoint (model.pretrained) and freezing towers (model.lock_image /
lock_text): the weights loaded are the file's, a file that does not fit is named before any work,
and locked weights stay out of the optimizer."""

import pytest
import torch

from raygap.clip.build import build_seed_run
from raygap.clip.model import build_model, checkpoint_mismatch
from raygap.clip.train import train
from raygap.config import SpecError, load_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(11)
    model = build_model("tiny-vit").model
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_the_checkpoint_s_weights_are_the_model_s(checkpoint, tmp_path):
    path, saved = checkpoint
    loaded = build_model("tiny-vit", path).model.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    # open_clip's training checkpoints hold the state dict under "state_dict", DDP's with "module." prefixes
    wrapped = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in saved.items()}}, wrapped)
    assert all(torch.equal(build_model("tiny-vit", wrapped).model.state_dict()[k], saved[k]) for k in saved)
    assert checkpoint_mismatch("tiny-vit", path) is None and checkpoint_mismatch("tiny-vit", wrapped) is None


def test_a_checkpoint_that_does_not_fit_is_named(checkpoint, tmp_path):
    path, _ = checkpoint
    why = checkpoint_mismatch("small-vit", path)
    assert why.startswith(f"{path} does not fit small-vit: ") and "shape(s) differ, e.g. " in why
    garbage = tmp_path / "notes.pt"
    garbage.write_text("not a checkpoint")
    assert checkpoint_mismatch("tiny-vit", garbage).startswith(f"{garbage} cannot be read as a checkpoint (")
    study = tmp_path / "ft.yaml"
    study.write_text(f"model: {{name: small-vit, pretrained: {path}}}\n")
    from raygap.study.preflight import check_checkpoint

    with pytest.raises(SpecError, match=r"ft.yaml: model.pretrained: .* does not fit small-vit"):
        check_checkpoint(load_spec(study).defaults(), str(study))
    study.write_text("model: {pretrained: missing.pt}\n")
    with pytest.raises(SpecError, match=rf"ft.yaml: model.pretrained: file not found: {tmp_path}/missing.pt"):
        load_spec(study)  # relative to the study file's folder


def test_a_trial_starts_from_the_checkpoint_whatever_its_seed(checkpoint, tiny):
    path, _ = checkpoint

    def first_point(seed: int, pretrained) -> float:
        history = []
        train(tiny(model={"pretrained": pretrained}, train={"seed": seed, "steps": 1}, data={"probe": None}), report=history.append)
        return history[0]["modality_gap"]

    # the seed draws the initial weights, unless a checkpoint gives them
    assert first_point(0, None) != first_point(1, None)
    assert first_point(0, str(path)) == first_point(1, str(path))


def test_locked_towers_stay_out_of_the_optimizer(tiny):
    def optimized(model_section: dict) -> tuple[set, set]:
        run = build_seed_run(tiny(model=model_section, data={"probe": None}), 0, 1, torch.device("cpu"))
        ids = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
        visual = {name for name, p in run.model.visual.named_parameters() if id(p) in ids}
        text = {name for name, p in run.model.named_parameters() if not name.startswith("visual.") and id(p) in ids}
        return visual, text

    visual, text = optimized({})
    assert visual and text
    frozen_image, text_trained = optimized({"lock_image": {}})
    assert not frozen_image and text_trained == text
    last_group, _ = optimized({"lock_image": {"unlocked_groups": 1}})
    assert last_group and last_group < visual  # the last group trains, the rest is frozen
    image_trained, frozen_text = optimized({"lock_text": {}})
    assert image_trained == visual and not frozen_text


def test_a_results_folder_names_its_one_kept_checkpoint(checkpoint, tmp_path):
    path, _ = checkpoint
    folder = tmp_path / "run"
    (folder / "artifacts" / "t1" / "seed0").mkdir(parents=True)
    (folder / "artifacts" / "t1" / "seed0" / "weights.pt").write_bytes(path.read_bytes())
    study = tmp_path / "ft.yaml"
    study.write_text("model: {pretrained: run}\n")
    assert load_spec(study).defaults().model.pretrained == folder / "artifacts" / "t1" / "seed0" / "weights.pt"
    (folder / "artifacts" / "t2" / "seed0").mkdir(parents=True)
    (folder / "artifacts" / "t2" / "seed0" / "weights.pt").write_bytes(path.read_bytes())
    with pytest.raises(SpecError, match=r"model.pretrained: .*run is a folder; expected a checkpoint file, .* kept weights found: 2: "):
        load_spec(study)
    (tmp_path / "empty").mkdir()
    study.write_text("model: {pretrained: empty}\n")
    with pytest.raises(SpecError, match=r"kept weights found: none"):
        load_spec(study)
