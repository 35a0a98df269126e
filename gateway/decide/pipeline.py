"""The pipeline: small stages, each taking and returning one context (structlog's shape).

Each stage is a small frozen object with `__call__(ctx) -> ctx`, holding what it needs. Stages
are pure CPU work (signature check, XML, Avro, routing); publishing is done by the service
after the last stage. A stage refuses a document by raising a CodedError (its code says why);
any other exception is a bug.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from adapters import (
    Adapter,
    AdapterError,
    AdapterRegistry,
    DerivedDocument,
    DerivesDocuments,
    DocumentPart,
    FormatDetector,
    ParseResult,
)
from contracts import Decision, Grant, RouteDenied
from crypto import (
    CertificateKey,
    KeyHint,
    Keyring,
    SignerEntry,
    UnknownSigner,
    sm3_hex,
    verify_enveloped,
)
from crypto.xmldsig import XMLDSIG_KEY_UNKNOWN
from gateway.decide.router import Router
from gateway.errors import GatewayError
from gateway.home.config import AgencyLimits
from gateway.home.live_keyring import LiveKeyring
from gateway.ids import derived_uuid7, uuid7_time_ms
from gateway.kafka.names import (
    H_DERIVED_FROM,
    H_DOCUMENT_TYPE,
    H_EVENT_ID,
    H_FINGERPRINT,
    H_PART_OF,
    H_SENDER,
    Outbound,
    Topics,
)
from message_formats import AvroSchemas, CodedError, SafeXmlParser
from message_formats.dxp import DXP_MSG, DxpTransInfo, parse_dxp_msg
from message_formats.edifact import Where

# The format of a China E-Port DxpMsg envelope (docs/eport.md, "Ingress of envelopes").
DXP_FORMAT = "dxp"
DXP_SENDER_MISMATCH = "DXP_SENDER_MISMATCH"


@dataclass(frozen=True, slots=True)
class Submission:
    """A document as it arrived: the bytes, who claims to send them, and their signature."""

    submission_id: str
    sender: str
    format_id: str
    document: bytes
    signature: bytes
    received_at: datetime
    partition: int = 0
    # Where the submission was read from the ingress topic (partition is `partition`), so
    # that its RECEIVED trail record can name the original bytes; None when it was handed
    # to the gateway directly.
    ingress_offset: int | None = None
    # The ingress record's timestamp: with its place, what the event id is derived from.
    ingress_timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a document was refused, as a value (it crosses the parse worker's process
    boundary, gateway.decide.ahead): a code, a message naming the rule, and what was read of
    the document before the refusal, its business key and version (a rule that refuses a
    document runs after its key is read: adapters.AdapterError carries them)."""

    code: str
    message: str
    line: int | None = None
    business_key: str | None = None
    document_version: int | None = None
    # Of an EDIFACT interchange: where its CONTRL reports the refusal (EdifactError.where,
    # or the `where` an EDIFACT adapter gives its RuleViolationError; docs/edifact.md).
    edifact: Where | None = None

    @classmethod
    def of(cls, exc: CodedError) -> Refusal:
        if isinstance(exc, EnvelopeRefused):
            return exc.refusal
        where = getattr(exc, "where", None)
        edifact = where if isinstance(where, Where) else None
        if isinstance(exc, AdapterError):
            return cls(exc.code, exc.message, exc.line, exc.business_key, exc.document_version,
                       edifact)
        return cls(exc.code, exc.message, exc.line, edifact=edifact)


@dataclass(frozen=True, slots=True)
class Opened:
    """A DXP envelope opened (OpenEnvelope): its TransInfo; once authenticated, the serial of
    the certificate whose key verified the signature and the format of the business message
    inside. Small and picklable: the parse worker sends it back, also with the refusal of
    an envelope read but not authenticated (its receipt echoes the TransInfo)."""

    trans_info: DxpTransInfo
    format_id: str | None = None
    serial: int | None = None


@dataclass(frozen=True, slots=True)
class Derivation:
    """What a derived document's context says of where it came from: the document it was
    derived from (its event, its type) and its own canonical type and schema. Of a message
    of an interchange of several (`message` > 0): the submission's own message is the
    source, and `message` and `reference` are its place and UNH reference."""

    source_event_id: str
    source_type: str
    document_type: str
    schema_name: str
    message: int = 0
    reference: str = ""

    @property
    def note(self) -> str:
        """What its trail records say of it, before the routing."""
        if self.message:
            return (f"message {self.message} (UNH {self.reference}) of the interchange of "
                    f"event {self.source_event_id}")
        return f"derived from event {self.source_event_id} ({self.source_type})"


