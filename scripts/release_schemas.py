"""Keeps a copy of the current Avro schemas as released, so later changes are checked for
backward compatibility against it (tests/conformance/test_schema_compat.py).

    python scripts/release_schemas.py 0.2.0
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "message_formats"


def main(version: str) -> int:
    target = ROOT / "released" / version
    if target.exists():
        print(f"{target} exists: a released version is never rewritten", file=sys.stderr)
        return 1
    target.mkdir(parents=True)
    for schema in sorted((ROOT / "avro").glob("*.avsc")):
        shutil.copy2(schema, target / schema.name)
    print(f"released {len(list(target.iterdir()))} schemas as {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else 2)
