"""Offline backbones are deterministic and loadable; the model's head, pooling and save/load."""

import hashlib

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from piccolo_lib.backbones import build_char_vocab, build_offline_bert, build_offline_decoder, common_chinese_chars
from piccolo_lib.model import build_model, default_mrl_dims, default_projection_dim

TEXTS = ["信用卡怎么提额", "快递三天还没到", "iPhone 15 多少钱"]


def digest(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_vocab_covers_common_chars_and_samples():
    vocab = build_char_vocab(["𠀀奇字"])
    assert len(common_chinese_chars()) == 3755 and "的" in vocab and "𠀀" in vocab
    assert build_char_vocab(["b", "a"]) == build_char_vocab(["a", "b"])


def test_offline_bert_is_deterministic_and_loads_with_auto_classes(tmp_path):
    a = build_offline_bert(tmp_path / "a", seed=3, texts=TEXTS)
    b = build_offline_bert(tmp_path / "b", seed=3, texts=TEXTS)
    c = build_offline_bert(tmp_path / "c", seed=4, texts=TEXTS)
    assert digest(a) == digest(b) != digest(c)
    tok = AutoTokenizer.from_pretrained(a)
    assert "[UNK]" not in tok.tokenize("信用卡怎么提额 iphone")
    out = AutoModel.from_pretrained(a)(**tok(TEXTS, padding=True, return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == 128


def test_offline_decoder_appends_eos_and_pads_left(tmp_path):
    path = build_offline_decoder(tmp_path / "d", seed=0, texts=TEXTS)
    tok = AutoTokenizer.from_pretrained(path)
    batch = tok(["你好", "信用卡怎么提额"], padding=True)
    assert tok.padding_side == "left"
    assert all(row[-1] == tok.eos_token_id for row in batch["input_ids"])
    assert batch["attention_mask"][0][0] == 0  # the short row is padded on the left


def test_decoder_last_token_pooling_ignores_padding(tmp_path):
    path = build_offline_decoder(tmp_path / "d", seed=0, texts=TEXTS)
    model = build_model(str(path), pooling="lasttoken", projection_dim=0)
    alone = model.encode(["你好"], convert_to_tensor=True)
    padded = model.encode(["你好", "信用卡怎么提额快递三天还没到"], batch_size=2, convert_to_tensor=True)
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_projection_head_defaults_and_identity_init():
    assert default_projection_dim(1024) == 1792 and default_projection_dim(128) == 224
    assert default_mrl_dims(1792) == [256, 512, 768, 1024, 1280, 1536, 1792]
    assert default_mrl_dims(224) == [32, 64, 96, 128, 160, 192, 224]
    with_head = build_model("offline-bert")
    without = build_model("offline-bert", projection_dim=0)
    e1 = with_head.encode(TEXTS, convert_to_tensor=True)
    e0 = without.encode(TEXTS, convert_to_tensor=True)
    assert e1.shape == (3, 224) and e0.shape == (3, 128)
    assert torch.allclose(e1[:, :128], e0, atol=1e-5)  # the head starts as the identity on the first 128 dims


def test_save_load_round_trip_and_truncate_dim(tmp_path):
    model = build_model("offline-bert")
    model.save(str(tmp_path / "m"))
    assert (tmp_path / "m" / "2_Dense" / "model.safetensors").exists()
    loaded = SentenceTransformer(str(tmp_path / "m"))
    np.testing.assert_allclose(model.encode(TEXTS), loaded.encode(TEXTS), atol=1e-6)
    small = SentenceTransformer(str(tmp_path / "m"), truncate_dim=32).encode(TEXTS, normalize_embeddings=True)
    full = loaded.encode(TEXTS)[:, :32]
    np.testing.assert_allclose(small, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)


def test_missing_backbone_path_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="backbone '/no/such/backbone': no such folder"):
        build_model("/no/such/backbone")
    with pytest.raises(FileNotFoundError, match="offline mode never downloads"):
        build_model("some-org/some-model")  # conftest sets HF_HUB_OFFLINE=1


def test_extend_position_embeddings_keeps_trained_positions():
    from piccolo_lib.model import extend_position_embeddings

    model = build_model("offline-bert", projection_dim=0)
    old = model[0].auto_model.embeddings.position_embeddings.weight.detach().clone()  # (512, 128)
    short = model.encode(TEXTS, convert_to_tensor=True)
    extend_position_embeddings(model, 1024)
    new = model[0].auto_model.embeddings.position_embeddings.weight
    assert new.shape == (1024, 128) and torch.allclose(new[:512], old, atol=1e-5)
    assert torch.allclose(model.encode(TEXTS, convert_to_tensor=True), short, atol=1e-5)
    long = model.encode(["长" * 900], convert_to_tensor=True)  # beyond the original 512 positions
    assert torch.isfinite(long).all() and model.max_seq_length == 1024


def test_frozen_position_embeddings_stay_unchanged_after_a_step():
    from piccolo_lib.model import freeze_position_embeddings
    from piccolo_lib.tasks import PiccoloCollator, TaskSpec
    from piccolo_lib.train.adapter import PiccoloLoss

    model = build_model("offline-bert")
    frozen = freeze_position_embeddings(model)
    assert len(frozen) == 1 and frozen[0].endswith("embeddings.position_embeddings.weight")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    rows = [{"dataset_name": "s", "_row": i, "text": a, "text_pair": b, "label": float(i)}
            for i, (a, b) in enumerate(zip(TEXTS, TEXTS[::-1]))]
    batch = PiccoloCollator(model.preprocess, {"s": TaskSpec("cosent")})(rows)
    feature = {k[len("texts_"):]: v for k, v in batch.items() if k.startswith("texts_")}
    PiccoloLoss(model, "cosent")([feature], batch["label"]).backward()
    opt.step()
    after = dict(model.named_parameters())
    assert torch.equal(after[frozen[0]], before[frozen[0]])
    assert not torch.equal(after["2.linear.weight"], before["2.linear.weight"])


def test_reference_style_checkpoint_and_projection_init(tmp_path):
    """The reference's folders hold pytorch_model.bin (2_Dense/pytorch_model.bin); they load with weights_only."""
    from piccolo_lib.model import load_projection

    model = build_model("offline-bert", seed=5)
    with torch.no_grad():
        model[2].linear.weight.mul_(1.5)
    model.save(str(tmp_path / "ref"), safe_serialization=False)
    assert (tmp_path / "ref" / "2_Dense" / "pytorch_model.bin").exists()
    assert not (tmp_path / "ref" / "2_Dense" / "model.safetensors").exists()
    loaded = SentenceTransformer(str(tmp_path / "ref"))
    np.testing.assert_allclose(loaded.encode(TEXTS), model.encode(TEXTS), atol=1e-6)
    fresh = build_model("offline-bert", seed=5)
    load_projection(fresh, str(tmp_path / "ref"))
    assert torch.equal(fresh[2].linear.weight, model[2].linear.weight)
    with pytest.raises(ValueError, match="does not match"):
        load_projection(build_model("offline-bert", projection_dim=64), str(tmp_path / "ref"))


def test_auto_mode_follows_piccolo_mode(monkeypatch):
    from piccolo_lib.runtime import resolve_mode

    monkeypatch.setenv("PICCOLO_MODE", "quick")
    assert resolve_mode("auto") == "quick" and resolve_mode("full") == "full"
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        resolve_mode("fast")


def test_decoder_without_eos_gets_it_and_right_padding_pools_last_real_token(tmp_path):
    import json as _json

    path = build_offline_decoder(tmp_path / "d", seed=0, texts=TEXTS)
    spec = _json.loads((path / "tokenizer.json").read_text())
    spec["post_processor"] = None  # like many LLM tokenizers: no EOS appended
    (path / "tokenizer.json").write_text(_json.dumps(spec))
    tok = AutoTokenizer.from_pretrained(path)
    assert tok("你好")["input_ids"][-1] != tok.eos_token_id
    model = build_model(str(path), pooling="lasttoken", projection_dim=0)
    assert model.tokenizer("你好")["input_ids"][-1] == model.tokenizer.eos_token_id
    model.save(str(tmp_path / "saved"))
    reloaded = SentenceTransformer(str(tmp_path / "saved"))  # the EOS rule travels in tokenizer.json
    assert reloaded.tokenizer("你好")["input_ids"][-1] == reloaded.tokenizer.eos_token_id
    alone = model.encode(["你好"], convert_to_tensor=True)
    model.tokenizer.padding_side = "right"
    padded = model.encode(["你好", "信用卡怎么提额快递三天还没到"], batch_size=2, convert_to_tensor=True)
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_hub_aliases_stand_in_for_hub_models(monkeypatch, capsys):
    """Rehearsing full mode without a hub: a hub name mapped to a local backbone builds that one and says so."""
    from piccolo_lib.errors import InputNotFound
    from piccolo_lib.model.backbones import resolve_backbone

    monkeypatch.setenv("PICCOLO_HUB_ALIASES", "hfl/chinese-roberta-wwm-ext-large=offline-bert, org/other=offline-bert")
    assert resolve_backbone("hfl/chinese-roberta-wwm-ext-large") == resolve_backbone("offline-bert")
    assert "hfl/chinese-roberta-wwm-ext-large: using offline-bert instead" in capsys.readouterr().out
    monkeypatch.setenv("PICCOLO_HUB_ALIASES", "no-equals-sign")
    with pytest.raises(InputNotFound, match=r"PICCOLO_HUB_ALIASES: expected name=local"):
        resolve_backbone("hfl/x")