@dataclass(frozen=True, slots=True)
class Context:
    submission: Submission
    event_id: str
    digest: str
    # The keyring the document is judged under, read once (a reload never splits one
    # document's authentication); None: the authenticate stage reads the one in force.
    keyring: Keyring | None = None
    signer: SignerEntry | None = None  # an RSA entry only for an envelope signed rsa-sha1
    adapter: Adapter | None = None
    parsed: ParseResult | None = None
    # Why the document was refused: by the parse worker (the Adapt stage then raises it), or
    # by the stage that stopped the pipeline (gateway.service.run_stages).
    refused: Refusal | None = None
    record: dict[str, Any] | None = None  # the canonical record with its header
    event: Outbound | None = None
    decision: Decision | None = None
    deliveries: tuple[tuple[Grant, Outbound], ...] = ()
    # A DXP envelope's facts once opened; and, in the process that opened it, the business
    # message it holds (the worker sends back the facts and the parse, never the bytes).
    opened: Opened | None = None
    inner: bytes | None = None
    # The documents derived from this one and, of an interchange of several messages, its
    # other messages (the Derive stage), each decided in a context of its own (a message
    # refused by its rules keeps its `refused`); and, in such a context, where it came from.
    derived: tuple[Context, ...] = ()
    derivation: Derivation | None = None

    @property
    def format_id(self) -> str:
        """The business document's format: the submission's, or the one in its envelope."""
        opened = self.opened
        return opened.format_id if opened and opened.format_id else self.submission.format_id

    @property
    def document(self) -> bytes:
        """The business document: the submission's bytes, or the message in its envelope."""
        return self.inner if self.inner is not None else self.submission.document

    @property
    def identity(self) -> str:
        """What a later submission of the sender is a duplicate of this one by: the SM3 of
        its bytes; for a DXP envelope its CopMsgId, the sender's own message id (E-Port
        receivers de-duplicate on it, so a re-signed resend is the same message)."""
        if self.opened is not None:
            return f"dxp:{self.opened.trans_info.cop_msg_id}"
        return self.digest

    @property
    def document_type(self) -> str | None:
        if self.derivation is not None:
            return self.derivation.document_type
        return self.adapter.document_type if self.adapter else None

    @property
    def schema_name(self) -> str:
        """The canonical schema of the document (once its adapter is known)."""
        if self.derivation is not None:
            return self.derivation.schema_name
        assert self.adapter is not None
        return self.adapter.schema_name

    @property
    def business_key(self) -> str | None:
        """Once the document is parsed; or, refused by a rule, as read before the rules ran."""
        if self.parsed is not None:
            return self.parsed.business_key
        return self.refused.business_key if self.refused is not None else None

    @property
    def document_version(self) -> int | None:
        if self.parsed is not None:
            return self.parsed.document_version
        return self.refused.document_version if self.refused is not None else None


Stage = Callable[[Context], Context]


