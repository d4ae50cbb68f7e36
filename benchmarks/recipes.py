"""The three ways to train on the same batches: piccolo_lib, plain sentence-transformers, the reference.

Each recipe turns a :class:`~benchmarks.workload.Batch` into model inputs (``prepare``: the
collator's work, inside the timed step as in training) and a scalar loss (``loss``). All three
use the same model object, the same temperatures, loss weights and MRL dims:

* :class:`Piccolo` (a): ``PiccoloCollator`` + ``PiccoloLoss`` (pure losses, distinct labels encoded once,
  packed encoding: each distinct row once, length-sorted chunks); :class:`Unpacked`: the same, one pass per column.
* :class:`PlainST` (b): what a sentence-transformers user would write: the default data collator,
  ``MultipleNegativesRankingLoss`` (retrieval; classification with the gold label as positive and
  the label negatives as extra columns), ``CoSENTLoss``, all in ``MatryoshkaLoss``. MNRL and CoSENT
  compute the Piccolo formulas (scale = 1/tau); Matryoshka weights w/len(dims) give the weighted mean.
  For classification MNRL differs by design: other rows' labels are negatives too.
* :class:`Reference` (c): the reference implementation's strategy, re-implemented here: every label
  string of every row encoded, broadcast ``cosine_similarity`` matrices, a B x (B*K) label
  similarity matrix whose per-row blocks are picked in a Python loop (OpenSenseNova/piccolo-embedding,
  ``piccolo/criteria.py`` and ``model.py``, read and rewritten, not copied).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from sentence_transformers.base.trainer import BaseTrainer
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MatryoshkaLoss, MultipleNegativesRankingLoss
from torch import Tensor

from piccolo_lib.model.packing import CHUNK_OVERHEAD_TOKENS, packed_embed, plan_chunks
from piccolo_lib.tasks import DEFAULT_HPARAMS, PiccoloCollator, TaskSpec
from piccolo_lib.train.adapter import PiccoloLoss

from .workload import PASSAGE_MAX_LEN, QUERY_MAX_LEN, Batch

Features = tuple[list[dict[str, Tensor]], Tensor | None]


def collect_features(batch: dict) -> Features:
    """The trainer's own split of a collated dict into per-column features and labels."""
    batch = {k: v for k, v in batch.items() if k != "dataset_name"}
    return BaseTrainer.collect_features(None, batch)  # uses no trainer state


def rows_and_tokens(features: list[dict[str, Tensor]], packed: bool = False, pad_token_id: int = 0) -> tuple[int, int]:
    """Rows the encoder runs on and padded tokens it processes: summed over the feature columns, or, ``packed``,
    over the chunks :func:`piccolo_lib.model.packing.packed_embed` would encode (each distinct row once)."""
    if not packed:
        return sum(f["input_ids"].shape[0] for f in features), sum(f["input_ids"].numel() for f in features)
    if len(features) == 1:  # piccolo_lib's batch: one table of distinct texts sorted by length, cut in chunks
        lengths = features[0]["attention_mask"].sum(1).tolist()
        ends = plan_chunks(lengths, CHUNK_OVERHEAD_TOKENS["cpu"])
        return len(lengths), sum((e - s) * lengths[e - 1] for s, e in zip([0] + ends[:-1], ends))
    shapes: list[tuple[int, int]] = []
    packed_embed(lambda f: shapes.append(tuple(f["input_ids"].shape)) or torch.zeros(len(f["input_ids"]), 1),
                 features, pad_token_id=pad_token_id)
    return sum(r for r, _ in shapes), sum(r * w for r, w in shapes)


