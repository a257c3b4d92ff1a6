"""The import graph of dlbench/: no cycle between modules, no import from a lower layer up to a higher one.

Read from the source with `ast` (nothing is imported or executed), counting every import, the lazy ones inside
functions too: a lazy import still ties the two modules together, it only hides the tie from a reader. So does a
module named in a string for `importlib` (`cli`'s table of subcommands, `workloads`' "module:function" builders):
a string that is exactly a module's dotted name, or that name and ":attribute", counts as an import of it.

The layers, lowest first (docs/architecture.md draws the same map):
- leaves: the package root (`__version__`), errors, atomic, yamlfile, checks (the verdict model shared by validate
  and hostspec), environment and installed_torch (what the host and its torch are), models (PyTorch only) and
  workloads (the workload table, which names the models);
- nvml: reading the GPUs, below everything that uses them;
- the features: train, telemetry, exporter, hostspec, validate, results. They may import each other (validate
  runs a training step, results reads validate reports), as long as no module cycle forms and no two packages import
  each other, except those named in MUTUAL_PACKAGES (none today);
- commands: argparse and printing, one module per subcommand;
- cli and __main__: the entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = (
    {"dlbench", "errors", "atomic", "yamlfile", "checks", "environment", "installed_torch", "models", "workloads"},
    {"nvml"},
    {"train", "telemetry", "exporter", "hostspec", "validate", "results"},
    {"commands"},
    {"cli", "__main__"},
)

# Packages of one layer that import each other, with the reason; anything else mutual fails. None today: run-time
# telemetry serves and pushes through the exporter's sampler, collector and HTTP server, and the exporter imports
# nothing of it.
MUTUAL_PACKAGES: set[frozenset[str]] = set()


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under `package` (a package is its __init__)."""
    names = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in its source."""
    modules = module_names(package)
    root = package.name

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                # `from pkg import mod` imports pkg.mod when that is a module, else a name defined in pkg; a relative
                # import (`from . import mod`, `from ..pkg import x`) counts from the importing module's package
                base = node.module or ""
                if node.level:
                    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    package = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)])
                    base = f"{package}.{base}" if base else package
                targets = [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                # a module named for importlib: the whole string is its name, or its name and ":attribute"
                named = node.value.partition(":")[0]
                targets = [named] if named in modules and "." in named else []
            else:
                continue
            for target in targets:
                if target == root or target.startswith(root + "."):
                    resolved = resolve(target)
                    if resolved and resolved != name:
                        graph[name].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def top(module: str) -> str:
    """The top-level package or module a module belongs to (`dlbench` itself for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(name: str) -> int:
    for level, members in enumerate(LAYERS):
        if name in members:
            return level
    raise KeyError(name)


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if layer_of(top(source)) < layer_of(top(target))
    )


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        packages.setdefault(top(source), set()).update(top(t) for t in targets if top(t) != top(source))
    return packages


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT / "dlbench")


def test_every_top_level_module_has_a_layer(graph):
    """A new package or top-level module must be placed in LAYERS (and in docs/architecture.md) on purpose."""
    unplaced = sorted({top(name) for name in graph} - set().union(*LAYERS))
    assert not unplaced, f"not in LAYERS of tests/test_architecture.py: {unplaced}"


def test_no_import_cycle_between_modules(graph):
    assert cycles(graph) == []


def test_no_import_from_a_lower_layer_up_to_a_higher_one(graph):
    assert upward_edges(graph) == []


def test_no_two_packages_import_each_other_but_the_ones_named(graph):
    mutual = {frozenset(component) for component in cycles(package_graph(graph))}
    assert mutual - MUTUAL_PACKAGES == set(), "packages that import each other"
    assert MUTUAL_PACKAGES - mutual == set(), "no longer mutual: remove from MUTUAL_PACKAGES"


def test_the_checks_find_a_cycle_and_an_upward_import_in_a_tree_that_has_them(tmp_path):
    """The same functions over a small package written here: they report what they are meant to catch."""
    package = tmp_path / "dlbench"
    (package / "nvml").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text("")
    (package / "nvml" / "__init__.py").write_text("")
    (package / "nvml" / "reader.py").write_text("from dlbench.nvml import fields\nfrom .. import errors\n")
    (package / "nvml" / "fields.py").write_text("def read():\n    from .reader import x\n")
    (package / "cli.py").write_text("import dlbench.errors\n")
    (package / "atomic.py").write_text("from dlbench.cli import main\n")
    (package / "yamlfile.py").write_text(
        'BUILDERS = {"nvml": "dlbench.nvml.reader:NvmlReader", "text": "dlbench: x"}\n'
    )
    small = import_graph(package)
    assert cycles(small) == [["dlbench.nvml.fields", "dlbench.nvml.reader"]]  # the lazy relative import closes it
    assert small["dlbench.nvml.reader"] == {"dlbench.nvml.fields", "dlbench.errors"}
    assert upward_edges(small) == ["dlbench.atomic -> dlbench.cli", "dlbench.yamlfile -> dlbench.nvml.reader"]
