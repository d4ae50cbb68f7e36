"""Training config handling and a short real training run on fixture data."""

import json

import pytest
from sentence_transformers import SentenceTransformer

from piccolo_lib import training
from piccolo_lib.data import DataError
from piccolo_lib.training import load_config, train

TYPES = {"retri.jsonl": "retri_contrast", "sts.jsonl": "cosent", "cls.jsonl": "cls_contrast"}


def fixture_data(tmp_path, n=24):
    rows = {
        "retri.jsonl": [{"text": f"问题{i}", "text_pos": f"答案{i}是这样的", "text_neg": [f"无关{i}", f"其他{i}"],
                         "type": "retri_contrast"} for i in range(n)],
        "sts.jsonl": [{"text": f"今天天气{i}", "text_pair": f"天气今天{i % 5}", "label": i % 6, "type": "cosent"}
                      for i in range(n)],
        "cls.jsonl": [{"text": f"比赛{i}进球", "text_pos": "体育", "text_neg": ["财经", "科技"], "type": "cls_contrast"}
                      if i % 2 else {"text": f"股市{i}上涨", "text_pos": "财经", "text_neg": ["体育", "科技"],
                                     "type": "cls_contrast"} for i in range(n)],
    }
    for name, rs in rows.items():
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rs), encoding="utf-8")
    return [str(tmp_path / name) for name in rows]


def test_unknown_config_key_suggests_the_closest():
    with pytest.raises(ValueError, match="unknown key 'batchsize'; did you mean 'batch_size'"):
        load_config(None, ["batchsize=8"])
    cfg = load_config(None, ["lr=1e-4", "mrl_dims=[8, 16]", "gradient_checkpointing=true"])
    assert cfg.lr == 1e-4 and cfg.mrl_dims == [8, 16] and cfg.gradient_checkpointing is True
    with pytest.raises(ValueError, match="unknown task type 'regression'"):
        load_config(None, {"losses": {"regression": {"weight": 1.0}}})


def test_bad_data_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    paths = fixture_data(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "text_pair": "b", "label": "x", "type": "cosent"}\n' * 20)
    import piccolo_lib.model as model_module
    monkeypatch.setattr(model_module, "build_model", lambda *a, **k: pytest.fail("model built on bad data"))
    cfg = load_config(None, {"data": paths + [str(tmp_path / "bad.jsonl")], "batch_size": 8,
                             "output_dir": str(tmp_path / "out")})
    with pytest.raises(DataError, match=r"bad.jsonl: row 1: field 'label': expected a finite number"):
        train(cfg)
    assert not (tmp_path / "out" / "final").exists()


@pytest.mark.slow
def test_short_training_run_routes_each_dataset_to_its_loss(tmp_path):
    paths = fixture_data(tmp_path)
    cfg = load_config(None, {
        "data": paths, "batch_size": 8, "neg_num": 1, "cls_neg_num": 2, "epochs": 2, "lr": 5e-4,
        "max_seq_length": 32, "query_max_len": 16, "passage_max_len": 16, "seed": 1,
        "output_dir": str(tmp_path / "out"), "device": "cpu", "logging_steps": 100,
    })
    final = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, len(lines) + 1)) and len(lines) == 2 * 3 * 24 // 8
    for x in lines:
        assert TYPES[x["dataset"] + ".jsonl"] == x["task"]
        assert x["loss"] > 0 and x["lr"] is not None and x["samples_per_second"] > 0
    assert {x["task"] for x in lines} == set(TYPES.values())
    info = json.loads((final / "piccolo_training.json").read_text())
    assert info["mrl_dims"] == [32, 64, 96, 128, 160, 192, 224]
    model = SentenceTransformer(str(final))  # a plain sentence-transformers folder
    assert model.encode(["你好"]).shape == (1, 224)
    card = (final / "README.md").read_text(encoding="utf-8")
    assert "## Piccolo2 training" in card and "| cls | cls_contrast | 24 | 1 | 0.05 | 0.2 |" in card


