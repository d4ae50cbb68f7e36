"""The shared rank-window picker: blocked top-k equals a full sort; the window rules drop by identity and bounds."""

import torch

from piccolo_lib.data.negatives import WindowCounts, rank_topk, window_candidates


def test_blocked_topk_equals_sorting_the_whole_matrix():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(37, 8, generator=g), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(101, 8, generator=g), dim=-1)
    sims, idx = rank_topk(q, d, 15, block_floats=300)  # 2 queries per block: 19 blocks
    full = q @ d.T
    ref_sims, ref_idx = full.sort(dim=1, descending=True)
    torch.testing.assert_close(sims, ref_sims[:, :15])
    assert torch.equal(idx, ref_idx[:, :15])
    assert rank_topk(q, d[:5], 15)[0].shape == (37, 5)  # a corpus smaller than k: all of it


def test_window_rules_and_counts():
    sims = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    ids = [10, 11, 12, 13, 14, 15]  # text id of each corpus row
    counts = WindowCounts()
    kept = window_candidates(sims, [0, 1, 2, 3, 4, 5], ids, exclude={11, 14}, max_sim=0.85, min_sim=0.45,
                             counts=counts)
    assert kept == [2, 3]  # 0 too close, 1 and 4 excluded, 5 too easy
    assert (counts.seen, counts.kept, counts.excluded, counts.too_close, counts.too_easy) == (6, 2, 2, 1, 1)
