"""The layer table of docs/ARCHITECTURE.md (the first table, headed ``| layer | where | job |``)
is the law: every module of the package belongs to exactly one row, and imports (module level
or inside functions) point only to its own row or to rows above it in the table (the table
lists the lowest layer first). Also: no import cycle anywhere, pg never imports the protocol
or the process layer, the per-record layers stay in small files, and the package's public
names all resolve."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pytest_walredo"


def _layers() -> list[tuple[str, list[str]]]:
    """(layer name, module path prefixes relative to the repository) in table order."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.replace(" ", "") == "|layer|where|job|"), len(lines))
    table = []
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            break  # the layer table ends here; later tables are something else
        table.append(line)
    rows: list[tuple[str, list[str]]] = []
    for line in table:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("`"):
            continue
        paths = []
        for token in re.findall(r"`([^`]+)`", cells[1]):
            paths.append(token if token.startswith("pytest_walredo/") else f"pytest_walredo/{token}")
        rows.append((cells[0], paths))
    return rows


def _layer_of(rel: str, layers: list[tuple[str, list[str]]]) -> int | None:
    for i, (_name, paths) in enumerate(layers):
        for p in paths:
            if rel == p or (p.endswith("/") and rel.startswith(p)):
                return i
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted module) of every pytest_walredo import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("pytest_walredo")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("pytest_walredo"):
                # ``from . import x`` may import a submodule: count the most specific one.
                out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _module_path(dotted: str) -> str | None:
    parts = dotted.split(".")
    while parts:
        base = ROOT.joinpath(*parts)
        if base.with_suffix(".py").is_file():
            return str(base.with_suffix(".py").relative_to(ROOT))
        if (base / "__init__.py").is_file():
            return str((base / "__init__.py").relative_to(ROOT))
        parts.pop()
    return None


def test_every_module_is_in_exactly_one_layer():
    layers = _layers()
    assert len(layers) >= 10, "the layer table in docs/ARCHITECTURE.md was not found"
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel == "pytest_walredo/__init__.py":
            continue
        hits = [name for name, paths in layers
                if any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in paths)]
        if len(hits) != 1:
            missing.append(f"{rel}: {hits or 'no layer'}")
    assert not missing, "modules not in exactly one row of the ARCHITECTURE table: " + "; ".join(missing)


def test_imports_point_only_to_lower_layers():
    layers = _layers()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        own = _layer_of(rel, layers)
        if own is None:
            continue
        for line, dotted in _imports(path):
            target = _module_path(dotted)
            if target is None or target == "pytest_walredo/__init__.py":
                continue
            theirs = _layer_of(target, layers)
            if theirs is not None and theirs > own:
                wrong.append(f"{rel}:{line} ({layers[own][0]}) imports {dotted} ({layers[theirs][0]})")
    assert not wrong, "imports pointing up the layer table:\n" + "\n".join(wrong)


def _import_graph() -> dict[str, set[str]]:
    """Module path -> the package modules it imports (module level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        targets = {_module_path(dotted) for _line, dotted in _imports(path)}
        graph[rel] = {t for t in targets if t is not None and t != rel}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    # the checker below is only as good as this: a loop of three, plus a module outside it
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(_import_graph())
    assert not cycles, "modules that import each other in a loop:\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_pg_never_imports_protocol_or_process():
    """The PostgreSQL model knows nothing of the walredo protocol or of processes."""
    wrong = []
    for path in sorted((PACKAGE / "pg").rglob("*.py")):
        for line, dotted in _imports(path):
            if dotted.startswith(("pytest_walredo.protocol", "pytest_walredo.process")):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {dotted}")
    assert not wrong, "\n".join(wrong)


MAX_LINES = 400
"""The per-record layers stay in small files: a record kind lands in a file a reader can hold."""


def test_per_record_layers_stay_small():
    big = []
    for folder in ("pg/rmgr", "pg/redo", "strategies"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                big.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not big, f"over {MAX_LINES} lines (split by record family): " + "; ".join(big)


def test_public_names_are_all_exported():
    import pytest_walredo

    assert set(pytest_walredo.__all__) == {"__version__", *pytest_walredo._EXPORTS}
    for name in pytest_walredo.__all__:
        assert getattr(pytest_walredo, name) is not None, name