class Piccolo:
    """(a) piccolo_lib: its collator and its loss adapter, as ``piccolo train`` wires them."""

    name = "piccolo_lib"

    def __init__(self, model, mrl_dims: Sequence[int] | None, *, mask_false_negatives: bool = True,
                 packed: bool = True) -> None:
        self.model, self.mrl_dims = model, list(mrl_dims) if mrl_dims else None
        self.packed = packed
        self.mask = mask_false_negatives  # off: no text ids, the plain InfoNCE that MNRL computes
        pad = getattr(getattr(model, "tokenizer", None), "pad_token_id", None) or 0
        self.collator = PiccoloCollator(model.preprocess, {}, query_max_len=QUERY_MAX_LEN,
                                        passage_max_len=PASSAGE_MAX_LEN, pad_token_id=pad)
        self.losses = {t: PiccoloLoss(model, t, mrl_dims=self.mrl_dims, packed=packed) for t in DEFAULT_HPARAMS}

    def prepare(self, batch: Batch) -> Features:
        self.collator.specs[batch.task] = TaskSpec(batch.task, batch.k)
        rows = [{"dataset_name": batch.task, "_row": i, "text": t, "text_pos": p,
                 **({"text_pair": p, "label": s} if batch.scores else {"text_neg": n})}
                for i, (t, p, n, s) in enumerate(zip(batch.texts, batch.positives,
                                                     batch.negatives or [[]] * batch.size,
                                                     batch.scores or [0.0] * batch.size))]
        features, labels = collect_features(self.collator(rows))
        if batch.task == "retri_contrast" and not self.mask:
            labels = {k: v for k, v in labels.items() if k != "ids"}  # no text ids: nothing masked
        return features, labels

    def loss(self, batch: Batch, prepared: Features) -> Tensor:
        return self.losses[batch.task](*prepared)

    def encoded(self, features: list[dict[str, Tensor]]) -> tuple[int, int]:
        """(rows, padded tokens) the encoder runs on for these features."""
        pad = getattr(getattr(self.model, "tokenizer", None), "pad_token_id", None) or 0
        return rows_and_tokens(features, packed=getattr(self, "packed", False), pad_token_id=pad)


class PlainST(Piccolo):
    """(b) plain sentence-transformers: default collator, MNRL / CoSENT inside MatryoshkaLoss."""

    name = "sentence-transformers"

    def __init__(self, model, mrl_dims: Sequence[int] | None) -> None:
        self.model, self.mrl_dims = model, list(mrl_dims) if mrl_dims else None
        # One max length for every column (the default collator has no per-column lengths); the
        # workload's queries and labels are all shorter than 64 tokens, so this truncates the same.
        self.collator = SentenceTransformerDataCollator(preprocess_fn=model.preprocess, max_length=PASSAGE_MAX_LEN)
        hp = DEFAULT_HPARAMS
        base = {
            "retri_contrast": MultipleNegativesRankingLoss(model, scale=1 / hp["retri_contrast"]["temperature"]),
            "cosent": CoSENTLoss(model, scale=1 / hp["cosent"]["temperature"]),
            "cls_contrast": MultipleNegativesRankingLoss(model, scale=1 / hp["cls_contrast"]["temperature"]),
        }
        self.losses = {}
        for task, loss in base.items():
            w = hp[task]["weight"]
            if self.mrl_dims:  # MatryoshkaLoss sums over dims: weights w/len(dims) make it the weighted mean
                n = len(self.mrl_dims)
                self.losses[task] = MatryoshkaLoss(model, loss, self.mrl_dims, [w / n] * n)
            else:
                self.losses[task] = loss if w == 1.0 else _Scaled(loss, w)

    def prepare(self, batch: Batch) -> Features:
        if batch.task == "cosent":
            rows = [{"sentence1": t, "sentence2": p, "label": s}
                    for t, p, s in zip(batch.texts, batch.positives, batch.scores)]
        else:
            rows = [{"anchor": t, "positive": p, **{f"negative_{j + 1}": x for j, x in enumerate(n)}}
                    for t, p, n in zip(batch.texts, batch.positives, batch.negatives)]
        return collect_features(self.collator(rows))


class _Scaled(torch.nn.Module):
    def __init__(self, loss: torch.nn.Module, weight: float) -> None:
        super().__init__()
        self.loss, self.weight = loss, weight

    def forward(self, features, labels):
        return self.weight * self.loss(features, labels)


