"""The API does not depend on the service: ``gateway.service`` builds the API's
context and hands it over, so nothing reachable from ``gateway.api`` imports it.

Imports are read from the source with ``ast`` (every ``import`` statement,
including those under ``TYPE_CHECKING`` and inside functions), so a cycle that
only shows at type-checking time or on a rarely taken path is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gateway"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every gateway module ``path`` imports (``from x import y`` counts x and x.y)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "gateway" or m.startswith("gateway.")}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # an import of a module also runs its packages' __init__ modules
        targets = set()
        for target in imports_of(path, name):
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Modules reachable from ``start``, each with the module that first imported it."""
    seen = {start: ""}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in sorted(graph[current]):
            if target not in seen:
                seen[target] = current
                todo.append(target)
    return seen


def chain(seen: dict[str, str], end: str) -> list[str]:
    path = [end]
    while seen[path[-1]]:
        path.append(seen[path[-1]])
    return path[::-1]


def test_the_graph_sees_the_service_importing_the_api() -> None:
    # the walker itself works: the service does import the API (the allowed direction)
    assert "gateway.api.app" in reachable(import_graph(), "gateway.service")


def test_nothing_in_the_api_imports_the_service() -> None:
    graph = import_graph()
    api_modules = sorted(m for m in graph if m == "gateway.api" or m.startswith("gateway.api."))
    assert len(api_modules) > 5
    offenders = {}
    for module in api_modules:
        seen = reachable(graph, module)
        if "gateway.service" in seen:
            offenders[module] = " -> ".join(chain(seen, "gateway.service"))
    assert offenders == {}
