"""The task families: one text table per batch, index tensors into it, and the same losses as encoding every string."""

import pytest
import torch

from piccolo_lib.data import validate
from piccolo_lib.losses import cls_contrast, matryoshka, retrieval_infonce
from piccolo_lib.tasks import (TASKS, Draw, LossOptions, PiccoloCollator, Rule, Task, TaskSpec, TextTable,
                               canonical_type, get_task)
from piccolo_lib.text import text_id
from piccolo_lib.train.adapter import PiccoloLoss

VOCAB = {c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789:? ")}  # 0 = padding


def char_tokenize(texts, max_length=64):
    """One id per character, right-padded, with an attention mask (like model.preprocess)."""
    ids = [[VOCAB[c] for c in t.lower()[:max_length]] for t in texts]
    width = max(map(len, ids))
    return {"input_ids": torch.tensor([x + [0] * (width - len(x)) for x in ids]),
            "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])}


class CharBag(torch.nn.Module):
    """A 'model': the mean of character embeddings over the real tokens; counts the rows it encodes."""

    def __init__(self, dim=6):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(len(VOCAB) + 1, dim)
        self.rows = 0

    def forward(self, f):
        self.rows += f["input_ids"].shape[0]
        mask = f["attention_mask"].unsqueeze(-1).float()
        return {"sentence_embedding": (self.emb(f["input_ids"]) * mask).sum(1) / mask.sum(1)}


def collate(rows, task, k, **spec):
    out = PiccoloCollator(char_tokenize, {"d": TaskSpec(task, k, **spec)}, seed=0)(
        [{**r, "dataset_name": "d", "_row": i} for i, r in enumerate(rows)])
    return {k[len("texts_"):]: v for k, v in out.items() if k.startswith("texts_")}, out["label"]


def test_a_text_is_in_the_table_once_per_role():
    table = TextTable()
    assert table.add("query", "Cats sleep") == table.add("query", " cats  sleep") == 0  # one text identity
    assert table.add("passage", "cats sleep") == 1  # another role: another prompt, another row
    assert table.index("passage", ["x", "cats sleep", "x"]).tolist() == [2, 1, 2] and len(table) == 3
    with pytest.raises(ValueError, match="role must be one of"):
        table.add("label", "x")


def test_the_table_is_sorted_by_length_and_the_indices_follow():
    rows = [{"text": "a long query text", "text_pos": "p", "text_neg": ["a middling one", "p"]},
            {"text": "q", "text_pos": "a middling one", "text_neg": ["zz"]}]
    feature, label = collate(rows, "retri_contrast", 1, query_prompt="q: ")
    lengths = feature["attention_mask"].sum(1).tolist()
    assert lengths == sorted(lengths) == label["lengths"] and label["padding"] == "right"
    decode = {i: c for c, i in VOCAB.items()}
    text = lambda r: "".join(decode[int(t)] for t in feature["input_ids"][r] if t)  # noqa: E731
    assert [text(int(r)) for r in label["query"]] == ["q: a long query text", "q: q"]  # prompt on the query role
    assert [text(int(r)) for r in label["positive"]] == ["p", "a middling one"]
    assert text(int(label["negative"][0, 0])) == "a middling one"  # "p" is the positive: never its own negative
    assert feature["input_ids"].shape[0] == 5  # 2 queries + 3 distinct passages: "a middling one" once
    assert label["ids"][1, 0] == text_id("a middling one") == label["ids"][0, 1]  # the false-negative id


def test_label_contrast_encodes_each_label_once_and_equals_encoding_every_label_string():
    rows = [{"text": f"text {i}", "text_pos": lab, "text_neg": [x for x in ("cat", "dog", "bird") if x != lab]}
            for i, lab in enumerate(["cat", "dog", "cat", "bird"])]
    feature, label = collate(rows, "cls_contrast", 2)
    model = CharBag()
    loss = PiccoloLoss(model, "cls_contrast", packed=False)([feature], label, num_items_in_batch=4)
    loss.backward()
    grad = model.emb.weight.grad.clone()
    assert model.rows == 4 + 3  # 4 texts, 3 distinct labels
    model.zero_grad()
    enc = lambda texts: model(char_tokenize(texts))["sentence_embedding"]  # noqa: E731
    gold = [r["text_pos"] for r in rows]
    table_text = lambda r: next(t for t in ("cat", "dog", "bird") if  # noqa: E731
                                torch.equal(feature["input_ids"][r][:len(t)], char_tokenize([t])["input_ids"][0]))
    negs = [[table_text(int(label["labels"][i, j])) for j in (1, 2)] for i in range(4)]
    every = torch.stack([enc(n) for n in negs])  # (B, K, D): every label string encoded, the reference's way
    ref = cls_contrast(enc([r["text"] for r in rows]), enc(gold), every)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), abs=1e-6)
    assert torch.allclose(grad, model.emb.weight.grad, atol=1e-6)


