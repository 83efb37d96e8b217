"""The core's shape: no import circle (typing-only imports count) and no plugin named by the core.

A circle means two modules cannot be read, tested or replaced apart; it is how a god object
creeps back. Imports are read from the source, so one behind `if TYPE_CHECKING:` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import avatar_daemon

CORE = Path(avatar_daemon.__file__).parent
PACKAGE = "avatar_daemon"


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str | None = None) -> set[str]:
    """Every module `path` (module `name`) imports, as absolute names, wherever the import statement sits."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from . import web` imports a module, not a name
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def core_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # importing a.b.c runs a/__init__ and a/b/__init__ first: an edge to each package on the way,
        # but for the packages holding this module, which are being imported already
        edges = set()
        for target in _imports(path):
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules round it, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_core_has_no_import_circle():
    graph = core_graph()
    assert len(graph) > 20  # the walk found the core, not an empty folder
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle_through_a_typing_only_import(tmp_path):
    """The guard above is only worth something if it fails on the kind of circle it is for."""
    graph = core_graph()
    graph["avatar_daemon.store"] = graph["avatar_daemon.store"] | {"avatar_daemon.daemon"}
    assert find_cycle(graph) is not None
    source = tmp_path / "x.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .daemon import Daemon\n")
    assert "avatar_daemon.daemon" in _imports(source, "avatar_daemon.x")


def test_the_core_never_imports_a_plugin():
    named = {p.relative_to(CORE.parent).as_posix(): sorted(t for t in _imports(p)
                                                          if t.split(".")[0] in ("avatar_daemon_plugins", "plugins"))
             for p in CORE.rglob("*.py")}
    assert {k: v for k, v in named.items() if v} == {}
