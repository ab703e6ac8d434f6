"""HTTP authentication as an Axis device does it: Digest (MD5 and SHA-256, qop=auth) and Basic,
users with roles viewer < operator < admin, and an optional anonymous viewer.

The config keeps each user's HA1 = md5("name:realm:password") (and, for Digest SHA-256, its
SHA-256 twin), never the password: Digest needs exactly that, and Basic is checked by hashing
the offered password the same way.

Nonces are stateless and unforgeable: an issue time and random bits signed (HMAC) together with
the client's address by a per-process key. They expire after api.nonce_seconds and are answered
with stale=true, so clients retry silently. Replays: each user's used (nonce, nc) pairs are kept
until their nonce expires, in that user's own table, so no other user's traffic can push them
out. A repeat of a used nc is accepted only within REPEAT_WINDOW_S of its first use (digest-fetch
sends parallel requests with one nc); later it is answered stale, never let in.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import unquote

import asyncio
from aiohttp import web
from multidict import CIMultiDict

from counterd.api.replies import refusal
from counterd.api.throttle import MAX_DELAY_S, Attempt, RefusalPacer, Throttle
from counterd.choices import ROLES

REPEAT_WINDOW_S = 2.0        # a used nc may come again this soon (parallel requests on one nc)
MAX_NONCE_USES = 4096        # per user; beyond it the user's oldest nonces are retired (stale)
HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
UNKNOWN_USER_HASH = {"MD5": "0" * 32, "SHA-256": "0" * 64}

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def digest_hex(algorithm: str, text: str) -> str:
    return HASHES[algorithm](text.encode("utf-8")).hexdigest()


def md5_hex(text: str) -> str:
    return digest_hex("MD5", text)


def make_ha1(name: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    return digest_hex(algorithm, f"{name}:{realm}:{password}")


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


ANONYMOUS = Identity("anonymous", "viewer")


@dataclass
class _Uses:
    """One user's used nonces: nonce -> {nc: first use}, oldest nonce first, and the issue time
    at or before which this user's nonces are retired."""
    nonces: OrderedDict[str, dict[int, float]] = field(default_factory=OrderedDict)
    size: int = 0
    retired_upto: int = -1


