"""Safety: nothing the project writes or reads can run code.

A static scan of the project's Python sources (the library, benchmarks, scripts), then what a
training run actually writes, and the trust_remote_code default.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("piccolo_lib", "benchmarks", "scripts") for p in (ROOT / d).rglob("*.py"))
PICKLE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def findings(path: Path) -> list[str]:
    """Every unsafe construct of one source file, as 'file:line: what'."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            out += [f"{where}: imports {n}" for n in names if n.split(".")[0] in PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        kwargs = {k.arg: k.value for k in node.keywords}
        if func in ("eval", "exec", "compile", "__import__"):
            out.append(f"{where}: {func}()")
        if func.endswith("torch.load") or func == "load" and "weights_only" in kwargs:
            value = kwargs.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                out.append(f"{where}: torch.load without weights_only=True")
        if func.startswith("yaml.") and func != "yaml.safe_load" and func.split(".")[1].endswith("load"):
            out.append(f"{where}: {func} (use yaml.safe_load)")
        if func.endswith(("torch.save", ".to_pickle")):
            out.append(f"{where}: {func} writes a pickle (use safetensors / JSON)")
        for key, bad in (("safe_serialization", False), ("trust_remote_code", True), ("weights_only", False)):
            value = kwargs.get(key)
            if isinstance(value, ast.Constant) and value.value is bad:
                out.append(f"{where}: {key}={bad}")
    return out


def test_the_scan_catches_what_it_looks_for(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("import pickle, yaml, torch\nfrom dill import loads\ntorch.load('x')\n"
                   "torch.load('x', weights_only=False)\nyaml.load(s)\nyaml.unsafe_load(s)\neval('1')\n"
                   "exec('x = 1')\ntorch.save(m, 'p')\nm.save(p, safe_serialization=False)\n"
                   "f(trust_remote_code=True)\nmodel.eval()\nyaml.safe_load(s)\ntorch.load('x', weights_only=True)\n")
    got = findings(bad)
    lines = sorted(int(f.split(":")[1]) for f in got)
    assert lines == [1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11], got  # line 4: two findings; 12-14 are safe


def test_no_pickle_eval_unsafe_yaml_or_unsafe_torch_load_in_project_sources():
    assert len(SOURCES) > 10
    problems = [f for path in SOURCES for f in findings(path)]
    assert problems == []


def test_trust_remote_code_is_off_unless_asked(monkeypatch):
    import piccolo_lib.model.build as model_module
    from piccolo_lib.training import TrainConfig, load_config

    assert TrainConfig().trust_remote_code is False and load_config(None).trust_remote_code is False
    seen = []

    class Stop(Exception):
        pass

    def fake_transformer(path, **kwargs):
        seen.append(kwargs)
        raise Stop

    monkeypatch.setattr(model_module, "Transformer", fake_transformer)
    for flag in (False, True):
        with pytest.raises(Stop):
            model_module.build_model("offline-bert", trust_remote_code=flag)
    off, on = seen
    assert "trust_remote_code" not in str(off)  # transformers and sentence-transformers default to off
    assert on["model_kwargs"]["trust_remote_code"] is True and on["config_kwargs"] == {"trust_remote_code": True}


def test_a_trained_model_folder_is_safetensors_only(tmp_path):
    from piccolo_lib.training import load_config, train
    from test_training import fixture_data

    final = train(load_config(None, {"data": fixture_data(tmp_path, n=8), "batch_size": 4, "neg_num": 1,
                                     "cls_neg_num": 2, "max_steps": 1, "max_seq_length": 16,
                                     "output_dir": str(tmp_path / "out"), "device": "cpu"}))
    files = [p for p in final.rglob("*") if p.is_file()]
    weights = [p.relative_to(final).as_posix() for p in files if p.suffix == ".safetensors"]
    assert "model.safetensors" in weights and any(w.endswith("Dense/model.safetensors") for w in weights)
    unsafe = [p.name for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")]
    assert unsafe == []
