"""The console's pages on the operators' door (`[http] operator_listen`): server-rendered
HTML, every asset served from this package (no CDN), in English and Chinese (`words.py`).

    /console/login              a console token for a session (access.py)
    /console/overview           the map of exchange and its counts (overview.py)
    /console/documents          submissions by business key, sender, type, time (documents.py)
    /console/dead-letters       dead letters by code and agency, a page at a time (letters.py)
    /console/dead-letters/retry the chosen ones, to confirm (GET) and put back (POST): operators
    /console/contracts          the contracts in force, the lint report (contracts.py)
    /console/contracts/explain  what the router would do with a pasted document (POST)
    /console/warnings           the early warnings, their steps and recipients (warnings.py)
    /console/warnings/warning   one warning: each step, who received and acknowledged it
    /console/documents/history  one business key's trail: versions, decisions, recipients (trail.py)
    /console/documents/export   its evidence bundle, made by `portgw replay export` (jobs.py)
    /console/jobs/{n}/bundle    the bundle an export job wrote
    /console/trail              chains, seals, checkpoints; `portgw replay verify` as a job

Every page needs a session whose binding holds now: operators and auditors read, operators
alone retry (access.py). Answers carry a Content-Security-Policy that allows this package's
stylesheet and images and nothing else: no script, no inline style, no frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from string import Template
from typing import Any, NoReturn

import structlog
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy
from yarl import URL

from contracts import AgencyRegistry, Contract, LintReport, MaskRule, Verdict
from contracts.model import WHOLE_RECORD
from crypto import ClientRole
from gateway.clock import utc_now
from gateway.console.access import (
    CHANGERS,
    READERS,
    SESSION_COOKIE,
    SESSION_S,
    Session,
    Sessions,
)
from gateway.console.contracts import ContractSources, Explained, LintCache, explain_document
from gateway.console.documents import DocumentIndex, Found, Search, minute_of, until_end_of
from gateway.console.follow import Follower
from gateway.console.history import NOTHING, history_body, trail_body
from gateway.console.jobs import EXPORT, VERIFY, Command, Jobs
from gateway.console.letters import Filter, LetterIndex, Listed
from gateway.console.markup import Markup, escape, fill, join, load_templates
from gateway.console.overview import AgencyCounts, agency_name, by_agency, by_type, draw_map, rate
from gateway.console.plots import draw_plots
from gateway.console.series import WINDOW_MINUTES, Series
from gateway.console.table import Page, page_of
from gateway.console.trail import TrailIndex
from gateway.console.warnings import (
    LEVELS,
    WarningFilter,
    WarningReach,
    WarningRow,
    ports_of,
    step_rows,
    warning_row,
    warning_rows,
)
from gateway.console.words import Lang, Words, choose_lang
from gateway.errors import BrokerUnavailable
from gateway.home.config import GatewayConfig
from gateway.home.live_keyring import LiveKeyring
from gateway.ingress.desk import Desk
from gateway.kafka.names import StoredMessage, Topics
from gateway.kafka.wire import Broker
from gateway.observe.metrics import GatewayMetrics
from gateway.publish.dead_letters import (
    DlqError,
    Location,
    dead_letters_at,
    refuse_cut,
    resubmit,
)
from gateway.receipts.receipt import ACCEPTED
from gateway.warnings.book import WarningBook
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

LANG_COOKIE = "px_console_lang"
PAGE_SIZE = 50
CONSOLE_ROLE_REFUSED = "CONSOLE_ROLE_REFUSED"
CONSOLE_FORM_EXPIRED = "CONSOLE_FORM_EXPIRED"
CONSOLE_TOKEN_REFUSED = "CONSOLE_TOKEN_REFUSED"
CONSOLE_NOTHING_CHOSEN = "CONSOLE_NOTHING_CHOSEN"
CONSOLE_TIME_INVALID = "CONSOLE_TIME_INVALID"
CONSOLE_WARNING_UNKNOWN = "CONSOLE_WARNING_UNKNOWN"
# How often the ingress lag is sampled for the overview's plot, and how often a page whose
# job runs reloads itself (a meta refresh: the console runs no script).
LAG_SAMPLE_S = 10.0
FOLLOW_S = 2
Posted = MultiDictProxy[str | bytes | bytearray | FileField]
# The configuration the console's jobs (`portgw replay …`) are run with when the gateway's was
# not read from a file (made in code): the home's.
CONFIG_FILE = "gateway.toml"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {".css": "text/css", ".svg": "image/svg+xml"}
_PAGES = (("overview", "/console/overview"), ("documents", "/console/documents"),
          ("dead_letters", "/console/dead-letters"),
          ("contracts", "/console/contracts"),
          ("warnings", "/console/warnings"), ("trail", "/console/trail"))

_NAV_ITEM = Template('<li><a href="$href"$current>$text</a></li>')
_LANG_LINK = Template('<a href="$href" lang="$tag" hreflang="$tag"$current>$text</a>')
_WHO = Template('$text <form method="post" action="/console/logout">'
                '<input type="hidden" name="form_token" value="$form_token">'
                '<button type="submit">$sign_out</button></form>')
_TABLE = Template('<table id="$id"><thead><tr>$head</tr></thead><tbody>$body</tbody></table>')
_TH = Template('<th scope="col">$text</th>')
_ROW = Template('<tr data-key="$key"><th scope="row">$name</th>$cells</tr>')
_TD = Template('<td class="$cls">$text</td>')
_OPTION = Template('<option value="$value"$selected>$text</option>')
_LETTER = Template('<tr data-location="$location" data-code="$code">$select<td>$location</td>'
                   '<td>$received</td><td>$sender</td><td>$type</td><td>$key</td>'
                   '<td>$code</td><td>$rule</td><td class="retry">$retry</td></tr>')
_SELECT = Template('<td><input type="checkbox" name="at" value="$location" id="sel-$id"'
                   '$disabled><label for="sel-$id" class="visually-hidden">$label</label></td>')
_LINK = Template('<a href="$href"$rel>$text</a>')
_DOCUMENT = Template('<tr data-submission="$submission" data-status="$status"><td>$time</td>'
                     '<td>$sender</td><td>$type</td><td>$key</td><td>$state</td><td>$code</td>'
                     '<td class="n">$recipients</td><td>$submission</td></tr>')
_CONTRACT = Template('<tr data-contract="$id"><th scope="row">$label</th><td>$provider</td>'
                     '<td>$consumers</td><td>$types</td><td>$scope</td><td>$fields</td>'
                     '<td>$masks</td><td class="basis">$basis</td><td>$valid</td></tr>')
_VERDICT = Template('<tr data-recipient="$recipient" data-verdict="$verdict">'
                    '<th scope="row">$agency</th><td>$verdict_text</td><td>$contract</td>'
                    '<td>$basis</td><td>$format</td><td>$fields</td><td>$masks</td>'
                    '<td>$why</td></tr>')
_WARNING = Template('<tr data-warning="$id" data-level="$level" data-status="$status">'
                    '<th scope="row"><a href="$href">$id</a></th><td>$level_text</td>'
                    '<td>$category</td>'
                    '<td>$area</td><td>$status_text</td><td>$last</td><td>$issuer</td>'
                    '<td>$received</td><td>$acknowledged</td></tr>')
_STEP = Template('<tr data-step="$number" data-action="$action"><th scope="row">$number</th>'
                 '<td>$action_text</td><td>$at</td><td>$level</td><td>$sender</td>'
                 '<td>$received</td><td>$acknowledged</td></tr>')
_WARNING_HEADS = ("warning_id", "level", "category", "area", "status", "last_step", "issuer",
                  "received_by", "acknowledged_by")
_STEP_HEADS = ("step_number", "step", "step_at", "level", "submitted_by", "received_by",
               "acknowledged_by")
_PROBLEM = Template('<li data-code="$code">$text</li>')
_CHOSEN = Template('<li><input type="hidden" name="at" value="$location">$location · $sender'
                   ' · $code</li>')


@dataclass(frozen=True, slots=True)
class ConsoleSources:
    """What the console reads and does, all of it the running gateway's own."""

    desk: Desk
    metrics: GatewayMetrics
    agencies: AgencyRegistry
    keyring: LiveKeyring
    broker: Broker
    topics: Topics
    schemas: AvroSchemas
    # -- contracts and early warnings
    contracts: ContractSources
    warnings: WarningBook
    # -- for the document history and trail pages
    config: GatewayConfig


