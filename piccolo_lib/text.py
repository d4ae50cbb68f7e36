"""The one notion of "the same text": NFKC, whitespace collapsed, casefolded, then hashed.

A training batch meets the same passage twice (one row's positive is another row's negative, or two queries
share a gold passage); a synthetic-data run meets the same query twice. Both must agree on what "the same"
means, so there is one definition here. The text id decides, for a batch, which texts are encoded once
(:class:`piccolo_lib.tasks.batch.TextTable`) and which candidates are false negatives
(:func:`piccolo_lib.losses.false_negative_mask`); synthetic-data dedup uses the hash of the same normal form.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

import hashlib
import unicodedata


def normalize_text(text: str) -> str:
    """NFKC, casefolded, whitespace collapsed: "ＡＢＣ  公司" and "abc 公司" normalise alike.

    Example:
        >>> normalize_text("  Ｈｅｌｌｏ   World ")
        'hello world'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hash(text: str) -> str:
    """A 16-hex-digit digest of the normal form (stable across runs and machines)."""
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8).hexdigest()


def text_id(text: str) -> int:
    """A non-negative 63-bit integer id of the normal form (fits an int64 tensor).

    Example:
        >>> text_id("清蒸鱼要蒸多久") == text_id(" 清蒸鱼要蒸多久 ")
        True
    """
    return int(text_hash(text), 16) >> 1
