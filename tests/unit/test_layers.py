"""The import floors of DESIGN §4: message_formats imports nothing of ours; crypto only
message_formats.errors (the coded error base every package's errors share); adapters and
contracts only those two; gateway everything but replay; nothing imports replay.

A floor names packages, or single modules where a package may take only that module."""

from __future__ import annotations

import ast
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


def imported_modules(source: Path) -> set[str]:
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
        for name in imported_modules(source)
        if not may_import(package, name)
    }
    assert not wrong, sorted(wrong)


def test_crypto_may_take_the_error_base_and_nothing_else_of_message_formats() -> None:
    assert may_import("crypto", "message_formats.errors")
    assert not may_import("crypto", "message_formats")
    assert not may_import("crypto", "message_formats.safe_xml")
    assert not may_import("crypto", "message_formats.errors_extra")
