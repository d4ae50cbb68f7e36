"""Full-mode rehearsal on the CPU: ``piccolo train CONFIG --mode full`` with the report's config shape.

What runs here is what a GPU user runs, except for two things, left out on purpose:

* **the download**: the hub model is e5-small (the real pretrained multilingual-e5-small, built offline)
  saved as a bf16 checkpoint with its own 672-dim projection head and prompts (as
  ``sensenova/piccolo-large-zh-v2`` has its 1792-dim head) and placed in a Hugging Face cache under a hub
  name, so the hub code path (``modules.json`` found through ``hf_hub_download``) reads it offline;
* **the GPU**: training runs on the CPU, with bf16 autocast where the CPU supports it (else fp32, said in
  the output), short max lengths and a few steps, so the test stays under about two minutes.

Everything else is the full path: the hub name as backbone, the saved head, pooling and prompts kept, fp32
master weights from a bf16 checkpoint, projection head, the report's 7 MRL dims, gradient checkpointing,
per-dataset prompts, the report's loss weights and cls_neg_num 10, C-MTEB-shaped data taken from the offline
mirror (``piccolo cmteb sample-mirror``: the real tasks' layouts and columns, the course's samples as rows),
a meta list with repeat counts, and ``piccolo eval --benchmark cmteb --data-dir MIRROR`` on the result.
"""

import json
import math
import random
import time

import pytest
import torch

from test_full_mode import fake_hub

HUB_NAME = "piccolo-standin/e5-small-bf16"


def cpu_bf16_autocast() -> bool:
    """True when a bf16 autocast matmul runs on this CPU (and gives bf16)."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    except RuntimeError:
        return False


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def training_data_from_mirror(mirror, out):
    """C-MTEB-shaped training files in the three Piccolo formats, from the mirror's task data, and a meta list."""
    from piccolo_lib.data import from_classification
    from piccolo_lib.mirror import read_mirror_task

    def task(name):
        return read_mirror_task(mirror, name, ["default"])["default"]

    rng = random.Random(0)
    files = {}
    for name, split in (("T2Retrieval", "dev"), ("T2Reranking", "dev")):
        data = task(name)[split]
        docs = dict(zip(data["corpus"]["id"], data["corpus"]["text"]))
        ranked = data.get("top_ranked") or {}
        rows = []
        for qid, text in zip(data["queries"]["id"], data["queries"]["text"]):
            relevant = [d for d, score in data["relevant_docs"].get(qid, {}).items() if score > 0]
            if not relevant:
                continue
            pool = [d for d in ranked.get(qid, []) if d not in relevant] or rng.sample(sorted(docs), 3)
            rows.append({"text": text, "text_pos": docs[relevant[0]],
                         "text_neg": [docs[d] for d in pool if d not in relevant][:3] or [docs[pool[0]]],
                         "type": "retri_contrast"})
        files[name.lower()] = rows
    lcqmc = task("LCQMC")["test"]
    files["lcqmc"] = [{"text": r["sentence1"], "text_pair": r["sentence2"], "label": float(r["score"]), "type": "cosent"}
                      for r in lcqmc]
    ocnli = task("Ocnli")["validation"]
    files["ocnli"] = [{"text": r["sentence1"], "text_pair": r["sentence2"], "label": float(r["labels"]), "type": "cosent"}
                      for r in ocnli]
    tnews = task("TNews")["train"]
    names = tnews.features["label"].names
    files["tnews"] = from_classification(tnews["text"], [names[i] for i in tnews["label"]])
    clusters = task("CLSClusteringS2S")["test"][0]
    files["clsclustering"] = from_classification(clusters["sentences"], clusters["labels"])
    out.mkdir()
    for name, rows in files.items():
        write_jsonl(out / f"{name}.jsonl", rows)
    repeats = {"t2retrieval": 2, "tnews": 1}  # the reference's `path repeat_count` lines
    (out / "meta_list.txt").write_text("".join(f"{n}.jsonl {repeats.get(n, 1)}\n" for n in files), encoding="utf-8")
    return out / "meta_list.txt", {n: len(r) for n, r in files.items()}


TYPES = {"t2retrieval": "retri_contrast", "t2reranking": "retri_contrast", "lcqmc": "cosent", "ocnli": "cosent",
         "tnews": "cls_contrast", "clsclustering": "cls_contrast"}


def first_steps(sizes: dict[str, int], repeats: dict[str, int], seed: int, batch: int = 8, n: int = 4) -> list[str]:
    """The datasets of the first ``n`` steps, from piccolo_lib's own sampler (meta-list order, one process)."""
    import itertools

    from torch.utils.data import BatchSampler, ConcatDataset, SequentialSampler

    from piccolo_lib.sampling import TaskHomogeneousBatchSampler

    names = list(sizes)
    data = ConcatDataset([range(k) for k in sizes.values()])
    samplers = [BatchSampler(SequentialSampler(range(k)), batch_size=batch, drop_last=True) for k in sizes.values()]
    sampler = TaskHomogeneousBatchSampler(data, samplers, seed=seed, repeats=[repeats.get(m, 1) for m in names])
    ends = list(itertools.accumulate(sizes.values()))
    return [names[next(i for i, e in enumerate(ends) if b[0] < e)] for b in itertools.islice(sampler, n)]


