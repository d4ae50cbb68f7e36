"""Model merging against hand computations; the merged folder is a plain sentence-transformers model."""

import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from piccolo_lib.cli import main
from piccolo_lib.merging import MergeError, merge_models, merge_states, slerp
from piccolo_lib.model import build_model


def test_slerp_of_two_vectors_by_hand():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])  # 90 degrees apart, norms 1 and 2
    mid = slerp(a, b, 0.5)  # sin(pi/4)/sin(pi/2) * (a + b)
    assert torch.allclose(mid, torch.tensor([math.sqrt(0.5), 2 * math.sqrt(0.5)]), atol=1e-7)
    third = slerp(a, b, 1 / 3)  # angle pi/2: weights sin(pi/3) and sin(pi/6)
    assert torch.allclose(third, torch.tensor([math.sin(math.pi / 3), 2 * math.sin(math.pi / 6)]), atol=1e-7)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-7)


def test_slerp_falls_back_to_linear_when_nearly_parallel():
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([2.0, 1e-9], dtype=torch.float64)  # angle 5e-10 rad
    assert torch.equal(slerp(a, b, 0.25), 0.75 * a + 0.25 * b)
    assert torch.equal(slerp(a, 3 * a, 0.5), 2 * a)  # exactly parallel


def test_linear_merge_is_the_weighted_average_and_weights_are_normalised():
    s1 = {"w": torch.tensor([[1.0, 2.0]]), "ids": torch.tensor([0, 1])}
    s2 = {"w": torch.tensor([[3.0, 6.0]]), "ids": torch.tensor([0, 1])}
    out = merge_states([s1, s2], [1.0, 3.0])  # -> 0.25, 0.75
    assert torch.allclose(out["w"], torch.tensor([[2.5, 5.0]])) and torch.equal(out["ids"], s1["ids"])
    three = merge_states([s1, s2, s2], [1, 1, 1])
    assert torch.allclose(three["w"], (s1["w"] + 2 * s2["w"]) / 3)


def test_mismatches_are_one_line_errors_naming_the_tensor():
    a, b = {"w": torch.zeros(2, 3)}, {"w": torch.zeros(3, 2)}
    with pytest.raises(MergeError, match=r"tensor 'w' has shape \(2, 3\) in A but \(3, 2\) in B"):
        merge_states([a, b], [1, 1], names=["A", "B"])
    with pytest.raises(MergeError, match=r"tensor 'v' is in B but not in A"):
        merge_states([a, {**a, "v": torch.zeros(1)}], [1, 1], names=["A", "B"])
    with pytest.raises(MergeError, match="slerp merges exactly 2"):
        merge_states([a, a, a], [1, 1, 1], "slerp")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    paths = {}
    kinds = {"a": dict(seed=1), "b": dict(seed=2), "nohead": dict(seed=1, projection_dim=0),
             "cls": dict(seed=2, pooling="cls"), "narrow": dict(seed=2, projection_dim=64),
             "prompted": dict(seed=2, prompts={"query": "查询: "})}
    for name, kwargs in kinds.items():
        prompts = kwargs.pop("prompts", {"query": "query: "})
        model = build_model("offline-bert", **kwargs)
        model.prompts = prompts
        paths[name] = root / name
        model.save(str(paths[name]), safe_serialization=True)
    return root, paths


