"""piccolo_lib's layers (docs/architecture.md): arrows point down, no import circle, no private name crosses modules.

A room is a top-level module (``paths``) or a subpackage (``train``); a subpackage's files may import each other,
but the rooms obey the layer table, which is the table of docs/architecture.md.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "piccolo_lib"
LAYERS = [  # bottom to top: the table of docs/architecture.md
    ["paths", "errors", "compat", "scores", "text", "io", "__init__"],
    ["losses"],
    ["tasks"],
    ["data"],
    ["model", "runtime"],
    ["train"],
    ["evaluate", "search"],
    ["synth"],
    ["pipeline", "course", "cli"],
]
LAYER = {m: i for i, mods in enumerate(LAYERS) for m in mods}


def files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def dotted(path: Path) -> list[str]:
    """piccolo_lib/train/loop.py -> ["train", "loop"]; piccolo_lib/train/__init__.py -> ["train"]."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts


def file_imports() -> dict[str, list[tuple[str, list[str]]]]:
    """{"train.loop": [("data.files", names), ...]} for every import of piccolo_lib code, also inside functions."""
    out: dict[str, list] = {}
    for path in files():
        here = dotted(path)
        package = here if path.name == "__init__.py" else here[:-1]
        found = out.setdefault(".".join(here), [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").startswith("piccolo_lib."):
                target = node.module.split(".")[1:]
            else:
                continue
            if not node.module:  # from . import a, b: a module of the package, or a name its __init__ defines
                for a in node.names:
                    full = target + [a.name]
                    is_module = PACKAGE.joinpath(*full).with_suffix(".py").exists() or PACKAGE.joinpath(*full).is_dir()
                    found.append((".".join(full if is_module else target) or "__init__", [a.name]))
            else:
                found.append((".".join(target) or "__init__", [a.name for a in node.names]))
    return out


def room(module: str) -> str:
    return module.split(".")[0] or "__init__"


def imports() -> dict[str, list[tuple[str, list[str]]]]:
    """{room: [(imported room, names)]}, imports within a room left out."""
    out: dict[str, list] = {}
    for module, deps in file_imports().items():
        found = out.setdefault(room(module), [])
        found += [(room(d), names) for d, names in deps if room(d) != room(module)]
    return out


def test_every_room_has_a_layer():
    missing = sorted(set(imports()) - set(LAYER))
    assert not missing, f"add {missing} to LAYERS here and to docs/architecture.md"


def test_the_top_folder_holds_only_ground_and_jobs():
    flat = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 10 and all(LAYER.get(m) in (0, 4, 8) for m in flat), flat


def test_arrows_point_down():
    upward = [f"{m} (layer {LAYER[m]}) imports {d} (layer {LAYER[d]})"
              for m, deps in imports().items() for d, _ in deps if LAYER[d] > LAYER[m]]
    assert not upward, upward


def _circle(graph: dict[str, set[str]]) -> None:
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


def test_no_import_circle_between_rooms():
    _circle({m: {d for d, _ in deps if d != m} for m, deps in imports().items()})


def test_no_import_circle_between_files():
    """Within a subpackage too (its ``__init__`` re-exports the face module, so it is left out)."""
    graph = {}
    for m, deps in file_imports().items():
        if (PACKAGE.joinpath(*m.split(".")) / "__init__.py").exists():
            continue
        graph[m] = {d for d, _ in deps if d != m and not (PACKAGE.joinpath(*d.split(".")) / "__init__.py").exists()}
    _circle(graph)


def test_no_private_name_crosses_modules():
    crossing = [f"{m} imports {d}.{n}" for m, deps in file_imports().items() for d, names in deps
                for n in names if n.startswith("_") and not n.startswith("__")]
    assert not crossing, crossing


def test_no_private_attribute_of_another_module_is_used():
    """``x._name`` where ``_name`` is a method or function another piccolo_lib module defines (e.g. GradCache
    calling the loss adapter's private ``_embed``): use a public name, or move the code."""
    defined: dict[str, set[str]] = {}
    trees = {".".join(dotted(p)): ast.parse(p.read_text(encoding="utf-8")) for p in files()}
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("_") \
                    and not node.name.startswith("__"):
                defined.setdefault(node.name, set()).add(module)
    found = []
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in defined and module not in defined[node.attr]:
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"{module}: .{node.attr} (defined in {sorted(defined[node.attr])})")
    assert not found, found


def test_the_layer_table_is_the_documented_one():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for i, mods in enumerate(LAYERS):
        row = next(line for line in doc.splitlines() if line.startswith(f"| {i} ·"))
        for m in mods:
            assert m == "__init__" or f"`{m}`" in row, f"docs/architecture.md: layer {i} should list `{m}`"


def test_the_rooms_drawn_in_the_docs_are_the_files_there_are():
    """docs/architecture.md's tree of rooms names every module, and only modules that exist."""
    import re

    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = doc.split("## The rooms", 1)[1].split("```")[1]
    named: set[str] = set()
    room = ""
    for line in tree.splitlines()[1:]:
        head = re.match(r"^  (\w+)/", line)
        if head:
            room = head.group(1)
        elif re.match(r"^  \w+\.py", line):
            room = ""
        for stem in re.findall(r"\b(\w+)\.py\b", line):
            named.add(f"{room}/{stem}" if room and not re.match(rf"^  {stem}\.py", line) else stem)
    actual = {str(p.relative_to(PACKAGE).with_suffix("")) for p in files() if p.name != "__init__.py"}
    assert named == actual, f"in the docs only: {sorted(named - actual)}; in the code only: {sorted(actual - named)}"
