"""Packed encoding: every distinct row of a batch's feature columns encoded once, in length-sorted chunks.

A training batch reaches the loss as several tokenized columns (query, positive, negatives; text and
label texts), each padded to its own longest row. Two kinds of work in that are wasted:

* **padding**: on the course's data a quarter of the encoded tokens are padding (benchmarks/RESULTS.md,
  section 12), and the encoder computes every one of them;
* **repeats**: a passage that is one row's positive and another row's negative, or the same passage in
  two rows, is encoded twice (7% of retrieval passages, 23% of reranking passages at batch 32).

:func:`packed_embed` gathers the rows of all columns, keeps each distinct token sequence once, sorts them
by length and encodes them in chunks, each cut to its own longest row (:func:`plan_chunks` picks the cuts);
then it hands every column its rows back. The loss sees the same embeddings: with right padding and an
attention mask, a row's embedding does not depend on the rows beside it or on how much padding follows it,
and a repeated row's gradient is the sum over its uses, exactly as if it had been encoded twice. Only the
dropout masks differ (a repeat shares one), so with dropout on the numbers differ as they would with
another seed. Nothing here changes which texts meet in the loss: batches are the sampler's.

Written by hand because sentence-transformers encodes each column separately (its ``encode`` sorts by
length, but the Trainer's losses get one padded tensor per column) and transformers' unpadded attention
(``padding_free``) covers decoder collators only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

OUTPUT_KEYS = ("token_embeddings", "sentence_embedding", "all_layer_embeddings")  # what an earlier forward wrote
# What one more encoder call costs, in padded tokens, per device type. CPU: measured (e5-small, 2 cores: 32 to 128
# timed alike, benchmarks/levers.py). CUDA: not measured here (no GPU); a GPU runs far more tokens per kernel
# launch, so a chunk must save many padded tokens to pay for its launches: a guess, set ``overhead`` to tune it.
CHUNK_OVERHEAD_TOKENS = {"cpu": 64, "cuda": 2048}


def plan_chunks(lengths: Sequence[int], overhead: int = CHUNK_OVERHEAD_TOKENS["cpu"]) -> list[int]:
    """Where to cut rows sorted by length so that encoded tokens + ``overhead`` per chunk is least.

    Rows of equal length always share a chunk, so the exact dynamic programme runs over the V distinct
    lengths (V <= the longest length), O(V^2), whatever the number of rows.

    Args:
        lengths: the rows' lengths, sorted ascending.
        overhead: the cost of one extra chunk in token units (0: one chunk per distinct length).

    Returns:
        The end index (exclusive) of each chunk in ``lengths``; the last is ``len(lengths)``.

    Example:
        >>> plan_chunks([2, 2, 3, 90, 100], overhead=10)
        [3, 5]
    """
    if any(b < a for a, b in zip(lengths, lengths[1:])):
        raise ValueError("plan_chunks needs lengths sorted ascending")
    values, ends = [], []  # distinct lengths, and the row index after the last row of each
    for i, n in enumerate(lengths):
        if values and values[-1] == n:
            ends[-1] = i + 1
        else:
            values.append(n)
            ends.append(i + 1)
    best = [0.0] + [float("inf")] * len(values)  # best[j]: least cost of rows up to ends[j-1]
    cut = [0] * (len(values) + 1)
    for j in range(1, len(values) + 1):
        for i in range(j):  # one chunk holds distinct lengths i..j-1, padded to values[j-1]
            start = ends[i - 1] if i else 0
            cost = best[i] + (ends[j - 1] - start) * values[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out, j = [], len(values)
    while j > 0:
        out.append(ends[j - 1])
        j = cut[j]
    return out[::-1]


def _shared_keys(features: Sequence[dict]) -> list[str] | None:
    """The entries every column has, if the columns can be packed: right-padded (B_c, L_c) tensors and equal
    non-tensor entries. None when they cannot (left padding, no attention mask): encode per column then.

    Entries only some columns carry are left out (sentence-transformers' ``collect_features`` splits columns by
    name prefix, so a "text" column also receives the "text_pair" column's tensors, which the encoder ignores),
    and so are the outputs a sentence-transformers forward writes into the dict it was given (OUTPUT_KEYS).
    """
    if not features:
        return None
    keys = [k for k in features[0] if k not in OUTPUT_KEYS and all(k in f for f in features)]
    if "input_ids" not in keys or "attention_mask" not in keys:
        return None
    for f in features:
        mask = f["attention_mask"]
        if mask.dim() != 2 or (mask.shape[1] > 1 and bool((mask[:, 1:] > mask[:, :-1]).any())):
            return None  # left padding or holes: a row's positions would shift
        for k in keys:
            v = f[k]
            if isinstance(v, Tensor) and (v.dim() != 2 or v.shape != mask.shape):
                return None
            if not isinstance(v, Tensor) and v != features[0][k]:
                return None
    return keys


def packed_embed(embed: Callable[[dict], Tensor], features: Sequence[dict], pad_token_id: int = 0,
                 overhead: int | None = None) -> list[Tensor]:
    """The embeddings of every feature column, each distinct row encoded once, in length-sorted chunks.

    Args:
        embed: one tokenized feature dict -> (n, D) embeddings (e.g. the model's ``sentence_embedding``).
        features: C tokenized columns, column c with B_c rows ("input_ids", "attention_mask", ... of shape
            (B_c, L_c)) and the same non-tensor entries (e.g. sentence-transformers' "modality").
        pad_token_id: written into input_ids where a row is padded past its column's width.
        overhead: chunk cost for :func:`plan_chunks` (None: CHUNK_OVERHEAD_TOKENS of the inputs' device type).

    Returns:
        C tensors, column c of shape (B_c, D), equal to ``embed(features[c])`` up to float rounding when the
        encoder is deterministic (dropout off). Columns that cannot be packed (left padding, no attention
        mask) are encoded one by one instead. The input dicts are not modified.
    """
    keys = _shared_keys(features)
    if keys is None:
        return [embed(f) for f in features]
    width = max(f["input_ids"].shape[1] for f in features)
    tensors = {k: features[0][k] for k in keys if isinstance(features[0][k], Tensor)}
    fill = {k: (pad_token_id if k == "input_ids" else 0) for k in tensors}
    stacked = {k: torch.cat([torch.nn.functional.pad(f[k], (0, width - f[k].shape[1]), value=fill[k])
                             for f in features]) for k in tensors}  # (sum B_c, width) each
    lengths = stacked["attention_mask"].sum(1).tolist()
    values = [stacked[k].tolist() for k in sorted(tensors)]  # a row's identity: its entries up to its length
    first: dict[tuple, int] = {}
    owner = [first.setdefault(tuple(tuple(v[i][:n]) for v in values), i) for i, n in enumerate(lengths)]
    distinct = sorted(set(owner), key=lambda i: (lengths[i], i))  # rows to encode, shortest first
    device = stacked["input_ids"].device
    if overhead is None:
        overhead = CHUNK_OVERHEAD_TOKENS.get(device.type, CHUNK_OVERHEAD_TOKENS["cuda"])
    position = {row: p for p, row in enumerate(distinct)}
    embs, start = [], 0
    for end in plan_chunks([lengths[i] for i in distinct], overhead):
        idx = torch.tensor(distinct[start:end], device=device)
        longest = max(1, max(int(lengths[i]) for i in distinct[start:end]))
        chunk = {k: features[0][k] for k in keys if k not in tensors}
        chunk.update({k: v.index_select(0, idx)[:, :longest] for k, v in stacked.items()})
        embs.append(embed(chunk))
        start = end
    table = torch.cat(embs)  # (U, D): one row per distinct text, in length order
    gather = torch.tensor([position[o] for o in owner], device=table.device)
    out, offset = [], 0
    for f in features:
        n = f["input_ids"].shape[0]
        out.append(table.index_select(0, gather[offset:offset + n]))
        offset += n
    return out
