"""The gateway's layers, enforced: nothing imports a package above it.

From the top: the command line; the commands; the benchmarks, the demo and the
studies; the rigs they run (broker, kubo, MicroPython); the service, which composes
the parts; the API; the parts that join others (federation, integrations, OTA); the
parts themselves (ingest, learning, peer, firmware, system), which know nothing of one
another (the peer layer never sees a reading; learning knows nothing of MQTT); the
store and the bundled data; the process runtime; the config; the errors. A package may
import its own modules and any layer below its own.

Imports are read from the source with ``ast`` (every ``import`` statement, including
those under ``TYPE_CHECKING`` and inside functions), so an upward import that only
shows at type-checking time or on a rarely taken path is caught too. The tests at the
end feed the checks a deliberately wrong import and show that they catch it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gateway"

# top to bottom; (packages or root modules, whether they must not import each other)
LAYERS: list[tuple[tuple[str, ...], bool]] = [
    (("gateway.__main__",), True),
    (("gateway.cli",), True),
    (("gateway.commands",), True),
    (("gateway.bench", "gateway.demo", "gateway.experiments"), True),
    (("gateway.rigs",), True),
    (("gateway.service",), True),
    (("gateway.api",), True),
    (("gateway.federation", "gateway.integrations", "gateway.ota"), True),
    (("gateway.ingest", "gateway.learning", "gateway.peer", "gateway.firmware",
      "gateway.system"), True),
    (("gateway.store", "gateway.data"), True),
    (("gateway.runtime",), True),
    (("gateway.config",), True),
    (("gateway.errors",), True),
    (("gateway",), True),  # the package itself: its version
]

# beyond the layers: what a package must never import, even from below
FORBIDDEN = {
    # the peer layer moves opaque weight blobs and never sees a reading
    "gateway.peer": ("gateway.store", "gateway.data", "gateway.ingest", "gateway.learning"),
    # learning knows nothing of MQTT
    "gateway.learning": ("paho", "gateway.ingest"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (for ``from x import y``: x, and x.y when a module)
    names: tuple[str, ...]  # the names taken from it
    line: int


def imports_in(source: str, name: str, is_package: bool) -> list[Import]:
    """Every import statement of a module's ``source`` (``name``: its dotted name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append(Import(target, tuple(a.name for a in node.names), node.lineno))
    return found


