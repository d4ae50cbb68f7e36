"""`piccolo train` under torchrun (2 CPU processes, gloo) equals 1 process with the same global batch."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from piccolo_lib.backbones import build_offline_bert
from test_training import fixture_data

BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, name, nproc, data, overrides, nnodes=1, launcher="torchrun"):
    out = tmp_path / name
    args = ["train", str(Path(__file__).parent.parent / "configs" / "quickstart-toy.yaml"), "--mode", "quick",
            f"data={json.dumps(data)}", f"output_dir={out}", "epochs=1", "seed=7", "neg_num=1",
            "cls_neg_num=2", "max_seq_length=32", "query_max_len=16", "passage_max_len=16", "logging_steps=100",
            *overrides]
    if nnodes == 1:
        cmd = [str(BIN / "piccolo"), *args] if nproc == 1 else [
            str(BIN / "torchrun"), f"--nproc_per_node={nproc}", f"--master_port={free_port()}", "-m", "piccolo_lib.cli",
            *args] if launcher == "torchrun" else [
            # accelerate's --cpu launches one process (several need MPI); --multi_gpu is its torch-elastic
            # launcher, and piccolo's training picks CPU + gloo by itself when no GPU is there
            str(BIN / "accelerate"), "launch", "--multi_gpu", f"--num_processes={nproc}", "--num_machines=1",
            "--mixed_precision=no", "--dynamo_backend=no", f"--main_process_port={free_port()}",
            "--num_cpu_threads_per_process=1", "-m", "piccolo_lib.cli", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert proc.stdout.count("saved: ") == 1  # rank 0 alone saves and reports
    else:  # two "nodes" on loopback: two torchrun launches meeting at one rendezvous endpoint
        port = free_port()
        procs = [subprocess.Popen([str(BIN / "torchrun"), "--nnodes=2", "--nproc_per_node=1", f"--node_rank={r}",
                                   "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "piccolo_lib.cli", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
        for p in procs:
            out_text = p.communicate(timeout=600)[0].decode()
            assert p.returncode == 0, out_text[-3000:]
    return out


def params(out):
    files = [out / "final" / "model.safetensors", out / "final" / "2_Dense" / "model.safetensors"]
    merged = {}
    for f in files:
        merged.update({f"{f.parent.name}/{k}": v for k, v in load_file(str(f)).items()})
    return merged


def assert_same_params(a, b, atol=2e-5):
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    worst = max((pa[k] - pb[k]).abs().max().item() for k in pa)
    assert worst < atol, f"largest parameter difference {worst:.2e}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    data = fixture_data(tmp, n=32)
    backbone = build_offline_bert(tmp / "bert", seed=0, dropout=0.0)  # dropout off: exact across layouts
    return tmp, data, f"backbone={backbone}"


@pytest.mark.slow
def test_two_processes_equal_one_process_with_grad_accum(setup):
    tmp, data, backbone = setup
    two = run(tmp, "two", 2, data, [backbone, "batch_size=4"])
    one = run(tmp, "one", 1, data, [backbone, "batch_size=4", "grad_accum=2"])
    lines = (two / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 * 32 // 8  # one line per optimizer step: rank 0 logs, the other rank does not
    assert_same_params(two, one)
    # the logged loss is the global batch's (averaged over ranks), as in the 1-process run
    logged = [[json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()] for out in (two, one)]
    assert [x["dataset"] for x in logged[0]] == [x["dataset"] for x in logged[1]]
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(*logged)) < 1e-4
    first = params(two)
    untrained = run(tmp, "zero", 1, data, [backbone, "batch_size=4", "max_steps=1", "lr=0"])
    assert any((first[k] - params(untrained)[k]).abs().max() > 1e-4 for k in first)  # training moved the weights


@pytest.mark.slow
def test_cross_device_negatives_two_processes_equal_one_big_batch(setup):
    tmp, data, backbone = setup
    retrieval_only = [data[0]]
    two = run(tmp, "two_x", 2, retrieval_only, [backbone, "batch_size=4", "cross_device_negatives=true"])
    one = run(tmp, "one_x", 1, retrieval_only, [backbone, "batch_size=8"])
    assert_same_params(two, one)


@pytest.mark.slow
def test_two_nodes_on_loopback(setup):
    tmp, data, backbone = setup
    nodes = run(tmp, "nodes", 2, data, [backbone, "batch_size=4"], nnodes=2)
    single = tmp / "one" if (tmp / "one" / "final").exists() else run(
        tmp, "one", 1, data, [backbone, "batch_size=4", "grad_accum=2"])
    assert_same_params(nodes, single)


@pytest.mark.slow
def test_accelerate_launch_equals_torchrun(setup):
    tmp, data, backbone = setup
    launched = run(tmp, "accelerate", 2, data, [backbone, "batch_size=4"], launcher="accelerate")
    single = tmp / "one" if (tmp / "one" / "final").exists() else run(
        tmp, "one", 1, data, [backbone, "batch_size=4", "grad_accum=2"])
    assert len((launched / "metrics.jsonl").read_text().splitlines()) == 3 * 32 // 8
    assert_same_params(launched, single)