@dataclass(frozen=True, slots=True)
class Reached:
    """Where the stages got: the context after the last stage that completed and, when a
    stage raised, what it raised and its name. What the earlier stages learnt (the document
    type, the business key and version) is kept for a document a later stage refuses."""

    context: Context
    failed: Exception | None = None
    stage: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a document is refused: its code, the rule it broke, and whether it was refused
    (REJECTED) or shared with nobody (DENIED)."""

    code: str
    message: str
    line: int | None
    kind: str  # REJECTED, or DENIED when no contract shares the document


class Pipeline:
    """Named stages run in order; `observe(name, seconds)` is told how long each took."""

    __slots__ = ("_observe", "stages")

    def __init__(self, stages: Sequence[tuple[str, Stage]],
                 observe: Callable[[str, float], None] | None = None) -> None:
        self.stages = tuple(stages)
        self._observe = observe or _unobserved

    def run(self, context: Context) -> Reached:
        observe, clock = self._observe, time.perf_counter
        for name, stage in self.stages:
            started = clock()
            try:
                context = stage(context)
            except Exception as exc:  # the service makes it the document's refusal
                return Reached(context, exc, name)
            observe(name, clock() - started)
        return Reached(context)


def _unobserved(stage: str, seconds: float) -> None:
    return None


# ---------------------------------------------------------------- the stages
#
# Each stage is a small frozen object holding what it needs, called with a context and
# returning the next one (structlog's processors have this shape). Those the parse worker
# runs too (Authenticate, ChooseAdapter, Adapt: gateway.decide.ahead.Checker) are the same
# classes there, so the worker and the gateway judge a document by one code; Authenticate
# and Adapt pickle.


@dataclass(frozen=True, slots=True)
class CheckSize:
    """The sender's own size limit (the HTTP door checks it too; the ingress topic does not)."""

    limits_for: Callable[[str], AgencyLimits]

    def __call__(self, ctx: Context) -> Context:
        size = len(ctx.submission.document)
        max_bytes = self.limits_for(ctx.submission.sender).max_document_bytes
        if size > max_bytes:
            raise GatewayError(f"document is {size} bytes; the limit is {max_bytes}",
                               code="DOCUMENT_TOO_LARGE")
        if size == 0:
            raise GatewayError("document is empty", code="DOCUMENT_EMPTY")
        return ctx


def keyring_of(ctx: Context, keyrings: LiveKeyring | None) -> Keyring:
    """The keyring that decides `ctx`: the one it carries (the worker's, or the one fixed
    when the gateway began it), else the one in force now."""
    if ctx.keyring is not None:
        return ctx.keyring
    assert keyrings is not None, "a context without a keyring needs keyrings"
    return keyrings.current


@dataclass(frozen=True, slots=True)
class Authenticate:
    """The sender's detached SM2 signature over the exact bytes received, under the
    context's keyring, else the one in force in `keyrings`. The parse worker gives each
    context a keyring of the one key the gateway chose for it, and no `keyrings`. A signature
    verified ahead, in the worker, with a key chosen from an earlier keyring counts only if
    that key is still usable under this one; if it is not (revoked since), the signature is
    verified here and refused with the usual AUTH code."""

    keyrings: LiveKeyring | None = None

    def __call__(self, ctx: Context) -> Context:
        s = ctx.submission
        if s.format_id == DXP_FORMAT:  # its XML signature authenticated it (OpenEnvelope)
            return ctx
        keyring = keyring_of(ctx, self.keyrings)
        if ctx.signer is not None:
            confirmed = keyring.usable_entry(ctx.signer.key_id, s.sender, s.received_at)
            if confirmed is not None:
                return replace(ctx, keyring=keyring, signer=confirmed)
        signer = keyring.verify(s.sender, s.signature, s.document, at=s.received_at)
        return replace(ctx, keyring=keyring, signer=signer)


class EnvelopeRefused(GatewayError):
    """An envelope read, then refused: its TransInfo goes with the refusal, and the signer
    only when it was confirmed before the refusal (what the envelope holds refused after its
    signature verified). `refusal`: what was read of the business message, when it was
    refused."""

    def __init__(self, cause: CodedError, opened: Opened, signer: SignerEntry | None = None,
                 refusal: Refusal | None = None) -> None:
        super().__init__(cause.message, code=cause.code, line=cause.line)
        self.opened = opened
        self.signer = signer
        self.refusal = refusal if refusal is not None else Refusal(cause.code, cause.message,
                                                                   cause.line)


def refused_again(refused: Refusal) -> GatewayError:
    """The refusal the parse worker found, raised by the stage it came from."""
    return GatewayError(refused.message, code=refused.code, line=refused.line)