def gateway_sources() -> dict[str, tuple[Path, str]]:
    return {module_name(p): (p, p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}


def import_graph(sources: dict[str, tuple[Path, str]]) -> dict[str, set[str]]:
    """Module -> the gateway modules it imports (an import of ``a.b.c`` also runs ``a.b``
    and ``a``; ``from a import b`` imports module ``a.b`` when there is one)."""
    graph = {}
    for name, (path, source) in sources.items():
        targets: set[str] = set()
        for imp in imports_in(source, name, path.name == "__init__.py"):
            candidates = [imp.target, *(f"{imp.target}.{n}" for n in imp.names)]
            for candidate in candidates:
                parts = candidate.split(".")
                targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = {t for t in targets if t in sources and t != name}
    return graph


def unit_of(module: str) -> str:
    """The layered unit a module belongs to: its package under gateway, or a root module."""
    parts = module.split(".")
    return ".".join(parts[:2])


def layer_of(unit: str) -> int:
    for index, (units, _) in enumerate(LAYERS):
        if unit in units:
            return index
    raise KeyError(f"{unit} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        unit = unit_of(module)
        here = layer_of(unit)
        for target in sorted(targets):
            other = unit_of(target)
            if other == unit:
                continue
            there = layer_of(other)
            if there < here:
                out.append(f"{module} imports {target}: {other} is a layer above {unit}")
            elif there == here and LAYERS[here][1]:
                out.append(f"{module} imports {target}: {unit} and {other} must stay apart")
    return out


def forbidden_imports(sources: dict[str, tuple[Path, str]]) -> list[str]:
    out = []
    for module, (path, source) in sorted(sources.items()):
        banned = FORBIDDEN.get(unit_of(module), ())
        for imp in imports_in(source, module, path.name == "__init__.py"):
            for ban in banned:
                if imp.target == ban or imp.target.startswith(ban + "."):
                    out.append(f"{module}:{imp.line} imports {imp.target} ({ban} is forbidden)")
    return out


def private_imports(sources: dict[str, tuple[Path, str]]) -> list[str]:
    """``from other import _name``: a private name taken from another module."""
    out = []
    for module, (path, source) in sorted(sources.items()):
        for imp in imports_in(source, module, path.name == "__init__.py"):
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if private and imp.target != module:
                out.append(f"{module}:{imp.line} imports {private} from {imp.target}")
    return out


def with_module(sources: dict[str, tuple[Path, str]], name: str, source: str,
                ) -> dict[str, tuple[Path, str]]:
    """``sources`` with one module added or replaced (for the tests of the checks)."""
    path = ROOT / Path(*name.split(".")).with_suffix(".py")
    return {**sources, name: (path, source)}


def chain_to(graph: dict[str, set[str]], start: str, end: str) -> list[str] | None:
    seen = {start: ""}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in sorted(graph[current]):
            if target not in seen:
                seen[target] = current
                todo.append(target)
    if end not in seen:
        return None
    path = [end]
    while seen[path[-1]]:
        path.append(seen[path[-1]])
    return path[::-1]


def _names(units: Iterable[tuple[tuple[str, ...], bool]]) -> set[str]:
    return {u for group, _ in units for u in group}


# -- the rules hold -----------------------------------------------------------------------
def test_every_package_is_in_a_layer() -> None:
    units = {unit_of(m) for m in gateway_sources()}
    assert units - _names(LAYERS) == set()
    assert _names(LAYERS) - units == set()  # no stale entry


def test_only_the_entry_points_sit_at_the_root() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert root == ["__init__.py", "__main__.py", "cli.py", "config.py", "service.py"]


def test_nothing_imports_a_layer_above_it() -> None:
    assert layering_violations(import_graph(gateway_sources())) == []


def test_the_peer_layer_and_learning_keep_out_of_what_they_must_not_see() -> None:
    assert forbidden_imports(gateway_sources()) == []


def test_no_private_name_is_imported_from_another_module() -> None:
    assert private_imports(gateway_sources()) == []


def test_nothing_in_the_api_reaches_the_service() -> None:
    graph = import_graph(gateway_sources())
    api = sorted(m for m in graph if unit_of(m) == "gateway.api")
    assert len(api) > 5
    assert {m: chain_to(graph, m, "gateway.service") for m in api
            if chain_to(graph, m, "gateway.service")} == {}


# -- the checks catch what they are for ---------------------------------------------------
def test_the_graph_sees_the_service_import_the_api() -> None:
    assert chain_to(import_graph(gateway_sources()), "gateway.service", "gateway.api.app")


def test_an_upward_import_fails_the_layering() -> None:
    # the store importing a command, as a lower layer must never do
    sources = with_module(gateway_sources(), "gateway.store.upward",
                          "from gateway.commands.run import run\n")
    assert layering_violations(import_graph(sources)) == [
        "gateway.store.upward imports gateway.commands: gateway.commands is a layer above "
        "gateway.store",
        "gateway.store.upward imports gateway.commands.run: gateway.commands is a layer above "
        "gateway.store",
    ]


def test_an_import_hidden_in_a_function_or_type_check_is_caught() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from gateway.service import GatewayService\n"
              "def f():\n    from gateway.api import app\n")
    sources = with_module(gateway_sources(), "gateway.learning.hidden", source)
    found = layering_violations(import_graph(sources))
    assert any("gateway.learning.hidden imports gateway.service:" in v for v in found)
    assert any("gateway.learning.hidden imports gateway.api.app:" in v for v in found)


def test_siblings_that_must_stay_apart_are_caught() -> None:
    sources = with_module(gateway_sources(), "gateway.peer.sees",
                          "from gateway.learning.forecast import ForecastModel\n"
                          "from gateway.store import Store\n")
    found = layering_violations(import_graph(sources))
    assert ("gateway.peer.sees imports gateway.learning.forecast: gateway.peer and "
            "gateway.learning must stay apart") in found
    assert forbidden_imports(sources) == [
        "gateway.peer.sees:1 imports gateway.learning.forecast (gateway.learning is forbidden)",
        "gateway.peer.sees:2 imports gateway.store (gateway.store is forbidden)",
    ]


def test_a_private_name_taken_from_another_module_is_caught() -> None:
    sources = with_module(gateway_sources(), "gateway.learning.private",
                          "from gateway.learning.forecast import ForecastModel, _hidden\n")
    assert private_imports(sources) == [
        "gateway.learning.private:1 imports ['_hidden'] from gateway.learning.forecast"]