class Authenticator:
    def __init__(self, users, realm: str, *, anonymous_viewer: bool = False,
                 nonce_seconds: float = 300.0, clock=time.time, sleep=asyncio.sleep):
        self.users = {u.name: u for u in users}
        self.realm = realm
        self.anonymous_viewer = anonymous_viewer
        self.nonce_seconds = nonce_seconds
        self.clock = clock
        self.sleep = sleep                      # replaceable so tests see delays without waiting
        self.throttle = Throttle(clock)
        self.pacer = RefusalPacer()
        self._key = os.urandom(32)
        self._opaque = os.urandom(16).hex()
        self._uses: dict[str, _Uses] = {}

    # ---- entry points ---------------------------------------------------------------------------

    async def identify(self, request: web.Request, role: str, what: str) -> Identity:
        """The caller, who holds at least `role`; otherwise raises 401 (or 429 while throttled).
        Runs before anything of the request is parsed, so an unauthenticated client always gets
        the challenge first."""
        header = request.headers.get("Authorization", "")
        if not header:
            if self.anonymous_viewer and role == "viewer":
                return ANONYMOUS
            raise self.unauthorized(request, f"{what} needs a login with the {role} role")
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        fields = _digest_fields(credentials) if scheme == "digest" else {}
        basic = _basic_pair(credentials) if scheme == "basic" else None
        name = fields.get("username") if scheme == "digest" else basic[0] if basic else None
        attempt = self.throttle.begin(request.remote or "?", name)
        if attempt.wait is None:
            await self._refuse_paced()
        if attempt.wait:
            await self.sleep(attempt.wait)
        identity, stale = None, False
        if scheme == "digest":
            identity, stale = self._check_digest(request, fields)
        elif basic is not None:
            identity = self._match(basic[0], make_ha1(basic[0], self.realm, basic[1]), "MD5")
        if identity is None:
            if stale:
                self.throttle.cancelled(attempt)
                raise self.unauthorized(request, "the Digest nonce has expired, was used already or "
                                                 "is from before a restart", stale=True)
            raise self.unauthorized(request, "wrong user name or password")
        self.throttle.succeeded(attempt)
        self.need(request, identity, role, what)
        return identity

    async def _refuse_paced(self):
        """429 for a throttled login, answered in its turn (throttle.RefusalPacer: a flood of
        refusals cannot take the event loop's and the kernel's time from counting)."""
        wait = self.pacer.wait()
        if wait:
            try:
                await asyncio.sleep(wait)       # not self.sleep: a pace, not the throttle's delay
            finally:
                self.pacer.parked_done()
        raise refusal(429, "too many failed logins; try again later", {"Retry-After": str(int(MAX_DELAY_S))})

    def need(self, request: web.Request, identity: Identity, role: str, what: str) -> None:
        """A login whose role is too low gets a fresh challenge, as a device does, so a client
        holding several users' passwords can answer with the right one."""
        if ROLES[identity.role] < ROLES[role]:
            raise self.unauthorized(request, f"user {identity.name!r} has the {identity.role} role; "
                                             f"{what} needs {role}")

    def unauthorized(self, request: web.Request, reason: str, stale: bool = False) -> web.HTTPException:
        nonce = self._new_nonce(request.remote or "?")
        # MD5 first: older clients take the first challenge and know no other. Both carry the
        # same nonce, so a client that mixes their fields still answers correctly.
        challenges = [("WWW-Authenticate",
                       f'Digest realm="{self.realm}", qop="auth", algorithm={algorithm}, nonce="{nonce}", '
                       f'opaque="{self._opaque}"' + (", stale=true" if stale else ""))
                      for algorithm in self.algorithms()]
        challenges.append(("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'))
        return refusal(401, reason, CIMultiDict(challenges))

    def algorithms(self) -> list[str]:
        """SHA-256 is offered when every user has its hash (a user without one could not answer)."""
        users = self.users.values()
        return ["MD5", "SHA-256"] if users and all(u.ha1_sha256 for u in users) else ["MD5"]

    # ---- hashes ---------------------------------------------------------------------------------

    def _match(self, name: str, offered_ha1: str, algorithm: str) -> Identity | None:
        user = self.users.get(name)
        expected = self._ha1(user, algorithm)
        ok = hmac.compare_digest(expected.encode(), offered_ha1.encode())   # same time for unknown names
        return Identity(user.name, user.role) if ok and user else None

    @staticmethod
    def _ha1(user, algorithm: str) -> str:
        secret = None if user is None else user.ha1 if algorithm == "MD5" else user.ha1_sha256
        return secret.reveal() if secret else UNKNOWN_USER_HASH[algorithm]

    # ---- nonces ---------------------------------------------------------------------------------

    def _new_nonce(self, address: str) -> str:
        # Random part: two clients challenged in the same second must not share a nonce.
        issued = f"{int(self.clock())}.{os.urandom(8).hex()}"
        return f"{issued}.{self._sign(issued, address)}"

    def _sign(self, issued: str, address: str) -> str:
        return hmac.new(self._key, f"{issued}|{address}".encode(), hashlib.sha256).hexdigest()[:32]

    def _nonce_issued(self, nonce: str, address: str) -> int | None:
        """The nonce's issue time if this process signed it for this address and it has not
        expired; None otherwise."""
        issued, _, signature = nonce.rpartition(".")
        stamp = issued.partition(".")[0]
        if not stamp.isdigit() or not hmac.compare_digest(signature.encode(), self._sign(issued, address).encode()):
            return None
        return int(stamp) if -5 <= self.clock() - int(stamp) <= self.nonce_seconds else None

    def _first_use(self, user: str, nonce: str, issued: int, nc: int) -> bool:
        """Record (nonce, nc) for this user; False for a replay (a retired nonce, or a used nc
        outside the repeat window)."""
        uses = self._uses.setdefault(user, _Uses())
        now = self.clock()
        while uses.nonces:                      # forget expired nonces: they are refused anyway
            oldest, counts = next(iter(uses.nonces.items()))
            if int(oldest.partition(".")[0]) >= now - self.nonce_seconds - 5:
                break
            uses.size -= len(uses.nonces.pop(oldest))
        if issued <= uses.retired_upto:
            return False
        counts = uses.nonces.setdefault(nonce, {})
        if nc in counts:
            return now - counts[nc] <= REPEAT_WINDOW_S
        counts[nc] = now
        uses.size += 1
        while uses.size > MAX_NONCE_USES:       # only this user's own traffic gets here
            oldest, counts = uses.nonces.popitem(last=False)
            uses.size -= len(counts)
            uses.retired_upto = max(uses.retired_upto, int(oldest.partition(".")[0]))
        return True

    # ---- Digest ---------------------------------------------------------------------------------

    def _check_digest(self, request: web.Request, fields: dict[str, str]) -> tuple[Identity | None, bool]:
        """(identity, stale). Stale: the password was right but the nonce is old, used, or from
        before a restart; the client retries with the new nonce without asking anyone, and it is
        no failure."""
        need = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        algorithm = fields.get("algorithm", "MD5").upper()
        if any(k not in fields for k in need) or fields["qop"] != "auth" \
                or algorithm not in self.algorithms() or fields["realm"] != self.realm:
            return None, False
        if not _same_target(fields["uri"], request.raw_path):
            return None, False
        try:
            nc = int(fields["nc"], 16)
        except ValueError:
            return None, False
        user = self.users.get(fields["username"])
        ha2 = digest_hex(algorithm, f"{request.method}:{fields['uri']}")
        expected = digest_hex(algorithm, f"{self._ha1(user, algorithm)}:{fields['nonce']}:{fields['nc']}:"
                                         f"{fields['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected.encode(), fields["response"].lower().encode()) or user is None:
            return None, False
        issued = self._nonce_issued(fields["nonce"], request.remote or "?")
        if issued is None or not self._first_use(user.name, fields["nonce"], issued, nc):
            return None, True
        return Identity(user.name, user.role), False


def _digest_fields(credentials: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
            for m in _PARAM_RE.finditer(credentials)}


def _basic_pair(credentials: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except ValueError:
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    name, sep, password = text.partition(":")
    return (name, password) if sep else None


def _same_target(uri: str, raw_path: str) -> bool:
    """The Digest uri names this request (clients differ in how they escape it)."""
    if uri == raw_path:
        return True
    if "://" in uri:            # an absolute URI: compare its path and query
        uri = "/" + uri.split("://", 1)[1].partition("/")[2]
    return unquote(uri) == unquote(raw_path)
