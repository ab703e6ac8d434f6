"""HTTP authentication as an Axis device does it: Digest (MD5, qop=auth) and Basic, users with
roles viewer < operator < admin, and an optional anonymous viewer.

The config keeps each user's HA1 = md5("name:realm:password"), never the password: Digest needs
exactly that, and Basic is checked by hashing the offered password the same way. Nonces are
stateless (a timestamp signed with a per-process key), expire after api.nonce_seconds and are
answered with stale=true so clients retry silently; nonce counts must grow (no replays).
Comparisons of secrets are constant-time; an address that keeps failing waits longer each time.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

from counterd.api.replies import refusal

ROLES = {"viewer": 1, "operator": 2, "admin": 3}
FREE_FAILURES = 3            # failures from one address before responses slow down
MAX_DELAY_S = 8.0
FAILURE_MEMORY_S = 900.0     # an address's failures are forgotten after this quiet time
MAX_TRACKED = 4096           # addresses (failures) and nonces (counts) remembered at most

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def make_ha1(name: str, realm: str, password: str) -> str:
    return md5_hex(f"{name}:{realm}:{password}")


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


ANONYMOUS = Identity("anonymous", "viewer")


class Authenticator:
    def __init__(self, users, realm: str, *, anonymous_viewer: bool = False,
                 nonce_seconds: float = 300.0, clock=time.time, sleep=asyncio.sleep):
        self.users = {u.name: u for u in users}
        self.realm = realm
        self.anonymous_viewer = anonymous_viewer
        self.nonce_seconds = nonce_seconds
        self.clock = clock
        self.sleep = sleep                      # replaceable so tests see delays without waiting
        self._key = os.urandom(32)
        self._opaque = os.urandom(16).hex()
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._nonce_counts: OrderedDict[str, int] = OrderedDict()

    # ---- entry point ----------------------------------------------------------------------------

    async def require(self, request: web.Request, role: str, what: str) -> Identity:
        """The caller's identity if it holds `role`; otherwise raises the 401/403 response."""
        header = request.headers.get("Authorization", "")
        if not header:
            if self.anonymous_viewer and role == "viewer":
                return ANONYMOUS
            raise self.unauthorized(f"{what} needs a login with the {role} role")
        address = request.remote or "?"
        delay = self.delay(address)
        if delay:
            await self.sleep(delay)
        scheme, _, credentials = header.partition(" ")
        identity, stale = None, False
        if scheme.lower() == "digest":
            identity, stale = self._check_digest(request, credentials)
        elif scheme.lower() == "basic":
            identity = self._check_basic(credentials)
        if identity is None:
            if stale:
                raise self.unauthorized("the Digest nonce has expired or is from before a restart", stale=True)
            self._record_failure(address)
            raise self.unauthorized("wrong user name or password")
        self._failures.pop(address, None)
        if ROLES[identity.role] < ROLES[role]:
            raise refusal(403, f"user {identity.name!r} has the {identity.role} role; "
                             f"{what} needs {role}")
        return identity

    def unauthorized(self, reason: str, stale: bool = False) -> web.HTTPException:
        nonce = self._new_nonce()
        digest = (f'Digest realm="{self.realm}", qop="auth", algorithm=MD5, nonce="{nonce}", '
                  f'opaque="{self._opaque}"' + (", stale=true" if stale else ""))
        headers = CIMultiDict([("WWW-Authenticate", digest),   # Digest first: clients take the first
                               ("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"')])
        return refusal(401, reason, headers)

    # ---- slowing down guessing ------------------------------------------------------------------

    def delay(self, address: str) -> float:
        count, last = self._failures.get(address, (0, 0.0))
        if self.clock() - last > FAILURE_MEMORY_S:
            return 0.0
        return 0.0 if count < FREE_FAILURES else min(MAX_DELAY_S, 0.25 * 2 ** (count - FREE_FAILURES))

    def _record_failure(self, address: str) -> None:
        now = self.clock()
        count, last = self._failures.pop(address, (0, 0.0))
        if now - last > FAILURE_MEMORY_S:
            count = 0
        self._failures[address] = (count + 1, now)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    # ---- Basic ----------------------------------------------------------------------------------

    def _check_basic(self, credentials: str) -> Identity | None:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except ValueError:
            return None
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = decoded.decode("latin-1")
        name, sep, password = text.partition(":")
        if not sep:
            return None
        return self._match(name, make_ha1(name, self.realm, password))

    def _match(self, name: str, offered_ha1: str) -> Identity | None:
        user = self.users.get(name)
        expected = user.ha1 if user else "0" * 32       # compare anyway: same time for unknown names
        ok = hmac.compare_digest(expected.encode(), offered_ha1.encode())
        return Identity(user.name, user.role) if ok and user else None

    # ---- Digest ---------------------------------------------------------------------------------

    def _new_nonce(self) -> str:
        # Random part: two clients challenged in the same second must not share a nonce, or
        # the second one's nc=1 would look like a replay of the first's.
        issued = f"{int(self.clock())}.{os.urandom(8).hex()}"
        return f"{issued}.{self._sign(issued)}"

    def _sign(self, issued: str) -> str:
        return hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()[:32]

    def _nonce_fresh(self, nonce: str) -> bool:
        """Issued by this process (a restart changes the key) and not older than nonce_seconds."""
        issued, _, signature = nonce.rpartition(".")
        stamp = issued.partition(".")[0]
        if not stamp.isdigit() or not hmac.compare_digest(signature.encode(), self._sign(issued).encode()):
            return False
        return -5 <= self.clock() - int(stamp) <= self.nonce_seconds

    def _check_digest(self, request: web.Request, credentials: str) -> tuple[Identity | None, bool]:
        """(identity, stale). Stale: the password was right but the nonce is old or from before a
        restart; the client retries with the new nonce without asking anyone, and it is no failure."""
        fields = {m.group(1).lower(): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
                  for m in _PARAM_RE.finditer(credentials)}
        need = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(k not in fields for k in need) or fields["qop"] != "auth" \
                or fields.get("algorithm", "MD5").upper() != "MD5" or fields["realm"] != self.realm:
            return None, False
        if not _same_target(fields["uri"], request.raw_path):
            return None, False
        try:
            nc = int(fields["nc"], 16)
        except ValueError:
            return None, False
        user = self.users.get(fields["username"])
        ha1 = user.ha1 if user else "0" * 32        # compare anyway: same time for unknown names
        ha2 = md5_hex(f"{request.method}:{fields['uri']}")
        expected = md5_hex(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected.encode(), fields["response"].lower().encode()) or user is None:
            return None, False
        if not self._nonce_fresh(fields["nonce"]):
            return None, True
        if nc <= self._nonce_counts.get(fields["nonce"], 0):
            return None, False                  # a replayed request
        self._nonce_counts[fields["nonce"]] = nc
        self._nonce_counts.move_to_end(fields["nonce"])
        while len(self._nonce_counts) > MAX_TRACKED:
            self._nonce_counts.popitem(last=False)
        return Identity(user.name, user.role), False


def _same_target(uri: str, raw_path: str) -> bool:
    """The Digest uri names this request (clients differ in how they escape it)."""
    if uri == raw_path:
        return True
    if "://" in uri:            # an absolute URI: compare its path and query
        uri = "/" + uri.split("://", 1)[1].partition("/")[2]
    return unquote(uri) == unquote(raw_path)
