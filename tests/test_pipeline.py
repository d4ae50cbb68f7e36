"""pipeline.run_side_by_side: results keyed as given, workers get one thread each and no progress bars."""

import math
import os

from piccolo_lib.pipeline import run_side_by_side


def test_side_by_side_in_spawned_workers_keeps_keys_and_sets_threads():
    items = {"nine": 9.0, "four": 4.0, "one": 1.0}
    assert run_side_by_side(math.sqrt, items, workers=2) == {"nine": 3.0, "four": 2.0, "one": 1.0}
    before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TQDM_DISABLE")}
    env = run_side_by_side(os.getenv, {"threads": "OMP_NUM_THREADS", "bars": "TQDM_DISABLE"}, workers=2, threads=1)
    assert env == {"threads": "1", "bars": "1"}
    assert {k: os.environ.get(k) for k in before} == before  # the parent's environment is untouched
    assert run_side_by_side(math.sqrt, items, workers=1) == {"nine": 3.0, "four": 2.0, "one": 1.0}
