"""Who is at the console: a console token (bound in the keyring, role operator or auditor)
exchanged once for a session cookie, checked against the keyring in force at every request,
so that a binding revoked or removed by a reload is refused from then on.

The cookie holds the token's SHA-256 (what the keyring binds, never the token), when the
session ends, and an HMAC of both under a key this process drew at start: a cookie of another
process, or one altered, is no session. Forms that change something carry a second HMAC of the
cookie (`form_token`), so another site cannot make a signed-in browser post them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from crypto import ClientBinding, ClientRole, Keyring, normal_fingerprint, token_digest

SESSION_COOKIE = "px_console"
SESSION_S = 8 * 3600
MAX_ENDED = 10_000  # sessions signed out before their end, remembered at once
# Who may open what: reading for both console roles, changing for operators alone.
READERS = frozenset({ClientRole.OPERATOR, ClientRole.AUDITOR})
CHANGERS = frozenset({ClientRole.OPERATOR})


@dataclass(frozen=True, slots=True)
class Session:
    cookie: str
    binding: ClientBinding


class Sessions:
    """Sessions signed with this process's key. A session signed out is remembered as ended
    until its cookie would have expired, so a copy of the cookie (a shared workstation, a
    proxy's log) opens nothing after "sign out"; past MAX_ENDED remembered at once, the key is
    drawn anew, which ends every session."""

    __slots__ = ("_ended", "_key", "_lifetime_s")

    def __init__(self, *, lifetime_s: int = SESSION_S) -> None:
        self._key = secrets.token_bytes(32)
        self._lifetime_s = lifetime_s
        self._ended: dict[str, int] = {}  # cookie -> when it would have expired

    def sign_in(self, token: str, keyring: Keyring, now: datetime) -> Session | None:
        """A new session for the holder of `token`; None when no console binding holds it
        now."""
        digest = token_digest(token)
        binding = keyring.console_user(digest, now)
        if binding is None:
            return None
        expires = int(now.timestamp()) + self._lifetime_s
        body = f"{digest}.{expires}"
        cookie = f"{body}.{self._mac(body)}"
        self._ended.pop(cookie, None)  # signed out and in again within the same second
        return Session(cookie, binding)

    def sign_out(self, session: Session, now: datetime) -> None:
        """Ends `session` for good, whoever holds a copy of its cookie."""
        if len(self._ended) >= MAX_ENDED:
            moment = now.timestamp()
            self._ended = {cookie: expires for cookie, expires in self._ended.items()
                           if expires > moment}
        if len(self._ended) >= MAX_ENDED:
            self._key, self._ended = secrets.token_bytes(32), {}
            return
        self._ended[session.cookie] = int(session.cookie.split(".")[1])

    def session(self, cookie: str | None, keyring: Keyring, now: datetime) -> Session | None:
        """The session the cookie names, while it lasts and its binding holds in `keyring`."""
        if cookie is None or cookie.count(".") != 2 or cookie in self._ended:
            return None
        digest, expires, mac = cookie.split(".")
        if not (expires.isdigit() and hmac.compare_digest(mac, self._mac(f"{digest}.{expires}"))
                and int(expires) > now.timestamp() and normal_fingerprint(digest) == digest):
            return None
        binding = keyring.console_user(digest, now)
        return None if binding is None else Session(cookie, binding)

    def form_token(self, session: Session) -> str:
        return self._mac(f"form:{session.cookie}")

    def form_token_ok(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(token, self.form_token(session))

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