def _ref_retrieval(t: Tensor, p: Tensor, n: Tensor, tau: float) -> Tensor:
    """The reference's RetriContrastLoss with use_all_pair: [B x B positives | B x BK negatives]."""
    sim = torch.cat([torch.cosine_similarity(t[:, None], p[None], dim=-1),
                     torch.cosine_similarity(t[:, None], n[None], dim=-1)], dim=1) / tau
    return F.cross_entropy(sim, torch.arange(t.shape[0]))


def _ref_cosent(t: Tensor, p: Tensor, scores: Tensor, tau: float, w: float) -> Tensor:
    """The reference's CoSentLoss on cosine_similarity of the pairs."""
    s = torch.cosine_similarity(t, p, dim=-1) / tau
    diff = -(s[None, :] - s[:, None])
    diff = diff[~(scores[None, :] <= scores[:, None])]
    return torch.logsumexp(torch.cat([diff, torch.zeros(1)]), dim=0) * w


def _ref_cls(t: Tensor, p: Tensor, n: Tensor, tau: float, w: float) -> Tensor:
    """The reference's ClsContrastLoss: a B x (B*K) matrix, then each row's own K columns by a loop."""
    b = t.shape[0]
    k = n.shape[0] // b
    sim_neg = torch.cosine_similarity(t[:, None], n[None], dim=-1)  # (B, B*K), via a (B, B*K, D) product
    own = torch.stack([sim_neg[i, i * k:(i + 1) * k] for i in range(b)])  # (B, K)
    sim = torch.cat([torch.cosine_similarity(t, p, dim=-1)[:, None], own], dim=1) / tau
    return F.cross_entropy(sim, torch.zeros(b, dtype=torch.long)) * w


class Reference(Piccolo):
    """(c) the reference strategy: every string encoded, one forward per column, MRL as a loop of dims."""

    name = "reference strategy"

    def __init__(self, model, mrl_dims: Sequence[int] | None) -> None:
        self.model, self.mrl_dims = model, list(mrl_dims) if mrl_dims else None

    def prepare(self, batch: Batch) -> Features:
        tok = self.model.preprocess
        if batch.task == "cosent":
            return [tok(batch.texts, max_length=QUERY_MAX_LEN), tok(batch.positives, max_length=QUERY_MAX_LEN)], \
                torch.tensor(batch.scores)
        side = PASSAGE_MAX_LEN if batch.task == "retri_contrast" else QUERY_MAX_LEN
        flat = [x for row in batch.negatives for x in row]  # (B*K,) every label / passage string
        return [tok(batch.texts, max_length=QUERY_MAX_LEN), tok(batch.positives, max_length=side),
                tok(flat, max_length=side)], None

    def loss(self, batch: Batch, prepared: Features) -> Tensor:
        features, scores = prepared
        embs = [self.model(f)["sentence_embedding"] for f in features]
        hp = DEFAULT_HPARAMS[batch.task]
        dims = self.mrl_dims or [embs[0].shape[-1]]
        total = torch.zeros(())
        for d in dims:
            e = [x[..., :d] for x in embs]
            if batch.task == "retri_contrast":
                total = total + _ref_retrieval(*e, hp["temperature"]) / len(dims)
            elif batch.task == "cosent":
                total = total + _ref_cosent(*e, scores, hp["temperature"], hp["weight"]) / len(dims)
            else:
                total = total + _ref_cls(*e, hp["temperature"], hp["weight"]) / len(dims)
        return total


class Unpacked(Piccolo):
    """(a) without packed encoding: one forward pass per feature column, as before issue 20."""

    name = "piccolo_lib, unpacked"

    def __init__(self, model, mrl_dims: Sequence[int] | None, **kwargs) -> None:
        super().__init__(model, mrl_dims, packed=False, **kwargs)


RECIPES = {"piccolo_lib": Piccolo, "sentence-transformers": PlainST, "reference": Reference}
ALL_RECIPES = {**RECIPES, Unpacked.name: Unpacked}  # by name, for benchmarks.memory's command line
