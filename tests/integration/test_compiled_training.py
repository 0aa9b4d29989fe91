"""torch.compile's towers train as the eager ones (the compiler runs a C++ toolchain in processes of its own)."""

import pytest
import torch

from raygap.clip.train import train


@pytest.mark.usefixtures("cpp_compiler")
def test_compiled_towers_train_as_the_eager_ones(tiny):
    """train.compile: true compiles the towers' training forward (torch.compile, inductor): the
    same losses and metrics as eager to float precision, and checkpoints keep the eager keys."""
    from raygap.clip.build import build_trial

    cfg = tiny(train={"steps": 3, "eval_interval": 1})
    compiled_cfg = tiny(train={"steps": 3, "eval_interval": 1, "compile": True})
    eager, compiled = [], []
    train(cfg, report=eager.append)
    train(compiled_cfg, report=compiled.append)
    assert [row["step"] for row in compiled] == [0, 1, 2, 3]
    for want, got in zip(eager[1:], compiled[1:], strict=True):  # step 0 is before any training step
        for key in ("loss", "modality_gap", "uniformity", "pair_cosine", "temperature"):
            assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-5), (got["step"], key)
    compiled_trial, eager_trial = build_trial(compiled_cfg, 0, 1, torch.device("cpu")), build_trial(cfg, 0, 1, torch.device("cpu"))
    assert compiled_trial.forward.encode_image._torchdynamo_orig_callable == compiled_trial.model.encode_image
    assert eager_trial.forward.encode_image == eager_trial.model.encode_image
    assert compiled_trial.model.state_dict().keys() == eager_trial.model.state_dict().keys()
