"""Push, its pure parts: the waits between attempts (exponential, full jitter, bounded), a
delivery's POST in each form read back by the recipient as the message its verifier checks
(and refused, with its code, when altered or without its proof), several deliveries in one
multipart/mixed POST read back alike, and `[push]` as the configuration admits it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters import AdapterRegistry
from gateway.cli.config import check_config
from gateway.deliveries.proof import (
    DELIVERY_PROOF_INVALID,
    DELIVERY_PROOF_MALFORMED,
    DELIVERY_PROOF_MISSING,
    DeliveryRefused,
    DeliveryVerifier,
)
from gateway.deliveries.push_wire import (
    HTTP_DELIVERIES,
    HTTP_SEAL,
    push_batch,
    push_request,
    pushed_message,
    pushed_messages,
)
from gateway.errors import ConfigError
from gateway.home.config import PUSH_CONFIG_INVALID, GatewayConfig
from gateway.home.create import create_home
from gateway.publish.push import backoff_delay, payload_media_types
from gateway.publish.sealing import sealed_now
from tests.unit.seal_support import GATEWAY_KEY, KEYRING, SCHEMAS
from tests.unit.test_delivery_proof import RECIPIENT, delivery, on_topic

PIN = "ab" * 32


def highest(low: float, high: float) -> float:
    return high


def test_waits_grow_exponentially_up_to_their_bound_with_full_jitter() -> None:
    assert [backoff_delay(n, 0.5, 10.0, highest) for n in range(7)] == \
        [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(10_000, 0.5, 10.0, highest) == 10.0  # no overflow, still bounded
    draws: list[tuple[float, float]] = []
    backoff_delay(3, 0.5, 10.0, lambda low, high: draws.append((low, high)) or 0.0)
    assert draws == [(0.0, 4.0)]  # anywhere from nothing to the bound


@pytest.mark.parametrize("form", ["avro", "json", "native"])
def test_each_form_carries_what_the_recipient_verifies(form: str) -> None:
    payload = b"<ArrivalDeclaration>...</ArrivalDeclaration>"
    (sealed,) = sealed_now(GATEWAY_KEY, [delivery(1, payload=payload)], SCHEMAS)
    message = on_topic(sealed)
    verifier = DeliveryVerifier(KEYRING, RECIPIENT, schemas=SCHEMAS)
    sent = verifier.check(message)
    request = push_request(message, sent, form, "application/xml")

    got = verifier.check(pushed_message(request.headers, request.body))

    assert got == sent and got.payload == payload
    if form == "native":
        assert request.body == payload
        assert request.headers["Content-Type"] == "application/xml"
        altered = payload.replace(b"...", b"!!!")
        with pytest.raises(DeliveryRefused) as refused:
            verifier.check(pushed_message(request.headers, altered))
        assert refused.value.code == DELIVERY_PROOF_INVALID
    if form == "json":
        body = json.loads(request.body)
        assert body["delivery"]["delivery_id"] == sent.delivery_id
        assert "payload" not in body["delivery"]


def test_a_push_without_its_proof_or_with_a_broken_one_is_refused() -> None:
    (sealed,) = sealed_now(GATEWAY_KEY, [delivery(2)], SCHEMAS)
    message = on_topic(sealed)
    sent = DeliveryVerifier(KEYRING, RECIPIENT, schemas=SCHEMAS).check(message)
    request = push_request(message, sent, "avro", "")
    without = {k: v for k, v in request.headers.items() if k != HTTP_SEAL}
    with pytest.raises(DeliveryRefused) as missing:
        pushed_message(without, request.body)
    broken = {**request.headers, HTTP_SEAL: "not base64!"}
    with pytest.raises(DeliveryRefused) as malformed:
        pushed_message(broken, request.body)
    assert (missing.value.code, malformed.value.code) == (DELIVERY_PROOF_MISSING,
                                                          DELIVERY_PROOF_MALFORMED)


def test_a_batch_carries_each_delivery_as_its_own_request_would() -> None:
    payloads = [b"<a/>", b"--not a boundary\r\n\r\nstill the payload", b"\x00\xff binary"]
    sealed = sealed_now(GATEWAY_KEY, [delivery(n, payload=p) for n, p in enumerate(payloads)],
                        SCHEMAS)
    messages = [on_topic(s) for s in sealed]
    verifier = DeliveryVerifier(KEYRING, RECIPIENT, schemas=SCHEMAS)
    sent = [verifier.check(m) for m in messages]
    forms = ["native", "avro", "json"]
    batch = push_batch([push_request(m, d, form, "application/xml")
                        for m, d, form in zip(messages, sent, forms, strict=True)])

    got = [verifier.check(m) for m in pushed_messages(batch.headers, batch.body)]

    assert got == sent and [d.payload for d in got] == payloads
    assert batch.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert batch.headers[HTTP_DELIVERIES] == "3"
    one = push_request(messages[0], sent[0], "avro", "")
    assert [verifier.check(m) for m in pushed_messages(one.headers, one.body)] == sent[:1]
    cut = batch.body[:len(batch.body) // 2]
    with pytest.raises(DeliveryRefused) as malformed:
        pushed_messages(batch.headers, cut)
    assert malformed.value.code == DELIVERY_PROOF_MALFORMED
    with pytest.raises(DeliveryRefused) as altered:
        verifier.check(pushed_messages(batch.headers, batch.body.replace(b"<a/>", b"<b/>"))[0])
    assert altered.value.code == DELIVERY_PROOF_INVALID


def config(push: dict[str, Any]) -> GatewayConfig:
    return GatewayConfig.from_mapping({"push": push, "http": {"tls": "off"}},
                                      home=Path("/srv/px"))


def recipients(**table: Any) -> dict[str, Any]:
    return {"client_cert_file": "push.pem", "client_key_file": "push.key",
            "recipients": {RECIPIENT: {"url": "https://customs.example/px", **table}}}


def test_a_push_recipient_is_read_with_its_files_under_the_home() -> None:
    settings = config(recipients(server_sha256=PIN.upper(), ca_file="customs-ca.pem",
                                 format="native", retry_horizon_s=60)).push
    recipient = settings.recipients[RECIPIENT]
    assert settings.client_cert_file == "/srv/px/push.pem"
    assert recipient.ca_file == "/srv/px/customs-ca.pem"
    assert recipient.server_sha256 == PIN and recipient.format == "native"
    assert recipient.retry_horizon_s == 60 and recipient.max_in_flight == 4
    assert recipient.batch == 1
    assert config({}).push.recipients == {}


@pytest.mark.parametrize("push", [
    recipients(),  # neither pinned nor validated
    recipients(server_sha256="abc"),
    recipients(server_sha256=PIN, format="xml"),
    recipients(server_sha256=PIN, retry_horizon_s=0),
    recipients(server_sha256=PIN, backoff_initial_s=5, backoff_max_s=1),
    recipients(server_sha256=PIN, max_in_flight=0),
    recipients(server_sha256=PIN, batch=0),
    recipients(server_sha256=PIN, batch=1001),
    {**recipients(server_sha256=PIN), "client_key_file": ""},
    {"recipients": {RECIPIENT: {"url": "http://customs.example/px", "server_sha256": PIN}},
     "client_cert_file": "push.pem", "client_key_file": "push.key"},
])
def test_a_push_recipient_that_cannot_be_pushed_to_safely_is_refused(push: dict[str, Any]
                                                                     ) -> None:
    with pytest.raises(ConfigError) as refused:
        config(push)
    assert refused.value.code == PUSH_CONFIG_INVALID


def test_config_check_names_each_push_problem_with_its_code(tmp_path: Path) -> None:
    """A push recipient that is no agency, and a client certificate that is not there:
    `portgw config check` lists both, as the gateway would refuse to start with them."""
    home = create_home(tmp_path / "home")
    home.config_file.write_text(
        home.config_file.read_text(encoding="utf-8") + '\n[push]\nclient_cert_file = '
        '"absent.pem"\nclient_key_file = "absent.key"\n'
        f'\n[push.recipients."cn.nobody"]\nurl = "https://nobody.example/"\n'
        f'server_sha256 = "{PIN}"\n', encoding="utf-8")

    report = check_config(GatewayConfig.load(home.config_file))

    assert sorted(problem.code for problem in report.problems) == \
        [PUSH_CONFIG_INVALID, "CONFIG_PUSH_UNKNOWN_AGENCY"]


def test_a_native_payload_goes_with_the_media_type_of_its_encoding() -> None:
    media_type = payload_media_types(AdapterRegistry.default(SCHEMAS))
    assert [media_type(encoding) for encoding in (
        "fal1-xml", "dxp+fal1-xml", "json", "avro-single-object", "sm4-envelope+fal1-xml",
        "unheard-of")] == ["application/xml", "application/xml", "application/json",
                           "application/vnd.apache.avro+binary", "application/octet-stream",
                           "application/octet-stream"]
