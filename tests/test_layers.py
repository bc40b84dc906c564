"""The layering of edge/: a module imports only from its own layer or the ones below it.

Lower layers know nothing of higher ones, so pure logic stays testable without I/O and the
service stays wiring. Every import counts: at module level, inside a function (lazy imports) and
under ``TYPE_CHECKING``. edge/ never imports the workstation packages (export/, bench/).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module belongs to the layer of the longest prefix naming it ("edge" itself, the
# package with the version, names only itself). The stages are ordered among themselves: one may use
# a stage below it (escalation learns into vision's memory), never one beside or above it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core types", ("edge", "edge.errors", "edge.evidence", "edge.files", "edge.plugins")),
    ("config plumbing", ("edge.config", "edge.logs")),
    ("pure analytics", ("edge.analytics", "edge.fusion", "edge.cwru")),
    ("shared nouns", ("edge.frames", "edge.bundle", "edge.broker", "edge.store")),
    ("sensors", ("edge.sensors",)),
    ("sources", ("edge.sources",)),
    ("vision", ("edge.vision",)),
    ("alerts", ("edge.alerts",)),
    ("escalation", ("edge.escalation",)),
    ("outputs", ("edge.outputs",)),
    ("fleet", ("edge.fleet",)),
    ("the whole config", ("edge.settings",)),
    ("service", ("edge.service",)),
    ("evaluation", ("edge.evaluation",)),
    ("demo", ("edge.demo",)),
    ("entry points", ("edge.cli", "edge.__main__")),
)
FORBIDDEN_TOP = ("export", "bench", "board", "benchmarks", "tests")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, found = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = "." in prefix and module.startswith(prefix + ".")
            if (module == prefix or inside) and len(prefix) > best:
                best, found = len(prefix), index
    if found is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return found


# "module:attribute" in a plug-in registry (edge.plugins), and the literal argument of import_module
REGISTRY_ENTRY = re.compile(r"^(edge(?:\.\w+)+):\w+$")


def _is_import_module(node: ast.Call) -> bool:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return name in ("import_module", "__import__")


def _loaded_by_name(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Imports made at run time from a string: registry entries and import_module("edge....")."""
    for node in ast.walk(tree):
        literal = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
        entry = REGISTRY_ENTRY.match(literal)
        if entry is not None:
            yield node.lineno, entry.group(1)
        elif isinstance(node, ast.Call) and _is_import_module(node) and node.args:
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                yield node.lineno, target.value


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved, and every module
    it loads by name (plug-in registries, import_module with a literal)."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = list(_loaded_by_name(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            # 'from edge.sensors import snapshot_file' imports a module, not a name
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names
                      if (ROOT / Path(*module.split("."), alias.name)).with_suffix(".py").exists()]
    return found


