"""The operators' console in a real browser: headless Chromium and its driver from the
distribution's packages (Debian: chromium, chromium-driver; .ci/run installs them), driven by
Selenium, against a gateway served on the real broker with documents submitted over its
HTTP door.

Every page is loaded, checked for browser console errors and for a masked field's personal
value, and kept as a screenshot under $PX_TEST_ARTIFACTS (when set: one folder per test) or
else the test's own tmp dir (`console-screenshots/`). Waits are WebDriverWait conditions
with deadlines, never sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway.clock import utc_now
from gateway.deliveries.acknowledgements import Taken, sign_acknowledgement
from gateway.deliveries.proof import DeliveryVerifier
from gateway.deliveries.pull_client import PullClient
from gateway.home.create import (
    DEMO_AGENCIES,
    DEMO_CONTRACTS,
    WARNING_AGENCIES,
    Home,
    add_console_token,
    create_home,
)
from gateway.kafka.names import Topics
from gateway.kafka.wire import new_producer, read_topics
from gateway.publish.plan import KEPT_PREFIX_BYTES
from gateway.trail.taken import TakenRecorder, taken_chain
from gateway.trail.writer import TrailCodec
from gateway.warnings.scenario import full_lifecycle
from tests.integration.service_support import (
    ARRIVAL,
    PROVIDER,
    RECIPIENTS,
    Document,
    InProcess,
    post_document,
    running_gateway,
    signed,
    signed_arrivals,
    wait_ready,
)
from tests.integration.support import FAL1_SAMPLES, gateway_parts, warning_home

pytestmark = pytest.mark.integration

T = TypeVar("T")
CHROMIUM = ("chromium", "chromedriver")
WAIT_S = 60.0
# A personal value of the sample arrival (its master's name) that the contract masks.
MASTER_NAMES = ("ZHANG Wei", "张伟")
MASKED_CONTRACTS = (replace(DEMO_CONTRACTS[0], extra='[masks]\n"master_name" = "pseudonym"\n'),)
BAD_IMO = (FAL1_SAMPLES / "bad_imo_check_digit.xml").read_bytes()
RULE_CODE = "RULE_IMO_CHECK_DIGIT"
OPERATOR, AUDITOR = "ops-console", "audit-office"
# Text below 4.5:1 against its background fails WCAG AA; checked on what each page shows.
MIN_CONTRAST = 4.5


@dataclass(frozen=True, slots=True)
class Tokens:
    operator: str
    auditor: str


@pytest.fixture
def console_home(tmp_path: Path, topics: Topics) -> tuple[Home, Tokens]:
    """A home whose contract masks the master's name, with a console token bound to an
    operator and one to an auditor."""
    home = create_home(tmp_path / "home", contracts=MASKED_CONTRACTS, seal_every=4,
                       seal_interval_ms=100, topic_prefix=topics.prefix)
    return home, bind_tokens(home)


def bind_tokens(home: Home) -> Tokens:
    """A console token bound to an operator and one to an auditor in the home's keyring."""
    return Tokens(add_console_token(home.path, "operator", OPERATOR),
                  add_console_token(home.path, "auditor", AUDITOR))


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    base = os.environ.get("PX_TEST_ARTIFACTS")
    folder = (Path(base) / request.node.name if base else tmp_path / "console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Chrome]:
    chromium, driver = (_installed(name) for name in CHROMIUM)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1400", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def _installed(name: str) -> str:
    """The program's path; without it the test is skipped, except in CI (CI=true), where it
    fails: CI must never skip the browser tests silently."""
    found = shutil.which(name)
    if found:
        return found
    why = (f"{name} is not installed (Debian: apt-get install chromium chromium-driver); the "
           "console's tests drive it")
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@contextlib.contextmanager
def gateway_beside(home: Home, bootstrap: str
                   ) -> Iterator[tuple[InProcess, Callable[[Coroutine[Any, Any, T]], T]]]:
    """A gateway serving on its own event loop in a thread (the browser's driver blocks), and
    how to run a coroutine on that loop from the test."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()

    def call(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=180)

    config, parts = gateway_parts(home)
    running = running_gateway(config, parts, bootstrap)
    try:
        served = call(running.__aenter__())
        try:
            yield served, call
        finally:
            call(running.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=60)
        loop.close()


async def submit(url: str, docs: Sequence[Document]) -> list[int]:
    """Each document over the HTTP door, as its agency does; the statuses answered."""
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, url)
        return [(await post_document(session, url, doc)).status for doc in docs]


async def acknowledge_all(served: InProcess, home: Home, agency: str) -> int:
    """The agency pulls its deliveries from the HTTP door and acknowledges them, signed with
    its key (role ack); how many it acknowledged."""
    async with PullClient(served.url, sender=agency) as door:
        page = await door.page(None)
        deliveries = [DeliveryVerifier(served.gateway.parts.keyring, agency).check(message)
                      for message in page.deliveries]
        ack = sign_acknowledgement(agency, [Taken.of(d.delivery_id, d.payload)
                                            for d in deliveries], utc_now(),
                                   home.agency_keys[agency])
        await door.acknowledge(ack, page.deliveries)
        return len(deliveries)


async def acknowledged(home: Home, bootstrap: str, recipient: str) -> None:
    """The recipient takes the deliveries on its topic and acknowledges them signed,
    recorded on the trail as the gateway's door records them (TAKEN)."""
    config, parts = gateway_parts(home)
    verifier = DeliveryVerifier(parts.keyring, recipient)
    topic = parts.topics.delivery(recipient)
    messages = await read_topics(bootstrap, [topic])
    deliveries = [verifier.check(message) for message in messages]
    ack = sign_acknowledgement(recipient, [Taken.of(d.delivery_id, d.payload)
                                           for d in deliveries],
                               utc_now(), home.agency_keys[recipient])
    producer = new_producer(bootstrap)
    await producer.start()
    recorder = TakenRecorder(producer, TrailCodec(parts.schemas), config.trail, parts.topics,
                             bootstrap, key=parts.key, partitions=[0])
    try:
        await recorder.record(ack, home.agency_keys[recipient].public_key().key_id, deliveries)
    finally:
        await recorder.close()
        await producer.stop()


async def reloaded(served: InProcess) -> bool:
    """The keyring read again on the gateway's loop, as SIGHUP has it."""
    return served.gateway.parts.live_keyring.reload()


# -- the browser's side ------------------------------------------------------------------------


@dataclass
class Visit:
    """A browser at the console, checking each page it loads and keeping its screenshot."""

    driver: Chrome
    base: str
    artifacts: Path
    pages: int = 0

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base}{path}")
        self.settled()

    def settled(self) -> None:
        WebDriverWait(self.driver, WAIT_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def leave(self, action: Callable[[], object]) -> None:
        """Runs `action`, which leaves the page (a form sent, a link followed), and waits
        until the next page has replaced it and is loaded."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        action()
        WebDriverWait(self.driver, WAIT_S).until(replaced(page))
        self.settled()

    def keep(self, name: str, *, refused_with: int | None = None) -> str:
        """Checks the page now shown and keeps its screenshot; its HTML. `refused_with`: the
        page is a refusal with this HTTP status, which the browser logs as the one error."""
        self.pages += 1
        html = self.driver.page_source
        errors = [entry["message"] for entry in self.driver.get_log("browser")
                  if entry["level"] == "SEVERE"]
        if refused_with is not None:
            refusal = f"the server responded with a status of {refused_with}"
            assert [refusal in error for error in errors] == [True], (name, errors)
            errors = []
        assert not errors, (name, errors)
        assert not [value for value in MASTER_NAMES if value in html], name
        assert self.driver.find_element(By.TAG_NAME, "html").get_attribute("lang"), name
        assert_labelled(self.driver, name)
        assert_contrast(self.driver, name)
        self.driver.save_screenshot(str(self.artifacts / f"{self.pages:02d}-{name}.png"))
        return html

    def sign_in(self, token: str) -> None:
        self.open("/console/login")
        field = self.driver.find_element(By.ID, "token")
        self.leave(lambda: field.send_keys(token, Keys.ENTER))

    def until(self, check: Callable[[Chrome], bool], path: str) -> None:
        """Reloads `path` until `check` holds of it (what the gateway shows catches up with
        what was submitted)."""
        def reloaded(driver: Chrome) -> bool:
            driver.get(f"{self.base}{path}")
            return check(driver)
        WebDriverWait(self.driver, WAIT_S, poll_frequency=0.5).until(reloaded)
        self.settled()

    def tab_to(self, matches: Callable[[Any], bool], *, most: int = 80) -> Any:
        """Presses TAB, from the top of the page, until the focused element `matches`
        (keyboard navigation reaches it)."""
        self.driver.execute_script("document.activeElement.blur()")
        for _ in range(most):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            focused = self.driver.switch_to.active_element
            if matches(focused):
                return focused
        raise AssertionError("the keyboard never reached the element")


def replaced(element: Any) -> Callable[[Chrome], bool]:
    """Whether `element` has left the document: stale, or (chromedriver, when asked while the
    next page is being built) a node that "does not belong to the document"."""
    def gone(_: Chrome) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" not in str(exc.msg):
                raise
            return True
        return False
    return gone


def assert_labelled(driver: Chrome, page: str) -> None:
    """Every form control a user meets has a name: a label, or its own text."""
    unnamed = driver.execute_script("""
        return [...document.querySelectorAll('input, select, button, textarea')]
          .filter(e => e.type !== 'hidden')
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.textContent.trim())
          .map(e => e.outerHTML);""")
    assert not unnamed, (page, unnamed)


def assert_contrast(driver: Chrome, page: str) -> None:
    """The text of headings, cells, links, buttons and paragraphs against the background it
    is drawn on (the nearest ancestor with one) keeps WCAG AA's 4.5:1."""
    worst = driver.execute_script("""
        const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => {
          const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92
                                                          : Math.pow((v + 0.055) / 1.055, 2.4); };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
        const background = e => {
          for (; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
          }
          return [255, 255, 255]; };
        let worst = [99, ''];
        const texts = 'h1, h2, p, th, td, a, button, dt, dd, label, caption';
        for (const e of document.querySelectorAll(texts)) {
          if (!e.textContent.trim() || !e.getClientRects().length) continue;
          const a = lum(rgb(getComputedStyle(e).color)), b = lum(background(e));
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          if (ratio < worst[0]) worst = [ratio, e.outerHTML.slice(0, 80)];
        }
        return worst;""")
    assert worst[0] >= MIN_CONTRAST, (page, worst)