@dataclass(frozen=True, slots=True)
class DetectFormat:
    """A submission that names no format is in the format its content shows, found as
    `portgw adapters parse FILE` finds it (adapters.FormatDetector): a DXP envelope is
    format `dxp` (OpenEnvelope then finds its business message's), another document the
    installed format that declares its root, an EDIFACT interchange the format that reads
    its message types; else it is refused with the detector's code (FORMAT_UNKNOWN,
    FORMAT_AMBIGUOUS, FORMAT_NO_ADAPTER, FORMAT_UNSUPPORTED for text that is no XML nor a
    format installed, an EDI_* refusal of an interchange whose UNB cannot be read, or the
    XML_* of bytes that are no well-formed XML). A submission that names its format passes
    at the cost of one test.

    The bytes are read in the parse worker only (`detector` given; it reads no further than
    the root's start tag, or for an EDIFACT interchange its UNB and the types its UNH
    segments name). The gateway's own stage reads nothing: the gateway gives the
    submission the format the worker found before the stages run, and this stage raises the
    worker's refusal; a submission not sent to the worker (its sender has no key) goes on
    unnamed, and the authenticate stage refuses it."""

    detector: FormatDetector | None = None
    parser: SafeXmlParser | None = None

    def __call__(self, ctx: Context) -> Context:
        s = ctx.submission
        if s.format_id:
            return ctx
        if ctx.refused is not None:
            raise refused_again(ctx.refused)
        if self.detector is None or self.parser is None:
            return ctx
        found = detected_format(s.document, self.detector, self.parser)
        return replace(ctx, submission=replace(s, format_id=found))


def detected_format(document: bytes, detector: FormatDetector, parser: SafeXmlParser) -> str:
    """The format of a document from its content: an EDIFACT interchange's by its message
    types (other text is FORMAT_UNSUPPORTED), `dxp` for an envelope (whose business message
    OpenEnvelope reads), else the one installed format its root names."""
    not_xml = detector.of_content(document)
    if not_xml is not None:
        return not_xml.require_format()
    tag = parser.root_tag(document)
    if tag == DXP_MSG:
        return DXP_FORMAT
    return detector.of_root(tag).require_format()


@dataclass(frozen=True, slots=True)
class OpenEnvelope:
    """A DXP envelope (format `dxp`) authenticates its sender by its enveloped XML signature,
    or, when it is unsigned, by that of the business message inside; the key is the sender's
    certificate entry of the keyring whose serial KeyName names (an embedded X509Certificate
    must be that certificate). SenderId must be the sender. The business message then stands
    for the document: its format is the envelope's MsgType when that names an installed
    format, else detected from its content. Documents in other formats pass untouched.

    Where the envelope is opened: in the parse worker (its context's keyring holds the
    sender's certificates, each valid as its certificate says), or by the stage alone. The
    gateway's own stage (`detector` None) opens nothing: it confirms the signer the worker
    found under the keyring in force (revoked, or its entry's window over: refused with the
    keyring's code), and only then raises the worker's refusal of the business message;
    a refusal found before the signature was verified names no signer. This stage is the
    envelope's one authentication: the authenticate stage lets format `dxp` pass."""

    keyrings: LiveKeyring | None = None
    detector: FormatDetector | None = None
    parser: SafeXmlParser | None = None

    def __call__(self, ctx: Context) -> Context:
        s = ctx.submission
        if s.format_id != DXP_FORMAT:
            return ctx
        keyring = keyring_of(ctx, self.keyrings)
        if ctx.opened is not None and ctx.opened.serial is not None:
            return self._confirmed(ctx, ctx.opened, keyring)
        if ctx.refused is not None:  # refused before its signature was verified
            raise refused_again(ctx.refused)
        if self.detector is None or self.parser is None:  # not sent to the worker: why
            keyring.usable_certificates(s.sender, s.received_at)  # the refusal when none is
            raise GatewayError("the parse worker did not open the envelope (a bug)",
                               code="INTERNAL_ERROR")
        return self._open(replace(ctx, keyring=keyring), keyring, self.detector, self.parser)

    @staticmethod
    def _confirmed(ctx: Context, opened: Opened, keyring: Keyring) -> Context:
        """The worker's signer confirmed under the keyring in force, then its refusal of the
        business message, if any, raised with that signer."""
        assert opened.serial is not None
        try:
            signer = _certificate_entry(keyring, opened.serial, ctx.submission)
        except CodedError as exc:
            raise EnvelopeRefused(exc, Opened(opened.trans_info)) from exc
        if ctx.refused is not None:
            raise EnvelopeRefused(refused_again(ctx.refused), opened, signer, ctx.refused)
        return replace(ctx, keyring=keyring, signer=signer)

    def _open(self, ctx: Context, keyring: Keyring, detector: FormatDetector,
              parser: SafeXmlParser) -> Context:
        """Signature first, then the business message: a refusal before the signature
        verified carries no serial; one after it (the business message's format not found)
        carries the serial, for the gateway to confirm."""
        s = ctx.submission
        parsed = parse_dxp_msg(s.document, parser)
        info, inner = parsed.envelope.trans_info, parsed.envelope.data
        try:
            if info.sender_id != s.sender:
                raise GatewayError("DxpMsg/TransInfo/SenderId must be the submitting agency",
                                   code=DXP_SENDER_MISMATCH)
            signed = parsed.root if parsed.signature_present else parser.parse(inner)
            signer = _verified_signer(signed, keyring, s)
        except CodedError as exc:
            raise EnvelopeRefused(exc, Opened(info)) from exc
        assert signer.certificate is not None
        serial = signer.certificate.serial
        try:
            format_id = self._format_of(info.msg_type, inner, detector)
        except CodedError as exc:
            raise EnvelopeRefused(exc, Opened(info, serial=serial), signer) from exc
        opened = Opened(info, format_id, serial)
        return replace(ctx, signer=signer, opened=opened, inner=inner)

    @staticmethod
    def _format_of(msg_type: str, inner: bytes, detector: FormatDetector) -> str:
        if msg_type and msg_type in detector.registry:
            return msg_type
        return detector.detect_business(inner).require_format()


