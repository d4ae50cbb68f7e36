"""Kill training (SIGTERM or SIGKILL) at a random step, resume: same metrics and weights as an uninterrupted run.

The step is drawn from a seeded generator, so a failure reproduces; it is printed (pytest -s, or in the
captured output of a failing test). ``samples_per_second`` is the only metrics field left out of the
comparison: it is wall-clock time, different on every run.
"""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from piccolo_lib.checkpoints import EXIT_SIGTERM, last_checkpoint
from test_ddp import params
from test_training import fixture_data

BIN = Path(sys.executable).parent
STEPS = 3 * 32 // 4  # three datasets of 32 rows, batch 4, one epoch


def command(data, out, backbone, *extra):
    return [str(BIN / "piccolo"), "train", str(Path(__file__).parent.parent / "configs" / "quickstart-toy.yaml"),
            "--mode", "quick", f"data={json.dumps(data)}", f"output_dir={out}", f"backbone={backbone}",
            "epochs=1", "seed=3", "batch_size=4", "neg_num=1", "cls_neg_num=2", "max_seq_length=32",
            "query_max_len=16", "passage_max_len=16", "save_steps=4", *extra]


def metrics(out):
    return [{k: v for k, v in json.loads(x).items() if k != "samples_per_second"}
            for x in (out / "metrics.jsonl").read_text().splitlines()]


def steps_done(out) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The fixture data, a backbone with dropout on (its RNG state must be restored too), one full run."""
    from piccolo_lib.backbones import build_offline_bert

    tmp = tmp_path_factory.mktemp("resume")
    data = fixture_data(tmp, n=32)
    backbone = build_offline_bert(tmp / "bert", seed=0)
    subprocess.run(command(data, tmp / "full", backbone), check=True, capture_output=True, timeout=600)
    assert len(metrics(tmp / "full")) == STEPS
    return data, backbone, tmp / "full"


def interrupt(cmd, out, sig, at_step):
    """Start training, send ``sig`` once ``at_step`` steps are logged; returns the exit status and stderr."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while steps_done(out) < at_step and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_matches_uninterrupted(uninterrupted, tmp_path):
    data, backbone, full = uninterrupted
    at_step = random.Random(20240509).randint(2, STEPS - 3)
    print(f"SIGTERM after step {at_step} of {STEPS}")
    cut = tmp_path / "cut"
    code, err = interrupt(command(data, cut, backbone, "save_steps=0"), cut, signal.SIGTERM, at_step)
    assert code == EXIT_SIGTERM, err[-2000:]
    saved = last_checkpoint(cut / "checkpoints")  # save_steps=0: this checkpoint exists only thanks to SIGTERM
    assert saved is not None and at_step <= int(saved.name.split("-")[1]) < STEPS, err[-2000:]
    assert f"stopped by SIGTERM after step {saved.name.split('-')[1]}" in err and "resume=true" in err
    assert not (cut / "final").exists() and not list((cut / "checkpoints").glob("tmp-*"))
    assert len(metrics(cut)) == int(saved.name.split("-")[1])

    subprocess.run(command(data, cut, backbone, "save_steps=0", "resume=true"), check=True, capture_output=True,
                   timeout=600)
    assert metrics(cut) == metrics(full)
    pa, pb = params(full), params(cut)
    assert max((pa[k] - pb[k]).abs().max().item() for k in pa) < 1e-6


@pytest.mark.slow
def test_sigkill_then_resume_ignores_half_written_checkpoints(uninterrupted, tmp_path):
    data, backbone, full = uninterrupted
    at_step = random.Random(7).randint(5, STEPS - 3)  # after the first checkpoint (save_steps=4)
    print(f"SIGKILL after step {at_step} of {STEPS}")
    cut = tmp_path / "cut"
    code, _ = interrupt(command(data, cut, backbone), cut, signal.SIGKILL, at_step)
    assert code == -signal.SIGKILL and not (cut / "final").exists()
    saved = last_checkpoint(cut / "checkpoints")
    assert saved is not None and int(saved.name.split("-")[1]) % 4 == 0

    # what a kill during a save leaves: a staging folder, and (from a writer without staging) a newer
    # checkpoint folder without trainer_state.json; resuming must ignore both
    staging = cut / "checkpoints" / f"tmp-checkpoint-{STEPS - 1}" / f"checkpoint-{STEPS - 1}"
    staging.mkdir(parents=True)
    (staging / "model.safetensors").write_bytes(b"\0" * 10)
    half = cut / "checkpoints" / f"checkpoint-{STEPS - 2}"
    half.mkdir()
    (half / "optimizer.pt").write_bytes(b"truncated")
    assert last_checkpoint(cut / "checkpoints") == saved

    subprocess.run(command(data, cut, backbone, "resume=true"), check=True, capture_output=True, timeout=600)
    assert not (cut / "checkpoints" / f"tmp-checkpoint-{STEPS - 1}").exists()
    assert metrics(cut) == metrics(full)
    pa, pb = params(full), params(cut)
    assert max((pa[k] - pb[k]).abs().max().item() for k in pa) < 1e-6


def test_checkpoint_folders_appear_complete_or_not_at_all(tmp_path):
    """The staged save as the Trainer calls it: the final folder holds everything, no pickle, no staging."""
    from piccolo_lib.training import load_config, train

    data = fixture_data(tmp_path, n=8)
    out = tmp_path / "out"
    train(load_config(None, {"data": data, "batch_size": 4, "neg_num": 1, "cls_neg_num": 2, "max_steps": 2,
                             "save_steps": 1, "max_seq_length": 16, "output_dir": str(out), "device": "cpu"}))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["checkpoint-1", "checkpoint-2"]
    files = {p.name for p in (out / "checkpoints" / "checkpoint-2").rglob("*") if p.is_file()}
    assert {"trainer_state.json", "optimizer.pt", "scheduler.pt", "training_args.json", "modules.json"} <= files
    assert "training_args.bin" not in files and not any(f.endswith((".bin", ".pkl", ".pickle")) for f in files)
