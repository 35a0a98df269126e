"""The console's parts one at a time: console tokens in the keyring, sessions, the word
catalogue and the choice of language, escaping, the dead-letter index's pages, and the map
of exchange. The pages themselves, in a browser: tests/integration/test_console.py."""

from __future__ import annotations

import re
import stat
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import Agency
from crypto import BatchSigner, ClientBinding, ClientRole, Keyring, token_digest
from crypto.client_certs import binding_from_table
from gateway.cli.keys import main as keys_main
from gateway.console.access import MAX_ENDED, Sessions
from gateway.console.documents import DocumentIndex, Search
from gateway.console.letters import Filter, LetterIndex, Listed
from gateway.console.markup import Markup, fill
from gateway.console.overview import MAX_EDGES, by_agency, by_type, draw_map
from gateway.console.warnings import (
    LEVELS,
    WarningFilter,
    WarningReach,
    ports_of,
    step_rows,
    warning_row,
    warning_rows,
)
from gateway.console.words import WORDS, Lang, Words, choose_lang
from gateway.kafka.names import H_DUPLICATE_OF, H_RECORD, StoredMessage
from gateway.observe.metrics import GatewayMetrics
from gateway.publish.dead_letters import Location
from gateway.receipts.receipt import ACCEPTED, RECEIPT_SCHEMA, REJECTED, Receipt, SignedReceipt
from gateway.trail.writer import RECORD_KIND, TrailCodec
from gateway.warnings.lifecycle import (
    CHANGE_LEVEL,
    DRAFT,
    DRAFTED,
    FILE,
    FILED,
    PUBLISH,
    PUBLISHED,
    RELEASE,
    RELEASED,
    RETURN,
    RETURNED,
    REVIEWS,
    TERROR_CHECK,
    RecordedStep,
)
from gateway.warnings.scenario import DRAFTER, content, step_record
from tests.unit.seal_support import GATEWAY_KEY, SCHEMAS

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "a-console-token-of-the-operator"
FINGERPRINT = "ab" * 32


def console_keyring(*, revoked_at: datetime | None = None) -> Keyring:
    return Keyring([], clients=[
        ClientBinding(token_digest(TOKEN), ClientRole.OPERATOR, "ops", START,
                      revoked_at=revoked_at, token=True),
        ClientBinding(FINGERPRINT, ClientRole.AUDITOR, "audit-cert", START),
    ])


# -- console tokens in the keyring -------------------------------------------------------------


def test_a_token_binding_is_read_from_its_table_and_found_only_as_a_token() -> None:
    table = {"token_sha256": token_digest(TOKEN), "role": "auditor", "name": "audit-office"}
    binding = binding_from_table(table, {}, START)
    assert (binding.token, binding.role, binding.holder) == (True, ClientRole.AUDITOR,
                                                            "audit-office")
    keyring = console_keyring()
    assert keyring.console_user(token_digest(TOKEN), NOW) is not None
    assert keyring.client(token_digest(TOKEN), NOW) is None  # never as a certificate
    assert keyring.console_user(FINGERPRINT, NOW) is None  # a certificate is no token
    assert keyring.client(FINGERPRINT, NOW) is not None


