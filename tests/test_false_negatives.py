"""False-negative masking modes (text | margin | off) against hand-computed losses."""

import math

import pytest
import torch

from piccolo_lib.losses import false_negative_mask, retrieval_infonce
from piccolo_lib.train.adapter import PiccoloLoss


def unit(*rows):
    t = torch.tensor(rows, dtype=torch.float64)
    return t / t.norm(dim=-1, keepdim=True)


def ce(logits: list[float], target: int) -> float:
    """-log softmax(logits)[target], logits already divided by tau; -inf entries are absent."""
    kept = [x for x in logits if x != -math.inf]
    return -(logits[target] - math.log(sum(math.exp(x) for x in kept)))


# Two queries, two positives (in-batch) and one hard negative each, 2-d so every cosine is readable.
Q = unit([1.0, 0.0], [0.0, 1.0])
P = unit([0.8, 0.6], [0.6, 0.8])  # cos(q0, p0) = 0.8, cos(q1, p1) = 0.8
N = unit([0.9, 0.436], [0.0, 1.0]).reshape(2, 1, 2)  # n0 beats p0 for q0; n1 is q1 itself (cos 1.0)
POS_IDS = torch.tensor([10, 11])
NEG_IDS = torch.tensor([[12], [10]])  # n1 has p0's text: a false negative for query 0 only
TAU = 0.1


def cosines():
    cands = torch.cat([P, N.reshape(-1, 2)])
    return (Q @ cands.T).tolist()  # (2, 4): columns p0, p1, n0, n1


def hand(drop: set[tuple[int, int]]) -> float:
    sims = cosines()
    total = 0.0
    for i in range(2):
        logits = [-math.inf if (i, j) in drop else s / TAU for j, s in enumerate(sims[i])]
        total += ce(logits, i)
    return total / 2


def run(mode: str, margin: float = 0.0) -> float:
    return retrieval_infonce(Q, P, N, temperature=TAU, positive_ids=POS_IDS, negative_ids=NEG_IDS,
                             false_negatives=mode, margin=margin).item()


def test_off_masks_nothing():
    assert run("off") == pytest.approx(hand(set()), rel=1e-12)


def test_text_masks_the_positive_text_seen_again():
    assert run("text") == pytest.approx(hand({(0, 3)}), rel=1e-12)  # n1 == p0's text, for query 0


def test_margin_also_masks_candidates_near_or_above_the_positive():
    sims = cosines()
    # margin 0: drop what scores above the positive: q0 -> n0 (0.9 > 0.8); q1 -> n1 (1.0 > 0.8)
    assert sims[0][2] > sims[0][0] and sims[1][3] > sims[1][1]
    assert run("margin", 0.0) == pytest.approx(hand({(0, 3), (0, 2), (1, 3)}), rel=1e-12)
    # margin 0.25: also within 0.25 below the positive: q0 -> p1 (0.6 > 0.55); q1 -> p0 (0.6 > 0.55)
    assert run("margin", 0.25) == pytest.approx(hand({(0, 3), (0, 2), (1, 3), (0, 1), (1, 0)}), rel=1e-12)
    # margin -0.15 (Qwen3-Embedding's "above the positive + 0.1" style): only n1 for q1 (1.0 > 0.95)
    assert run("margin", -0.15) == pytest.approx(hand({(0, 3), (1, 3)}), rel=1e-12)


def test_text_is_the_default_and_unknown_modes_are_errors():
    assert retrieval_infonce(Q, P, N, temperature=TAU, positive_ids=POS_IDS, negative_ids=NEG_IDS).item() == \
        pytest.approx(run("text"), rel=1e-15)
    with pytest.raises(ValueError, match="false_negative_masking must be one of"):
        run("never")
    with pytest.raises(ValueError, match="false_negative_masking must be one of"):
        PiccoloLoss(torch.nn.Identity(), "retrieval", false_negatives="identity")
    from piccolo_lib.config import load_config

    with pytest.raises(ValueError, match="key 'false_negative_masking': 'margn' is not one of text, margin, off; "
                                         "did you mean 'margin'"):
        load_config(None, ["false_negative_masking=margn"])


def test_the_positive_is_never_masked():
    sims = torch.tensor([[0.1, 0.9, 0.9]])
    mask = false_negative_mask(sims, torch.tensor([0]), torch.tensor([5]), torch.tensor([5, 5, 5]), mode="margin",
                               margin=1.0)
    assert mask.tolist() == [[False, True, True]]


def test_margin_with_gathered_candidates_uses_this_ranks_positive_column():
    """Rank 1 of 2: its query's positive is column target_offset + i of the gathered positives."""
    q = unit([1.0, 0.0])
    gathered = unit([0.0, 1.0], [0.8, 0.6])  # rank 0's positive, then this rank's own
    loss = retrieval_infonce(q, gathered, None, temperature=TAU, target_offset=1, false_negatives="margin",
                             margin=0.0).item()
    sims = (q @ gathered.T)[0].tolist()  # other rank's positive (0.0) is below 0.8: kept
    assert loss == pytest.approx(ce([s / TAU for s in sims], 1), rel=1e-12)
    loss = retrieval_infonce(q, gathered, None, temperature=TAU, target_offset=1, false_negatives="margin",
                             margin=0.9).item()  # 0.0 > 0.8 - 0.9: dropped, the positive alone is left
    assert loss == pytest.approx(0.0, abs=1e-12)
