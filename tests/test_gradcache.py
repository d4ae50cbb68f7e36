"""GradCache: same loss and same gradient of every parameter as the uncached step, for all three routes."""

import json
from pathlib import Path

import pytest
import torch

from piccolo_lib.gradcache import RngState, chunks
from piccolo_lib.losses import PiccoloLoss
from piccolo_lib.model import build_model, default_mrl_dims
from piccolo_lib.sampling import PiccoloCollator, TaskSpec

TRAIN = Path(__file__).resolve().parent.parent / "data_samples" / "train"
FILES = {"retri_contrast": ("retrieval.jsonl", 2), "cosent": ("sts.jsonl", 0), "cls_contrast": ("classification.jsonl", 4)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("offline-bert", device="cpu").double()  # float64: summation order does not blur the check
    m.eval()  # dropout off: the two steps must see the same network
    return m


def batch(model, task: str, n: int = 10):
    """A real collated batch (collator of piccolo_lib.sampling) of n rows of a data_samples file."""
    name, k = FILES[task]
    rows = [json.loads(x) for x in (TRAIN / name).read_text(encoding="utf-8").splitlines()[:n]]
    rows = [{**r, "dataset_name": "d", "_row": i} for i, r in enumerate(rows)]
    out = PiccoloCollator(model.preprocess, {"d": TaskSpec(task, k)}, seed=0)(rows)
    cols = {}
    for key, v in out.items():
        if key in ("dataset_name", "label"):
            continue
        prefix, field = key.split("_", 1) if not key.startswith("text_pair") else ("text_pair", key[10:])
        cols.setdefault(prefix, {})[field] = v
    return list(cols.values()), out["label"]


def step(model, loss_fn, features, labels):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(features, labels)
    (0.5 * loss).backward()  # a scale after the loss (as grad accumulation applies) must reach the replay
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("task", list(FILES))
def test_cached_step_equals_uncached_step(model, task):
    features, labels = batch(model, task)
    dims = default_mrl_dims(model.get_embedding_dimension())
    plain = PiccoloLoss(model, task, mrl_dims=dims)
    cached = PiccoloLoss(model, task, mrl_dims=dims, gradient_cache_minibatch=3)  # 10 rows -> 4 chunks
    loss_a, grads_a = step(model, plain, features, labels)
    loss_b, grads_b = step(model, cached, features, labels)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    close(grads_a, grads_b)


def close(grads_a: dict, grads_b: dict) -> None:
    """Every parameter's gradient equal to 1e-5 relative (entries near 0 against the largest gradient)."""
    top = max(float(g.abs().max()) for g in grads_a.values())
    for name, g in grads_a.items():
        assert torch.allclose(grads_b[name], g, rtol=1e-5, atol=1e-9 * top), name


def test_margin_masking_under_cache(model):
    features, labels = batch(model, "retri_contrast")
    plain = PiccoloLoss(model, "retrieval", false_negatives="margin", false_negative_margin=0.02)
    cached = PiccoloLoss(model, "retrieval", false_negatives="margin", false_negative_margin=0.02,
                         gradient_cache_minibatch=4)
    loss_a, grads_a = step(model, plain, features, labels)
    loss_b, grads_b = step(model, cached, features, labels)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    close(grads_a, grads_b)


def test_no_grad_forward_is_the_plain_loss(model):
    features, labels = batch(model, "cosent")
    with torch.no_grad():
        a = PiccoloLoss(model, "sts")(features, labels)
        b = PiccoloLoss(model, "sts", gradient_cache_minibatch=2)(features, labels)
    assert float(b) == pytest.approx(float(a), rel=1e-6)


def test_rng_replay_gives_the_same_dropout_mask():
    state = RngState.capture()
    a = torch.nn.functional.dropout(torch.ones(100), 0.5)
    with state.replay():
        b = torch.nn.functional.dropout(torch.ones(100), 0.5)
    c = torch.nn.functional.dropout(torch.ones(100), 0.5)  # the stream goes on after the replay
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_chunks_split_rows_and_trim_right_padding():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]])
    feature = {"input_ids": torch.arange(12).reshape(3, 4), "attention_mask": mask}
    parts = chunks(feature, 2)
    assert [p["input_ids"].shape for p in parts] == [(2, 3), (1, 2)]
    assert torch.equal(parts[1]["input_ids"], torch.tensor([[8, 9]]))
