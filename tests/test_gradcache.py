"""GradCache: same loss and same gradient of every parameter as the uncached step, for all three tasks; packed."""

import json
from pathlib import Path

import pytest
import torch
from sentence_transformers.base.trainer import BaseTrainer

from piccolo_lib.model import build_model, default_mrl_dims
from piccolo_lib.tasks import PiccoloCollator, TaskSpec
from piccolo_lib.train.adapter import PiccoloLoss

TRAIN = Path(__file__).resolve().parent.parent / "data_samples" / "train"
FILES = {"retri_contrast": ("retrieval.jsonl", 2), "cosent": ("sts.jsonl", 0), "cls_contrast": ("classification.jsonl", 4)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("offline-bert", device="cpu").double()  # float64: summation order does not blur the check
    m.eval()  # dropout off: the two steps must see the same network
    return m


def batch(model, task: str, n: int = 10):
    """A real collated batch of n rows of a data_samples file, split into features and labels as the Trainer does."""
    name, k = FILES[task]
    rows = [json.loads(x) for x in (TRAIN / name).read_text(encoding="utf-8").splitlines()[:n]]
    rows = [{**r, "dataset_name": "d", "_row": i} for i, r in enumerate(rows)]
    out = PiccoloCollator(model.preprocess, {"d": TaskSpec(task, k)}, seed=0,
                          pad_token_id=model.tokenizer.pad_token_id)(rows)
    return BaseTrainer.collect_features(None, {k: v for k, v in out.items() if k != "dataset_name"})


def step(model, loss_fn, features, labels):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(features, labels)
    (0.5 * loss).backward()  # a scale after the loss (as grad accumulation applies) must reach the replay
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def close(grads_a: dict, grads_b: dict) -> None:
    """Every parameter's gradient equal to 1e-5 relative (entries near 0 against the largest gradient)."""
    top = max(float(g.abs().max()) for g in grads_a.values())
    for name, g in grads_a.items():
        assert torch.allclose(grads_b[name], g, rtol=1e-5, atol=1e-9 * top), name


@pytest.mark.parametrize("task", list(FILES))
def test_cached_step_equals_uncached_step(model, task):
    features, labels = batch(model, task)
    dims = default_mrl_dims(model.get_embedding_dimension())
    plain = PiccoloLoss(model, task, mrl_dims=dims)
    cached = PiccoloLoss(model, task, mrl_dims=dims, gradient_cache_minibatch=3)
    loss_a, grads_a = step(model, plain, features, labels)
    loss_b, grads_b = step(model, cached, features, labels)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    close(grads_a, grads_b)


def test_gradient_cache_is_packed(model):
    """The cached chunks are consecutive rows of the length-sorted table, each cut to its own longest row: the
    same tokens a packed step encodes in its forward, never the batch's widest row times every row."""
    features, labels = batch(model, "retri_contrast", n=16)
    widths = []
    hook = model[0].register_forward_pre_hook(lambda m, args: widths.append(tuple(args[0]["input_ids"].shape)))
    try:
        step(model, PiccoloLoss(model, "retrieval", gradient_cache_minibatch=4), features, labels)
    finally:
        hook.remove()
    rows, widest = features[0]["input_ids"].shape
    first_pass = widths[:len(widths) // 2]
    assert len(widths) == 2 * len(first_pass) and sum(r for r, _ in first_pass) == rows  # two passes over the table
    assert all(r <= 4 for r, _ in widths) and [w for _, w in first_pass] == sorted(w for _, w in first_pass)
    assert sum(r * w for r, w in first_pass) < rows * widest  # trimmed: the short chunks are not padded to `widest`


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


def test_the_replay_runs_under_the_forwards_autocast():
    """Autocast entered around the loss (as a notebook or the Trainer's context does) must hold for the chunks
    re-encoded in the backward hook, which runs after that context has closed."""
    torch.manual_seed(0)
    toy = build_model("offline-bert", device="cpu")
    toy.eval()
    features, labels = batch(toy, "cls_contrast")
    dtypes = []
    linear = next(m for m in toy[0].modules() if isinstance(m, torch.nn.Linear))  # its output is bf16 under autocast
    hook = linear.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = PiccoloLoss(toy, "cls_contrast", gradient_cache_minibatch=4)(features, labels)
        loss.backward()
    finally:
        hook.remove()
    assert len(dtypes) >= 4 and set(dtypes) == {torch.bfloat16}, dtypes


def test_the_old_batch_layout_is_a_clear_error(model):
    features, labels = batch(model, "cosent")
    with pytest.raises(TypeError, match="one feature column"):
        PiccoloLoss(model, "sts")([features[0], features[0]], labels["scores"])
