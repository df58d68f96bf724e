"""What a function's code can import: the static import graph of ``functions/<name>/main.py``.

Every ``import`` statement counts, at module level or inside a function body (the lazy
imports that keep cold starts short still run on some request), except those under
``if TYPE_CHECKING:`` and those guarded by ``try: ... except ImportError`` (optional by
construction). First-party modules (``shared.*``) are followed; everything else is
recorded as a third-party top-level name or dropped as the standard library.

The result is a module-level over-approximation: a function that reaches a module may
run any import in it. That is the safe side for a deployment (a missing package is a
production crash; an extra one is only a larger bundle).
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

FIRST_PARTY = ("shared",)


@dataclass(frozen=True)
class ImportGraph:
    """The first-party modules a function reaches, and the third-party names they import."""

    entry: Path
    modules: tuple[str, ...]  # dotted first-party module names, sorted
    third_party: dict[str, tuple[str, ...]] = field(default_factory=dict)  # top name -> importers
    third_party_dotted: tuple[str, ...] = ()  # every dotted third-party name imported, sorted

    @property
    def third_party_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.third_party))


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names: list[ast.expr] = []
    if isinstance(handler.type, ast.Tuple):
        names = list(handler.type.elts)
    elif handler.type is not None:
        names = [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
               for n in names)


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[str] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        if any(_catches_import_error(h) for h in node.handlers):
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [alias.name for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".") if self.package else []
            if node.level > 1:
                parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, node.module] if node.module else parts)
        else:
            base = node.module or ""
        self.found.append(base)
        # "from shared import contracts" imports a submodule: record the candidates too
        self.found += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


@functools.lru_cache(maxsize=4096)
def _parse(path: str, _mtime_ns: int) -> ast.Module:
    return ast.parse(Path(path).read_text(), path)


def parse_module(path: Path) -> ast.Module:
    """The file's AST, parsed once per version of the file."""
    return _parse(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _imports_cached(path: str, _mtime_ns: int, module: str) -> tuple[str, ...]:
    collector = _Collector(module, Path(path).name == "__init__.py")
    collector.visit(_parse(path, _mtime_ns))
    return tuple(collector.found)


def _imports(path: Path, module: str) -> tuple[str, ...]:
    return _imports_cached(str(path), path.stat().st_mtime_ns, module)


def import_graph(entry: Path, root: Path) -> ImportGraph:
    """Walk the imports reachable from ``entry`` (a ``main.py``) within ``root`` (the repo)."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    seen: set[str] = set()
    third: dict[str, set[str]] = {}
    dotted_names: set[str] = set()
    todo: list[tuple[str, Path]] = [("__main__", entry)]
    while todo:
        module, path = todo.pop()
        for name in _imports(path, module):
            top = name.split(".")[0]
            if not top:
                continue
            if top in FIRST_PARTY:
                # the module itself and every package on the way down run their __init__
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    dotted = ".".join(parts[:i])
                    file = _module_file(root, dotted)
                    if file is not None and dotted not in seen:
                        seen.add(dotted)
                        todo.append((dotted, file))
            elif top not in stdlib:
                third.setdefault(top, set()).add(module)
                dotted_names.add(name)
    return ImportGraph(entry, tuple(sorted(seen)),
                       {k: tuple(sorted(v)) for k, v in sorted(third.items())},
                       tuple(sorted(dotted_names)))
