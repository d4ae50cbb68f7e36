"""Gradient caching (GradCache, Gao et al. 2021, arXiv 2101.06983) for all three Piccolo2 loss routes.

A contrastive batch cannot be split into accumulation steps without shrinking the negative pool, but
its *loss* only needs the embeddings, which are small. GradCache trades one extra forward pass for
activation memory that no longer grows with the batch:

1. embed every feature column in chunks of ``minibatch`` rows **without a graph**;
2. compute the full-batch loss (any route, MRL, label dedup, false-negative masking, cross-device
   gather) on detached copies that require grad, and back-propagate it to get dL/d(embedding);
3. when the Trainer calls ``loss.backward()``, re-embed each chunk **with** a graph and back-propagate
   the cached dL/d(embedding) rows through it: the parameters get exactly the gradient of step 2's loss.

Dropout draws the same masks in steps 1 and 3 because each chunk's RNG state is saved in step 1 and
restored in step 3. Under DDP every chunk but the last runs under ``no_sync``, so the gradients are
all-reduced once per step. Autocast (bf16/fp16) in force at the forward is re-entered in step 3.

Like sentence-transformers' CachedMultipleNegativesRankingLoss (InfoNCE only), the work happens in
the loss adapter's forward and a hook on its returned loss, so the Trainer is untouched.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RngState:
    """The CPU and CUDA generator states at one point, to replay a chunk's dropout masks."""

    cpu: Tensor
    cuda: list[Tensor]

    @classmethod
    def capture(cls) -> "RngState":
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        return cls(torch.get_rng_state(), cuda)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block from this state; the generators continue afterwards as if it never ran."""
        with torch.random.fork_rng(devices=list(range(len(self.cuda)))):
            torch.set_rng_state(self.cpu)
            if self.cuda:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def chunks(feature: dict[str, Tensor], size: int) -> list[dict[str, Tensor]]:
    """Split a tokenized column into row chunks of ``size``; trailing all-padding columns are trimmed.

    Only right padding is trimmed (positions keep their index), so each chunk embeds as in the batch.
    """
    n = next(v.shape[0] for v in feature.values() if isinstance(v, Tensor) and v.dim() > 0)
    out = []
    for start in range(0, n, size):
        part = {k: v[start:start + size] if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n else v
                for k, v in feature.items()}
        mask = part.get("attention_mask")
        if isinstance(mask, Tensor) and mask.dim() == 2 and mask.shape[1] > 0:
            used = mask.any(0).nonzero()
            width = int(used.max()) + 1 if used.numel() else 1
            part = {k: v[:, :width] if isinstance(v, Tensor) and v.dim() == 2 and v.shape == mask.shape else v
                    for k, v in part.items()}
        out.append(part)
    return out


def _autocast_state() -> tuple[str, torch.dtype] | None:
    for device in ("cuda", "cpu"):
        if torch.is_autocast_enabled(device):
            return device, torch.get_autocast_dtype(device)
    return None


def _autocast(state: tuple[str, torch.dtype] | None):
    return torch.autocast(state[0], dtype=state[1]) if state else contextlib.nullcontext()


def cached_loss(adapter, features: list[dict[str, Tensor]], labels: Tensor | None, minibatch: int) -> Tensor:
    """The loss of ``adapter`` (a :class:`piccolo_lib.losses.PiccoloLoss`) with GradCache.

    Args:
        adapter: provides ``model``, ``_embed(feature)`` and ``loss_from_embeddings(embs, labels)``.
        features: the collated feature columns (query/positive/negative, text/pair, text/labels).
        labels: the batch labels (ids, scores or label indices).
        minibatch: rows per chunk (forward activations of this many rows at a time).

    Returns:
        A scalar equal to the uncached loss; its backward re-embeds chunk by chunk and fills the
        parameters' ``.grad`` with the uncached step's gradient.
    """
    amp = _autocast_state()
    parts = [chunks(f, minibatch) for f in features]
    states: list[list[RngState]] = [[] for _ in parts]
    embs = []
    with torch.no_grad():
        for col, states_col in zip(parts, states):
            out = []
            for chunk in col:
                states_col.append(RngState.capture())
                out.append(adapter._embed(chunk))
            embs.append(torch.cat(out).detach().requires_grad_())
    with torch.enable_grad():
        loss = adapter.loss_from_embeddings(embs, labels)
        loss.backward()  # dL/d(embedding) of every row, cached on embs[c].grad
    grads = [e.grad if e.grad is not None else torch.zeros_like(e) for e in embs]
    result = loss.detach().requires_grad_()
    result.register_hook(lambda grad_out: _replay(adapter, parts, states, grads, grad_out, amp))
    return result


def _replay(adapter, parts, states, grads, grad_out: Tensor, amp) -> None:
    """Backward hook: re-embed each chunk with a graph and back-propagate its cached embedding gradient."""
    no_sync = getattr(adapter.model, "no_sync", None)  # DDP: all-reduce with the last chunk's backward only
    jobs = [(c, i) for c, col in enumerate(parts) for i in range(len(col))]
    offsets = [0] * len(parts)  # first row of the next chunk, per column
    with torch.enable_grad():
        for n, (c, i) in enumerate(jobs):
            last = no_sync is None or n == len(jobs) - 1
            with (contextlib.nullcontext() if last else no_sync()), states[c][i].replay(), _autocast(amp):
                emb = adapter._embed(parts[c][i])  # (rows, D), with a graph
                g = grads[c][offsets[c]:offsets[c] + emb.shape[0]] * grad_out
                emb.backward(g.to(emb.dtype))
            offsets[c] += emb.shape[0]
