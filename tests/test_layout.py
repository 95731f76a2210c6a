"""Package layout rules: imports go down the layers, no import cycle, no module over 450 lines.

The import graph is read from the source (an AST walk, module-level and function-level
imports alike), so an import hidden in a function cannot close a cycle or climb a layer
unseen. The layers are those of docs/CONTRACTS.md ("Layout").
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nowcast", "pipelines")
MAX_LINES = 450

#: The packages and top-level modules of nowcast/ (and pipelines/), lowest layer first. A
#: module imports from its own layer and the ones below, never from a higher one. ``nowcast``
#: is the package's own ``__init__`` (``__version__``).
LAYERS = (
    # base: no other layer (numpy, xarray, pyproj, pySTEPS)
    (
        "nowcast",
        "conventions",
        "errors",
        "kinds",
        "interrupts",
        "fileio",
        "lazy",
        "backend",
        "geo",
        "distribution",
        "motion",
        "region",
    ),
    ("config",),
    ("archive",),  # reading archives
    ("trained",),  # a trained model on disk: run directory, catalogue, metadata, cadence
    ("trainset", "model", "products", "probabilistic"),  # training data, the network, products
    ("training",),
    ("methods",),
    ("verify", "render", "forecast_info", "series"),  # series: models, baselines, scores
    ("demo", "cli", "pipelines"),
)

#: Imports allowed to climb, each with its reason (and each must still exist).
UPWARD_IMPORTS = {
    # the batch config's default FSS scales are nowcast.verify.DEFAULT_SCALES: the verify
    # package's __init__ holds only the scoring defaults (constants; the scoring modules load
    # on first use), so `nowcast evaluate`, evaluate() and batch configs share one value
    ("nowcast.config.batch", "nowcast.verify"),
}


def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the first-party packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """First-party modules that ``name`` imports anywhere in its source."""
    out = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if sub in known:
                    out.add(sub)  # ``from package import submodule``
                elif module in known:
                    out.add(module)
    out.discard(name)
    return out


def unit(module: str) -> str:
    """The layer unit of a module: its top-level package or module under nowcast/."""
    parts = module.split(".")
    if parts[0] != "nowcast":
        return parts[0]
    return parts[1] if len(parts) > 1 else "nowcast"


def layer_of() -> dict[str, int]:
    return {name: i for i, names in enumerate(LAYERS) for name in names}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a higher layer's module (``UPWARD_IMPORTS`` aside)."""
    layer = layer_of()
    return sorted(
        f"{name} -> {dep}"
        for name, deps in graph.items()
        for dep in deps
        if layer[unit(dep)] > layer[unit(name)] and (name, dep) not in UPWARD_IMPORTS
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``) of ``graph``, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    graph = import_graph()
    assert "nowcast.trainset.sampler" in graph["nowcast.trainset.dataset"]  # the walk sees imports
    assert "nowcast.methods.baselines" in graph["nowcast.methods"]  # from package import module
    assert "nowcast.model" in graph["nowcast.methods.convlstm"]  # and imports in functions


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_over_450_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_package_has_a_layer():
    units = {unit(name) for name in modules()}
    missing = sorted(units - set(layer_of()))
    assert not missing, f"put these in a layer of LAYERS (tests/test_layout.py): {missing}"
    assert len(layer_of()) == sum(len(names) for names in LAYERS), "a name in two layers"


def test_the_layer_check_finds_upward_imports():
    assert upward_imports({"nowcast.geo": {"nowcast.methods.run"}}) == [
        "nowcast.geo -> nowcast.methods.run"
    ]
    assert upward_imports({"nowcast.methods.run": {"nowcast.geo", "nowcast.methods"}}) == []


def test_no_import_goes_up_a_layer():
    graph = import_graph()
    up = upward_imports(graph)
    assert not up, "imports of a higher layer:\n" + "\n".join(up)
    stale = [f"{a} -> {b}" for a, b in sorted(UPWARD_IMPORTS) if b not in graph.get(a, ())]
    assert not stale, f"UPWARD_IMPORTS no longer needed: {stale}"
