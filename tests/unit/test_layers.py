"""The import floors of DESIGN §4: message_formats imports nothing of ours; crypto only
message_formats.errors (the coded error base every package's errors share); adapters and
contracts only those two; gateway everything but replay; nothing imports replay. No import
cycle among our modules, the auditor's side (replay/) off the running service, and the
wings of gateway/ on floors of their own (docs/architecture.md). No module takes another's
private names (a leading underscore), nor a private module from outside its package.

A floor names packages, or single modules where a package may take only that module."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OURS = ("message_formats", "crypto", "adapters", "contracts", "gateway", "replay")
MAY_IMPORT = {
    "message_formats": set(),
    "crypto": {"message_formats.errors"},
    "adapters": {"message_formats"},
    "contracts": {"message_formats", "crypto"},
    "gateway": {"message_formats", "crypto", "adapters", "contracts"},
    "replay": {"message_formats", "crypto", "adapters", "contracts", "gateway"},
}


def imported_names(source: Path) -> set[str]:
    """The dotted names of ours that `source` imports absolutely (what the floors judge)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in OURS}


def may_import(package: str, module: str) -> bool:
    return any(module == allowed or module.startswith(f"{allowed}.")
               for allowed in MAY_IMPORT[package] | {package})


@pytest.mark.parametrize("package", OURS)
def test_each_package_imports_only_the_floors_below_it(package: str) -> None:
    wrong = {
        f"{source.relative_to(ROOT)} imports {name}"
        for source in sorted((ROOT / package).rglob("*.py"))
        for name in imported_names(source)
        if not may_import(package, name)
    }
    assert not wrong, sorted(wrong)


def test_crypto_may_take_the_error_base_and_nothing_else_of_message_formats() -> None:
    assert may_import("crypto", "message_formats.errors")
    assert not may_import("crypto", "message_formats")
    assert not may_import("crypto", "message_formats.safe_xml")
    assert not may_import("crypto", "message_formats.errors_extra")


# -- modules: no import cycle, and the auditor's side off the running service -----------------

# What the auditor's tools use of the gateway (replay/, but for demo.py): the trail's format,
# archive files and the progress line of a verification, the wire (topics, headers, reading
# and publishing), the coded errors, the configuration and how a command finds it
# (`cli_support`), and what a re-delivery needs to be made as the gateway makes a delivery:
# the loaded keys, contracts and schemas (`parts`), the delivery message
# (`publish.deliveries.delivery_message`), its seal (`sealing`), the clock and ids.
REPLAY_MAY_USE = {
    "gateway.cli.support", "gateway.clock", "gateway.errors", "gateway.ids",
    "gateway.home.config", "gateway.parts", "gateway.kafka.names", "gateway.kafka.wire",
    "gateway.publish.deliveries",
    "gateway.publish.sealing", "gateway.trail.writer", "gateway.trail.archive",
    "gateway.trail.progress",
}
# `portgw demo` runs the whole gateway on purpose: a local broker, a served gateway, agencies
# submitting over it, the auditor's checks at the end.
REPLAY_RUNS_THE_GATEWAY = "replay.demo"
# The running service, which no other auditor's module may reach even through another module.
RUNNING_SERVICE = {
    "gateway.service", "gateway.ingress.serving", "gateway.ingress.http_api", "gateway.cli.main",
}


def module_name(source: Path) -> str:
    parts = source.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {module_name(source): source
            for package in OURS for source in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str, source: Path) -> Iterator[tuple[str, str | None]]:
    """What module `name` (at `source`) imports, as (module, name) for `from module import
    name` and (module, None) for `import module`, relative imports made absolute: at its top,
    in a function or under TYPE_CHECKING alike."""
    package = name if source.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*above, base] if base else above)
            for alias in node.names:
                yield base, alias.name


def imported_modules(name: str, source: Path, modules: Mapping[str, Path]) -> set[str]:
    """Our modules `source` imports, wherever the import is (an import moved into a function
    to dodge a cycle is still the cycle)."""

    def ours(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found = {ours(base) if imported is None or f"{base}.{imported}" not in modules
             else ours(f"{base}.{imported}")
             for base, imported in imports_of(name, source)}
    return {module for module in found if module is not None} - {name}


def import_graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imported_modules(name, source, modules) for name, source in modules.items()}


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for module in graph[todo.pop()] - seen:
            seen.add(module)
            todo.append(module)
    return seen


