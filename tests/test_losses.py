"""The three losses and MRL against plain-loop references written from the formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from piccolo_lib.losses import cls_contrast, cosent, matryoshka, retrieval_infonce
from piccolo_lib.tasks import canonical_type


def cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def ref_infonce(q, p, n, tau):
    """-log softmax over [all positives, all negatives] at the own positive, averaged (plain loops)."""
    cands = list(p) + ([x for row in n for x in row] if n is not None else [])
    total = 0.0
    for i in range(len(q)):
        logits = [cos(q[i], c) / tau for c in cands]
        m = max(logits)
        total += -(logits[i] - m - math.log(sum(math.exp(x - m) for x in logits)))
    return total / len(q)


def ref_cosent(a, b, y, tau, w):
    s = [cos(a[i], b[i]) / tau for i in range(len(a))]
    terms = [math.exp(s[j] - s[i]) for i in range(len(s)) for j in range(len(s)) if y[i] > y[j]]
    return w * math.log(1 + sum(terms))


def ref_cls(t, p, n, tau, w):
    total = 0.0
    for i in range(len(t)):
        logits = [cos(t[i], p[i]) / tau] + [cos(t[i], x) / tau for x in n[i]]
        m = max(logits)
        total += -(logits[0] - m - math.log(sum(math.exp(x - m) for x in logits)))
    return w * total / len(t)


@pytest.fixture
def emb():
    g = torch.Generator().manual_seed(0)
    return lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)


def test_infonce_matches_reference(emb):
    q, p, n = emb(5, 8), emb(5, 8), emb(5, 3, 8)
    for tau in (0.01, 0.05):
        assert retrieval_infonce(q, p, n, temperature=tau).item() == pytest.approx(ref_infonce(q, p, n, tau), rel=1e-5)
    assert retrieval_infonce(q, p, None, temperature=0.05).item() == pytest.approx(ref_infonce(q, p, None, 0.05), rel=1e-5)


def test_infonce_masks_duplicate_positive_by_text_id(emb):
    p = emb(3, 8)
    p[2] = p[0]  # the same passage twice in the batch
    q = p + 0.5 * emb(3, 8)  # each query close to its positive: the duplicate competes with it
    ids = torch.tensor([7, 8, 7])
    masked = retrieval_infonce(q, p, temperature=0.05, positive_ids=ids)
    # reference: for row 0 drop column 2, for row 2 drop column 0
    total = 0.0
    for i, keep in enumerate([[0, 1], [0, 1, 2], [1, 2]]):
        logits = torch.tensor([cos(q[i], p[j]) / 0.05 for j in keep], dtype=torch.float64)
        total += -torch.log_softmax(logits, 0)[keep.index(i)].item()
    assert masked.item() == pytest.approx(total / 3, rel=1e-5)
    assert masked.item() != pytest.approx(retrieval_infonce(q, p, temperature=0.05).item(), rel=1e-3)


def test_cosent_matches_reference_and_edge_cases(emb):
    a, b = emb(6, 8), emb(6, 8)
    y = torch.tensor([0.0, 1.0, 2.5, 5.0, 3.0, 1.0])
    assert cosent(a, b, y).item() == pytest.approx(ref_cosent(a, b, y, 0.05, 0.04), rel=1e-5)
    assert cosent(a, b, torch.full((6,), 2.0)).item() == 0.0  # nothing to rank: log 1
    assert cosent(a[:1], b[:1], y[:1]).item() == 0.0  # B = 1


def test_cosent_equals_sentence_transformers_cosent_with_scale_20(emb):
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    a, b = emb(7, 8).float(), emb(7, 8).float()
    y = torch.tensor([0.0, 1.0, 2.0, 5.0, 3.0, 1.0, 4.0])

    class Fixed(torch.nn.Module):  # a "model" returning fixed embeddings per feature
        def forward(self, f):
            return {"sentence_embedding": f["e"]}

    st = CoSENTLoss(Fixed(), scale=20.0)
    ours = cosent(a, b, y, weight=1.0)
    assert ours.item() == pytest.approx(st([{"e": a}, {"e": b}], y).item(), rel=1e-5)


def test_cls_contrast_matches_reference(emb):
    t, p, n = emb(4, 8), emb(4, 8), emb(4, 5, 8)
    assert cls_contrast(t, p, n).item() == pytest.approx(ref_cls(t, p, n, 0.05, 0.2), rel=1e-5)


def test_matryoshka_is_weighted_mean_of_prefix_losses(emb):
    q, p, n = emb(4, 16), emb(4, 16), emb(4, 2, 16)
    dims = [4, 8, 16]
    expected = sum(retrieval_infonce(q[:, :d], p[:, :d], n[..., :d]) for d in dims) / 3
    assert matryoshka(retrieval_infonce, dims, (q, p, n)).item() == pytest.approx(expected.item(), rel=1e-6)
    w = [1.0, 2.0, 3.0]
    expected_w = sum(wi * retrieval_infonce(q[:, :d], p[:, :d], n[..., :d]) for wi, d in zip(w, dims)) / 6
    assert matryoshka(retrieval_infonce, dims, (q, p, n), w).item() == pytest.approx(expected_w.item(), rel=1e-6)
    with pytest.raises(ValueError, match="2 weights for 3 dims"):
        matryoshka(retrieval_infonce, dims, (q, p, n), [1.0, 2.0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_close_to_float32(emb, dtype):
    q, p, n = emb(4, 8).float(), emb(4, 8).float(), emb(4, 2, 8).float()
    full = retrieval_infonce(q, p, n)
    low = retrieval_infonce(q.to(dtype), p.to(dtype), n.to(dtype))
    assert low.dtype == torch.float32 and torch.isfinite(low)
    assert low.item() == pytest.approx(full.item(), rel=0.05)


def test_gradcheck_float64(emb):
    q, p, n = (x.requires_grad_() for x in (emb(3, 4), emb(3, 4), emb(3, 2, 4)))
    assert torch.autograd.gradcheck(lambda a, b, c: retrieval_infonce(a, b, c, temperature=0.5), (q, p, n))
    y = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: cosent(a, b, y, temperature=0.5), (q, p))
    assert torch.autograd.gradcheck(lambda a, b, c: cls_contrast(a, b, c, temperature=0.5), (q, p, n))


def test_unknown_task_type_is_a_clear_error():
    assert canonical_type("sts") == "cosent"
    with pytest.raises(ValueError, match="unknown task type 'regression'.*retri_contrast"):
        canonical_type("regression")


def test_infonce_equals_sentence_transformers_mnrl_with_scale_1_over_tau(emb):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    q, p, n = emb(6, 8).float(), emb(6, 8).float(), emb(6, 8).float()  # one hard negative per row

    class Fixed(torch.nn.Module):
        def forward(self, f):
            return {"sentence_embedding": f["e"]}

    mnrl = MultipleNegativesRankingLoss(Fixed(), scale=1 / 0.01)
    theirs = mnrl([{"e": q}, {"e": p}, {"e": n}], None)
    assert retrieval_infonce(q, p, n[:, None]).item() == pytest.approx(theirs.item(), rel=1e-5)


def test_edge_cases_single_row_and_no_negatives(emb):
    q, p = emb(1, 8), emb(1, 8)
    assert retrieval_infonce(q, p).item() == pytest.approx(0.0, abs=1e-12)  # one candidate: its own positive
    assert retrieval_infonce(q, p, emb(1, 0, 8)).item() == pytest.approx(0.0, abs=1e-12)  # K = 0
    t, pos, neg = emb(1, 8), emb(1, 8), emb(1, 3, 8)
    assert cls_contrast(t, pos, neg).item() == pytest.approx(ref_cls(t, pos, neg, 0.05, 0.2), rel=1e-6)


def test_docstring_examples_run():
    import doctest

    from piccolo_lib.losses import functions

    result = doctest.testmod(functions, extraglobs={"torch": torch})
    assert result.attempted >= 4 and result.failed == 0


def test_the_three_losses_share_one_signature_shape():
    import inspect

    from piccolo_lib.losses import cls_contrast, cosent, retrieval_infonce

    for fn in (retrieval_infonce, cosent, cls_contrast):
        params = inspect.signature(fn).parameters
        assert {"temperature", "weight"} <= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}, fn.__name__
    q, p = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.isclose(retrieval_infonce(q, p, weight=0.5), 0.5 * retrieval_infonce(q, p))
