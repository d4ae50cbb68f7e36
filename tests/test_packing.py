"""Packed encoding: the cheapest chunking, the same embeddings, loss and gradients as one unpacked pass."""

import itertools
import random

import pytest
import torch

from piccolo_lib.model import build_model
from piccolo_lib.model.packing import encode_sorted, packed_embed, plan_chunks
from piccolo_lib.tasks import PiccoloCollator, TaskSpec
from piccolo_lib.train.adapter import PiccoloLoss


def _cost(lengths, ends, overhead):
    starts = [0] + ends[:-1]
    return sum((e - s) * lengths[e - 1] + overhead for s, e in zip(starts, ends))


def _brute_force(lengths, overhead):
    """Least cost over every way to cut the sorted rows into consecutive chunks (2^(n-1) ways)."""
    n = len(lengths)
    best = None
    for mask in itertools.product((0, 1), repeat=n - 1):
        ends = [i + 1 for i, cut in enumerate(mask) if cut] + [n]
        c = _cost(lengths, ends, overhead)
        best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_plan_chunks_finds_the_least_cost_cuts(seed):
    rng = random.Random(seed)
    lengths = sorted(rng.choice([3, 5, 9, 20, 21, 60, 64]) for _ in range(rng.randint(1, 11)))
    overhead = rng.choice([0, 8, 64, 1000])
    ends = plan_chunks(lengths, overhead)
    assert ends[-1] == len(lengths) and ends == sorted(set(ends))
    assert _cost(lengths, ends, overhead) == _brute_force(lengths, overhead)


def test_plan_chunks_extremes_and_bad_input():
    assert plan_chunks([5, 5, 70, 70], overhead=0) == [2, 4]  # free chunks: one per length
    assert plan_chunks([5, 5, 70, 70], overhead=10_000) == [4]  # costly chunks: one for all
    assert plan_chunks([], overhead=5) == []
    with pytest.raises(ValueError, match="sorted ascending"):
        plan_chunks([9, 3])


@pytest.fixture(scope="module")
def toy():
    model = build_model("offline-bert")
    model.eval()  # dropout off: an embedding is a function of its row alone
    return model


def _columns(model, texts_per_column):
    return [dict(model.preprocess(texts)) for texts in texts_per_column]


TEXTS = [["a short query", "another query about cats", "a short query"],
         ["the first passage is a good deal longer than any query here", "cats sleep",
          "another query about cats"],
         ["cats sleep", "a negative passage of middling length", "the first passage is a good deal longer "
          "than any query here, and this one goes on"]]