@dataclass(frozen=True, slots=True)
class View:
    """One request as a page sees it: in which language, by whom."""

    request: web.Request
    words: Words
    session: Session | None
    lang_asked: bool

    @property
    def holder(self) -> str:
        return self.session.binding.holder if self.session is not None else ""

    @property
    def operator(self) -> bool:
        return self.session is not None and self.session.binding.role in CHANGERS


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    headers: dict[str, str]


def add_console(app: web.Application, sources: ConsoleSources) -> None:
    """Adds the console's routes to `app`; the topics the console's indexes are made from
    are followed from its first page to the app's cleanup."""
    console = Console(sources)
    app.router.add_get("/console", console.home)
    app.router.add_get("/console/login", console.login_form)
    app.router.add_post("/console/login", console.sign_in)
    app.router.add_post("/console/logout", console.sign_out)
    app.router.add_get("/console/overview", console.overview)
    app.router.add_get("/console/documents", console.documents)
    app.router.add_get("/console/dead-letters", console.dead_letters)
    app.router.add_get("/console/dead-letters/retry", console.retry_form)
    app.router.add_post("/console/dead-letters/retry", console.retry)
    # -- contracts and early warnings
    app.router.add_get("/console/contracts", console.contracts)
    app.router.add_post("/console/contracts/explain", console.explain)
    app.router.add_get("/console/warnings", console.warnings)
    app.router.add_get("/console/warnings/warning", console.warning)
    app.router.add_get("/console/static/{name}", console.static)
    # -- the document history and trail pages (history.py)
    app.router.add_get("/console/documents/history", console.history)
    app.router.add_post("/console/documents/export", console.export)
    app.router.add_get("/console/jobs/{number}/bundle", console.bundle)
    app.router.add_get("/console/trail", console.trail)
    app.router.add_post("/console/trail/verify", console.verify)
    app.on_cleanup.append(console.stop)


