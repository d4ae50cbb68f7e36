"""Full mode (a hub backbone on GPUs): the fixes of issue 15, each checked on the CPU.

e5-small (the real multilingual-e5-small, built offline) stands in for a hub model wherever a real
checkpoint matters: saved as bf16, with its own Dense head and prompts, and CLS-pooled.
"""

import pytest
import torch

from piccolo_lib.training import load_config, train
from test_training import fixture_data


class Built(Exception):
    """Raised by a stand-in build_model once it has recorded its arguments."""


def test_model_is_built_on_the_cpu_and_moved_by_the_trainer(tmp_path, monkeypatch):
    """Under torchrun every rank used to load the model onto cuda:0 before the Trainer chose its device."""
    import piccolo_lib.model as model_module

    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise Built

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(model_module, "build_model", spy)
    cfg = load_config(None, {"data": fixture_data(tmp_path), "batch_size": 8, "cls_neg_num": 2, "device": "cuda",
                             "output_dir": str(tmp_path / "out")})
    with pytest.raises(Built):
        train(cfg)
    assert seen["device"] == "cpu"