@pytest.mark.parametrize(("table", "rule"), [
    ({"token_sha256": "ab" * 32, "agency": "cn.port.sh"}, "operator or auditor"),
    ({"token_sha256": "ab" * 32, "role": "proxy", "name": "p"}, "operator or auditor"),
    ({"token_sha256": "ab" * 32, "sha256": "cd" * 32, "role": "operator", "name": "o"},
     "not both"),
    ({"role": "operator", "name": "o"}, "not both nor neither"),
    ({"token_sha256": "a-token-itself", "role": "operator", "name": "o"}, "SHA-256"),
])
def test_a_token_binding_that_breaks_a_rule_is_refused_naming_it(table: dict[str, str],
                                                                   rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        binding_from_table(table, {}, START)


def test_portgw_keys_console_token_writes_the_token_and_prints_its_binding(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "ops.token"
    assert keys_main(["keys", "console-token", "--role", "operator", "--name", "ops-1",
                      "--out", str(token_file)]) == 0
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    table = capsys.readouterr().out
    assert token not in table
    keyring_file = tmp_path / "keyring.toml"
    keyring_file.write_text(table, encoding="utf-8")
    binding = Keyring.from_toml(keyring_file).console_user(token_digest(token), NOW)
    assert binding is not None and (binding.role, binding.holder) == (ClientRole.OPERATOR,
                                                                      "ops-1")
    assert keys_main(["keys", "console-token", "--role", "operator", "--name", "ops-1",
                      "--out", str(token_file)]) == 2  # never over a token handed out


# -- sessions ----------------------------------------------------------------------------------


def test_a_session_holds_while_its_binding_does_and_nobody_alters_its_cookie() -> None:
    sessions, keyring = Sessions(lifetime_s=3600), console_keyring()
    assert sessions.sign_in("another-token", keyring, NOW) is None
    session = sessions.sign_in(TOKEN, keyring, NOW)
    assert session is not None and TOKEN not in session.cookie
    assert sessions.session(session.cookie, keyring, NOW) == session
    later = NOW + timedelta(hours=2)
    assert sessions.session(session.cookie, keyring, later) is None  # ended
    digest, expires, mac = session.cookie.split(".")
    longer = f"{digest}.{int(expires) + 86400}.{mac}"
    assert sessions.session(longer, keyring, NOW) is None  # altered
    assert sessions.session(session.cookie, console_keyring(revoked_at=NOW), NOW) is None
    assert Sessions().session(session.cookie, keyring, NOW) is None  # another process's
    assert sessions.form_token_ok(session, sessions.form_token(session))
    assert not sessions.form_token_ok(session, "0" * 64)


def test_a_session_signed_out_is_ended_for_every_copy_of_its_cookie() -> None:
    sessions, keyring = Sessions(lifetime_s=3600), console_keyring()
    session = sessions.sign_in(TOKEN, keyring, NOW)
    assert session is not None
    sessions.sign_out(session, NOW)
    assert sessions.session(session.cookie, keyring, NOW) is None  # the copy opens nothing
    again = sessions.sign_in(TOKEN, keyring, NOW)  # the holder signs in again at once
    assert again is not None and sessions.session(again.cookie, keyring, NOW) == again


def test_too_many_sessions_signed_out_at_once_end_them_all() -> None:
    sessions, keyring = Sessions(lifetime_s=MAX_ENDED + 10), console_keyring()
    kept = sessions.sign_in(TOKEN, keyring, NOW)
    assert kept is not None
    for second in range(1, MAX_ENDED + 2):
        at = NOW + timedelta(seconds=second)
        ended = sessions.sign_in(TOKEN, keyring, at)
        assert ended is not None and ended.cookie != kept.cookie
        sessions.sign_out(ended, at)
    assert sessions.session(kept.cookie, keyring, NOW) is None  # the key was drawn anew


# -- words and escaping ------------------------------------------------------------------------


def test_every_word_is_in_both_languages_with_the_same_blanks() -> None:
    blanks = string.Formatter()
    for key, (english, chinese) in WORDS.items():
        assert english.strip() and chinese.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", chinese), key
        assert ({name for _, name, _, _ in blanks.parse(english) if name}
                == {name for _, name, _, _ in blanks.parse(chinese) if name}), key
    assert Words(Lang.ZH)("overview") == "总览"
    assert Words(Lang.EN)("retried_count", count=2).startswith("2 ")


@pytest.mark.parametrize(("asked", "remembered", "accept", "chosen"), [
    ("zh", "en", "en", Lang.ZH),
    (None, "zh", "en-GB", Lang.ZH),
    ("fr", None, "zh-CN,zh;q=0.9,en;q=0.8", Lang.ZH),
    (None, None, "fr-FR, en;q=0.5, zh;q=0.4", Lang.EN),
    (None, None, "en;q=0.2, zh-TW;q=0.7", Lang.ZH),
    (None, None, "", Lang.EN),
])
def test_the_language_is_the_asked_then_remembered_then_preferred_one(
        asked: str | None, remembered: str | None, accept: str, chosen: Lang) -> None:
    assert choose_lang(asked, remembered, accept) is chosen


def test_a_value_put_into_a_template_is_escaped_unless_it_is_markup() -> None:
    template = string.Template('<p title="$title">$body</p>')
    made = fill(template, title='"><script>', body=Markup("<b>kept</b>"))
    assert made == '<p title="&quot;&gt;&lt;script&gt;"><b>kept</b></p>'


# -- the dead-letter index ---------------------------------------------------------------------


def listed(offset: int, code: str, sender: str) -> Listed:
    return Listed(Location(0, offset), f"2026-06-01T12:00:{offset:02d}.000Z", sender,
                  "fal1-xml", "fal1", f"key-{offset}", code, "the rule", None, cut=False)


def test_dead_letters_come_a_page_at_a_time_newest_first_as_filtered() -> None:
    index = LetterIndex(SCHEMAS)
    for offset in range(7):
        index.add(listed(offset, "RULE_A" if offset % 2 else "RULE_B", f"agency-{offset % 3}"))
    index.add(listed(3, "RULE_A", "agency-0"))  # read again after a reconnect: once
    first = index.page(Filter(), 1, 3)
    assert (first.total, first.pages) == (7, 3)
    assert [row.location.offset for row in first.rows] == [6, 5, 4]
    last = index.page(Filter(), 9, 3)  # past the end: the last page
    assert (last.number, [row.location.offset for row in last.rows]) == (3, [0])
    chosen = index.page(Filter(code="RULE_A", sender="agency-0"), 1, 3)
    assert [row.location.offset for row in chosen.rows] == [3]
    assert index.counts("code") == [("RULE_A", 3), ("RULE_B", 4)]
    index.retried(Location(0, 3), "retry-1", "ops", NOW)
    [row] = index.at([Location(0, 3)])
    assert (row.retried_as, row.retried_by) == ("retry-1", "ops")
    assert index.at([Location(1, 3)]) == []
    index.close()


def receipt_message(offset: int, key: str | None, sender: str, *, duplicate_of: str = ""
                    ) -> StoredMessage:
    receipt = Receipt(submission_id=f"s-{offset}", event_id=f"e-{offset}", sender=sender,
                      format_id="fal1-xml", digest_sm3="ab" * 32,
                      status=REJECTED if key is None else ACCEPTED,
                      time=NOW + timedelta(seconds=offset), recipients=("cn.customs.sh",),
                      document_type="fal1", business_key=key,
                      error_code="AUTH_SIGNATURE_INVALID" if key is None else None)
    body = SCHEMAS.encode_body(RECEIPT_SCHEMA, receipt.to_avro())
    [signed] = SignedReceipt.of_batch([receipt], [body], BatchSigner(GATEWAY_KEY).sign([body]))
    headers = ((H_DUPLICATE_OF, duplicate_of.encode()),) if duplicate_of else ()
    return StoredMessage("px.receipt.v1", 0, offset, f"{sender}~{offset}".encode(),
                         signed.encode(SCHEMAS), headers, 0)


def test_documents_are_found_by_the_start_of_their_key_by_sender_and_type() -> None:
    index = DocumentIndex(SCHEMAS)
    for offset, key in enumerate(["9074729:V1", "9074729:V2", "9074728:V1", None]):
        index.file(receipt_message(offset, key, "cn.port.sh" if offset < 3 else "cn.msa.sh"))
    index.file(receipt_message(4, "9074729:V1", "cn.port.sh", duplicate_of="cn.port.sh~0"))
    index.file(StoredMessage("px.receipt.v1", 0, 5, b"x", b"not a receipt", (), 0))
    by_key = index.page(Search(key="9074729"), 1, 10)
    assert [found.business_key for found in by_key.rows] == ["9074729:V1", "9074729:V2",
                                                             "9074729:V1"]
    assert by_key.rows[0].duplicate_of == "cn.port.sh~0"  # the newest first
    assert index.page(Search(key="9074729:V2"), 1, 10).total == 1
    refused = index.page(Search(sender="cn.msa.sh", document_type="fal1"), 1, 10).rows
    assert [(found.status, found.code) for found in refused] == [(REJECTED,
                                                                  "AUTH_SIGNATURE_INVALID")]
    assert index.values("sender") == ["cn.msa.sh", "cn.port.sh"]
    index.close()


# -- the map of exchange -----------------------------------------------------------------------


def test_the_map_draws_every_agency_and_only_the_heaviest_flows() -> None:
    ids = [f"cn.agency.{n:03d}" for n in range(200)]
    agencies = [Agency(agency, f"Agency {n}", "customs", "310000", "CN", f"单位{n}")
                for n, agency in enumerate(ids)]
    metrics = GatewayMetrics()
    for n, sender in enumerate(ids):
        metrics.accepted("fal1", sender)
        for recipient in ids[n + 1: n + 4]:
            metrics.delivered("fal1", recipient, sender=sender)
    metrics.rejected("fal1", ids[0], "RULE_X")
    exchange = metrics.exchange()
    counts = by_agency(exchange, ids)
    assert (counts[0].accepted, counts[0].refused, counts[3].delivered) == (1, 1, 3)
    assert by_type(exchange) == [("fal1", 200, 1)]
    drawn = draw_map(agencies, counts, exchange, Words(Lang.ZH))
    assert drawn.count('class="node"') == 200
    assert drawn.count('class="flow"') == MAX_EDGES
    assert drawn.count('class="refused"') == 1
    assert "<text x" not in drawn.split('class="nodes"')[1].split("</g>", 1)[1]  # no labels
    assert "单位0（cn.agency.000）" in drawn


def test_an_agency_id_is_escaped_on_the_map() -> None:
    metrics = GatewayMetrics()
    metrics.delivered("fal1", "<b>", sender="a&b")
    exchange = metrics.exchange()
    drawn = draw_map([], by_agency(exchange, []), exchange, Words(Lang.EN))
    assert "<b>" not in drawn and 'data-sender="a&amp;b"' in drawn


# -- early warnings -----------------------------------------------------------------------------


def trail_message(offset: int, kind: str, event_id: str, recipient: str | None,
                  document_type: str = "warning") -> StoredMessage:
    """A record of the trail topic as the trail writer publishes it."""
    entry = {"chain": "p0", "seq": offset, "prev_hash": "0" * 64, "time": NOW, "kind": kind,
             "submission_id": f"s{offset}", "event_id": event_id, "sender": "cn.customs.sh",
             "format_id": "warning-xml", "document_type": document_type,
             "business_key": "SH-1", "document_version": 1, "digest_sm3": "0" * 64,
             "signature_key_id": None, "error_code": None, "reason": "r",
             "recipient": recipient, "contract_id": None, "contract_version": None,
             "ref_topic": None, "ref_partition": None, "ref_offset": None, "ref_digest": None}
    _, value = TrailCodec(SCHEMAS).hashed_record(entry)
    return StoredMessage("px.trail.v1", 0, offset, b"p0", value,
                         ((H_RECORD, RECORD_KIND),), 0)


def warning_step(event_id: str, warning_id: str, action: str, level: str, minutes: int,
                 port: str) -> RecordedStep:
    record = {**step_record(content(warning_id, level), action, DRAFTER, minutes)}
    record["affected_area"] = {**record["affected_area"], "port_codes": [port]}
    return RecordedStep(event_id, "cn.customs.sh", record)


def test_who_received_and_acknowledged_a_warning_is_read_from_the_trail() -> None:
    reach = WarningReach(SCHEMAS)
    for message in (trail_message(0, "DELIVERED", "e1", "cn.mem"),
                    trail_message(1, "DELIVERED", "e2", "cn.gov.sh"),
                    trail_message(2, "TAKEN", "e1", "cn.mem"),
                    trail_message(3, "ACCEPTED", "e1", None),
                    trail_message(4, "DELIVERED", "e1", "cn.msa.sh", document_type="fal1")):
        reach.file(message)
    steps = [warning_step(e, "SH-1", "DRAFT", "II", 0, "CNSHA") for e in ("e1", "e2")]
    assert reach.of(steps) == (("cn.gov.sh", "cn.mem"), ("cn.mem",))
    assert reach.of(steps[1:]) == (("cn.gov.sh",), ())


def test_a_warnings_page_has_each_step_with_who_received_and_acknowledged_it() -> None:
    reach = WarningReach(SCHEMAS)
    for message in (trail_message(0, "DELIVERED", "e2", "cn.mem"),
                    trail_message(1, "DELIVERED", "e2", "cn.gov.sh"),
                    trail_message(2, "TAKEN", "e2", "cn.mem")):
        reach.file(message)
    steps = [warning_step("e1", "SH-1", "DRAFT", "II", 0, "CNSHA"),
             warning_step("e2", "SH-1", "CONTENT_REVIEW", "II", 5, "CNSHA")]
    rows = step_rows(steps, reach)
    assert [(r.number, r.action, r.level, r.sender, r.received, r.acknowledged)
            for r in rows] == [
        (1, "DRAFT", "II", "cn.customs.sh", (), ()),
        (2, "CONTENT_REVIEW", "II", "cn.customs.sh", ("cn.gov.sh", "cn.mem"), ("cn.mem",))]
    assert rows[1].at - rows[0].at == timedelta(minutes=5)
    row = warning_row(steps, reach)
    assert row is not None and (row.last_action, row.steps) == ("CONTENT_REVIEW", 2)
    assert warning_row([], reach) is None


def test_warnings_are_listed_gravest_first_as_filtered_a_page_at_a_time() -> None:
    book = {
        "SH-1": [warning_step("a1", "SH-1", "DRAFT", "III", 0, "CNSHA")],
        "SH-2": [warning_step("b1", "SH-2", "DRAFT", "I", 0, "CNNGB")],
        "SH-3": [warning_step("c1", "SH-3", "DRAFT", "III", 0, "CNSHA"),
                 warning_step("c2", "SH-3", "CONTENT_REVIEW", "III", 5, "CNSHA")],
    }
    reach = WarningReach(SCHEMAS)
    page = warning_rows(book, reach, WarningFilter(), 1, 2)
    assert [row.state.warning_id for row in page.rows] == ["SH-2", "SH-3"]
    assert (page.total, page.pages) == (3, 2)
    assert [row.state.warning_id
            for row in warning_rows(book, reach, WarningFilter(), 2, 2).rows] == ["SH-1"]
    only = warning_rows(book, reach, WarningFilter(level="III", port="CNSHA"), 1, 50).rows
    assert [(row.state.warning_id, row.last_action, row.steps) for row in only] == [
        ("SH-3", "CONTENT_REVIEW", 2), ("SH-1", "DRAFT", 1)]
    assert ports_of(book) == ["CNNGB", "CNSHA"]


def test_every_level_status_and_step_of_a_warning_has_its_words() -> None:
    for key in ([f"level_{level}" for level in LEVELS]
                + [f"warning_{s}" for s in (DRAFTED, RETURNED, PUBLISHED, RELEASED, FILED)]
                + [f"action_{a}" for a in (DRAFT, *REVIEWS, TERROR_CHECK, PUBLISH, RETURN,
                                            CHANGE_LEVEL, RELEASE, FILE)]):
        assert key in WORDS, key
