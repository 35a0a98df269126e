"""The gateway's built-in Avro schemas, loaded once per test process and shared by every test
that only reads them: each module that loaded its own paid for it again on every pytest-xdist
worker, which collects every module. A test that adds or extends schemas makes its own."""

from __future__ import annotations

from functools import cache

from message_formats import AvroSchemas


@cache
def built_in_schemas() -> AvroSchemas:
    return AvroSchemas()