def _verified_signer(root: Any, keyring: Keyring, s: Submission) -> SignerEntry:
    """The sender's certificate entry whose key verifies the enveloped signature of `root`."""
    found: list[SignerEntry] = []

    def resolve(hint: KeyHint) -> CertificateKey:
        if hint.serial is None:
            raise GatewayError("ds:KeyInfo/KeyName must be the certificate's serial in hex",
                               code=XMLDSIG_KEY_UNKNOWN)
        entry = _certificate_entry(keyring, hint.serial, s)
        assert entry.certificate is not None
        if hint.certificate is not None and hint.certificate != entry.certificate.der:
            raise GatewayError("ds:X509Certificate must be the keyring's certificate of the "
                               "serial ds:KeyName names", code=XMLDSIG_KEY_UNKNOWN)
        found.append(entry)
        return entry.public_key

    verify_enveloped(root, resolve)
    return found[0]


def _certificate_entry(keyring: Keyring, serial: int, s: Submission) -> SignerEntry:
    """The sender's certificate entry of this serial, usable when the document came; the
    keyring's refusal (CERT_EXPIRED, CERT_REVOKED...) when it is not."""
    try:
        entry = keyring.certificate_signer(serial, s.received_at)
    except UnknownSigner:
        entry = None
    if entry is None or entry.agency_id != s.sender:
        raise GatewayError("ds:KeyName names no certificate of the sender usable now",
                           code=XMLDSIG_KEY_UNKNOWN)
    return entry


@dataclass(frozen=True, slots=True)
class ChooseAdapter:
    """The adapter of the document's format: from here on its document type is known, and
    kept if a later stage refuses the document."""

    adapters: AdapterRegistry

    def __call__(self, ctx: Context) -> Context:
        return replace(ctx, adapter=self.adapters.get(ctx.format_id))


@dataclass(frozen=True, slots=True)
class Adapt:
    """Parse and validate (well-formed, XSD, business rules) into the canonical record. The
    service has every document parsed by this stage in its supervised worker
    (gateway/decide/ahead.py) and hands it here parsed or refused; it parses here only where
    there is no worker (in the worker itself, and the stages alone)."""

    def __call__(self, ctx: Context) -> Context:
        assert ctx.adapter is not None
        refused = ctx.refused
        if refused is not None:
            raise refused_again(refused)
        if ctx.parsed is not None:
            return ctx
        return replace(ctx, parsed=ctx.adapter.parse(ctx.document))


@dataclass(frozen=True, slots=True)
class BuildEvent:
    """The canonical event: the parsed record with its header, Avro-encoded, keyed by the
    business key."""

    schemas: AvroSchemas
    topics: Topics

    def __call__(self, ctx: Context) -> Context:
        assert ctx.adapter is not None and ctx.parsed is not None
        schemas = self.schemas
        header = event_header(ctx)
        document_type: str = header["document_type"]
        record = {"header": header, **ctx.parsed.record}
        schema_name = ctx.schema_name
        event = Outbound(
            topic=self.topics.canonical(document_type),
            key=ctx.parsed.business_key.encode(),
            value=schemas.encode(schema_name, record),
            headers=(
                (H_EVENT_ID, ctx.event_id.encode()),
                (H_DOCUMENT_TYPE, document_type.encode()),
                (H_SENDER, ctx.submission.sender.encode()),
                (H_FINGERPRINT, schemas.fingerprint(schema_name).hex().encode()),
                *derived_from(ctx),
            ),
        )
        return replace(ctx, record=record, event=event)


