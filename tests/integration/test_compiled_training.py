"""torch.compile's towers train as the eager ones (the compiler runs a C++ toolchain in processes of its own)."""

import pytest
import torch

from raygap.clip.train import train


@pytest.mark.usefixtures("cpp_compiler")
def test_compiled_towers_train_as_the_eager_ones(tiny):
    """train.compile: true compiles the towers' training forward (torch.compile, inductor): the
    same losses and metrics as eager to float precision, and checkpoints keep the eager keys."""
    from raygap.clip.build import build_seed_run

    cfg = tiny(train={"steps": 3, "eval_interval": 1})
    compiled_cfg = tiny(train={"steps": 3, "eval_interval": 1, "compile": True})
    eager, compiled = [], []
    train(cfg, report=eager.append)
    train(compiled_cfg, report=compiled.append)
    assert [row["step"] for row in compiled] == [0, 1, 2, 3]
    for want, got in zip(eager[1:], compiled[1:], strict=True):  # step 0 is before any training step
        for key in ("loss", "modality_gap", "uniformity", "pair_cosine", "temperature"):
            assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-5), (got["step"], key)
    compiled_run, eager_run = build_seed_run(compiled_cfg, 0, 1, torch.device("cpu")), build_seed_run(cfg, 0, 1, torch.device("cpu"))
    assert compiled_run.forward.encode_image._torchdynamo_orig_callable == compiled_run.model.encode_image
    assert eager_run.forward.encode_image == eager_run.model.encode_image
    assert compiled_run.model.state_dict().keys() == eager_run.model.state_dict().keys()
