"""One error tree: every exception the gateway raises is a ``gateway.errors.GatewayError``,
defined in ``gateway.errors`` with a name no other class has, and drawn in its docstring."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import gateway.errors as errors

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
BUILTIN_ERRORS = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
                  and issubclass(getattr(builtins, n), BaseException)}


def exception_classes() -> dict[str, type[BaseException]]:
    return {name: cls for name, cls in vars(errors).items()
            if inspect.isclass(cls) and issubclass(cls, BaseException)
            and cls.__module__ == errors.__name__}


def test_every_class_descends_from_gateway_error() -> None:
    classes = exception_classes()
    assert len(classes) > 30
    assert [n for n, c in classes.items() if not issubclass(c, errors.GatewayError)] == []


def test_the_public_face_lists_every_class() -> None:
    assert sorted(errors.__all__) == sorted(exception_classes())


def test_the_drawn_tree_names_every_class_under_its_parent() -> None:
    doc = errors.__doc__ or ""
    tree = [ln for ln in doc.splitlines() if ln.startswith("    ") and ln.strip()]
    depth = {}
    for line in tree:
        name = line.strip(" │├└─").split()[0]
        depth[name] = (len(line) - len(line.lstrip(" │├└─"))) // 4
    assert set(depth) == set(exception_classes())
    # each class is drawn one level below its gateway parent
    for name, cls in exception_classes().items():
        if cls is errors.GatewayError:
            continue
        parent = next(b for b in cls.__mro__[1:] if b.__module__ == errors.__name__)
        assert depth[name] == depth[parent.__name__] + 1, name


def test_no_other_module_defines_a_public_exception() -> None:
    ours = set(exception_classes())
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "errors":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                     for b in node.bases}
            if bases & (ours | BUILTIN_ERRORS):
                found.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert found == []
