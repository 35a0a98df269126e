"""The import floors of DESIGN §4: message_formats and crypto import nothing of ours; adapters
and contracts only those two; gateway everything but replay; nothing imports replay."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OURS = ("message_formats", "crypto", "adapters", "contracts", "gateway", "replay")
MAY_IMPORT = {
    "message_formats": set(),
    "crypto": set(),
    "adapters": {"message_formats"},
    "contracts": {"message_formats", "crypto"},
    "gateway": {"message_formats", "crypto", "adapters", "contracts"},
    "replay": {"message_formats", "crypto", "adapters", "contracts", "gateway"},
}


def imported_packages(source: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(OURS)


@pytest.mark.parametrize("package", OURS)
def test_each_package_imports_only_the_floors_below_it(package: str) -> None:
    wrong = {
        f"{source.relative_to(ROOT)} imports {name}"
        for source in sorted((ROOT / package).rglob("*.py"))
        for name in imported_packages(source) - MAY_IMPORT[package] - {package}
    }
    assert not wrong, sorted(wrong)