def series_totals(driver: Chrome) -> list[int]:
    """Accepted, refused and deliveries summed over the overview's table of minutes (read
    while its `details` is closed: the cells' text content)."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#series-table tr[data-minute]")
    cells = [[str(cell.get_attribute("textContent"))
              for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    return [sum(int(row[column]) for row in cells) for column in range(3)]


def rows_with_code(driver: Chrome, code: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, f'tr[data-code="{code}"]')


def cell_text(driver: Chrome, table: str, key: str) -> list[str]:
    row = driver.find_element(By.CSS_SELECTOR, f'#{table} tr[data-key="{key}"]')
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


# -- the tests ---------------------------------------------------------------------------------


def test_an_operator_sees_the_exchange_and_retries_a_dead_letter_by_keyboard(
        console_home: tuple[Home, Tokens], broker: Any, browser: Chrome,
        artifacts: Path) -> None:
    home, tokens = console_home
    started = utc_now()
    arrivals = signed_arrivals(home, 3)
    bad_rule = signed(home, BAD_IMO, "bad-imo")
    # Larger than what is kept of a document never authenticated: its dead letter is cut.
    long_arrival = ARRIVAL + b"<!--" + b"-" * 2 * KEPT_PREFIX_BYTES + b"-->\n"
    bad_signature = replace(signed(home, long_arrival, "bad-signature"),
                            signature=home.agency_keys[RECIPIENTS[0]].sign(long_arrival))
    with gateway_beside(home, broker.bootstrap_servers) as (served, call):
        statuses = call(submit(served.url, [*arrivals, bad_rule, bad_signature]))
        assert statuses == [200, 200, 200, 422, 422]
        visit = Visit(browser, served.ops_url, artifacts)

        visit.open("/console/overview")  # not signed in: sent to sign in first
        assert "/console/login" in browser.current_url
        visit.keep("login")
        token = browser.find_element(By.ID, "token")
        visit.leave(lambda: token.send_keys(tokens.operator, Keys.ENTER))
        assert browser.current_url.endswith("/console/overview")

        # The overview: every agency of the home a node, the provider's flows to both
        # recipients, its refusals in red, and the counts (counted once each answer is
        # given: the page is asked again until they are there).
        visit.until(lambda d: cell_text(d, "by-agency", PROVIDER)[:2] == ["3", "2"],
                    "/console/overview")
        visit.keep("overview")
        nodes = {node.get_attribute("data-agency")
                 for node in browser.find_elements(By.CSS_SELECTOR, "svg g.node")}
        assert nodes == {agency.id for agency in DEMO_AGENCIES}
        flows = {(line.get_attribute("data-sender"), line.get_attribute("data-recipient"))
                 for line in browser.find_elements(By.CSS_SELECTOR, "svg path.flow")}
        assert flows == {(PROVIDER, recipient) for recipient in RECIPIENTS}
        refused = browser.find_elements(By.CSS_SELECTOR, "svg path.refused")
        assert [line.get_attribute("data-sender") for line in refused] == [PROVIDER]
        assert cell_text(browser, "by-agency", PROVIDER)[:3] == ["3", "2", "60.0 %"]
        for recipient in RECIPIENTS:
            assert cell_text(browser, "by-agency", recipient)[3] == "3"
        assert cell_text(browser, "by-type", "fal1")[:2] == ["3", "1"]

        # Over time, from the receipt and trail topics: the documents decided, the
        # deliveries (two recipients each) and the delivered documents' latency, per minute.
        visit.until(lambda d: series_totals(d) == [3, 2, 6], "/console/overview")
        for plot in ("throughput-plot", "latency-plot", "lag-plot"):
            svg = browser.find_element(By.ID, plot)
            assert svg.get_attribute("role") == "img"
            assert browser.find_element(By.ID, f"{plot}-desc").get_attribute("textContent")
        assert int(browser.find_element(By.CSS_SELECTOR, "#latency-plot path.line-p50")
                   .get_attribute("data-points") or 0) >= 1
        summary = visit.tab_to(lambda e: e.tag_name == "summary")
        summary.send_keys(Keys.ENTER)  # the figures' table opens by keyboard
        assert browser.find_element(By.ID, "series-table").get_attribute("open") is not None
        visit.keep("overview-over-time")
        minute = browser.find_element(By.CSS_SELECTOR, "#series-table tr[data-minute] a")
        visit.leave(minute.click)  # the documents decided in that minute
        assert "from=" in browser.current_url and "to=" in browser.current_url
        assert browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")
        visit.keep("documents-of-a-minute")

        # Documents by business key (the whole or its start) and by sender, from the receipts.
        second = "9074729:V000001:A:CNSHA"  # the second arrival's: IMO, voyage, arrival, port
        visit.until(lambda d: [row.get_attribute("data-status") for row in d.find_elements(
            By.CSS_SELECTOR, "#documents tbody tr")] == ["accepted"],
            f"/console/documents?key={second}")
        [row] = browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")
        assert second in row.text and row.get_attribute("data-submission") == \
            f"{PROVIDER}~{arrivals[1].submission_id}"
        visit.keep("documents-by-key")
        visit.open("/console/documents?key=9074729")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")) == 3
        visit.open("/console/documents")
        Select(browser.find_element(By.ID, "f-sender")).select_by_value(PROVIDER)
        visit.leave(browser.find_element(By.CSS_SELECTOR, "form.filter button").click)
        shown = [str(row.get_attribute("data-status"))
                 for row in browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")]
        assert sorted(shown) == ["accepted"] * 3 + ["rejected"] * 2
        visit.keep("documents-by-sender")

        # Documents by time: from the test's start to now (its minute included), an hour
        # before it (none), and a time that is none (refused, naming the field).
        window = f"from={started:%Y-%m-%dT%H:%M}&to={utc_now():%Y-%m-%dT%H:%M}"
        visit.open(f"/console/documents?{window}&sender={PROVIDER}")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")) == 5
        assert browser.find_element(By.ID, "f-from").get_attribute("value") == \
            f"{started:%Y-%m-%dT%H:%M}"
        visit.keep("documents-by-time")
        hour_before = started - timedelta(hours=1)
        visit.open(f"/console/documents?from={hour_before:%Y-%m-%dT%H:%M}"
                   f"&to={hour_before:%Y-%m-%dT%H:%M}")
        assert not browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")
        visit.open("/console/documents?from=yesterday")
        problem = browser.find_element(By.CSS_SELECTOR, "p.problem")
        assert problem.get_attribute("data-code") == "CONSOLE_TIME_INVALID"
        assert "From (UTC)" in problem.text
        visit.keep("documents-time-refused", refused_with=400)

        visit.open("/console/overview?lang=zh")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        assert browser.find_element(By.TAG_NAME, "h1").text == "总览"
        visit.keep("overview-zh")
        visit.open("/console/overview?lang=en")

        # The dead letters: the rule's and the cut one (never authenticated: not retryable).
        visit.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-location]")) == 2,
                    "/console/dead-letters")
        [rule_row] = rows_with_code(browser, RULE_CODE)
        location = rule_row.get_attribute("data-location")
        assert "check digit" in rule_row.text.lower()
        [cut_row] = [row for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-location]")
                     if row is not rule_row and row.get_attribute("data-code") != RULE_CODE]
        assert not cut_row.find_element(By.NAME, "at").is_enabled()
        visit.keep("dead-letters")

        Select(browser.find_element(By.ID, "f-code")).select_by_value(RULE_CODE)
        visit.leave(browser.find_element(By.CSS_SELECTOR, "form.filter button").click)
        assert [row.get_attribute("data-code")
                for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-location]")
                ] == [RULE_CODE]
        visit.keep("dead-letters-filtered")

        # Chosen and retried with the keyboard alone: TAB to its box, SPACE, TAB to the button.
        box = visit.tab_to(lambda e: e.get_attribute("value") == location)
        box.send_keys(Keys.SPACE)
        assert box.is_selected()
        button = visit.tab_to(lambda e: e.get_attribute("id") == "retry-selected")
        visit.leave(lambda: button.send_keys(Keys.ENTER))
        assert location in browser.find_element(By.CSS_SELECTOR, "ul.chosen").text
        visit.keep("retry-confirm")
        confirm = browser.find_element(By.ID, "confirm-retry")
        visit.leave(lambda: confirm.send_keys(Keys.ENTER))
        assert "1" in browser.find_element(By.CSS_SELECTOR, "p.done").text

        # The retry is recorded against the dead letter, and its outcome shown: refused
        # again by the same rule, a new dead letter beside the first.
        def retried_and_refused_again(driver: Chrome) -> bool:
            first = driver.find_element(By.CSS_SELECTOR, f'tr[data-location="{location}"]')
            return ("refused again" in first.text and OPERATOR in first.text
                    and len(rows_with_code(driver, RULE_CODE)) == 2)
        visit.until(retried_and_refused_again, "/console/dead-letters")
        visit.keep("dead-letters-retried")


def test_an_auditor_reads_but_may_not_retry_and_a_token_unbound_or_revoked_is_refused(
        console_home: tuple[Home, Tokens], broker: Any, browser: Chrome,
        artifacts: Path) -> None:
    home, tokens = console_home
    with gateway_beside(home, broker.bootstrap_servers) as (served, call):
        assert call(submit(served.url, [signed(home, BAD_IMO, "bad-imo")])) == [422]
        visit = Visit(browser, served.ops_url, artifacts)

        visit.sign_in(secrets.token_urlsafe(24))
        problem = browser.find_element(By.CSS_SELECTOR, "p.problem")
        assert problem.get_attribute("data-code") == "CONSOLE_TOKEN_REFUSED"
        visit.keep("login-refused", refused_with=401)

        visit.sign_in(tokens.auditor)
        assert AUDITOR in browser.find_element(By.CSS_SELECTOR, ".who").text
        visit.keep("overview-auditor")
        visit.until(lambda d: len(rows_with_code(d, RULE_CODE)) == 1, "/console/dead-letters")
        assert not browser.find_elements(By.NAME, "at")  # nothing to choose
        assert not browser.find_elements(By.ID, "retry-selected")
        visit.keep("dead-letters-auditor")
        location = rows_with_code(browser, RULE_CODE)[0].get_attribute("data-location")

        visit.open(f"/console/dead-letters/retry?at={location}")
        problem = browser.find_element(By.CSS_SELECTOR, "p.problem")
        assert problem.get_attribute("data-code") == "CONSOLE_ROLE_REFUSED"
        assert re.search(r"\boperator\b", problem.text)
        visit.keep("retry-refused", refused_with=403)

        # The auditor's binding revoked and the keyring reloaded: the session ends with it.
        keyring = home.path / "keyring.toml"
        revoked = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        binding = f'role = "auditor"\nname = "{AUDITOR}"\n'
        keyring.write_text(keyring.read_text(encoding="utf-8").replace(
            binding, f"{binding}revoked_at = {revoked}\n"), encoding="utf-8")
        assert call(reloaded(served))
        visit.open("/console/overview")
        assert "/console/login" in browser.current_url


def test_contracts_show_who_gets_what_under_which_basis_and_explain_a_pasted_document(
        console_home: tuple[Home, Tokens], broker: Any, browser: Chrome,
        artifacts: Path) -> None:
    home, tokens = console_home
    [contract] = MASKED_CONTRACTS
    with gateway_beside(home, broker.bootstrap_servers) as (served, _):
        visit = Visit(browser, served.ops_url, artifacts)
        visit.sign_in(tokens.auditor)  # reading and explaining: auditors too
        visit.open("/console/contracts")
        row = browser.find_element(By.CSS_SELECTOR, f'#contracts tr[data-contract="{contract.id}"]')
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert PROVIDER in cells[0] and all(r in cells[1] for r in RECIPIENTS)
        assert cells[2] == "fal1" and cells[3] == "cross-department"
        assert cells[5] == "master_name (pseudonym)"
        assert contract.legal_basis in cells[6] and contract.purpose in cells[6]
        assert "in force" in cells[7] and "no end" in cells[7]
        assert browser.find_element(By.ID, "lint-clean").text.startswith("1 contract(s)")
        visit.keep("contracts")

        # Explained by keyboard alone: TAB to the sender, its choice, the document, ENTER.
        sender = visit.tab_to(lambda e: e.get_attribute("id") == "x-sender")
        Select(sender).select_by_value(PROVIDER)
        document = visit.tab_to(lambda e: e.get_attribute("id") == "x-document")
        document.send_keys(ARRIVAL.decode("utf-8"))
        button = visit.tab_to(lambda e: e.get_attribute("id") == "explain")
        visit.leave(lambda: button.send_keys(Keys.ENTER))
        assert "fal1-xml" in browser.find_element(By.ID, "explained-as").text
        verdicts = {row.get_attribute("data-recipient"): row
                    for row in browser.find_elements(By.CSS_SELECTOR, "#verdicts tbody tr")}
        assert set(verdicts) == {agency.id for agency in DEMO_AGENCIES} - {PROVIDER}
        for recipient in RECIPIENTS:
            got = [cell.text for cell in verdicts[recipient].find_elements(By.TAG_NAME, "td")]
            assert got[0] == "delivered" and got[1].startswith(contract.id)
            assert contract.legal_basis in got[2] and got[3] == "avro"
            assert {"ship", "master_name", "crew_count"} <= set(got[4].split(", "))
            assert got[5] == "master_name (pseudonym)"  # named; its value nowhere
        [other] = set(verdicts) - {PROVIDER, *RECIPIENTS}
        assert verdicts[other].get_attribute("data-verdict") == "deny"
        assert "ROUTE_NO_CONTRACT" in verdicts[other].text
        assert not browser.find_element(By.ID, "x-document").get_attribute("value")
        visit.keep("contracts-explained")

        # What cannot be read is said with its code, never shown back.
        visit.open("/console/contracts?lang=zh")
        Select(browser.find_element(By.ID, "x-sender")).select_by_value(PROVIDER)
        browser.find_element(By.ID, "x-document").send_keys("<Unknown>张伟</Unknown>")
        visit.leave(browser.find_element(By.ID, "explain").click)
        problem = browser.find_element(By.CSS_SELECTOR, "#explained p.problem")
        assert problem.get_attribute("data-code") == "FORMAT_UNKNOWN"
        visit.keep("contracts-explain-refused-zh")
        # A document type declaration is refused before anything of it is read.
        Select(browser.find_element(By.ID, "x-sender")).select_by_value(PROVIDER)
        browser.find_element(By.ID, "x-document").send_keys(
            '<!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>')
        visit.leave(browser.find_element(By.ID, "explain").click)
        problem = browser.find_element(By.CSS_SELECTOR, "#explained p.problem")
        assert problem.get_attribute("data-code") == "XML_DTD_FORBIDDEN"


def test_the_warnings_page_shows_a_warning_its_step_and_who_received_it(
        tmp_path: Path, broker: Any, browser: Chrome, artifacts: Path) -> None:
    home = warning_home(tmp_path / "home")
    tokens = bind_tokens(home)
    _, parts = gateway_parts(home)
    # Drafted, reviewed, checked (terror not excluded: public security told at once) and
    # published at level II: the major-warning contracts send it to the national
    # departments, the city and the port agencies.
    steps = full_lifecycle("SH-2026-0042")[:7]
    docs = [Document(f"warning-{step.version}", step.sender, rendered,
                     home.agency_keys[step.sender].sign(rendered), format_id="warning-xml")
            for step in steps for rendered in [step.render(parts.adapters)]]
    with gateway_beside(home, broker.bootstrap_servers) as (served, call):
        assert call(submit(served.url, docs)) == [200] * len(docs)
        visit = Visit(browser, served.ops_url, artifacts)
        visit.sign_in(tokens.operator)

        def published_and_received(driver: Chrome) -> bool:
            rows = driver.find_elements(By.CSS_SELECTOR, '#warnings tr[data-warning]')
            return (len(rows) == 1 and rows[0].get_attribute("data-status") == "PUBLISHED"
                    and "cn.mem" in rows[0].text)
        visit.until(published_and_received, "/console/warnings")
        [row] = browser.find_elements(By.CSS_SELECTOR, "#warnings tr[data-warning]")
        assert row.get_attribute("data-level") == "II"
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert cells[0].startswith("II") and "CNSHA" in cells[2]
        assert cells[4].startswith("publication") and "step 7" in cells[4]
        assert all(agency in cells[6] for agency in ("cn.police.sh", "cn.customs.gacc",
                                                     "cn.gov.sh", "cn.port.sh"))
        assert cells[7] == "–"  # nobody has acknowledged a step yet
        visit.keep("warnings")

        # The Ministry of Emergency Management pulls what it got and acknowledges it.
        assert call(acknowledge_all(served, home, "cn.mem")) >= 1
        visit.until(lambda d: "cn.mem" in d.find_elements(
            By.CSS_SELECTOR, "#warnings tr[data-warning] td")[7].text, "/console/warnings")
        visit.keep("warnings-acknowledged")

        # The warning's own page, by keyboard from its id: each step in order, and who
        # received and acknowledged the event of each (the publication: the ministry too).
        link = visit.tab_to(lambda e: e.text == "SH-2026-0042")
        visit.leave(lambda: link.send_keys(Keys.ENTER))
        rows = browser.find_elements(By.CSS_SELECTOR, "#steps tr[data-step]")
        assert [row.get_attribute("data-action") for row in rows] == [
            step.record["step"]["action"] for step in steps]
        published = [cell.text for cell in rows[-1].find_elements(By.TAG_NAME, "td")]
        assert published[0].startswith("publication") and published[2].startswith("II")
        assert "cn.mem" in published[4] and "cn.mem" in published[5]
        drafted = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
        assert drafted[0] == "draft"
        assert drafted[3].endswith(f"({steps[0].sender})")  # the agency, never the person
        visit.keep("warning")
        visit.open("/console/warnings/warning?id=SH-2026-9999")
        assert browser.find_element(By.CSS_SELECTOR, "p.problem").get_attribute(
            "data-code") == "CONSOLE_WARNING_UNKNOWN"
        visit.keep("warning-unknown", refused_with=404)
        visit.open("/console/warnings")

        # Filtered by level with the keyboard: level I has none.
        level = visit.tab_to(lambda e: e.get_attribute("id") == "f-level")
        Select(level).select_by_value("I")
        button = visit.tab_to(lambda e: e.text == "Filter")
        visit.leave(lambda: button.send_keys(Keys.ENTER))
        assert not browser.find_elements(By.CSS_SELECTOR, "#warnings tr[data-warning]")
        assert browser.find_element(By.ID, "warnings-total").text == "No warnings match."
        visit.keep("warnings-level-I")


def test_demo_serve_keeps_the_console_up_until_interrupted(tmp_path: Path) -> None:
    """`portgw demo --serve` as a process: its console's address and an operator's token
    printed, the overview of the demo's agencies and its warning read over HTTP, then
    SIGINT ends it cleanly."""
    demo = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "demo", "--serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout or ()],
                              daemon=True)
    reader.start()
    printed: list[str] = []
    try:
        console = token = None
        deadline = time.monotonic() + 240
        while (console is None or token is None) and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                assert demo.poll() is None, "".join(printed)
                continue
            printed.append(line)
            if found := re.search(r"console at (http://\S+/console/)", line):
                console = found[1]
            if found := re.search(r"console token \(operator [^)]+\): (\S+)", line):
                token = found[1]
        assert console is not None and token is not None, "".join(printed)
        pages = asyncio.run(demo_pages(console, token))
        assert pages["overview"][0] == 200
        assert all(f'data-agency="{agency.id}"' in pages["overview"][1]
                   for agency in (*DEMO_AGENCIES, *WARNING_AGENCIES))
        assert pages["warnings?all=1"][0] == 200
        assert 'data-warning="SH-2026-0042"' in pages["warnings?all=1"][1]
        assert 'data-status="FILED"' in pages["warnings?all=1"][1]
        assert pages["contracts"][0] == 200 and "warning-major-national" in pages["contracts"][1]
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=120) == 0, "".join(printed)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    reader.join(timeout=10)
    while not lines.empty():
        printed.append(lines.get())
    assert "stopped: the demo's gateway, console and broker are down" in "".join(printed)


async def demo_pages(console: str, token: str) -> dict[str, tuple[int, str]]:
    """Signs in with the token, then reads three pages: their statuses and HTML."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{console}login", data={"token": token}) as signed_in:
            assert signed_in.status == 200 and signed_in.url.path == "/console/overview"
        pages = {}
        for page in ("overview", "warnings?all=1", "contracts"):
            async with session.get(f"{console}{page}") as answer:
                pages[page] = (answer.status, await answer.text())
        return pages


