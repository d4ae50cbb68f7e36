"""The encoder step: a batch's distinct texts, sorted by length, encoded in chunks each cut to its longest row.

A training batch reaches the loss as one table of distinct texts, shortest first
(:class:`piccolo_lib.tasks.batch.PiccoloCollator`): a passage that is one row's positive and another row's
negative, or a label text many rows share, is there once. Two kinds of work are then left to save:

* **padding**: padded to the batch's longest text, a quarter of the encoded tokens would be padding on the
  course's data (benchmarks/RESULTS.md, section 12), and the encoder computes every one of them;
* **one long call**: the rows are sorted, so consecutive rows have similar lengths.

:func:`encode_sorted` cuts the sorted rows into chunks (:func:`plan_chunks` picks the cuts that minimise padded
tokens plus a fixed cost per call) and encodes each chunk cut to its own longest row. With right padding and an
attention mask a row's embedding does not depend on the rows beside it or on the padding after it, so the loss
and gradients are those of one pass over the padded table. Left-padded rows (decoder tokenizers) are not cut:
their positions would shift. GradCache (:class:`piccolo_lib.train.adapter.PiccoloLoss`) encodes the same sorted
table in chunks of at most ``gradient_cache_minibatch`` rows, each cut to its longest row by
sentence-transformers' mini-batching: packing and GradCache compose.

:func:`packed_embed` is the same idea for tokenized *columns* (one padded tensor per column, as a plain
sentence-transformers loss gets them): it keeps each distinct token sequence once, sorts, encodes with
:func:`encode_sorted` and hands every column its rows back (notebook 02 builds it by hand).

Written by hand because sentence-transformers encodes each column separately (its ``encode`` sorts by length,
but the Trainer's losses get one padded tensor per column) and transformers' unpadded attention
(``padding_free``) covers decoder collators only.
"""

from __future__ import annotations

import contextlib
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


def encode_sorted(embed: Callable[[dict], Tensor], feature: dict, lengths: Sequence[int], *, padding: str = "right",
                  overhead: int | None = None, packed: bool = True) -> Tensor:
    """The (U, D) embeddings of U tokenized rows sorted by length, in chunks each cut to its longest row.

    Args:
        embed: one tokenized feature dict -> (n, D) embeddings (e.g. the model's ``sentence_embedding``).
        feature: (U, L) tensors ("input_ids", "attention_mask", ...) and non-tensor entries, rows shortest first.
        lengths: the U real-token counts, ascending.
        padding: "right" (chunks are cut to their longest row) or "left" (chunks keep the full width).
        overhead: the cost of one more encoder call in padded tokens (None: CHUNK_OVERHEAD_TOKENS of the device).
        packed: False encodes the whole table in one call, padded to its longest row.

    Returns:
        (U, D), equal to ``embed(feature)`` up to float rounding when the encoder is deterministic.
    """
    if not packed or len(lengths) < 2:
        return embed(feature)
    device = next(v for v in feature.values() if isinstance(v, Tensor)).device
    if overhead is None:
        overhead = CHUNK_OVERHEAD_TOKENS.get(device.type, CHUNK_OVERHEAD_TOKENS["cuda"])
    embs, start = [], 0
    for end in plan_chunks(list(lengths), overhead):
        width = max(1, int(lengths[end - 1])) if padding == "right" else None
        chunk = {k: (v[start:end, :width] if v.dim() == 2 else v[start:end]) if isinstance(v, Tensor) else v
                 for k, v in feature.items() if k not in OUTPUT_KEYS}
        embs.append(embed(chunk))
        start = end
    return torch.cat(embs)


def packed_embed(embed: Callable[[dict], Tensor], features: Sequence[dict], pad_token_id: int = 0,
                 overhead: int | None = None) -> list[Tensor]:
    """The embeddings of every tokenized column, each distinct row encoded once, in length-sorted chunks.

    Args:
        embed: one tokenized feature dict -> (n, D) embeddings.
        features: C tokenized columns, column c with B_c rows ("input_ids", "attention_mask", ... of shape
            (B_c, L_c)) and the same non-tensor entries (e.g. sentence-transformers' "modality").
        pad_token_id: written into input_ids where a row is padded past its column's width.
        overhead: chunk cost for :func:`plan_chunks` (None: CHUNK_OVERHEAD_TOKENS of the inputs' device type).

    Returns:
        C tensors, column c of shape (B_c, D), equal to ``embed(features[c])`` up to float rounding when the
        encoder is deterministic. Columns that cannot be packed (left padding, no attention mask) are encoded
        one by one instead. A row's identity here is its token sequence (columns carry no texts); in training
        the collator deduplicates by text identity before tokenizing. The input dicts are not modified.
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
    idx = torch.tensor(distinct, device=device)
    table_feature = {k: features[0][k] for k in keys if k not in tensors}
    table_feature.update({k: v.index_select(0, idx) for k, v in stacked.items()})
    table = encode_sorted(embed, table_feature, [lengths[i] for i in distinct], overhead=overhead)  # (U, D)
    position = {row: p for p, row in enumerate(distinct)}
    gather = torch.tensor([position[o] for o in owner], device=table.device)
    out, offset = [], 0
    for f in features:
        n = f["input_ids"].shape[0]
        out.append(table.index_select(0, gather[offset:offset + n]))
        offset += n
    return out


def autocast_state() -> tuple[str, torch.dtype] | None:
    """The autocast in force (device type, dtype), or None: to re-enter it when a chunk is encoded again later."""
    for device in ("cuda", "cpu"):
        if torch.is_autocast_enabled(device):
            return device, torch.get_autocast_dtype(device)
    return None


def autocast(state: tuple[str, torch.dtype] | None):
    """A context entering the autocast ``state`` (from :func:`autocast_state`), or nothing for None."""
    return torch.autocast(state[0], dtype=state[1]) if state else contextlib.nullcontext()