class Console:
    def __init__(self, sources: ConsoleSources) -> None:
        self._sources = sources
        self._sessions = Sessions()
        self._templates = load_templates()
        self._static = _static_files()
        self._letters = LetterIndex(sources.schemas)
        self._documents = DocumentIndex(sources.schemas)
        self._reach = WarningReach(sources.schemas)
        self._lint_cache = LintCache(sources.contracts)
        self._trail = TrailIndex(sources.schemas)
        self._series = Series()
        self._sampling: asyncio.Task[None] | None = None
        self._jobs = Jobs(Command(sources.config.file or sources.config.home / CONFIG_FILE,
                                  str(sources.broker)))
        self._followers = (
            Follower(sources.broker, sources.topics.dlq, self._letters.file),
            Follower(sources.broker, sources.topics.receipt, self._file_receipt),
            # One follower of the trail files each record for the warnings page and
            # the trail pages alike.
            Follower(sources.broker, sources.topics.trail, self._file_trail),
            Follower(sources.broker, sources.topics.checkpoint, self._trail.file_checkpoint))

        self._following = False

    def follow(self) -> None:
        """Starts making the indexes, at the first page a signed-in holder opens: filing a
        receipt costs ~50 us of this process's CPU (~2% of a document's), which a gateway
        whose console nobody opens does not pay. Then kept up until the door closes."""
        if not self._following:
            self._following = True
            for follower in self._followers:
                follower.start()
            self._sampling = asyncio.create_task(self._sample_lag(), name="console-samples-lag")
            log.info("console.indexing")

    async def stop(self, _: web.Application) -> None:
        for follower in self._followers:
            await follower.stop()
        if self._sampling is not None:
            self._sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampling
        await self._jobs.stop()
        self._letters.close()
        self._documents.close()
        self._trail.close()

    # -- entering

    async def home(self, _: web.Request) -> NoReturn:
        raise web.HTTPSeeOther("/console/overview")

    async def login_form(self, request: web.Request) -> web.Response:
        view = self._view(request)
        return self._login_page(view, _next_page(request.query.get("next")))

    async def sign_in(self, request: web.Request) -> web.Response:
        view = self._view(request)
        form = await request.post()
        next_page = _next_page(str(form.get("next", "")))
        session = self._sessions.sign_in(str(form.get("token", "")),
                                         self._sources.keyring.current, utc_now())
        if session is None:
            log.info("console.sign_in_refused", code=CONSOLE_TOKEN_REFUSED)
            return self._login_page(view, next_page, refused=True)
        log.info("console.signed_in", holder=session.binding.holder,
                 role=session.binding.role.value)
        response = web.HTTPSeeOther(next_page)
        response.set_cookie(SESSION_COOKIE, session.cookie, path="/console", httponly=True,
                            samesite="Strict", max_age=SESSION_S)
        raise response

    async def sign_out(self, request: web.Request) -> NoReturn:
        view = self._view(request, READERS)
        await self._form_choices(view)
        assert view.session is not None  # READERS: signed in
        self._sessions.sign_out(view.session, utc_now())
        log.info("console.signed_out", holder=view.session.binding.holder)
        response = web.HTTPSeeOther("/console/login")
        response.del_cookie(SESSION_COOKIE, path="/console")
        raise response

    # -- pages

    async def overview(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        words = view.words
        exchange, now = self._sources.metrics.exchange(), utc_now()
        registry = list(self._sources.agencies)
        counts = by_agency(exchange, [agency.id for agency in registry])
        accepted = sum(c.accepted for c in counts)
        refused = sum(c.refused for c in counts)
        decided = accepted + refused
        mean = (f"{1000 * exchange.decided_seconds / exchange.decided:.1f} ms"
                if exchange.decided else "–")
        body = fill(self._templates["overview"],
                    since=words("counts_since"), totals_h=words("totals"),
                    accepted_h=words("accepted"), refused_h=words("refused"),
                    acceptance_h=words("acceptance_rate"), refusal_h=words("refusal_rate"),
                    time_h=words("decision_time"), lag_h=words("ingress_lag"),
                    accepted=accepted, refused=refused, acceptance=rate(accepted, decided),
                    refusal=rate(refused, decided), decision_time=mean,
                    lag=int(sum(exchange.lag.values())),
                    map_h=words("map"), legend_flow=words("legend_flow"),
                    legend_refused=words("legend_refused"),
                    map=draw_map(registry, counts, exchange, words),
                    types_h=words("by_type"), types=self._types_table(by_type(exchange), words),
                    agencies_h=words("by_agency"),
                    agencies=self._agencies_table(counts, words),
                    over_time_h=words("over_time_h"),
                    over_time_note=words("over_time_note", hours=WINDOW_MINUTES // 60,
                                         now=now.strftime("%Y-%m-%d %H:%M")),
                    plots=draw_plots(self._series.window(now), words))
        return self._page(view, words("overview"), body)

    async def dead_letters(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        words = view.words
        query = request.query
        chosen = Filter(code=query.get("code") or None, sender=query.get("agency") or None)
        index = self._letters
        page = index.page(chosen, _page_number(query.get("page")), PAGE_SIZE)
        rows = [await self._letter_row(view, listed) for listed in page.rows]
        done = query.get("done", "")
        banner = (Markup(f'<p class="done" role="status">'
                         f'{escape(words("retried_count", count=int(done)))}</p>')
                  if _small_number(done) else Markup(""))
        body = fill(
            self._templates["dead_letters"], banner=banner,
            codes=_options(index.counts("code"), chosen.code, words),
            agencies=_options(index.counts("sender"), chosen.sender, words),
            filter=words("filter"),
            total=(words("letters_total", total=page.total, page=page.number, pages=page.pages)
                   if page.total else words("no_letters")),
            caption=words("dead_letters"),
            select_h=(fill(_TH, text=words("select")) if view.operator else Markup("")),
            location_h=words("location"), received_h=words("received_at"),
            sender_h=words("sender"), type_h=words("document_type"),
            key_h=words("business_key"), code_h=words("code"), rule_h=words("rule"),
            retry_h=words("retry_state"), rows=join(rows),
            retry_button=(Markup(f'<p><button type="submit" id="retry-selected">'
                                 f'{escape(words("retry_selected"))}</button></p>')
                          if view.operator and page.rows else Markup("")),
            paging=_paging(request.rel_url, page, words))
        return self._page(view, words("dead_letters"), body)

    async def documents(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        words = view.words
        query = request.query
        problems: list[Markup] = []
        since, until = (self._minute_asked(words, query.get(name, ""), label, problems)
                        for name, label in (("from", "time_from"), ("to", "time_to")))
        search = Search(key=query.get("key", "").strip() or None,
                        sender=query.get("sender") or None,
                        document_type=query.get("type") or None, since=since,
                        until=until_end_of(until) if until is not None else None)
        index = self._documents
        page = (index.page(search, _page_number(query.get("page")), PAGE_SIZE)
                if not problems else Page((), 0, 1, PAGE_SIZE))
        rows = join(fill(_DOCUMENT, submission=found.submission_id, status=found.status,
                         time=found.time, sender=found.sender, type=found.document_type or "–",
                         key=_history_link(found.business_key), state=_status(found, words),
                         code=found.code or "", recipients=found.recipients)
                    for found in page.rows)
        body = fill(
            self._templates["documents"], key_h=words("business_key"),
            key=search.key or "", key_help=words("key_help"), sender_h=words("sender"),
            senders=_options([(v, None) for v in index.values("sender")], search.sender, words),
            type_h=words("document_type"),
            types=_options([(v, None) for v in index.values("document_type")],
                           search.document_type, words),
            from_h=words("time_from"), to_h=words("time_to"), time_help=words("time_help"),
            since=_minute_text(since), until=_minute_text(until), problems=join(problems),
            search=words("search"),
            total=(words("documents_total", total=page.total, page=page.number,
                         pages=page.pages) if page.total else words("no_documents")),
            caption=words("documents"), time_h=words("decided_at"),
            state_h=words("status"), code_h=words("code"),
            recipients_h=words("recipients"), submission_h=words("submission"), rows=rows,
            paging=_paging(request.rel_url, page, words))
        return self._page(view, words("documents"), body, status=400 if problems else 200)

    def _minute_asked(self, words: Words, text: str, label: str, problems: list[Markup]
                      ) -> datetime | None:
        """The minute a time field names; None when empty, or (its refusal added to
        `problems`) when it names none."""
        if not text.strip():
            return None
        try:
            return minute_of(text)
        except ValueError:
            problems.append(self._refusal(CONSOLE_TIME_INVALID,
                                          words("time_invalid", field=words(label))))
            return None

    async def retry_form(self, request: web.Request) -> web.Response:
        view = self._view(request, CHANGERS)
        words = view.words
        chosen = [listed for listed in self._letters.at(_locations(request.query.getall(
            "at", []))) if not listed.cut]
        if not chosen:
            return self._problem(view, words("retry_title"), CONSOLE_NOTHING_CHOSEN,
                                 words("retry_none"), status=400)
        assert view.session is not None  # CHANGERS: signed in
        body = fill(self._templates["retry"], text=words("retry_confirm_text"),
                    form_token=self._sessions.form_token(view.session),
                    chosen=join(fill(_CHOSEN, location=str(listed.location),
                                     sender=listed.sender, code=listed.code)
                                for listed in chosen),
                    confirm=words("retry_confirm"), back=words("back"))
        return self._page(view, words("retry_title"), body)

    async def retry(self, request: web.Request) -> web.Response:
        view = self._view(request, CHANGERS)
        locations = _locations(await self._form_choices(view))
        if not locations:
            return self._problem(view, view.words("retry_title"), CONSOLE_NOTHING_CHOSEN,
                                 view.words("retry_none"), status=400)
        sources = self._sources
        try:
            letters = await dead_letters_at(sources.broker, sources.topics, locations,
                                            sources.schemas)
            refuse_cut(letters)
            done = await resubmit(sources.broker, sources.topics, letters, by=view.holder)
        except (DlqError, BrokerUnavailable) as exc:
            status = 503 if isinstance(exc, BrokerUnavailable) else 409
            return self._problem(view, view.words("retry_title"), exc.code, exc.message,
                                 status=status)
        now = utc_now()
        for item in done:
            self._letters.retried(item.letter.location, item.submission_id,
                                        view.holder, now)
            log.info("console.retried", dead_letter=item.letter.reference,
                     submission_id=item.submission_id, by=view.holder)
        raise web.HTTPSeeOther(f"/console/dead-letters?done={len(done)}")

    # -- contracts and early warnings

    async def contracts(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        return await self._contracts_page(view, Markup(""))

    async def explain(self, request: web.Request) -> web.Response:
        """Read-only, for operators and auditors alike: the pasted document is parsed and
        decided, never sent, kept, logged nor shown back."""
        view = self._view(request, READERS)
        form = await self._checked_form(view)
        sender = str(form.get("sender", ""))
        document = str(form.get("document", "")).encode("utf-8")
        at = utc_now()
        explained = await explain_document(self._sources.contracts, sender, document, at)
        log.info("console.explained", holder=view.holder, sender=sender,
                 format=explained.format_id,
                 code=explained.refusal.code if explained.refusal is not None else None)
        return await self._contracts_page(view, self._explained(view, explained, sender, at),
                                          sender=sender)

    async def warnings(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        words = view.words
        query = request.query
        level = query.get("level") if query.get("level") in LEVELS else None
        chosen = WarningFilter(level=level, port=query.get("port") or None,
                               active_only=query.get("all") != "1")
        book = self._sources.warnings.steps
        page = warning_rows(book, self._reach, chosen, _page_number(query.get("page")),
                            PAGE_SIZE)
        names = self._agency_names(words)
        rows = join(self._warning_row(row, names, words) for row in page.rows)
        levels = [(value, None) for value in LEVELS]
        body = fill(
            self._templates["warnings"], note=words("warnings_note"),
            level_h=words("level"), levels=_options(levels, chosen.level, words),
            port_h=words("area"), ports=_options([(p, None) for p in ports_of(book)],
                                                 chosen.port, words),
            all_h=words("warnings_all"),
            all_checked=Markup("" if chosen.active_only else " checked"),
            filter=words("filter"),
            total=(words("warnings_total", total=page.total, page=page.number,
                         pages=page.pages) if page.total else words("no_warnings")),
            caption=words("warnings"), head=_heads(_WARNING_HEADS, words),
            rows=rows, paging=_paging(request.rel_url, page, words))
        return self._page(view, words("warnings"), body)

    async def warning(self, request: web.Request) -> web.Response:
        """One warning: its state as the list shows it, then each step taken, with the
        agencies that received and acknowledged the event that carried it."""
        view = self._view(request, READERS)
        words = view.words
        warning_id = request.query.get("id", "")
        steps = self._sources.warnings.steps.get(warning_id, ())
        row = warning_row(steps, self._reach)
        if row is None:
            return self._problem(view, words("warnings"), CONSOLE_WARNING_UNKNOWN,
                                 words("warning_unknown"), status=404)
        names = self._agency_names(words)
        body = fill(
            self._templates["warning"], back=words("back_to_warnings"),
            caption=words("warning_caption"), head=_heads(_WARNING_HEADS, words),
            row=self._warning_row(row, names, words), steps_h=words("steps_h"),
            steps_note=words("steps_note"), steps_caption=words("steps_h"),
            steps_head=_heads(_STEP_HEADS, words),
            steps=join(fill(_STEP, number=step.number, action=step.action,
                            action_text=words(f"action_{step.action}"),
                            at=step.at.isoformat(timespec="minutes"),
                            level=words(f"level_{step.level}"),
                            sender=_named(step.sender, names),
                            received=_agencies(step.received, names),
                            acknowledged=_agencies(step.acknowledged, names))
                       for step in step_rows(steps, self._reach)))
        return self._page(view, words("warning_title", id=warning_id), body)

    async def _contracts_page(self, view: View, explained: Markup, *, sender: str = ""
                              ) -> web.Response:
        words = view.words
        assert view.session is not None  # READERS: signed in
        index = self._sources.contracts.router.index
        in_force = sorted(index.contracts, key=lambda c: (c.provider, c.id, c.version))
        number = _page_number(view.request.query.get("page"))
        page = page_of(in_force, number, PAGE_SIZE)
        names = self._agency_names(words)
        now = utc_now()
        body = fill(
            self._templates["contracts"], in_force_note=words("contracts_note"),
            total=(words("contracts_total", total=page.total, page=page.number,
                         pages=page.pages) if page.total else words("no_contracts")),
            caption=words("contracts"), contract_h=words("contract"),
            provider_h=words("provider"), consumers_h=words("consumers"),
            types_h=words("document_types"), scope_h=words("scope"),
            fields_h=words("fields"), masks_h=words("masks"), basis_h=words("basis"),
            valid_h=words("validity"),
            rows=join(_contract_row(contract, names, words, now) for contract in page.rows),
            paging=_paging(view.request.rel_url.with_path("/console/contracts"), page, words),
            lint_h=words("lint"), lint_note=words("lint_note"),
            lint=_lint(await self._lint_cache.report(), words),
            explain_h=words("explain_h"), explain_note=words("explain_note"),
            form_token=self._sessions.form_token(view.session),
            sender_h=words("sender"),
            senders=join(fill(_OPTION, value=agency_id, text=f"{name} ({agency_id})",
                              selected=Markup(" selected") if agency_id == sender else "")
                         for agency_id, name in sorted(names.items())),
            document_h=words("document"), document="", document_help=words("document_help"),
            explain=words("explain"), explained=explained)
        return self._page(view, words("contracts"), body)

    def _explained(self, view: View, explained: Explained, sender: str, at: datetime
                   ) -> Markup:
        words = view.words
        if explained.refusal is not None:
            refusal = explained.refusal
            return Markup(f'<section id="explained"><h3>{escape(words("explain_refused"))}</h3>'
                          f'{self._refusal(refusal.code, refusal.message)}</section>')
        names = self._agency_names(words)
        return fill(self._templates["explained"], heading=words("explained_h"),
                    read_as=words("read_as", format=explained.format_id,
                                  type=explained.document_type, sender=sender,
                                  at=at.isoformat(timespec="seconds")),
                    caption=words("explained_h"), agency_h=words("agency"),
                    verdict_h=words("verdict"), contract_h=words("contract"),
                    basis_h=words("basis"), format_h=words("format"),
                    fields_h=words("fields"), masks_h=words("masks"), why_h=words("why_not"),
                    rows=join(_verdict_row(verdict, names, words)
                              for verdict in explained.verdicts))

    def _warning_row(self, row: WarningRow, names: dict[str, str], words: Words) -> Markup:
        state = row.state
        area = state.current["affected_area"]
        return fill(_WARNING, id=state.warning_id, level=state.level,
                    href=str(URL("/console/warnings/warning").with_query(id=state.warning_id)),
                    level_text=words(f"level_{state.level}"),
                    category=f"{state.current['category']} / {state.current['subcategory']}",
                    area=" · ".join([*row.ports, str(area.get("description") or "")]),
                    status=state.status, status_text=words(f"warning_{state.status}"),
                    last=words("last_step_at", action=words(f"action_{row.last_action}"),
                               at=state.last_at.isoformat(timespec="minutes"),
                               steps=row.steps),
                    issuer=_named(state.issuer, names),
                    received=_agencies(row.received, names),
                    acknowledged=_agencies(row.acknowledged, names))

    def _agency_names(self, words: Words) -> dict[str, str]:
        return {agency.id: agency_name(agency, words.lang) for agency in self._sources.agencies}

    def _file_trail(self, message: StoredMessage) -> None:
        self._reach.file(message)
        entry = self._trail.file(message)
        if entry is not None:
            self._series.record(entry)

    def _file_receipt(self, message: StoredMessage) -> None:
        receipt = self._documents.file(message)
        if receipt is not None:
            self._series.decided(receipt.time, accepted=receipt.accepted)

    async def _sample_lag(self) -> None:
        """The ingress lag, every LAG_SAMPLE_S, into the overview's series (this process's
        gauge: the partitions its consumer holds)."""
        while True:
            self._series.lag(utc_now(), self._sources.metrics.ingress_lag())
            await asyncio.sleep(LAG_SAMPLE_S)

    async def static(self, request: web.Request) -> web.Response:
        found = self._static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, content_type=content_type,
                            headers={"Cache-Control": "max-age=3600",
                                     "X-Content-Type-Options": "nosniff"})

    # -- the document history and trail pages (history.py, trail.py, jobs.py)

    async def history(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        words = view.words
        key = request.query.get("key", "").strip()
        if not key:  # a history is of one business key: chosen on the documents page
            raise web.HTTPSeeOther("/console/documents")
        assert view.session is not None  # READERS: signed in
        follow, head = self._follow_job(view)
        body = history_body(
            self._templates, words, key, self._trail.history(key),
            {(c.id, c.version): c for c in self._sources.contracts.router.index.contracts},
            self._jobs.last(EXPORT), busy=self._jobs.busy,
            form_token=self._sessions.form_token(view.session), follow=follow)
        return self._page(view, words("history_title", document=key), body, head=head)

    async def export(self, request: web.Request) -> NoReturn:
        view = self._view(request, READERS)
        await self._form_choices(view)
        key = str((await request.post()).get("key", "")).strip()
        if key:
            self._jobs.export(key, view.holder)  # not while another job runs: the page says so
        raise web.HTTPSeeOther(str(URL("/console/documents/history").with_query(key=key)))

    async def bundle(self, request: web.Request) -> web.StreamResponse:
        self._view(request, READERS)
        number = request.match_info["number"]
        found = self._jobs.bundle(int(number)) if _small_number(number) else None
        if found is None:
            raise web.HTTPNotFound()
        return web.FileResponse(found, headers={
            **SECURITY_HEADERS, "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{found.name}"'})

    async def trail(self, request: web.Request) -> web.Response:
        view = self._view(request, READERS)
        assert view.session is not None  # READERS: signed in
        follow, head = self._follow_job(view)
        body = trail_body(self._templates, view.words, self._trail.chains(),
                          self._jobs.last(VERIFY), busy=self._jobs.busy,
                          form_token=self._sessions.form_token(view.session), follow=follow)
        return self._page(view, view.words("trail"), body, head=head)

    def _follow_job(self, view: View) -> tuple[Markup, Markup]:
        """While a job runs, the page reloads itself every FOLLOW_S (a meta refresh), unless
        asked not to (`?follow=0`): what says so with its link to stop or start it again,
        and the refresh for the page's head."""
        if not self._jobs.busy:
            return NOTHING, NOTHING
        url, words = view.request.rel_url, view.words
        if view.request.query.get("follow") == "0":
            again = fill(_LINK, href=str(url.without_query_params("follow")), rel="",
                         text=words("follow_again"))
            return Markup(f'<p class="note" id="following">{again}</p>'), NOTHING
        stop = fill(_LINK, href=str(url.update_query(follow="0")), rel="",
                    text=words("stop_following"))
        note = escape(words("following", seconds=FOLLOW_S))
        return (Markup(f'<p class="note" id="following">{note} {stop}</p>'),
                Markup(f'<meta http-equiv="refresh" content="{FOLLOW_S}">'))

    async def verify(self, request: web.Request) -> NoReturn:
        view = self._view(request, READERS)
        await self._form_choices(view)
        self._jobs.verify(view.holder)  # not while another job runs: the page says so
        raise web.HTTPSeeOther("/console/trail")

    # -- parts of pages

    def _view(self, request: web.Request, roles: frozenset[ClientRole] | None = None) -> View:
        """The request's language and session; with `roles`, a session with one of them is
        required: none is sent to sign in, another role is refused (403)."""
        asked = request.query.get("lang")
        words = Words(choose_lang(asked, request.cookies.get(LANG_COOKIE),
                                  request.headers.get("Accept-Language", "")))
        session = self._sessions.session(request.cookies.get(SESSION_COOKIE),
                                         self._sources.keyring.current, utc_now())
        view = View(request, words, session, asked in (Lang.EN.value, Lang.ZH.value))
        if roles is None:
            return view
        if session is None:
            raise web.HTTPSeeOther(str(URL("/console/login").with_query(
                next=request.rel_url.path_qs)))
        self.follow()
        if session.binding.role not in roles:
            log.info("console.refused", holder=session.binding.holder,
                     role=session.binding.role.value, path=request.path,
                     code=CONSOLE_ROLE_REFUSED)
            needed = words(f"role_{ClientRole.OPERATOR.value}")
            page = self._rendered(view, words("refused_title"), self._refusal(
                CONSOLE_ROLE_REFUSED, words("refused_role", role=needed,
                                            holder=session.binding.holder)))
            raise web.HTTPForbidden(text=page.text, content_type="text/html",
                                    headers=page.headers)
        return view

    async def _form_choices(self, view: View) -> list[str]:
        """The dead letters (`at`) a posted form names, if any (see `_checked_form`)."""
        form = await self._checked_form(view)
        return [str(value) for value in form.getall("at", [])]

    async def _checked_form(self, view: View) -> Posted:
        """A posted form that carries the session's form token (403 otherwise)."""
        form = await view.request.post()
        if view.session is None or not self._sessions.form_token_ok(
                view.session, str(form.get("form_token", ""))):
            page = self._rendered(view, view.words("refused_title"),
                                  self._refusal(CONSOLE_FORM_EXPIRED, view.words("form_expired")))
            raise web.HTTPForbidden(text=page.text, content_type="text/html",
                                    headers=page.headers)
        return form

    def _login_page(self, view: View, next_page: str, *, refused: bool = False
                    ) -> web.Response:
        words = view.words
        problem = (self._refusal(CONSOLE_TOKEN_REFUSED, words("token_refused"))
                   if refused else Markup(""))
        body = fill(self._templates["login"], problem=problem, next=next_page,
                    token_label=words("token"), token_help=words("token_help"),
                    sign_in=words("sign_in"))
        return self._page(view, words("sign_in"), body, status=401 if refused else 200)

    def _problem(self, view: View, title: str, code: str, message: str, *, status: int
                 ) -> web.Response:
        return self._page(view, title, self._refusal(code, message), status=status)

    def _refusal(self, code: str, message: str) -> Markup:
        return fill(self._templates["refused"], code=code, message=f"{code}: {message}")

    def _page(self, view: View, title: str, body: Markup, *, status: int = 200,
              head: Markup = NOTHING) -> web.Response:
        page = self._rendered(view, title, body, head)
        return web.Response(status=status, text=page.text, content_type="text/html",
                            headers=page.headers)

    def _rendered(self, view: View, title: str, body: Markup, head: Markup = NOTHING
                  ) -> Rendered:
        """A whole page (text/html, UTF-8 as aiohttp gives text), the language remembered
        when it was asked for; `head`: more for its head (a refresh)."""
        words = view.words
        text = fill(self._templates["page"], lang=words.lang.tag, title=title, head=head,
                    product=words("product"), console=words("console"), skip=words("skip"),
                    nav=self._nav(view), who=self._who(view), language=words("language"),
                    langs=_lang_links(view), body=body)
        headers = dict(SECURITY_HEADERS)
        if view.lang_asked:
            headers["Set-Cookie"] = (f"{LANG_COOKIE}={words.lang.value}; Path=/console; "
                                     f"Max-Age={365 * 86400}; HttpOnly; SameSite=Strict")
        return Rendered(str(text), headers)

    def _nav(self, view: View) -> Markup:
        if view.session is None:
            return Markup("")
        path = view.request.path
        items = join(fill(_NAV_ITEM, href=href, text=view.words(key),
                          current=Markup(' aria-current="page"') if path == href else "")
                     for key, href in _PAGES)
        return fill(self._templates["nav"], label=view.words("nav"), items=items)

    def _who(self, view: View) -> Markup:
        if view.session is None:
            return Markup("")
        binding = view.session.binding
        return fill(_WHO, text=view.words("signed_in", holder=binding.holder,
                                          role=view.words(f"role_{binding.role.value}")),
                    form_token=self._sessions.form_token(view.session),
                    sign_out=view.words("sign_out"))

    def _types_table(self, rows: Sequence[tuple[str, int, int]], words: Words) -> Markup:
        if not rows:
            return Markup(f'<p>{escape(words("none_yet"))}</p>')
        return _table("by-type", [words("document_type"), words("accepted"), words("refused"),
                                  words("acceptance_rate")],
                      [(t, t, [_number(a), _number(r, refused=True), _cell(rate(a, a + r))])
                       for t, a, r in rows])

    def _agencies_table(self, counts: Sequence[AgencyCounts], words: Words) -> Markup:
        names = {agency.id: agency_name(agency, words.lang) for agency in self._sources.agencies}
        return _table("by-agency", [words("agency"), words("accepted"), words("refused"),
                                    words("acceptance_rate"), words("delivered")],
                      [(c.agency, f"{names.get(c.agency, c.agency)} ({c.agency})",
                        [_number(c.accepted), _number(c.refused, refused=True),
                         _cell(rate(c.accepted, c.accepted + c.refused)),
                         _number(c.delivered)])
                       for c in counts])

    async def _letter_row(self, view: View, listed: Listed) -> Markup:
        words = view.words
        location = str(listed.location)
        select = Markup("")
        if view.operator:
            select = fill(_SELECT, location=location, id=location.replace(":", "-"),
                          disabled=Markup(" disabled") if listed.cut else "",
                          label=words("select_letter", location=location))
        return fill(_LETTER, location=location, code=listed.code, select=select,
                    received=listed.received_at, sender=listed.sender,
                    type=listed.document_type or "–", key=listed.business_key or "–",
                    rule=listed.rule + (f" ({words('line')} {listed.line})"
                                        if listed.line else ""),
                    retry=await self._retry_state(view, listed))

    async def _retry_state(self, view: View, listed: Listed) -> Markup | str:
        words = view.words
        if listed.retried_as is not None:
            outcome = await self._sources.desk.status(listed.retried_as)
            state = ("state_unknown" if outcome is None else "state_pending"
                     if outcome.receipt is None else "state_accepted"
                     if outcome.receipt.receipt.accepted else "state_rejected")
            return words("retried_as", submission=listed.retried_as, holder=listed.retried_by,
                         at=listed.retried_at, state=words(state))
        if listed.cut:
            return words("cut")
        if not view.operator:
            return ""
        href = str(URL("/console/dead-letters/retry").with_query(at=str(listed.location)))
        return fill(_LINK, href=href, rel="", text=words("retry_one",
                                                       location=str(listed.location)))


def _table(table_id: str, heads: Sequence[str],
           rows: Iterable[tuple[str, str, Sequence[Markup]]]) -> Markup:
    """A table whose rows start with a row header: (data key, header text, other cells)."""
    return fill(_TABLE, id=table_id, head=join(fill(_TH, text=head) for head in heads),
                body=join(fill(_ROW, key=key, name=name, cells=join(cells))
                          for key, name, cells in rows))


def _number(n: int, *, refused: bool = False) -> Markup:
    return fill(_TD, cls="n refused-n" if refused and n else "n", text=n)


def _cell(text: str) -> Markup:
    return fill(_TD, cls="n", text=text)


def _options(counted: Sequence[tuple[str, int | None]], current: str | None, words: Words
             ) -> Markup:
    """A select's options: any, then each value (with its count when known)."""
    first = fill(_OPTION, value="", selected="", text=words("any"))
    return join([first, *(fill(_OPTION, value=value,
                               text=value if n is None else f"{value} ({n})",
                               selected=Markup(" selected") if value == current else "")
                          for value, n in counted)])


def _status(found: Found, words: Words) -> str:
    state = words("state_accepted" if found.status == ACCEPTED else "state_refused")
    if found.parts:
        state = words("of_messages", state=state, accepted=found.parts_accepted,
                      parts=found.parts)
    return state if found.duplicate_of is None else words("duplicate_of", state=state,
                                                          first=found.duplicate_of)


def _paging(url: URL, page: Page[Any], words: Words) -> Markup:
    url = url.without_query_params("done")  # the retry's note belongs to its own answer
    links = []
    if page.number > 1:
        links.append(fill(_LINK, href=str(url.update_query(page=page.number - 1)),
                          rel=Markup(' rel="prev"'), text=words("previous")))
    if page.number < page.pages:
        links.append(fill(_LINK, href=str(url.update_query(page=page.number + 1)),
                          rel=Markup(' rel="next"'), text=words("next")))
    if not links:
        return Markup("")
    return Markup(f'<nav class="paging" aria-label="{escape(words("paging"))}">'
                  f'{join(links)}</nav>')


def _lang_links(view: View) -> Markup:
    url = view.request.rel_url
    return join(fill(_LANG_LINK, href=str(url.update_query(lang=lang.value)), tag=lang.tag,
                     text="English" if lang is Lang.EN else "中文",
                     current=Markup(' aria-current="true"') if lang is view.words.lang else "")
                for lang in Lang)


def _locations(texts: Iterable[str]) -> list[Location]:
    """The `P:O` locations among `texts`, each once; anything else is left out."""
    found: dict[Location, None] = {}
    for text in texts:
        try:
            found[Location.parse(text)] = None
        except DlqError:
            continue
    return list(found)


def _minute_text(minute: datetime | None) -> str:
    """A minute as a `datetime-local` field holds it."""
    return "" if minute is None else minute.strftime("%Y-%m-%dT%H:%M")


def _history_link(business_key: str | None) -> Markup | str:
    if business_key is None:
        return "–"
    return fill(_LINK, href=str(URL("/console/documents/history").with_query(key=business_key)),
                rel="", text=business_key)


def _small_number(text: str | None) -> bool:
    """Whether `text` is a number a query may name (a page, a count): digits, not many."""
    return text is not None and text.isdigit() and len(text) <= 9


def _page_number(text: str | None) -> int:
    return max(1, int(text)) if text is not None and _small_number(text) else 1


def _next_page(text: str | None) -> str:
    """Where to go once signed in: a console page only, never another site."""
    if text and text.startswith("/console/") and not text.startswith("//"):
        return text
    return "/console/overview"


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("gateway.console").joinpath("static")
    return {entry.name: (entry.read_bytes(), _STATIC_TYPES[suffix])
            for entry in folder.iterdir()
            if (suffix := "." + entry.name.rpartition(".")[2]) in _STATIC_TYPES}


# -- contracts and early warnings


def _contract_row(contract: Contract, names: dict[str, str], words: Words, now: datetime
                  ) -> Markup:
    fields = (_fields(contract.fields, words) if contract.kind != "subscription"
              else words("subscription", events=", ".join(contract.events)))
    basis = [contract.purpose, contract.legal_basis]
    if contract.personal_data_basis:
        basis.append(words("personal_basis", basis=contract.personal_data_basis))
    if contract.export_assessment:
        basis.append(words("export_assessment", reference=contract.export_assessment))
    if contract.condition:
        basis.append(words("when", condition=contract.condition))
    state = ("state_not_yet" if now < contract.valid_from else "state_in_force"
             if contract.in_force_at(now) else "state_ended")
    end = contract.valid_to.isoformat() if contract.valid_to is not None else words("no_end")
    return fill(_CONTRACT, id=contract.id, label=contract.label,
                provider=_named(contract.provider, names),
                consumers=", ".join(_named(c, names) for c in contract.consumers),
                types=", ".join(contract.document_types),
                scope=words(f"scope_{contract.scope}") if contract.scope else "–",
                fields=fields + (f"; {words('encrypted')}" if contract.encrypt else ""),
                masks=_masks(contract.masks, words), basis="; ".join(basis),
                valid=f"{words('valid_range', start=contract.valid_from.isoformat(), end=end)}"
                      f" ({words(state)})")


def _lint(report: LintReport, words: Words) -> Markup:
    if report.ok:
        clean = words("lint_clean", contracts=len(report.contracts), files=report.files)
        return Markup(f'<p id="lint-clean">{escape(clean)}</p>')
    problems = join(fill(_PROBLEM, code=problem.code,
                         text=f"{problem.path.name}:{problem.line or 1}: {problem.code}: "
                              f"{problem.message}")
                    for problem in report.problems)
    count = words("lint_problems", count=len(report.problems))
    return Markup(f'<p class="problem">{escape(count)}</p>'
                  f'<ul id="lint-problems">{problems}</ul>')


def _verdict_row(verdict: Verdict, names: dict[str, str], words: Words) -> Markup:
    grant = verdict.grant
    if grant is None:
        return fill(_VERDICT, recipient=verdict.recipient, verdict="deny",
                    agency=_named(verdict.recipient, names), verdict_text=words("verdict_deny"),
                    contract="–", basis="–", format="–", fields="–", masks="–",
                    why=f"{verdict.code}: {verdict.reason}")
    contract, plan = grant.contract, grant.plan
    projection = plan.projection if plan is not None else None
    delivery = "–" if plan is None else plan.format + (f"; {words('encrypted')}"
                                                        if plan.encrypt else "")
    return fill(_VERDICT, recipient=verdict.recipient, verdict="deliver",
                agency=_named(verdict.recipient, names), verdict_text=words("verdict_deliver"),
                contract=f"{contract.label} ({words(f'scope_{contract.scope}')})"
                if contract.scope else contract.label,
                basis=f"{contract.purpose}; {contract.legal_basis}", format=delivery,
                fields=_fields(projection.include if projection else (WHOLE_RECORD,), words),
                masks=_masks(projection.masks if projection else (), words), why="")


def _fields(fields: Sequence[str], words: Words) -> str:
    return words("whole_record") if tuple(fields) == (WHOLE_RECORD,) else ", ".join(fields)


def _masks(masks: Sequence[tuple[str, MaskRule]], words: Words) -> str:
    return ", ".join(f"{path} ({rule})" for path, rule in masks) or words("no_masks")


def _agencies(agency_ids: Sequence[str], names: dict[str, str]) -> str:
    return ", ".join(_named(a, names) for a in agency_ids) or "–"


def _heads(keys: Sequence[str], words: Words) -> Markup:
    return join(fill(_TH, text=words(key)) for key in keys)


def _named(agency_id: str, names: dict[str, str]) -> str:
    return f"{names[agency_id]} ({agency_id})" if agency_id in names else agency_id