def test_cli_merge_writes_a_loadable_safetensors_folder(folders, capsys):
    root, p = folders
    out = root / "merged"
    assert main(["merge", str(p["a"]), str(p["b"]), "--weights", "0.25,0.75", "--method", "slerp", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    merged = SentenceTransformer(str(out), device="cpu")
    assert merged.prompts.get("query") == "query: " and merged.encode(["你好"]).shape == (1, 224)
    ta, tb, tm = (load_file(str(x / "model.safetensors")) for x in (p["a"], p["b"], out))
    key = next(k for k in ta if "query.weight" in k)
    assert torch.allclose(tm[key], slerp(ta[key], tb[key], 0.75), atol=1e-6)
    head = load_file(str(out / "2_Dense" / "model.safetensors"))
    heads = [load_file(str(x / "2_Dense" / "model.safetensors")) for x in (p["a"], p["b"])]
    for k in head:  # the projection head is merged too
        assert torch.allclose(head[k], slerp(heads[0][k], heads[1][k], 0.75), atol=1e-6)


def test_cli_refuses_models_with_different_heads(folders, capsys):
    root, p = folders
    assert main(["merge", str(p["a"]), str(p["nohead"]), str(root / "bad")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("piccolo merge: cannot merge: modules") and "Dense" in err
    assert not (root / "bad").exists()


# ---------------------------------------------------------------- issue 25, defect 4: what cannot be averaged

@pytest.mark.parametrize("other, differs", [
    ("cls", r"pooling_mode 'mean' in {a} but 'cls' in {b}"),
    ("prompted", r"prompt 'query' 'query: ' in {a} but '查询: ' in {b}"),
    ("narrow", r"head out_features 224 in {a} but 64 in {b}"),
])
def test_other_pooling_head_or_prompts_are_refused_naming_both_models(folders, capsys, other, differs):
    """A CLS-pooled and a mean-pooled model used to merge silently, keeping the first model's pooling and prompts."""
    root, p = folders
    out = root / f"refused-{other}"
    with pytest.raises(MergeError, match=differs.format(a=re.escape(str(p["a"])), b=re.escape(str(p[other])))) as err:
        merge_models([p["a"], p[other]], out)
    assert "\n" not in str(err.value) and "keep_from=N (piccolo merge --keep-from N)" in str(err.value)
    assert main(["merge", str(p["a"]), str(p[other]), str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("piccolo merge: cannot merge: ")
    assert not out.exists()


def test_keep_from_takes_that_models_pooling_prompts_and_differing_head(folders):
    root, p = folders
    out = merge_models([p["a"], p["cls"]], root / "kept-cls", keep_from=2)
    merged = SentenceTransformer(str(out), device="cpu")
    assert merged[1].get_config_dict()["pooling_mode"] == "cls"
    ta, tb, tm = (load_file(str(x / "model.safetensors")) for x in (p["a"], p["cls"], out))
    key = next(k for k in ta if "query.weight" in k)
    assert torch.allclose(tm[key], (ta[key] + tb[key]) / 2, atol=1e-6)  # the backbone is still averaged

    out = root / "kept-narrow"
    assert main(["merge", str(p["a"]), str(p["narrow"]), "--keep-from", "2", str(out)]) == 0
    head, narrow = (load_file(str(x / "2_Dense" / "model.safetensors")) for x in (out, p["narrow"]))
    assert head.keys() == narrow.keys() and all(torch.equal(head[k], narrow[k]) for k in head)  # copied, not merged
    assert SentenceTransformer(str(out), device="cpu").encode(["你好"]).shape == (1, 64)
    out = merge_models([p["prompted"], p["a"]], root / "kept-prompt", keep_from=1)
    assert SentenceTransformer(str(out), device="cpu").prompts["query"] == "查询: "
    with pytest.raises(MergeError, match="keep_from=3: expected a model number from 1 to 2"):
        merge_models([p["a"], p["b"]], root / "x", keep_from=3)


def test_an_interrupted_merge_leaves_no_half_folder_and_the_old_one_intact(folders, monkeypatch):
    root, p = folders
    out = root / "interrupted"
    merge_models([p["a"], p["b"]], out)
    before = sorted(x.name for x in out.iterdir())
    real_save = SentenceTransformer.save

    def save_then_die(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        (Path(path) / "model.safetensors").write_bytes(b"half")  # the process dies mid-way through the weights
        raise OSError("killed mid-write")

    monkeypatch.setattr(SentenceTransformer, "save", save_then_die)
    with pytest.raises(OSError, match="mid-write"):
        merge_models([p["a"], p["b"]], root / "never")
    with pytest.raises(OSError, match="mid-write"):
        merge_models([p["a"], p["b"]], out)
    assert not (root / "never").exists() and sorted(x.name for x in out.iterdir()) == before
    assert load_file(str(out / "model.safetensors"))  # still the complete first merge
    assert not [x.name for x in root.iterdir() if x.name.startswith(".")], "no temporary folder left behind"
