"""Cross-device negatives: 2 gloo processes give the same gradient as one process with the whole batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from piccolo_lib.train.adapter import PiccoloLoss

B, K, D, W = 3, 2, 8, 2  # per-rank batch, negatives, embedding dim, world size


def inputs():
    g = torch.Generator().manual_seed(0)
    feats = [{"x": torch.randn(n, 5, generator=g)} for n in (W * B, W * B, W * B * K)]
    ids = torch.arange(W * B * (1 + K)).reshape(W * B, 1 + K)
    ids[W * B - 1, 0] = ids[0, 0]  # a duplicated positive across ranks: masked as a false negative
    return feats, ids


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.lin = torch.nn.Linear(5, D)

    def forward(self, f):
        return {"sentence_embedding": self.lin(f["x"])}


def as_table(q, p, n, ids):
    """A batch as the collator lays it out: one table (queries, positives, negatives) and index tensors into it."""
    b = q.shape[0]
    table = {"x": torch.cat([q, p, n])}
    label = {"query": torch.arange(b), "positive": torch.arange(b, 2 * b),
             "negative": torch.arange(2 * b, 2 * b + n.shape[0]).reshape(b, -1), "ids": ids}
    return [table], label


def local_slice(feats, ids, rank):
    rows = slice(rank * B, (rank + 1) * B)
    neg_rows = slice(rank * B * K, (rank + 1) * B * K)
    return as_table(feats[0]["x"][rows], feats[1]["x"][rows], feats[2]["x"][neg_rows], ids[rows])


def worker(rank, port, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=W)
    model = Encoder()
    feats, ids = inputs()
    loss = PiccoloLoss(model, "retri_contrast", temperature=0.05, cross_device=True, mrl_dims=[4, 8])
    value = loss(*local_slice(feats, ids, rank))
    value.backward()
    for p in model.parameters():  # what DDP does: average gradients over ranks
        dist.all_reduce(p.grad)
        p.grad /= W
    dist.all_reduce(value)
    if rank == 0:
        torch.save({"loss": value / W, "grads": [p.grad for p in model.parameters()]}, out_path)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cross_device_negatives_match_single_process_full_batch(tmp_path):
    out = tmp_path / "rank0.pt"
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=W, join=True)
    got = torch.load(out, weights_only=True)
    model = Encoder()
    feats, ids = inputs()
    ref = PiccoloLoss(model, "retri_contrast", temperature=0.05, mrl_dims=[4, 8])(
        *as_table(feats[0]["x"], feats[1]["x"], feats[2]["x"], ids))
    ref.backward()
    assert got["loss"].item() == pytest.approx(ref.item(), rel=1e-6)
    for g, p in zip(got["grads"], model.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6)