EDGE_FILES = sorted((ROOT / "edge").rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    for path in EDGE_FILES:
        layer_of(_module_name(path))


@pytest.mark.parametrize("path", EDGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_reaches_up(path: Path) -> None:
    module = _module_name(path)
    own = layer_of(module)
    upward = []
    for line, target in imports_of(path):
        top = target.split(".")[0]
        if top in FORBIDDEN_TOP:
            upward.append(f"line {line}: {target} (edge never imports {top}/)")
        elif top == "edge" and layer_of(target) > own:
            upward.append(f"line {line}: {target} ({LAYERS[layer_of(target)][0]} is above {LAYERS[own][0]})")
    assert not upward, f"{module} imports from a higher layer: " + "; ".join(upward)


def test_the_check_sees_violations() -> None:
    """The rule itself: a fusion module importing the service would be caught, and so would a stage
    importing a sibling above it or the whole config."""
    assert layer_of("edge.fusion") < layer_of("edge.service.loop")
    assert layer_of("edge.sensors.config") < layer_of("edge.settings") < layer_of("edge.service.wiring")
    assert layer_of("edge.vision.pipeline") < layer_of("edge.escalation.escalator") < layer_of("edge.outputs.mqtt")
    assert layer_of("edge.outputs.http_api") < layer_of("edge.settings")
    assert layer_of("edge.service.wiring") < layer_of("edge.cli.main")
    with pytest.raises(LookupError, match="no layer"):
        layer_of("lonely")


def test_registry_strings_and_import_module_count_as_imports(tmp_path: Path) -> None:
    source = tmp_path / "plugin_user.py"
    source.write_text('import importlib\nREGISTRY = {"x": "edge.service.loop:Service"}\n'
                      'importlib.import_module("edge.cli.main")\ndoc = "edge.service.loop is not an import"\n')
    found = {target for _, target in _loaded_by_name(ast.parse(source.read_text(encoding="utf-8")))}
    assert {"edge.service.loop", "edge.cli.main"} <= found and "edge.service.loop is not an import" not in found
    loaded = {target for _, target in imports_of(ROOT / "edge/sources/plugins.py")}
    assert "edge.sources.folder" in loaded and "edge.sources.picamera2" in loaded


def _node(module: str) -> str:
    """A package (edge/<name>/) or a loose module (edge/<name>.py): the unit the house is drawn in."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edge"


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in EDGE_FILES:
        source = _node(_module_name(path))
        if source == "edge":
            continue
        targets = graph.setdefault(source, set())
        targets |= {_node(target) for _, target in imports_of(path)
                    if target.split(".")[0] == "edge" and _node(target) not in ("edge", source)}
    return graph


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each package's floor: one above the highest it imports (a circle never settles: LookupError)."""
    floor: dict[str, int] = {}

    def settle(node: str, path: tuple[str, ...]) -> int:
        if node in path:
            raise LookupError("packages import each other in a circle: " + " -> ".join((*path, node)))
        if node not in floor:
            floor[node] = 1 + max((settle(target, (*path, node)) for target in graph.get(node, ())), default=0)
        return floor[node]

    for node in graph:
        settle(node, ())
    return floor


def test_packages_stand_in_at_most_ten_floors_without_a_circle() -> None:
    """The stages are siblings wired by the service: no package reaches back into one that uses it."""
    floor = floors(package_graph())
    assert max(floor.values()) <= 10, sorted(floor.items(), key=lambda item: item[1])
    assert floor["config"] <= 2, "the config plumbing must stay on the ground floor"


WORKSTATION_FILES = sorted(p for folder in ("bench", "export", "benchmarks") for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", WORKSTATION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_benchmarks_and_workstation_code_never_import_the_tests(path: Path) -> None:
    """What a benchmark shares with the tests lives in bench/ (model factories, image sets, a broker)."""
    source = path.read_text(encoding="utf-8")
    assert "sys.path.insert" not in source, f"{path.name} edits sys.path"
    leaks = [target for _, target in imports_of(path) if target.split(".")[0] == "tests"]
    assert not leaks, f"{path.name} imports {', '.join(leaks)}"


TEST_FILES = sorted((ROOT / "tests").rglob("*.py"))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_test_module_imports_no_other_test_module(path: Path) -> None:
    """Shared helpers live in tests/*_support.py (or bench/), so each test file runs and reads alone."""
    leaks = [target for _, target in imports_of(path) if target.split(".")[0] == "tests"
             and target.split(".")[-1].startswith("test_")]
    assert not leaks, f"{path.name} imports {', '.join(leaks)}: move what it shares into a tests/*_support.py"


def test_test_folders_mirror_the_packages() -> None:
    """A module's tests are found at once: tests/<package>/ for edge/<package>/ (or bench/, board/, export/)."""
    folders = sorted(p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders, "no test folders"
    strays = [name for name in folders if not (ROOT / "edge" / name).is_dir() and not (ROOT / name).is_dir()]
    assert not strays, f"tests/{strays[0]}/ mirrors no package of edge/ (nor bench/, board/, export/)"
