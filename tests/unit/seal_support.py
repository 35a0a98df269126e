"""What the seal tests share: the gateway's sealing key and an agency's key, in one keyring."""

from __future__ import annotations

from datetime import UTC, datetime

from crypto import KeyEntry, Keyring, SM2PrivateKey
from message_formats import AvroSchemas

SCHEMAS = AvroSchemas()
GATEWAY_KEY = SM2PrivateKey.generate()
AGENCY_KEY = SM2PrivateKey.generate()
JAN = datetime(2026, 1, 1, tzinfo=UTC)
KEYRING = Keyring([
    KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=JAN),
    KeyEntry("cn.port.sh", AGENCY_KEY.public_key(), valid_from=JAN),
])