def test_a_documents_history_shows_its_recipients_and_the_trail_verifies_from_the_page(
        console_home: tuple[Home, Tokens], broker: Any, browser: Chrome,
        artifacts: Path) -> None:
    home, tokens = console_home
    arrivals = signed_arrivals(home, 2)
    key = "9074729:V000001:A:CNSHA"  # the second arrival's business key
    with gateway_beside(home, broker.bootstrap_servers) as (served, call):
        assert call(submit(served.url, arrivals)) == [200, 200]
        asyncio.run(acknowledged(home, broker.bootstrap_servers, RECIPIENTS[0]))
        visit = Visit(browser, served.ops_url, artifacts)
        visit.sign_in(tokens.auditor)

        # From the documents' search to the document's history, by its key's link.
        visit.until(lambda d: bool(d.find_elements(By.LINK_TEXT, key)),
                    f"/console/documents?key={key}")
        link = browser.find_element(By.LINK_TEXT, key)
        visit.leave(link.click)
        assert "/console/documents/history" in browser.current_url

        # Each recipient delivered under the contract, the masked field named, its value
        # never shown (keep() checks the HTML); the first recipient's acknowledgement.
        def delivered_to_both_and_taken(driver: Chrome) -> bool:
            rows = driver.find_elements(By.CSS_SELECTOR,
                                        '#recipients tr[data-kind="DELIVERED"]')
            return ({row.get_attribute("data-recipient") for row in rows} == set(RECIPIENTS)
                    and bool(driver.find_elements(By.CSS_SELECTOR,
                                                  '#timeline-1 tr[data-kind="TAKEN"]')))
        visit.until(delivered_to_both_and_taken,
                    browser.current_url.removeprefix(served.ops_url))
        contract = MASKED_CONTRACTS[0]
        for recipient in RECIPIENTS:
            row = browser.find_element(
                By.CSS_SELECTOR, f'#recipients tr[data-recipient="{recipient}"]')
            assert f"{contract.id} v{contract.version}" in row.text
            assert "master_name (pseudonym)" in row.text
        kinds = [row.get_attribute("data-kind")
                 for row in browser.find_elements(By.CSS_SELECTOR, "#timeline-1 tbody tr")]
        assert "ACCEPTED" in kinds and kinds.count("DELIVERED") == len(RECIPIENTS)
        taken = [row.text for row in browser.find_elements(
            By.CSS_SELECTOR, '#timeline-1 tr[data-kind="TAKEN"]')]
        assert len(taken) == 1 and RECIPIENTS[0] in taken[0]
        acknowledged_at = {row.get_attribute("data-recipient"):
                           row.find_elements(By.TAG_NAME, "td")[-1].text
                           for row in browser.find_elements(By.CSS_SELECTOR, "#recipients tr")
                           if row.get_attribute("data-recipient") in RECIPIENTS}
        assert acknowledged_at[RECIPIENTS[1]] == "not acknowledged"
        assert acknowledged_at[RECIPIENTS[0]].startswith("20")  # its time
        visit.keep("document-history")

        # Its evidence bundle, made by `portgw replay export` as a job, then served.
        button = visit.tab_to(lambda e: e.get_attribute("id") == "export")
        visit.leave(lambda: button.send_keys(Keys.ENTER))
        visit.until(lambda d: bool(d.find_elements(By.ID, "bundle"))
                    or bool(d.find_elements(By.ID, "export-output")),
                    browser.current_url.removeprefix(served.ops_url))
        assert not browser.find_elements(By.ID, "export-output"), \
            browser.find_element(By.ID, "export-output").text
        visit.keep("document-history-exported")
        bundle = fetched(browser, str(browser.find_element(By.ID, "bundle")
                                      .get_attribute("href")))
        assert bundle[:2] == b"PK"

        # The trail page: chains and seals, and a verification started by keyboard.
        visit.until(lambda d: bool(d.find_elements(By.CSS_SELECTOR, "#chains tr[data-chain]")),
                    "/console/trail")
        visit.keep("trail")
        button = visit.tab_to(lambda e: e.get_attribute("id") == "verify-now")
        visit.leave(lambda: button.send_keys(Keys.ENTER))
        if browser.find_element(By.ID, "verify-state").get_attribute("data-ok") is None:
            # Running: the page says how far the job has got and reloads itself (no script).
            assert browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
            assert browser.find_element(By.ID, "following").text
            visit.open("/console/trail?follow=0")  # held still, to be checked and kept
            assert not browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
            visit.keep("trail-verifying")
            visit.open("/console/trail")
        # Not reloaded by the test: the page's own refresh brings the job's end.
        WebDriverWait(browser, WAIT_S * 3, poll_frequency=0.5, ignored_exceptions=(
            StaleElementReferenceException, NoSuchElementException)).until(
            lambda d: d.find_element(By.ID, "verify-state").get_attribute("data-ok")
            is not None)
        visit.settled()
        assert not browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
        state = browser.find_element(By.ID, "verify-state")
        assert state.get_attribute("data-ok") == "true", \
            browser.find_element(By.ID, "verify-output").text
        output = browser.find_element(By.ID, "verify-output").text
        assert "OK" in output and "progress:" not in output  # shown while running, not kept
        verified = {row.get_attribute("data-verified")
                    for row in browser.find_elements(By.CSS_SELECTOR, "#chains tr[data-chain]")}
        assert verified == {"ok"}
        assert browser.find_elements(By.CSS_SELECTOR, f'#chains tr[data-chain="{taken_chain(0)}"]')
        visit.keep("trail-verified")
        visit.open("/console/trail?lang=zh")
        visit.keep("trail-zh")


def fetched(driver: Chrome, url: str) -> bytes:
    """What `url` answers with the browser's session cookie."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(url, headers={"Cookie": cookies})
    with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
        body: bytes = answer.read()
    return body
