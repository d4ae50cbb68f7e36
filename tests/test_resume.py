"""Kill training after a checkpoint, resume: same final weights and metrics as an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_ddp import params
from test_training import fixture_data

BIN = Path(sys.executable).parent


def command(data, out, backbone, *extra):
    return [str(BIN / "piccolo"), "train", str(Path(__file__).parent.parent / "configs" / "quickstart.yaml"),
            "--mode", "quick", f"data={json.dumps(data)}", f"output_dir={out}", f"backbone={backbone}",
            "epochs=1", "seed=3", "batch_size=4", "neg_num=1", "cls_neg_num=2", "max_seq_length=32",
            "query_max_len=16", "passage_max_len=16", "save_steps=4", *extra]


def metrics(out):
    return [{k: v for k, v in json.loads(x).items() if k != "samples_per_second"}
            for x in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    from piccolo_lib.backbones import build_offline_bert

    data = fixture_data(tmp_path, n=32)
    backbone = build_offline_bert(tmp_path / "bert", seed=0)  # dropout on: its RNG state must be restored too
    full = tmp_path / "full"
    subprocess.run(command(data, full, backbone), check=True, capture_output=True, timeout=600)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(command(data, cut, backbone), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = cut / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists() and not (cut / "final").exists(), "the run must die after a checkpoint, before the end"
    subprocess.run(command(data, cut, backbone, "resume=true"), check=True, capture_output=True, timeout=600)

    assert metrics(cut) == metrics(full)
    pa, pb = params(full), params(cut)
    assert max((pa[k] - pb[k]).abs().max().item() for k in pa) < 1e-6