def test_a_plain_step_is_one_forward_and_packed_chunks_give_the_same_loss():
    rows = [{"text": f"query number {i}" * (i + 1), "text_pos": f"passage {i}", "text_neg": [f"neg {i}", "shared"]}
            for i in range(6)]
    feature, label = collate(rows, "retri_contrast", 2)
    model = CharBag()
    plain = PiccoloLoss(model, "retrieval", mrl_dims=[2, 4, 6], packed=False)([feature], label)
    assert model.rows == feature["input_ids"].shape[0]  # one forward over the table
    emb = model(feature)["sentence_embedding"]
    q, p, n = emb[label["query"]], emb[label["positive"]], emb[label["negative"]]
    expected = matryoshka(retrieval_infonce, [2, 4, 6], (q, p, n), positive_ids=label["ids"][:, 0],
                          negative_ids=label["ids"][:, 1:])
    assert plain.item() == pytest.approx(expected.item(), rel=1e-6)
    packed = PiccoloLoss(model, "retrieval", mrl_dims=[2, 4, 6])([feature], label)
    assert packed.item() == pytest.approx(plain.item(), rel=1e-6)


def test_the_registry_routes_aliases_and_refuses_unknown_types():
    assert {canonical_type(a) for a in ("retrieval", "reranking")} == {"retri_contrast"}
    assert get_task("sts") is TASKS["cosent"] and get_task("clustering") is TASKS["cls_contrast"]
    with pytest.raises(ValueError, match="unknown task type 'regression'.*retri_contrast"):
        get_task("regression")


class Triplet(Task):
    """A fourth family written as the architecture page says: one class, one registry line."""

    name = "triplet"
    aliases = ("triplets",)
    columns = ("text", "text_pos", "text_neg")
    rules = (Rule("text", "text"), Rule("text_pos", "text"), Rule("text_neg", "texts"), Rule("text_neg", "negatives"))
    temperature, weight = 0.05, 1.0
    loss_fn = staticmethod(lambda a, p, n, *, temperature, weight: weight * torch.relu(
        (a * n).sum(-1) - (a * p).sum(-1) + temperature).mean())
    loss_label = "triplet margin"
    index_keys = ("anchor", "positive", "negative")

    def collate(self, rows, table, draw: Draw, *, dataset, neg_num):
        return {"anchor": table.index("query", [r["text"] for r in rows]),
                "positive": table.index("passage", [r["text_pos"] for r in rows]),
                "negative": table.index("passage", [r["text_neg"][0] for r in rows])}

    def loss(self, emb, batch, options: LossOptions):
        return self._nested((emb[batch["anchor"]], emb[batch["positive"]], emb[batch["negative"]]), options)


def test_a_new_task_family_is_one_class_and_one_registry_entry(monkeypatch):
    import piccolo_lib.tasks as tasks

    monkeypatch.setitem(tasks.TASKS, "triplet", Triplet())
    monkeypatch.setitem(tasks.ALIASES, "triplets", "triplet")
    rows = [{"text": "a", "text_pos": "b", "text_neg": ["c"]}, {"text": "d", "text_pos": "e", "text_neg": []}]
    task_type, errors = validate(rows, "t.jsonl", task_type="triplets")
    assert task_type == "triplet" and errors and "row 2: field 'text_neg'" in errors[0]
    feature, label = collate(rows[:1] * 3, "triplets", 0)
    loss = PiccoloLoss(CharBag(), "triplets", mrl_dims=[3, 6])([feature], label)
    assert loss.shape == () and torch.isfinite(loss)
