"""Refreshed negatives under DDP (2 CPU processes, gloo): rank 0's refresh reaches every rank, same as 1 process."""

import json

import pytest

from test_ddp import assert_same_params, run, setup  # noqa: F401  (setup is a fixture)

SIGNS = "甲乙丙丁戊己庚辛"


@pytest.mark.slow
def test_refresh_two_processes_equal_one_process_with_grad_accum(setup):  # noqa: F811
    tmp, _, backbone = setup
    # positives share no character with their query and negatives belong to other rows, so for an untrained
    # character model some negatives score below the positive (easy) and other passages above it (usable)
    rows = [{"text": f"问题{i}", "text_pos": f"答案是{SIGNS[i % 8]}{SIGNS[i // 8]}", "type": "retri_contrast",
             "text_neg": [f"其他{(i + 5) % 32}", f"无关{(i + 11) % 32}"]} for i in range(32)]
    path = tmp / "refresh_retri.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    common = [backbone, "batch_size=4", "refresh_negatives_every=2", "refresh_threshold=0.0",
              "refresh_range_min=1", "refresh_range_max=40"]
    two = run(tmp, "two_refresh", 2, [str(path)], common)
    one = run(tmp, "one_refresh", 1, [str(path)], common + ["grad_accum=2"])
    logs = [[json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()] for out in (two, one)]
    refreshed = [[x.get("negatives_refreshed") for x in log] for log in logs]
    assert refreshed[0] == refreshed[1] and sum(r is not None for r in refreshed[0]) == 1  # 4 steps: refresh at 2
    assert next(r for r in refreshed[0] if r)["refresh_retri"]["changed"] > 0  # the lists did change
    assert_same_params(two, one)  # every rank trained on the refreshed lists rank 0 computed
