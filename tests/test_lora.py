"""LoRA (piccolo_lib.model.add_lora / merge_lora, TrainConfig lora_*): parameter count, frozen backbone, save/load."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from sentence_transformers import SentenceTransformer

pytest.importorskip("peft")

from piccolo_lib.backbones import build_offline_decoder  # noqa: E402
from piccolo_lib.tasks import PiccoloCollator, TaskSpec  # noqa: E402
from piccolo_lib.train.adapter import PiccoloLoss  # noqa: E402
from piccolo_lib.model import add_lora, build_model, merge_lora  # noqa: E402
from piccolo_lib.training import load_config, train  # noqa: E402
from test_training import fixture_data as training_fixture  # noqa: E402

TEXTS = ["信用卡怎么提额", "快递三天还没到", "今天天气很好", "比赛进球了"]


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    return build_offline_decoder(tmp_path_factory.mktemp("dec") / "d", seed=0, texts=TEXTS + ["问题答案无关其他体育财经"])


def lora_by_hand(config, r, targets):
    """r (in + out) per adapted Linear, from the LLaMA config alone (q, k, v, o, gate, up, down per layer)."""
    h, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    shapes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
              "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}
    return config.num_hidden_layers * sum(r * (i + o) for name, (i, o) in shapes.items() if name in targets)


def trainable(model):
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("r, targets", [(8, "all-linear"), (4, ["q_proj", "v_proj"])])
def test_trainable_parameters_follow_the_lora_formula(decoder, r, targets):
    model = build_model(str(decoder), pooling="lasttoken", projection_dim=0)
    full = sum(p.numel() for p in model.parameters())
    expected = lora_by_hand(model[0].auto_model.config, r,
                            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
                            if targets == "all-linear" else targets)
    assert add_lora(model, r=r, alpha=2 * r, dropout=0.0, target_modules=targets) == expected
    assert sum(p.numel() for p in trainable(model).values()) == expected
    assert all("lora_" in n for n in trainable(model))
    assert sum(p.numel() for p in model.parameters()) == full + expected  # the base weights are all still there


def test_projection_head_stays_trainable(decoder):
    model = build_model(str(decoder), pooling="lasttoken")  # 128 -> 224 head
    n = add_lora(model, r=2, alpha=4, dropout=0.0, target_modules=["q_proj"])
    head = 128 * 224 + 224
    assert n == lora_by_hand(model[0].auto_model.config, 2, ["q_proj"]) + head
    assert {k for k in trainable(model) if "lora_" not in k} == {"2.linear.weight", "2.linear.bias"}


def test_a_step_changes_only_adapters_and_head(decoder):
    torch.manual_seed(0)
    model = build_model(str(decoder), pooling="lasttoken")
    start = add_lora(model, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    assert torch.allclose(model.encode(TEXTS, convert_to_tensor=True),
                          build_model(str(decoder), pooling="lasttoken").encode(TEXTS, convert_to_tensor=True),
                          atol=1e-6), "B starts at zero: an adapted model starts as its base model"
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    rows = [{"dataset_name": "s", "_row": i, "text": a, "text_pair": b, "label": float(i + 1)}
            for i, (a, b) in enumerate(zip(TEXTS, TEXTS[::-1]))]
    batch = PiccoloCollator(model.preprocess, {"s": TaskSpec("cosent")}, pad_token_id=model.tokenizer.pad_token_id)(rows)
    feature = {k[len("texts_"):]: v for k, v in batch.items() if k.startswith("texts_")}
    PiccoloLoss(model, "cosent")([feature], batch["label"]).backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(trainable(model)) and start == sum(before[n].numel() for n in changed)
    assert any("lora_B" in n for n in changed) and "2.linear.weight" in changed


def test_merge_then_save_loads_with_plain_sentence_transformers(decoder, tmp_path):
    model = build_model(str(decoder), pooling="lasttoken", prompts={"query": "Instruct: 检索\nQuery: "})
    add_lora(model, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():  # a trained adapter: B != 0
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    adapted = model.encode(TEXTS, prompt_name="query")
    base = build_model(str(decoder), pooling="lasttoken").encode(TEXTS, prompt="Instruct: 检索\nQuery: ")
    assert np.abs(adapted - base).max() > 1e-3, "the adapters must change the embedding for this test to mean anything"
    assert merge_lora(model) == 2 * 7  # every Linear of both layers
    assert not any("lora_" in n for n, _ in model.named_parameters())
    np.testing.assert_allclose(model.encode(TEXTS, prompt_name="query"), adapted, atol=1e-5)
    model.save(str(tmp_path / "m"))
    assert not (tmp_path / "m" / "adapter_config.json").exists() and not list((tmp_path / "m").rglob("*.bin"))
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora" in k or "base_layer" in k]
    loaded = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert loaded.prompts["query"] == "Instruct: 检索\nQuery: "
    np.testing.assert_allclose(loaded.encode(TEXTS, prompt_name="query"), adapted, atol=1e-5)


def test_bad_lora_settings_are_clear_errors(decoder, tmp_path):
    model = build_model(str(decoder), pooling="lasttoken", projection_dim=0)
    with pytest.raises(ValueError, match=r"lora_target_modules \['query'\]: no such Linear layer in LlamaModel.*q_proj"):
        add_lora(model, r=4, target_modules=["query"])
    with pytest.raises(ValueError, match="LoRA rank must be >= 1"):
        add_lora(model, r=0)
    cfg = load_config(None, {"lora_r": 4, "save_steps": 5, "backbone": str(decoder), "data": fixture_data(tmp_path),
                             "batch_size": 8, "cls_neg_num": 1, "output_dir": str(tmp_path / "out")})
    with pytest.raises(ValueError, match="lora_r > 0 saves only the final"):
        train(cfg)


def fixture_data(tmp_path):
    return training_fixture(tmp_path, n=16)  # the training tests' three small datasets


@pytest.mark.slow
def test_lora_training_changes_only_the_adapted_weights(decoder, tmp_path):
    cfg = load_config(None, {
        "backbone": str(decoder), "pooling": "lasttoken", "data": fixture_data(tmp_path), "batch_size": 8,
        "neg_num": 1, "cls_neg_num": 1, "max_steps": 3, "lr": 1e-2, "warmup_ratio": 0.0, "seed": 3,
        "max_seq_length": 32, "query_max_len": 16, "passage_max_len": 16, "device": "cpu",
        "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "lora_target_modules": ["q_proj", "v_proj"],
        "query_prompt": "Instruct: 找答案\nQuery: ", "output_dir": str(tmp_path / "out"), "logging_steps": 100,
    })
    final = train(cfg)
    assert json.loads((final / "piccolo_training.json").read_text())["config"]["lora_r"] == 4
    trained = SentenceTransformer(str(final), device="cpu")
    assert trained.prompts["query"] == "Instruct: 找答案\nQuery: "
    base = build_model(str(decoder), pooling="lasttoken", seed=3)
    after = dict(trained[0].auto_model.named_parameters())
    moved = {n for n, p in base[0].auto_model.named_parameters() if not torch.equal(p, after[n])}
    assert moved == {f"layers.{i}.self_attn.{m}.weight" for i in range(2) for m in ("q_proj", "v_proj")}
    assert not torch.equal(trained[2].linear.weight, base[2].linear.weight)  # the head trains too
