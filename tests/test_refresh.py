"""Refreshed hard negatives: stale negatives that became easy are replaced from the rank window, never by a positive."""

import json

import torch

from piccolo_lib.train.refresh import DatedOverrides, default_window, refresh_negatives
from piccolo_lib.tasks import PiccoloCollator, TaskSpec
from piccolo_lib.train.loop import load_config, train


class Fixed:
    """A 'model' whose embedding of each text is given: the test decides every cosine."""

    training = False

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encode(self, texts, **_):
        return torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32)


def angle(deg: float) -> list[float]:
    """A unit vector at ``deg`` degrees from the query's direction (cosine = cos(deg))."""
    r = torch.deg2rad(torch.tensor(deg))
    return [float(torch.cos(r)), float(torch.sin(r))]


def test_easy_negatives_are_replaced_from_the_window_and_positives_never_taken():
    # The model has moved: the once-hard negatives "old1", "old2" now sit far below the positive (easy),
    # "kept" is still hard. The current ranking of the corpus for query "q" (by cosine):
    #   0 " Q" (the query's own text, another row's positive)  1 "pos"  2 "kept"  3 "fresh1"  4 "fresh2"  5 "old1" ...
    vectors = {"q": angle(0), " Q": angle(0), "pos": angle(10), "kept": angle(14), "fresh1": angle(16),
               "fresh2": angle(18), "old1": angle(70), "old2": angle(80), "other": angle(90)}
    rows = [{"text": "q", "text_pos": "pos"}, {"text": "other", "text_pos": " Q"}]
    negatives = [["old1", "kept", "old2"], ["fresh1", "fresh2"]]  # the corpus: every row's positives and negatives
    # the window, ranks 0-4, holds the positive and the query's text: neither may be taken
    new, stats = refresh_negatives(Fixed(vectors), rows, negatives, threshold=0.2, range_min=0, range_max=5, seed=3)
    assert stats.rows == 2 and stats.easy == 2 and stats.changed == 2
    assert new[0][1] == "kept"  # still hard: untouched
    assert sorted([new[0][0], new[0][2]]) == ["fresh1", "fresh2"]  # cos 0.96/0.95 >= cos(pos) - 0.2 = 0.78
    assert new[1] == ["fresh1", "fresh2"]  # for "other" (cos 0.28 vs its positive's 0.0) they are hard
    again, _ = refresh_negatives(Fixed(vectors), rows, negatives, threshold=0.2, range_min=0, range_max=5, seed=3)
    assert again == new  # seeded
    # a window of the top 2 ranks only holds the query's text and the positive: nothing is replaced
    same, stats = refresh_negatives(Fixed(vectors), rows, negatives, threshold=0.2, range_min=0, range_max=2)
    assert same == negatives and stats.easy == 2 and stats.changed == 0


def test_no_usable_candidate_keeps_the_negative():
    vectors = {"q": angle(0), "pos": angle(5), "old": angle(80), "also easy": angle(75)}
    rows, negatives = [{"text": "q", "text_pos": "pos"}], [["old", "also easy"]]
    new, stats = refresh_negatives(Fixed(vectors), rows, negatives, threshold=0.1, range_min=0, range_max=3)
    assert new == negatives and stats.easy == 2 and stats.changed == 0  # only positives or easy ones in the window


def test_default_window_is_the_reports_scaled_to_small_corpora():
    assert default_window(100_000) == (50, 100)
    assert default_window(400) == (20, 40)
    assert default_window(10) == (1, 2)


def negative_length(batch) -> int:
    """The token of the first row's first negative (prep's token is the text's length)."""
    return int(batch["texts_input_ids"][int(batch["label"]["negative"][0, 0]), 0])


def test_collator_samples_from_the_refreshed_list():
    def prep(texts, max_length=None):
        return {"input_ids": torch.tensor([[len(t)] for t in texts])}

    collator = PiccoloCollator(prep, {"d": TaskSpec("retri_contrast", 1)}, seed=0)
    row = {"dataset_name": "d", "_row": 0, "text": "q", "text_pos": "p", "text_neg": ["stale"]}
    collator.negative_overrides[("d", 0)] = ["fresh negative"]
    assert negative_length(collator([dict(row)])) == len("fresh negative")