def test_packed_embeddings_equal_one_pass_per_column_and_encode_each_text_once(toy):
    columns = _columns(toy, TEXTS)
    plain = [toy(dict(c))["sentence_embedding"] for c in columns]
    seen = []

    def embed(f):
        seen.append(f["input_ids"].shape[0])
        return toy(f)["sentence_embedding"]

    before = [{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in c.items()} for c in columns]
    packed = packed_embed(embed, columns, pad_token_id=toy.tokenizer.pad_token_id)
    assert [p.shape for p in packed] == [p.shape for p in plain]
    for a, b in zip(packed, plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    distinct = len({t for col in TEXTS for t in col})
    assert sum(seen) == distinct < sum(map(len, TEXTS))  # 9 rows, 6 distinct texts
    for c, b in zip(columns, before):  # the caller's dicts are left as they were
        assert c.keys() == b.keys() and all(torch.equal(c[k], b[k]) for k in b if isinstance(b[k], torch.Tensor))


def test_columns_an_earlier_forward_wrote_into_are_still_packed(toy):
    columns = _columns(toy, TEXTS)
    plain = [toy(c)["sentence_embedding"] for c in columns]  # sentence-transformers adds its outputs to each dict
    assert "token_embeddings" in columns[0]
    rows = []
    packed = packed_embed(lambda f: rows.append(len(f["input_ids"])) or toy(f)["sentence_embedding"], columns,
                          pad_token_id=toy.tokenizer.pad_token_id)
    assert sum(rows) == 6  # packed: the 6 distinct texts of the 9 rows, not one pass per column
    for a, b in zip(packed, plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_left_padded_columns_are_encoded_one_by_one(toy):
    columns = _columns(toy, TEXTS[:2])
    for c in columns:  # move each row's padding to the left: positions would shift if rows were repacked
        n = c["attention_mask"].sum(1)
        width = c["attention_mask"].shape[1]
        for key in ("input_ids", "attention_mask"):
            c[key] = torch.stack([torch.roll(row, int(width - k)) for row, k in zip(c[key], n)])
    calls = []
    packed_embed(lambda f: calls.append(f["input_ids"].shape) or torch.zeros(len(f["input_ids"]), 2), columns)
    assert calls == [c["input_ids"].shape for c in columns]


def test_sorted_rows_are_encoded_in_chunks_cut_to_their_longest_row(toy):
    texts = sorted({t for col in TEXTS for t in col}, key=len)
    feature = dict(toy.preprocess(texts))
    lengths = feature["attention_mask"].sum(1).tolist()
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    feature = {k: v[order] if isinstance(v, torch.Tensor) else v for k, v in feature.items()}
    lengths = [lengths[i] for i in order]
    shapes = []
    embed = lambda f: shapes.append(tuple(f["input_ids"].shape)) or toy(f)["sentence_embedding"]  # noqa: E731
    packed = encode_sorted(embed, feature, lengths, overhead=0)
    torch.testing.assert_close(packed, toy(dict(feature))["sentence_embedding"], atol=1e-5, rtol=1e-5)
    assert [w for _, w in shapes] == sorted(set(lengths)) and sum(r for r, _ in shapes) == len(texts)
    shapes.clear()
    encode_sorted(embed, feature, lengths, padding="left", overhead=0)  # left padding: positions must not shift
    assert all(w == feature["input_ids"].shape[1] for _, w in shapes)
    shapes.clear()
    encode_sorted(embed, feature, lengths, packed=False)
    assert shapes == [tuple(feature["input_ids"].shape)]


@pytest.mark.parametrize("task", ["retri_contrast", "cosent", "cls_contrast"])
def test_the_adapter_loss_and_gradients_do_not_change_with_packing(toy, task):
    rows = [{"dataset_name": "d", "_row": i, "text": t, "text_pos": p, "text_neg": [n], "text_pair": p, "label": s}
            for i, (t, p, n, s) in enumerate(zip(TEXTS[0], TEXTS[1], TEXTS[2], [0.1, 0.9, 0.5]))]
    if task == "cls_contrast":
        rows = [{**r, "text_pos": lab, "text_neg": [o for o in ("cat", "dog", "bird") if o != lab]}
                for r, lab in zip(rows, ("cat", "dog", "cat"))]
    collator = PiccoloCollator(toy.preprocess, {"d": TaskSpec(task, 1 if task == "retri_contrast" else 2)},
                               pad_token_id=toy.tokenizer.pad_token_id)
    from sentence_transformers.base.trainer import BaseTrainer

    batch = collator([{k: v for k, v in r.items() if task != "cosent" or k not in ("text_pos", "text_neg")}
                      for r in rows])
    features, labels = BaseTrainer.collect_features(None, {k: v for k, v in batch.items() if k != "dataset_name"})
    results, encoded = [], []
    hook = toy[0].register_forward_hook(lambda m, args, out: encoded[-1].append(out["input_ids"].numel()))
    for packed in (False, True):
        toy.zero_grad()
        encoded.append([])
        loss = PiccoloLoss(toy, task, mrl_dims=[8, 16], packed=packed)([dict(f) for f in features], labels)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in toy.parameters() if p.grad is not None]))
    hook.remove()
    lengths = labels["lengths"]
    ends = plan_chunks(lengths)  # the device's default cost per chunk (CPU)
    planned = sum((e - s) * lengths[e - 1] for s, e in zip([0] + ends[:-1], ends))
    assert sum(encoded[0]) == len(lengths) * max(lengths) and sum(encoded[1]) == planned <= sum(encoded[0])
    (l0, g0), (l1, g1) = results
    torch.testing.assert_close(l1, l0, atol=1e-6, rtol=1e-5)
    assert len(g0) == len(g1) > 0
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