def derived_from(ctx: Context) -> tuple[tuple[str, bytes], ...]:
    """The header a derived document's messages name their source event by (a message of an
    interchange of several: the submission's own message and its own place); none for
    another document."""
    derivation = ctx.derivation
    if derivation is None:
        return ()
    if derivation.message:
        return ((H_PART_OF, f"{derivation.source_event_id}#{derivation.message}".encode()),)
    return ((H_DERIVED_FROM, derivation.source_event_id.encode()),)


def event_header(ctx: Context) -> dict[str, Any]:
    """The canonical Header: a derived document's is its source's (the sender, the format it
    came in, the bytes received and their signature) but for its own event id, type, key
    and version."""
    assert ctx.adapter is not None and ctx.parsed is not None
    return {
        "event_id": ctx.event_id,
        "document_type": ctx.document_type,
        "format_id": ctx.adapter.format_id,
        "schema_version": 1,
        "sender": ctx.submission.sender,
        "business_key": ctx.parsed.business_key,
        "document_version": ctx.parsed.document_version,
        "received_at": ctx.submission.received_at,
        "digest_sm3": ctx.digest,
        "signature_key_id": ctx.signer.key_id if ctx.signer else None,
    }


@dataclass(frozen=True, slots=True)
class Route:
    """Default deny: a document no contract shares with anyone is refused, unless `internal`
    says why it is kept to its sender (a warning's review steps): then it is accepted for
    the trail alone. The index is read once per document, so a reload never splits one
    document's decision."""

    router: Router
    internal: Callable[[Context], str | None] | None = None

    def __call__(self, ctx: Context) -> Context:
        decision = decided(self.router, ctx)
        if not decision.grants:
            kept = self.internal(ctx) if self.internal is not None else None
            if kept is not None:
                decision = replace(decision, no_route=kept, denials=())
            elif ctx.parsed is None or not ctx.parsed.parts:
                raise RouteDenied(decision.explanation, code=decision.code)
            # else one message of several, shared with nobody: Derive decides the others,
            # and refuses the interchange when none of them is shared either
        return replace(ctx, decision=decision)


def decided(router: Router, ctx: Context) -> Decision:
    """The contracts' decision on the document (default deny: it may grant nobody)."""
    assert ctx.document_type is not None and ctx.parsed is not None
    return router.index.decide(ctx.submission.sender, ctx.document_type, ctx.parsed.record,
                               ctx.submission.received_at)


@dataclass(frozen=True, slots=True)
class Derive:
    """The documents an accepted document holds (adapters.DerivesDocuments: a bay plan's
    FAL 7), each decided as a document of its own type: an event id fixed by the source's
    event and its place, routed by the contracts of its type, and, when they grant it to
    anyone, its canonical event (`event`, the BuildEvent stage) and deliveries
    (`deliveries`, the BuildDeliveries stage). One that no contract shares is left
    unpublished: the source is not refused for it, its DENIED record says why. A refusal
    while making one (an encoding, a delivery that cannot be made) refuses the submission,
    as it would the source's own: a submission is decided whole.

    The other messages of an interchange of several (`ParseResult.parts`; the submission's
    own is the first one read) are decided here alike, as documents of the source's type,
    after what it derives, each followed by what it derives itself (a bay plan message's
    FAL 7, naming that message's event as its source: `ctx.derived` stays flat); a message
    its adapter refused keeps its refusal (the plan gives it its REJECTED record, its dead
    letter and its place in the CONTRL), and neither it nor one that no contract shares
    derives anything. The submission's own message, when no contract shares it (Route let
    it pass), is denied alone (its event dropped, its DENIED record) if another message is
    shared; else the interchange is refused as a single document is (default deny).

    `derivers` holds the adapters that derive documents, by format id: for any other
    document the stage costs one dictionary lookup."""

    derivers: Mapping[str, DerivesDocuments]
    router: Router
    event: Stage
    deliveries: Stage

    def __call__(self, ctx: Context) -> Context:
        adapter, parsed = ctx.adapter, ctx.parsed
        deriver = self.derivers.get(adapter.format_id) if adapter is not None else None
        if deriver is None and (parsed is None or not parsed.parts):
            return ctx
        assert parsed is not None
        children = self._derived_from(ctx, deriver)
        for part in parsed.parts:
            if not part.own:
                child = self._decided_part(ctx, part)
                children += (child, *self._derived_from(child, deriver))
        if parsed.parts and not shared(ctx.decision):  # its own message, one of several
            if not any(shared(child.decision) for child in children):
                assert ctx.decision is not None
                raise RouteDenied(ctx.decision.explanation, code=ctx.decision.code)
            ctx = replace(ctx, event=None)  # denied alone: its event is not published
        return replace(ctx, derived=children) if children else ctx

    def _derived_from(self, source: Context, deriver: DerivesDocuments | None
                      ) -> tuple[Context, ...]:
        """The documents a published message derives, each decided; none of a message that
        was refused or that no contract shares (a derived document names its source's
        event, which is then never published)."""
        if deriver is None or source.refused is not None or not shared(source.decision):
            return ()
        assert source.parsed is not None
        return tuple(self._decided(derived_context(source, place, document))
                     for place, document in enumerate(deriver.derived(source.parsed)))

    def _decided_part(self, ctx: Context, part: DocumentPart) -> Context:
        child = part_context(ctx, part)
        return child if child.refused is not None else self._decided(child)

    def _decided(self, child: Context) -> Context:
        assert child.derivation is not None
        decision = replace(decided(self.router, child), note=child.derivation.note)
        child = replace(child, decision=decision)
        if not decision.grants:
            return child
        return self.deliveries(self.event(child))