def covering_seed(sizes: dict[str, int], repeats: dict[str, int]) -> int:
    """The first seed whose first 4 steps use every loss and both datasets with their own prompts."""
    for seed in range(200):
        first = first_steps(sizes, repeats, seed)
        if {TYPES.get(m) for m in first} == set(TYPES.values()) and {"lcqmc", "tnews"} <= set(first):
            return seed
    raise AssertionError(f"no seed below 200 covers every loss in 4 steps: {sizes}")


@pytest.mark.slow
def test_full_mode_rehearsal_on_cpu(tmp_path, monkeypatch, capsys):
    """Only the download and the GPU are left out (see the module docstring)."""
    from sentence_transformers import SentenceTransformer

    from piccolo_lib import cli
    from piccolo_lib.model import build_model
    from piccolo_lib.mirror import sample_mirror

    t0 = time.perf_counter()
    # the hub model: e5-small + its own head (as a saved Piccolo2 model has) + prompts, saved as bf16
    hub_model = build_model("e5-small", seed=0, device="cpu")
    head = hub_model[2].linear.weight.detach().clone()
    hub_model.to(torch.bfloat16).save(str(tmp_path / "hub_copy"))
    fake_hub(monkeypatch, tmp_path, HUB_NAME, tmp_path / "hub_copy")
    mirror = tmp_path / "mirror"
    sample_mirror(mirror)
    meta, sizes = training_data_from_mirror(mirror, tmp_path / "train")

    bf16 = cpu_bf16_autocast()
    config = {
        "mode": "full", "backbone": HUB_NAME, "pooling": "auto", "projection_dim": None,
        "mrl_dims": [96, 192, 288, 384, 480, 576, 672],  # the report's 7 dims (256 ... 1792) scaled to 672
        "max_seq_length": 64, "data": [str(meta)],
        "losses": {"retri_contrast": {"temperature": 0.01, "weight": 1.0}, "cosent": {"temperature": 0.05, "weight": 0.04},
                   "cls_contrast": {"temperature": 0.05, "weight": 0.2}},
        "batch_size": 8, "neg_num": 1, "cls_neg_num": 10, "query_max_len": 24, "passage_max_len": 48,
        "dataset_prompts": {"lcqmc": {"query": "query: "}, "tnews": {"query": "新闻标题: ", "passage": "类别: "}},
        # a seed whose first 4 steps cover every loss and both prompted datasets (found with the library's sampler)
        "max_steps": 4, "lr": 2e-5, "warmup_ratio": 0.1, "seed": covering_seed(sizes, repeats={"t2retrieval": 2}),
        "precision": "bf16" if bf16 else "fp32", "gradient_checkpointing": True,
        "logging_steps": 100, "output_dir": str(tmp_path / "run"), "device": "auto",
    }
    (tmp_path / "full.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    t_train = time.perf_counter()
    assert cli.main(["train", str(tmp_path / "full.yaml"), "--mode", "full"]) == 0, capsys.readouterr().err
    train_s = time.perf_counter() - t_train

    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 5))
    assert all(math.isfinite(x["loss"]) and x["loss"] > 0 for x in lines)
    assert [x["dataset"] for x in lines] == first_steps(sizes, {"t2retrieval": 2}, config["seed"])  # the sampler's order
    assert {x["task"] for x in lines} == {"retri_contrast", "cosent", "cls_contrast"}
    final = tmp_path / "run" / "final"
    info = json.loads((final / "piccolo_training.json").read_text(encoding="utf-8"))
    assert info["mrl_dims"] == config["mrl_dims"] and info["config"]["backbone"] == HUB_NAME
    model = SentenceTransformer(str(final), device="cpu")
    assert model.get_embedding_dimension() == 672 and model[1].pooling_mode == "mean"
    assert {p.dtype for p in model.parameters()} == {torch.float32}, "fp32 master weights were trained and saved"
    assert model.prompts["query"] == "query: " and model.prompts["document"] == "passage: "  # the hub model's own
    assert not torch.equal(model[2].linear.weight, head), "the saved head was trained, not replaced"
    assert SentenceTransformer(str(final), device="cpu", truncate_dim=96).encode(["测试"]).shape == (1, 96)

    t_eval = time.perf_counter()
    assert cli.main(["eval", str(final), "--benchmark", "cmteb", "--data-dir", str(mirror), "--tasks", "LCQMC",
                     "--output", str(tmp_path / "eval"), "--name", "rehearsal", "--mode", "full"]) == 0
    eval_s = time.perf_counter() - t_eval
    table = capsys.readouterr().out
    assert "LCQMC" in table or "STS" in table
    summary = {"precision": config["precision"], "cpu": torch.backends.cpu.get_cpu_capability(),
               "steps": len(lines), "train_s": round(train_s, 1), "eval_s": round(eval_s, 1),
               "total_s": round(time.perf_counter() - t0, 1), "datasets": sizes,
               "loss": [(x["dataset"], round(x["loss"], 4)) for x in lines],
               "samples_per_s": [x["samples_per_second"] for x in lines]}
    print("\nfull-mode rehearsal:", json.dumps(summary, ensure_ascii=False))
    (tmp_path / "rehearsal.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
