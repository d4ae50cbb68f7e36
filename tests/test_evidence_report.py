"""benchmarks/evidence.py renders EVIDENCE.md from its runs: gains over seeds, the +2 goal, resolved stage gaps."""

import statistics

from benchmarks import evidence


def _run(kind, seed, local, real, sts):
    return {"kind": kind, "seed": seed, "steps": 40, "config": "quickstart.yaml", "batch_size": 16,
            "average": local, "categories": {"STS": sts, "Retrieval": local},
            "kinds": {"PiccoloLocalRetrieval": {"nearmiss": local - 1, "plain": local + 1}},
            "real": {"Rev": real}, "extras": {"RevZeroShot": real - 1}, "train_s": 100.0, "eval_s": 50.0,
            "load": [1.0, 1.0, 1.0]}


def test_render_computes_gains_spread_goal_and_resolved_gaps():
    runs = {}
    for seed, (start, c, a, b) in enumerate([(80, 83, 82.0, 82.5), (81, 83.5, 82.2, 82.4), (80.5, 83.2, 82.1, 82.6)], 1):
        runs[f"start-{seed}"] = _run("start", seed, start, 79.0, 70.0)
        runs[f"C-{seed}"] = _run("C", seed, c, 81.5 + seed / 10, 74.0)
        runs[f"A-{seed}"] = _run("A", seed, a, 80.0, 71.0 + seed / 10)
        runs[f"B-{seed}"] = _run("B", seed, b, 80.1, 73.9)
    text = evidence.render({"runs": runs})
    gains = [81.6 - 79, 81.7 - 79, 81.8 - 79]
    assert f"change {statistics.fmean(gains):+.2f} ± {statistics.stdev(gains):.2f}" in text
    assert "The goal of +2 points is met (every seed: +2.60 or more)." in text
    assert "The bar (beat the start on the local average): met on 3 of 3 seeds" in text
    # STS: A 71.1-71.3 vs C 74.0 -> a gap far above the spread; B vs C on STS (73.9 vs 74.0, sd 0) resolved too
    assert "A → C on STS (+2.80, sd 0.10)" in text
    assert "| A → B |" in text and "Differences larger than the seed spread:" in text


def test_render_says_when_the_goal_is_missed_or_there_is_one_seed():
    runs = {"s": _run("start", 1, 80, 79.0, 70), "c": _run("C", 1, 81, 79.5, 71)}
    text = evidence.render({"runs": runs})
    assert "one seed: no spread yet" in text and "The goal of +2 points is NOT met." in text
    assert evidence.render({"runs": {}}).startswith("# Evidence that measures meaning")
