"""Task-homogeneous, rank-aligned batching and the collator's batch layouts."""

from collections import Counter

import pytest
import torch
from torch.utils.data import BatchSampler, ConcatDataset, SequentialSampler

from piccolo_lib.data.sampling import TaskHomogeneousBatchSampler, dataset_weights, distinct_steps
from piccolo_lib.tasks import PiccoloCollator, TaskSpec
from piccolo_lib.text import text_id

SIZES = [100, 64, 37]


def make_sampler(world_size=1, batch=8, seed=0, **kw):
    ds = ConcatDataset([list(range(n)) for n in SIZES])
    bs = [BatchSampler(SequentialSampler(range(n)), batch, True) for n in SIZES]
    return TaskHomogeneousBatchSampler(ds, bs, seed=seed, world_size=world_size, **kw)


def which(index):
    bounds = [0, 100, 164, 201]
    return next(d for d in range(3) if bounds[d] <= index < bounds[d + 1])


def deal(batches, world_size):
    """What accelerate does: rank r gets batches r, r + W, r + 2W, ..."""
    return [batches[r::world_size] for r in range(world_size)]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_every_rank_gets_the_same_dataset_at_each_step_and_disjoint_rows(world_size):
    batches = list(make_sampler(world_size))
    assert len(batches) == len(make_sampler(world_size))
    per_rank = deal(batches, world_size)
    steps = len(per_rank[0])
    assert all(len(r) == steps for r in per_rank)
    for step in range(steps):
        group = [per_rank[r][step] for r in range(world_size)]
        datasets_at_step = {which(i) for b in group for i in b}
        assert len(datasets_at_step) == 1  # one dataset (so one task type) across all ranks
        rows = [i for b in group for i in b]
        assert len(rows) == len(set(rows))  # ranks never see the same row at a step


def test_size_mode_uses_each_dataset_in_proportion_and_covers_rows_once():
    batches = list(make_sampler(1, batch=8))
    counts = Counter(which(b[0]) for b in batches)
    assert counts == {0: 100 // 8, 1: 64 // 8, 2: 37 // 8}
    rows = [i for b in batches for i in b]
    assert len(rows) == len(set(rows))  # one pass: no row twice in an epoch


def test_repeat_count_multiplies_a_dataset():
    batches = list(make_sampler(1, batch=8, repeats=[1, 3, 1]))
    assert Counter(which(b[0]) for b in batches)[1] == 64 * 3 // 8


def test_seeded_and_reshuffled_each_epoch():
    a, b = make_sampler(seed=1), make_sampler(seed=1)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(make_sampler(seed=2)) != list(make_sampler(seed=1))


def test_weight_modes():
    p = dataset_weights(SIZES, [1, 1, 1])
    assert p == pytest.approx([s / sum(SIZES) for s in SIZES])
    flat = dataset_weights(SIZES, [1, 1, 1], "temperature", temperature=1e6)
    assert flat == pytest.approx([1 / 3] * 3, abs=1e-4)
    assert dataset_weights(SIZES, [1, 1, 1], "explicit", [1, 1, 2]) == pytest.approx([0.25, 0.25, 0.5])
    with pytest.raises(ValueError, match="unknown sampling mode 'uniformish'"):
        dataset_weights(SIZES, [1, 1, 1], "uniformish")
    counts = Counter(which(b[0]) for b in make_sampler(1, mode="explicit", weights=[0, 0, 1]))
    assert set(counts) == {2}


def test_text_id_normalises_whitespace_and_case():
    assert text_id(" Hello  World ") == text_id("hello world")
    assert text_id("a") != text_id("b")


def fake_preprocess(texts, max_length=None):
    return {"input_ids": torch.tensor([[len(t)] for t in texts])}


def test_collator_layouts():
    specs = {"cls": TaskSpec("cls_contrast", 2), "ret": TaskSpec("retri_contrast", 2, "q: "),
             "sts": TaskSpec("cosent")}
    col = PiccoloCollator(fake_preprocess, specs, seed=0)
    cls_rows = [{"dataset_name": "cls", "_row": i, "text": f"t{i}", "text_pos": lab,
                 "text_neg": [x for x in "ABC" if x != lab]} for i, lab in enumerate("ABA")]
    batch = col(cls_rows)
    assert batch["texts_input_ids"].shape[0] == 3 + 3  # 3 texts, the 3 distinct label texts once
    labels = batch["label"]["labels"]
    assert labels.shape == (3, 3) and all(labels[i, 0] != labels[i, j] for i in range(3) for j in (1, 2))
    ret_rows = [{"dataset_name": "ret", "_row": i, "text": "q", "text_pos": ["p1", "p2"],
                 "text_neg": ["n1", "n2", "n3"]} for i in range(4)]
    batch = col(ret_rows)
    label = batch["label"]
    assert label["negative"].shape == (4, 2) and label["ids"].shape == (4, 3)
    assert batch["texts_input_ids"].shape[0] == 1 + 2 + 3  # one query text, at most 2 + 3 distinct passages
    assert int(batch["texts_input_ids"][int(label["query"][0]), 0]) == len("q: q")  # query prompt applied
    sts_rows = [{"dataset_name": "sts", "_row": 0, "text": "a", "text_pair": "b", "label": 3}]
    assert col(sts_rows)["label"]["scores"].tolist() == [3.0]


def test_collator_resamples_per_epoch_but_is_deterministic():
    specs = {"ret": TaskSpec("retri_contrast", 1)}
    rows = lambda: [{"dataset_name": "ret", "_row": i, "text": "q", "text_pos": "p",
                     "text_neg": [f"n{j}" for j in range(20)]} for i in range(6)]
    a = PiccoloCollator(fake_preprocess, specs, seed=0)
    b = PiccoloCollator(fake_preprocess, specs, seed=0)
    first = a(rows())["label"]["ids"]
    assert torch.equal(first, b(rows())["label"]["ids"])
    a.state.epoch = 1
    assert not torch.equal(first, a(rows())["label"]["ids"])


def test_a_step_never_holds_a_row_twice_even_across_repeats():
    """The sampler's promise: with repeat 2, 2 ranks and batch 4 the permutations of a repeat used to meet inside a
    step (43 of 50 seeds gave a step with a repeated row before distinct_steps)."""
    sizes, batch, world = [10, 9], 4, 2  # each at least one step (8 rows)
    ds = ConcatDataset([list(range(n)) for n in sizes])
    bs = [BatchSampler(SequentialSampler(range(n)), batch, True) for n in sizes]
    for seed in range(50):
        sampler = TaskHomogeneousBatchSampler(ds, bs, seed=seed, world_size=world, repeats=[2, 2])
        batches = list(sampler)
        steps = [sum(batches[i:i + world], []) for i in range(0, len(batches), world)]
        assert all(len(set(s)) == len(s) == batch * world for s in steps), seed
        counts = Counter(i for s in steps for i in s)  # every row still drawn as often as before
        assert sorted(counts.values())[-1] <= 2


def test_distinct_steps_keeps_every_row_and_repeats_only_when_it_must():
    assert distinct_steps([3, 1, 3, 2, 1, 2], 3) == [[3, 1, 2], [3, 1, 2]]
    assert distinct_steps([5, 5, 5, 5], 2) == [[5, 5], [5, 5]]  # one distinct row: a repeat is unavoidable
    stream = [i % 7 for i in range(28)]
    assert sorted(sum(distinct_steps(stream, 7), [])) == sorted(stream)