def import_cycles(graph: Mapping[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module: each module of one reaches
    every other by imports."""
    reach = {module: reachable(graph, module) for module in graph}
    return {frozenset(other for other in reach[module] if module in reach[other])
            for module in graph if module in reach[module]}


def test_the_cycle_finder_counts_imports_in_functions_and_relative_ones(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from . import y\n\ndef run():\n    from gateway.cli.main import main\n")
    modules = {"gateway.cli.main": source, "gateway.x": source, "gateway.y": source}
    graph = {"gateway.x": imported_modules("gateway.x", source, modules),
             "gateway.y": set(), "gateway.cli.main": {"gateway.x"}}
    assert graph["gateway.x"] == {"gateway.y", "gateway.cli.main"}
    assert import_cycles(graph) == {frozenset({"gateway.x", "gateway.cli.main"})}


def test_no_import_cycle_among_our_modules() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, sorted(sorted(cycle) for cycle in cycles)


# The floors inside gateway/, bottom first (docs/architecture.md): a module imports from its
# own part and from parts on lower floors; two parts on one floor do not import each other.
GATEWAY_FLOORS: tuple[tuple[str, ...], ...] = (
    ("gateway.errors", "gateway.clock", "gateway.ids", "gateway.children", "gateway.observe"),
    ("gateway.home",),
    ("gateway.kafka",),
    ("gateway.deliveries",),
    ("gateway.decide",),
    ("gateway.trail", "gateway.receipts"),
    ("gateway.publish",),
    ("gateway.warnings",),
    ("gateway.parts",),
    ("gateway.ingress",),
    ("gateway.console",),
    ("gateway.service",),
    ("gateway.cli",),
)
AT_GATEWAYS_ROOT_AT_MOST = 6


def part_of(module: str) -> str | None:
    return next((part for floor in GATEWAY_FLOORS for part in floor
                 if module == part or module.startswith(f"{part}.")), None)


def floor_of(part: str) -> int:
    return next(n for n, floor in enumerate(GATEWAY_FLOORS) if part in floor)


def test_every_module_of_the_gateway_is_in_a_wing_and_few_stay_at_its_root() -> None:
    modules = [name for name in our_modules() if name.startswith("gateway.")]
    assert not [name for name in modules if part_of(name) is None]
    at_root = [name for name in modules if name.count(".") == 1
               and not (ROOT / "gateway" / name.split(".")[1]).is_dir()]
    assert len(at_root) <= AT_GATEWAYS_ROOT_AT_MOST, at_root


def imports_not_downward(graph: Mapping[str, set[str]]) -> set[str]:
    wrong = set()
    for name, imported in graph.items():
        part = part_of(name)
        for module in imported:
            other = part_of(module)
            if part and other and other != part and floor_of(other) >= floor_of(part):
                wrong.add(f"{name} imports {module}")
    return wrong


def test_gateway_wings_import_only_their_own_and_lower_floors() -> None:
    wrong = imports_not_downward(import_graph())
    assert not wrong, sorted(wrong)


def test_the_floor_check_refuses_imports_upward_and_across_one_floor() -> None:
    graph = {"gateway.kafka.wire": {"gateway.decide.pipeline", "gateway.errors"},
             "gateway.trail.writer": {"gateway.receipts.book", "gateway.trail.archive"},
             "gateway.cli.dlq": {"gateway.service"}}
    assert imports_not_downward(graph) == {
        "gateway.kafka.wire imports gateway.decide.pipeline",
        "gateway.trail.writer imports gateway.receipts.book"}


def test_the_auditors_modules_use_only_the_trail_the_wire_and_the_loaded_parts() -> None:
    graph = import_graph()
    auditors = [name for name in graph
                if name.split(".")[0] == "replay" and name != REPLAY_RUNS_THE_GATEWAY]
    wrong = {f"{name} imports {module}" for name in auditors for module in graph[name]
             if module.split(".")[0] == "gateway" and module not in REPLAY_MAY_USE}
    assert not wrong, sorted(wrong)
    reaching = {f"{name} reaches {module}" for name in auditors
                for module in reachable(graph, name) & RUNNING_SERVICE}
    assert not reaching, sorted(reaching)


def test_deciding_reaches_no_kafka_client() -> None:
    """The stages (gateway.decide) name topics and headers (gateway.kafka.names) and never
    load aiokafka, not even through another module of ours: deciding is done without a
    broker, in the parse worker too."""
    graph, modules = import_graph(), our_modules()
    loading = {module for module, source in modules.items()
               if any(base.split(".")[0] == "aiokafka" for base, _ in imports_of(module, source))}
    assert loading, "no module of ours imports aiokafka: the check would see nothing"
    deciding = [name for name in graph if name.startswith("gateway.decide")]
    wrong = {f"{name} reaches {module}, which imports aiokafka"
             for name in deciding for module in ({name} | reachable(graph, name)) & loading}
    assert not wrong, sorted(wrong)


# -- private names: a leading underscore keeps a name to its module, a module to its package --


def private_imports(name: str, source: Path, modules: Mapping[str, Path]) -> set[str]:
    """What module `name` takes that is another's to keep: a name with a leading underscore
    from another module of ours, or a module with one (`adapters._xml`) from outside the
    package that holds it."""
    wrong = set()
    for base, imported in imports_of(name, source):
        if base.split(".")[0] not in OURS:
            continue
        dotted = base if imported is None else f"{base}.{imported}"
        if imported is not None and dotted not in modules and imported.startswith("_"):
            wrong.add(f"{name} imports {imported} from {base}")
            dotted = base
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            owner = ".".join(parts[:depth])
            if part.startswith("_") and not (name == owner or name.startswith(f"{owner}.")):
                wrong.add(f"{name} imports the private module {'.'.join(parts[: depth + 1])}")
    return wrong


def test_the_private_import_finder_tells_a_module_s_own_from_another_s(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from .fal1 import _token, token\nfrom . import _xml\n"
                      "from crypto import _der\nimport gateway._wire\n")
    modules = {name: source for name in
               ("adapters.x", "adapters.fal1", "adapters._xml", "crypto._der", "gateway._wire")}
    assert private_imports("adapters.x", source, modules) == {
        "adapters.x imports _token from adapters.fal1",
        "adapters.x imports the private module crypto._der",
        "adapters.x imports the private module gateway._wire",
    }


def test_no_module_imports_what_another_keeps_private() -> None:
    modules = our_modules()
    wrong = {problem for name, source in modules.items()
             for problem in private_imports(name, source, modules)}
    assert not wrong, sorted(wrong)