def test_a_refresh_is_used_from_the_step_after_next():
    """Refreshed at the end of step N: step N + 1's batches (maybe prefetched) keep the old lists, N + 2 on use the new."""
    def prep(texts, max_length=None):
        return {"input_ids": torch.tensor([[len(t)] for t in texts])}

    collator = PiccoloCollator(prep, {"d": TaskSpec("retri_contrast", 1)}, seed=0)
    overrides = DatedOverrides(collator, batches_per_step=2)  # grad_accum 2: two batches per step
    collator.negative_overrides = overrides
    row = {"dataset_name": "d", "_row": 0, "text": "q", "text_pos": "p", "text_neg": ["old"]}
    seen = []
    for step in range(1, 6):
        if step == 3:
            overrides.add(3 + 1, {("d", 0): ["refreshed"]})  # refresh at the end of step 2 -> used from step 4
        for _ in range(2):
            seen.append((step, negative_length(collator([dict(row)]))))
    assert seen == [(s, len("old")) for s in (1, 1, 2, 2, 3, 3)] + [(s, len("refreshed")) for s in (4, 4, 5, 5)]


def test_training_with_refresh_logs_changes_per_refresh(tmp_path):
    rows = [{"text": f"问题{i}", "text_pos": f"答案{i}是这样的", "text_neg": [f"无关{i}", f"其他{i}"],
             "type": "retri_contrast"} for i in range(32)]
    path = tmp_path / "retri.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = load_config(None, {
        "data": [str(path)], "batch_size": 8, "neg_num": 1, "max_steps": 6, "lr": 5e-4, "max_seq_length": 16,
        "query_max_len": 16, "passage_max_len": 16, "output_dir": str(tmp_path / "out"), "device": "cpu",
        "refresh_negatives_every": 2, "refresh_threshold": 0.0,  # plumbing only: the choice itself is tested above
        "refresh_range_min": 2, "refresh_range_max": 20, "seed": 1})
    train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    refreshed = {x["step"]: x["negatives_refreshed"]["retri"] for x in lines if "negatives_refreshed" in x}
    assert sorted(refreshed) == [2, 4]  # used from steps 4 and 6; none at step 6 (nothing would use it)
    for r in refreshed.values():
        assert r["rows"] == 32 and 0 <= r["changed"] <= r["easy"] <= 64
    assert all("loss" in x for x in lines)


def test_a_run_resumed_after_a_refresh_trains_on_the_refreshed_negatives(tmp_path):
    """The refreshed lists are saved in every checkpoint: resuming from checkpoint-3 (after the refresh at step 2,
    used from step 4) gives the uninterrupted run's steps 4-8 exactly, losses and final weights."""
    import shutil

    from safetensors.torch import load_file

    rows = [{"text": f"问题{i}", "text_pos": f"答案{i}是这样的", "text_neg": [f"无关{i}", f"其他{(i * 7) % 32}"],
             "type": "retri_contrast"} for i in range(32)]
    path = tmp_path / "retri.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    base = {"data": [str(path)], "batch_size": 8, "neg_num": 1, "max_steps": 8, "lr": 5e-4, "max_seq_length": 16,
            "query_max_len": 16, "passage_max_len": 16, "device": "cpu", "seed": 1, "save_steps": 3,
            "refresh_negatives_every": 2, "refresh_threshold": 0.0, "refresh_range_min": 2, "refresh_range_max": 20}
    full = tmp_path / "full"
    train(load_config(None, {**base, "output_dir": str(full)}))
    assert (full / "checkpoints" / "checkpoint-3" / "refreshed_negatives.json").is_file()
    log = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    assert log[1]["negatives_refreshed"]["retri"]["changed"] > 0  # the refresh at step 2 changed lists

    cut = tmp_path / "cut"  # a run that stopped after checkpoint-3: its folder as it was then
    (cut / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "checkpoint-3", cut / "checkpoints" / "checkpoint-3")
    (cut / "metrics.jsonl").write_text("".join(x + "\n" for x in (full / "metrics.jsonl").read_text().splitlines()[:3]),
                                       encoding="utf-8")
    train(load_config(None, {**base, "output_dir": str(cut), "resume": True}))
    resumed = [json.loads(x) for x in (cut / "metrics.jsonl").read_text().splitlines()]
    strip = lambda xs: [{k: v for k, v in x.items() if k != "samples_per_second"} for x in xs]  # noqa: E731
    assert strip(resumed) == strip(log)
    a, b = (load_file(str(next((run / "final").rglob("model.safetensors")))) for run in (full, cut))
    assert all(torch.equal(a[k], b[k]) for k in a)