def shared(decision: Decision | None) -> bool:
    """Whether a decided document is published: granted to someone, or kept to its sender
    for a reason (`Decision.no_route`)."""
    return decision is not None and (bool(decision.grants) or decision.no_route is not None)


def message_contexts(ctx: Context) -> tuple[tuple[DocumentPart, Context], ...]:
    """Of a decided interchange of several messages, each message with the context it was
    decided in (the submission's own is `ctx`, the others are in `Context.derived`, by
    place), in order; none for a submission of one document."""
    parsed = ctx.parsed
    if parsed is None or not parsed.parts:
        return ()
    others = {child.derivation.message: child for child in ctx.derived
              if child.derivation is not None and child.derivation.message}
    return tuple((part, ctx if part.own else others[part.number]) for part in parsed.parts)


def part_context(ctx: Context, part: DocumentPart) -> Context:
    """The context of one more message of `ctx`'s interchange: the same submission, sender
    and signer, type and schema; its own event id, fixed by the source's and its place, and
    its parse or its refusal."""
    assert ctx.adapter is not None
    document_type = ctx.adapter.document_type
    derivation = Derivation(ctx.event_id, document_type, document_type, ctx.schema_name,
                            part.number, part.reference)
    refused = Refusal.of(part.refusal) if part.refusal is not None else None
    event_id = derived_uuid7(uuid7_time_ms(ctx.event_id),
                             f"{ctx.event_id}/message/{part.number}".encode())
    return replace(ctx, event_id=event_id, parsed=part.parsed, refused=refused, record=None,
                   event=None, decision=None, deliveries=(), derived=(),
                   derivation=derivation)


def derived_context(ctx: Context, place: int, document: DerivedDocument) -> Context:
    """The context of the `place`-th document derived from `ctx`'s: the same submission,
    sender and signer; its own event id, type, schema and parse."""
    assert ctx.document_type is not None
    derivation = Derivation(ctx.event_id, ctx.document_type, document.document_type,
                            document.schema_name)
    return replace(ctx, event_id=derived_event_id(ctx.event_id, document.document_type, place),
                   parsed=document.parsed, record=None, event=None, decision=None,
                   deliveries=(), derived=(), derivation=derivation)


def derived_event_id(source_event_id: str, document_type: str, place: int) -> str:
    """Fixed by the source's event id, as a delivery's id is: the document decided again
    after a crash derives the ids it derived the first time."""
    return derived_uuid7(uuid7_time_ms(source_event_id),
                         f"{source_event_id}/{document_type}/{place}".encode())


def new_context(submission: Submission, event_id: str, keyring: Keyring | None = None
                ) -> Context:
    return Context(submission=submission, event_id=event_id, digest=sm3_hex(submission.document),
                   keyring=keyring)