def test_empty_negatives_and_unknown_dataset_prompts_are_refused(tmp_path):
    paths = fixture_data(tmp_path)
    rows = [json.loads(x) for x in open(paths[0], encoding="utf-8")]
    rows[4]["text_neg"] = []
    (tmp_path / "retri.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cfg = load_config(None, {"data": paths, "batch_size": 8, "output_dir": str(tmp_path / "o")})
    with pytest.raises(DataError, match=r"retri.jsonl: row 5: field 'text_neg': empty, but neg_num=1"):
        train(cfg)
    cfg = load_config(None, {"data": paths, "batch_size": 8, "neg_num": 0, "cls_neg_num": 2, "output_dir": str(tmp_path / "o"),
                             "dataset_prompts": {"retrival": {"query": "查询: "}}})
    with pytest.raises(ValueError, match=r"dataset_prompts names unknown dataset\(s\) \['retrival'\]"):
        train(cfg)


def test_cli_overrides_after_options(tmp_path, capsys):
    from piccolo_lib.cli import main

    config = str(training.REPO_ROOT / "configs" / "quickstart-toy.yaml")
    with pytest.raises(SystemExit):
        main(["train", config, "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["train", config, "--mode", "quick", "epoch=1"]) == 2  # one line, no traceback (issue 15); 2: usage
    assert capsys.readouterr().err.startswith(f"piccolo train: {config}: unknown key 'epoch'; did you mean 'epochs'")


@pytest.mark.parametrize("name", ["quickstart.yaml", "quickstart-toy.yaml", "quickstart-full.yaml", "piccolo2-large-zh.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(training.REPO_ROOT / "configs" / name)
    assert cfg.mode in ("quick", "full") and cfg.batch_size > 0
    if name == "piccolo2-large-zh.yaml":  # the report's hyperparameters (report, 'Training data and settings')
        assert cfg.projection_dim == 1792 and cfg.mrl_dims == [256, 512, 768, 1024, 1280, 1536, 1792]
        assert cfg.losses["cosent"] == {"temperature": 0.05, "weight": 0.04}
        assert (training.REPO_ROOT / cfg.deepspeed).exists()


def test_model_card_section_lists_data_losses_and_scores():
    from piccolo_lib.reporting import model_card_section

    info = {"config": {"backbone": "offline-bert", "pooling": "mean", "batch_size": 8, "lr": 1e-4, "seed": 1},
            "mrl_dims": [32, 64], "losses": {"cosent": {"temperature": 0.05, "weight": 0.04}},
            "data": [{"name": "sts", "type": "cosent", "rows": 10, "repeat": 2}]}
    text = model_card_section(info, [{"model": "m", "truncate_dim": None, "categories": {"STS": 50.0},
                                      "average": 50.0, "mteb_version": "2.26"}])
    assert "| sts | cosent | 10 | 2 | 0.05 | 0.04 |" in text and "MRL dims [32, 64]" in text
    assert "| m | full | 50.00 | 50.00 |" in text


def test_loss_overrides_accept_aliases():
    cfg = load_config(None, {"losses": {"sts": {"weight": 0.1}, "retri_contrast": {"temperature": 0.02}}})
    assert cfg.losses == {"cosent": {"weight": 0.1}, "retri_contrast": {"temperature": 0.02}}


@pytest.mark.slow
def test_tensorboard_logging_is_optional_and_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    paths = fixture_data(tmp_path, n=16)
    cfg = load_config(None, {"data": paths, "batch_size": 8, "max_steps": 3, "logging_steps": 1, "neg_num": 1,
                             "cls_neg_num": 1, "max_seq_length": 16, "report_to": "tensorboard",
                             "output_dir": str(tmp_path / "out"), "device": "cpu"})
    train(cfg)
    events = EventAccumulator(str(tmp_path / "out" / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    with pytest.raises(ValueError, match="report_to='mlflow' needs the 'mlflow' package"):
        training._loggers("mlflow", tmp_path)


def test_as_retrieval_keeps_the_upper_score_half_and_label_texts(tmp_path):
    from piccolo_lib.data import as_retrieval, load_train_sets

    sets = {s.name: s for s in load_train_sets(fixture_data(tmp_path))}
    sts = as_retrieval(sets["sts"])  # labels i % 6 over 0..5: 3, 4, 5 are in the upper half
    assert sts.task_type == "retri_contrast" and len(sts.dataset) == sum(i % 6 >= 2.5 for i in range(24))
    assert sts.dataset[0] == {"text": "今天天气3", "text_pos": "天气今天3", "text_neg": [], "type": "retri_contrast"}
    cls = as_retrieval(sets["cls"])
    assert len(cls.dataset) == 24 and cls.dataset[1]["text_pos"] == "体育" and cls.dataset[1]["text_neg"] == ["财经", "科技"]
    assert as_retrieval(sets["retri"]) is sets["retri"]


@pytest.mark.slow
def test_retrieval_for_routes_every_dataset_through_infonce(tmp_path):
    paths = fixture_data(tmp_path)
    cfg = load_config(None, {"data": paths, "batch_size": 4, "max_steps": 6, "neg_num": 1, "cls_neg_num": 2,
                             "max_seq_length": 16, "retrieval_for": ["sts", "classification"],
                             "output_dir": str(tmp_path / "out"), "device": "cpu", "logging_steps": 100})
    assert cfg.retrieval_for == ["cosent", "cls_contrast"]
    final = train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert {x["task"] for x in lines} == {"retri_contrast"} and {x["dataset"] for x in lines} > {"retri"}
    info = json.loads((final / "piccolo_training.json").read_text())
    assert {d["type"] for d in info["data"]} == {"retri_contrast"}


def test_freeze_for_speed_freezes_what_it_says():
    from piccolo_lib.model import build_model, freeze_for_speed

    model = build_model("offline-bert")  # 2 layers + a head
    bert = model[0].auto_model
    total = sum(p.numel() for p in model.parameters())
    counts = freeze_for_speed(model, word_embeddings=True)
    emb = bert.get_input_embeddings().weight
    assert not emb.requires_grad and counts["frozen"] == emb.numel() and counts["trainable"] == total - emb.numel()
    assert bert.encoder.layer[0].attention.self.query.weight.requires_grad

    model = build_model("offline-bert")
    bert = model[0].auto_model
    counts = freeze_for_speed(model, train_top_layers=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(".embeddings." in n or ".layer.0." in n for n in trainable)
    assert any(".layer.1." in n for n in trainable) and any(n.startswith("2.") for n in trainable)  # top layer, head
    after = [bert.encoder.layer[1], bert.pooler, model[2]]  # the top layer, what follows it (BERT's pooler), the head
    want = sum(p.numel() for m in after for p in m.parameters())
    assert counts["trainable"] == want
    with pytest.raises(ValueError, match="train_top_layers=3: the backbone has 2 layers"):
        freeze_for_speed(build_model("offline-bert"), train_top_layers=3)


@pytest.mark.slow
def test_frozen_word_embeddings_do_not_move_in_training(tmp_path):
    import torch

    from piccolo_lib.model import build_model

    cfg = load_config(None, {
        "data": fixture_data(tmp_path), "batch_size": 8, "neg_num": 1, "cls_neg_num": 2, "max_steps": 3,
        "lr": 1e-3, "max_seq_length": 32, "query_max_len": 16, "passage_max_len": 16, "seed": 1,
        "freeze_word_embeddings": True, "output_dir": str(tmp_path / "out"), "device": "cpu",
    })
    start = build_model("offline-bert", seed=1)[0].auto_model
    final = SentenceTransformer(str(train(cfg)), device="cpu")[0].auto_model
    assert torch.equal(start.get_input_embeddings().weight, final.get_input_embeddings().weight)
    assert not torch.equal(start.encoder.layer[0].attention.self.query.weight,
                           final.encoder.layer[0].attention.self.query.weight)


def test_auto_precision_follows_the_hardware(monkeypatch):
    import torch

    from piccolo_lib.train import config

    monkeypatch.setattr(config, "cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    assert config.auto_precision("cpu") == "bf16"
    monkeypatch.setattr(config, "cpu_flags", lambda: {"avx2", "avx512f"})  # bf16 only emulated: slower than fp32
    assert config.auto_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a T4: fp16 with loss scaling
    assert config.auto_precision("cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # an A100
    assert config.auto_precision("cuda") == "bf16"
    assert load_config(None, ["precision=auto"]).precision == "auto"
    with pytest.raises(ValueError, match="precision"):
        load_config(None, ["precision=bf32"])


@pytest.mark.slow
def test_precision_auto_trains_in_bf16_autocast_with_fp32_weights(tmp_path, monkeypatch, capsys):
    import torch

    from piccolo_lib import config

    monkeypatch.setattr(config, "cpu_flags", lambda: {"amx_bf16"})  # as on an AMX Xeon, whatever runs the test
    seen = []
    real_autocast = torch.autocast.__init__

    def spy(self, device_type, *a, **k):  # record every autocast context the Trainer opens
        real_autocast(self, device_type, *a, **k)
        seen.append((device_type, self.fast_dtype, self._enabled))

    monkeypatch.setattr(torch.autocast, "__init__", spy)
    cfg = load_config(None, {
        "data": fixture_data(tmp_path), "batch_size": 8, "neg_num": 1, "cls_neg_num": 2, "max_steps": 2,
        "max_seq_length": 32, "query_max_len": 16, "passage_max_len": 16, "seed": 1, "precision": "auto",
        "output_dir": str(tmp_path / "out"), "device": "cpu",
    })
    final = train(cfg)
    assert "precision auto: bf16 on cpu" in capsys.readouterr().out
    assert ("cpu", torch.bfloat16, True) in seen, seen
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(0 < x["loss"] < 100 for x in lines)
    weights = SentenceTransformer(str(final), device="cpu")[0].auto_model.encoder.layer[0].attention.self.query.weight
    assert weights.dtype == torch.float32  # fp32 master weights


def loop_by_hand(cfg, steps: int) -> list[tuple[str, float]]:
    """The loop a learner writes by hand: sampler -> collator -> encode the distinct texts -> task loss -> AdamW."""
    import math

    import torch
    from torch.utils.data import BatchSampler, ConcatDataset
    from transformers import get_scheduler

    parts = training.training_parts(cfg, verbose=False)
    model = parts.model
    data = ConcatDataset([d.add_column("dataset_name", [n] * len(d)) for n, d in parts.datasets.items()])
    sampler = parts.sampler(data, [BatchSampler(range(len(d)), cfg.batch_size, drop_last=False)
                                   for d in parts.datasets.values()], seed=cfg.seed)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = [("bias" in n or "norm" in n.lower()) for n, _ in named]
    opt = torch.optim.AdamW([{"params": [p for (_, p), nd in zip(named, no_decay) if not nd], "weight_decay": cfg.weight_decay},
                             {"params": [p for (_, p), nd in zip(named, no_decay) if nd], "weight_decay": 0.0}], lr=cfg.lr)
    sched = get_scheduler("linear", opt, num_warmup_steps=math.ceil(cfg.warmup_ratio * steps), num_training_steps=steps)
    model.train()
    out = []
    for _, rows in zip(range(steps), sampler):
        batch = parts.collator([data[i] for i in rows])  # the batch's distinct texts, shortest first, + the index
        name, labels = batch.pop("dataset_name"), batch.pop("label")
        feature = {k[len("texts_"):]: v for k, v in batch.items() if k.startswith("texts_")}
        loss = parts.losses[name].loss_from_table(model(feature)["sentence_embedding"], labels)  # one plain pass
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        out.append((name, loss.item()))
    return out


def test_a_loop_by_hand_reproduces_train_losses(tmp_path):
    """train() is the plain loop: with dropout off, the same sampler, collator, losses, AdamW, schedule and clipping
    give the same per-step losses (3 steps: the first at lr 0 (warmup), the third after a real update)."""
    cfg = load_config(training.REPO_ROOT / "configs" / "quickstart-toy.yaml",
                      {"max_steps": 3, "dropout": 0.0, "output_dir": str(tmp_path / "run")})
    mine = loop_by_hand(cfg, 3)
    train(cfg)
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [d for d, _ in mine] == [x["dataset"] for x in log]
    assert [loss for _, loss in mine] == pytest.approx([x["loss"] for x in log], rel=1e-4)


def test_dropout_knob_sets_every_dropout_layer():
    from piccolo_lib.errors import ConfigError
    from piccolo_lib.model import build_model, set_dropout

    model = build_model("offline-bert")
    layers = [m for m in model.modules() if m.__class__.__name__ == "Dropout"]
    assert layers and all(m.p == 0.1 for m in layers)  # the toy's own dropout
    assert set_dropout(model, 0.0) == len(layers) and all(m.p == 0.0 for m in layers)
    with pytest.raises(ConfigError, match="dropout must be in"):
        set_dropout(model, 1.5)
