"""Layering rules of the package, checked on the source (``ast``) and in fresh interpreters.

1. No import circle among modules at import time (module-level imports; ``TYPE_CHECKING`` blocks and
   imports inside functions are not import-time), and none across stages even counting the deferred
   imports inside functions (a deferred import only hides a circle: the stages still depend on each
   other both ways).
2. No stage module imports the CLI (``transferops.cli``): the CLI is a thin layer over the stages, never
   the other way round. Stage ``cli.py`` modules and ``__main__`` are part of the CLI layer.
3. Importing ``transferops`` or any subpackage leaves ``os.environ`` untouched (so does running a model
   helper); ``import transferops`` and the CLI's ``--help`` path load no heavy library.
4. No private name is imported from another stage's module (``from transferops.x.y import _helper``):
   what a stage shares is public.

``PENDING`` lists allowed exceptions with their reason; it is empty.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "transferops"

#: Heavy libraries that ``import transferops`` and ``transferops --help`` must not load.
HEAVY = ("torch", "transformers", "sqlalchemy", "fastapi")

#: Known violations, each with the reason it is allowed: (check, item) -> reason. Empty: every rule
#: holds; a new entry needs an issue that removes it.
PENDING: dict[tuple[str, str], str] = {}


# ------------------------------------------------------------------------------------------ the graph
def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module, *, import_time_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements; with ``import_time_only`` those that run when the module is imported
    (module body, class bodies, if/try blocks — not function bodies, not ``if TYPE_CHECKING:``)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            elif import_time_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            elif import_time_only and isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None]]:
    """(imported module, imported name or None) for every target inside ``transferops``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
        return
    base = node.module or ""
    if node.level:
        pkg = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            pkg = pkg.rpartition(".")[0]
        base = f"{pkg}.{base}" if base else pkg
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield (sub, None) if sub in MODULES else (base, alias.name)


def import_graph(*, import_time_only: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree, import_time_only=import_time_only):
            for target, _name in _resolve(mod, node):
                if target in MODULES and target != mod:
                    graph[mod].add(target)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components of more than one module are import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _is_package_init_edge(a: str, b: str) -> bool:
    """A package's ``__init__`` importing its own submodule, which imports a sibling through the
    package, is how Python packages work, not a circle between stages."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def circle_violations(*, deferred: bool = False) -> dict[str, str]:
    """Module -> the circle it is on. ``deferred``: count imports inside functions too, and report
    only circles that span more than one stage (inside one stage a deferred import is a fine way to
    keep a heavy module off the import path)."""
    graph = import_graph(import_time_only=not deferred)
    # drop parent-package edges (``transferops.data.splits`` -> ``transferops.data``): the package
    # __init__ re-exports its submodules, which is not a circle between modules
    graph = {a: {b for b in bs if not _is_package_init_edge(a, b)} for a, bs in graph.items()}
    found: dict[str, str] = {}
    for comp in _strongly_connected(graph):
        if deferred and len({_stage(m) for m in comp}) < 2:
            continue
        for m in comp:
            found[m] = " <-> ".join(comp)
    return found


def _is_cli_layer(mod: str) -> bool:
    return mod.startswith("transferops.cli") or mod.endswith(".cli") or mod in (
        "transferops.__main__", "transferops.demo")


def cli_violations() -> dict[str, str]:
    graph = import_graph(import_time_only=False)  # a lazy import of the CLI is still a layering break
    return {m: ", ".join(sorted(t for t in targets if t.startswith("transferops.cli")))
            for m, targets in graph.items()
            if not _is_cli_layer(m) and any(t.startswith("transferops.cli") for t in targets)}


def _stage(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else mod


def private_violations() -> dict[str, str]:
    found: dict[str, str] = {}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree, import_time_only=False):
            for target, name in _resolve(mod, node):
                if (name and name.startswith("_") and not name.startswith("__") and target in MODULES
                        and _stage(target) != _stage(mod)):
                    found[f"{mod} -> {target}.{name}"] = path.name
    return found


def _unexpected(check: str, found: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in found.items() if (check, k) not in PENDING}


# ------------------------------------------------------------------------------------------ the checks
def test_graph_sees_known_edges() -> None:
    """The checker itself: it must see real edges, or every rule below would pass vacuously."""
    graph = import_graph()
    assert "transferops.errors" in graph["transferops"]
    assert "transferops.finetune.config" in graph["transferops.finetune.api"]
    lazy = import_graph(import_time_only=False)
    assert "transferops._progress" in lazy["transferops._hf"]  # inside quiet_transformers()
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _strongly_connected(toy) == [["a", "b", "c"]]


def test_no_import_circle() -> None:
    bad = _unexpected("circle", circle_violations())
    assert not bad, "import circles at import time:\n" + "\n".join(sorted(set(bad.values())))


def test_no_circle_across_stages_through_deferred_imports() -> None:
    bad = _unexpected("deferred-circle", circle_violations(deferred=True))
    assert not bad, "circles between stages (deferred imports counted):\n" + "\n".join(sorted(set(bad.values())))


def test_no_stage_imports_the_cli() -> None:
    bad = _unexpected("cli", cli_violations())
    assert not bad, "stage modules importing transferops.cli: " + json.dumps(bad, indent=1)


def test_no_private_reach_across_stages() -> None:
    bad = _unexpected("private", private_violations())
    assert not bad, "private names imported from another stage: " + "\n".join(sorted(bad))


def _fresh_python(code: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")}
    env["PYTHONPATH"] = str(SRC)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


_SUBPACKAGES = sorted(m for m, p in MODULES.items() if p.name == "__init__.py")

_IMPORT_ALL = """
import importlib, json, os, sys
# third-party libraries with their own import-time settings (scikit-learn sets KMP_* for OpenMP) are
# imported first: the rule is about our code
import numpy, pandas, sklearn
before = dict(os.environ)
changed = {}
for name in %r:
    importlib.import_module(name)
    now = dict(os.environ)
    diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if diff:
        changed[name] = diff
        before = now
from transferops.modeling import quiet_transformers
with quiet_transformers():
    pass
now = dict(os.environ)
diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
if diff:
    changed["transferops.modeling.quiet_transformers()"] = diff
print(json.dumps(changed))
"""


def test_imports_leave_environment_alone() -> None:
    changed = _fresh_python(_IMPORT_ALL % (_SUBPACKAGES,))
    assert changed == {}, f"os.environ changed by: {changed}"


_LIGHT = """
import json, sys
import transferops
after_import = sorted(m for m in %(heavy)r if m in sys.modules)
from transferops.cli.main import main
try:
    main(["--help"])
except SystemExit:
    pass
after_help = sorted(m for m in %(heavy)r if m in sys.modules)
print(json.dumps({"import": after_import, "help": after_help}))
"""


def test_import_and_help_load_no_heavy_library() -> None:
    loaded = _fresh_python(_LIGHT % {"heavy": HEAVY})
    assert loaded == {"import": [], "help": []}
