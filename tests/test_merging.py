"""Model merging against hand computations; the merged folder is a plain sentence-transformers model."""

import math

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from piccolo_lib.cli import main
from piccolo_lib.merging import MergeError, merge_states, slerp
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
    for name, kwargs in {"a": dict(seed=1), "b": dict(seed=2), "nohead": dict(seed=1, projection_dim=0)}.items():
        model = build_model("offline-bert", **kwargs)
        model.prompts = {"query": "query: "}
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
