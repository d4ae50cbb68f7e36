"""piccolo_lib's layers (docs/architecture.md): arrows point down, no import circle, no private name crosses modules."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "piccolo_lib"
LAYERS = [  # bottom to top: the table of docs/architecture.md
    ["paths", "errors", "compat", "scores", "gradcache", "packing", "merging", "synth_prompts", "synth_standin", "widgets", "__init__"],
    ["losses", "sampling", "checkpoints"],
    ["validation", "data", "e5_small", "backbones", "model_card"],
    ["runtime", "model", "config"],
    ["training", "mining", "refresh"],
    ["local_benchmark", "mirror", "cmteb"],
    ["evaluation", "benchmarking"],
    ["reporting", "plots"],
    ["pipeline", "course", "exercises", "pages", "synth_filters", "synth_backends", "synth", "synth_cli", "cli"],
]
LAYER = {m: i for i, mods in enumerate(LAYERS) for m in mods}


def imports() -> dict[str, list[tuple[str, list[str]]]]:
    """{module: [(imported module, names)]} for every ``from .x import ...``, also inside functions.

    A subpackage (``losses/``) is one room: its files count as that module, imports among them are internal.
    """
    out: dict[str, list] = {}
    for path in sorted(PACKAGE.glob("*.py")) + sorted(PACKAGE.glob("*/*.py")):
        inner = path.parent != PACKAGE  # a file of a subpackage
        name = path.parent.name if inner else path.stem
        found = out.setdefault(name, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            level = getattr(node, "level", 0) - (1 if inner else 0)
            if isinstance(node, ast.ImportFrom) and inner and node.level == 1:
                continue  # within the subpackage
            if isinstance(node, ast.ImportFrom) and level == 1:
                found.append(((node.module or "__init__").split(".")[0], [a.name for a in node.names]))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("piccolo_lib."):
                found.append((node.module.split(".")[1], [a.name for a in node.names]))
    return out


def test_every_module_has_a_layer():
    missing = sorted(set(imports()) - set(LAYER))
    assert not missing, f"add {missing} to LAYERS here and to docs/architecture.md"


def test_arrows_point_down():
    upward = [f"{m} (layer {LAYER[m]}) imports {d} (layer {LAYER[d]})"
              for m, deps in imports().items() for d, _ in deps if LAYER[d] > LAYER[m]]
    assert not upward, upward


def test_no_import_circle():
    graph = {m: {d for d, _ in deps if d != m} for m, deps in imports().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_no_private_name_crosses_modules():
    crossing = [f"{m} imports {d}.{n}" for m, deps in imports().items() for d, names in deps
                for n in names if n.startswith("_") and not n.startswith("__")]
    assert not crossing, crossing


def test_the_layer_table_is_the_documented_one():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for i, mods in enumerate(LAYERS):
        row = next(line for line in doc.splitlines() if line.startswith(f"| {i} ·"))
        for m in mods:
            assert m == "__init__" or f"`{m}`" in row, f"docs/architecture.md: layer {i} should list `{m}`"
