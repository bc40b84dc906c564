"""The layering of edge/: a module imports only from its own layer or the ones below it.

Lower layers know nothing of higher ones, so pure logic stays testable without I/O and the
service stays wiring. Every import counts: at module level, inside a function (lazy imports) and
under ``TYPE_CHECKING``. edge/ never imports the workstation packages (export/, bench/).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module belongs to the layer of the longest prefix naming it ("edge" itself, the
# package with the version, names only itself).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core types", ("edge", "edge.errors", "edge.evidence", "edge.files", "edge.logs")),
    ("config plumbing", ("edge.config", "edge.config.section", "edge.config.loader")),
    ("pure stages", ("edge.analytics", "edge.fusion", "edge.bundle", "edge.bundle_files", "edge.signing", "edge.vision",
                     "edge.sources.decode")),  # frame bytes -> pixels: pure, below every camera and the model
    # each package's config section, and the whole config that composes them
    ("config sections", ("edge.sources.config", "edge.sensors.config", "edge.escalation.config",
                         "edge.outputs.config", "edge.service.config", "edge.alerts.config", "edge.fleet.config",
                         "edge.fleet.overrides",  # the keys a release may override, laid over by edge.config.root
                         "edge.config.root")),
    ("I/O", ("edge.sources", "edge.sensors", "edge.store", "edge.escalation", "edge.alerts", "edge.outputs",
             "edge.fleet")),
    ("service", ("edge.service",)),
    # edge.cwru: the real records the demo replays (and the tests read)
    ("entry points", ("edge.cli", "edge.demo", "edge.cwru", "edge.evaluation", "edge.__main__")),
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


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
    """The rule itself: a fusion module importing the service would be caught."""
    assert layer_of("edge.fusion") < layer_of("edge.service.loop")
    assert layer_of("edge.sensors.config") < layer_of("edge.sensors.poller")
    assert layer_of("edge.analytics.vibration") < layer_of("edge.config.root") < layer_of("edge.outputs.mqtt")
    assert layer_of("edge.service.wiring") < layer_of("edge.cli.main")
    with pytest.raises(LookupError, match="no layer"):
        layer_of("lonely")


WORKSTATION_FILES = sorted(p for folder in ("bench", "export", "benchmarks") for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", WORKSTATION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_benchmarks_and_workstation_code_never_import_the_tests(path: Path) -> None:
    """What a benchmark shares with the tests lives in bench/ (model factories, image sets, a broker)."""
    source = path.read_text(encoding="utf-8")
    assert "sys.path.insert" not in source, f"{path.name} edits sys.path"
    leaks = [target for _, target in imports_of(path) if target.split(".")[0] == "tests"]
    assert not leaks, f"{path.name} imports {', '.join(leaks)}"


TEST_FILES = sorted((ROOT / "tests").glob("*.py"))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_a_test_module_imports_no_other_test_module(path: Path) -> None:
    """Shared helpers live in tests/*_support.py (or bench/), so each test file runs and reads alone."""
    leaks = [target for _, target in imports_of(path) if target.startswith("tests.test_")]
    assert not leaks, f"{path.name} imports {', '.join(leaks)}: move what it shares into a tests/*_support.py"
