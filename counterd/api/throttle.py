"""Slowing down password guessing, per user name and per client address.

Every login attempt counts as a failure the moment it arrives, before its password is checked;
a correct one takes its own count back. So parallel guesses see each other's counts (45 guesses
sent at once are not 45 free ones), and a valid login of another user from the same address
forgives nothing but itself. Past FREE failures an attempt waits, doubling each time; past
MAX_DELAY_S it is refused at once with 429 and Retry-After, without its password being checked.
A key's failures are forgotten after FORGET_S without a new one.

Refusals are paced (RefusalPacer). Answering a refused guess costs the daemon almost nothing in
counterd (the throttle answers before the query, a body or a password is looked at: about 2% of
the event loop's time in a py-spy profile of bench/attack.py's brute force) but a whole HTTP
exchange in aiohttp and the kernel (accept, parse, send, close), and 45 guessing connections
drove that to 5,000 a second, both of an edge box's cores, costing counting 12-38% of its
frames. So beyond a burst of REFUSAL_BURST, a refusal waits its turn at REFUSALS_PER_S before it
is answered, which slows a guessing client's connections to that rate whatever it sends. At most
MAX_PARKED_REFUSALS wait at once (a quarter of the default api.max_connections, so parked guesses
never crowd out other clients); beyond that a refusal is answered at once, as before.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_DELAY_S = 8.0
FORGET_S = 900.0
MAX_KEYS = 4096              # per kind; the least recently failing key is forgotten first
# Free failures before slowing down: a user name is guessed at, an address is shared (an office
# behind one NAT), so the address gets more slack.
FREE = {"name": 3, "address": 10}
FIRST_DELAY_S = 0.25
REFUSALS_PER_S = 50.0        # refused guesses answered per second beyond the burst
REFUSAL_BURST = 50           # refusals answered at once before pacing starts (a burst of 45 parallel guesses)
MAX_PARKED_REFUSALS = 64     # refusals waiting their turn at most; beyond, answered at once


@dataclass
class Attempt:
    """One login attempt's claim on the counters: wait this long, or refuse (wait is None)."""
    keys: tuple[tuple[str, str], ...]
    wait: float | None


class Throttle:
    def __init__(self, clock=time.time):
        self.clock = clock
        self._counts: dict[str, OrderedDict[str, tuple[int, float]]] = {k: OrderedDict() for k in FREE}

    def begin(self, address: str, name: str | None) -> Attempt:
        """Count the attempt as a failure now; say how long it must wait (None: refuse)."""
        keys = (("address", address),) + ((("name", name),) if name else ())
        delays = [self._delay(kind, self._count(kind, key)) for kind, key in keys]
        if any(d is None for d in delays):
            return Attempt((), None)          # refused unchecked: not counted, so it cannot lock forever
        for kind, key in keys:
            self._add(kind, key, +1)
        return Attempt(keys, max(delays))

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: take this attempt's count back, and forget the name's failures
        (its owner knows the password). The address keeps the failures of other names."""
        for kind, key in attempt.keys:
            if kind == "name":
                self._counts[kind].pop(key, None)
            else:
                self._add(kind, key, -1)

    def cancelled(self, attempt: Attempt) -> None:
        """Neither right nor wrong (a stale nonce): take the count back."""
        for kind, key in attempt.keys:
            self._add(kind, key, -1)

    def failures(self, kind: str, key: str) -> int:
        return self._count(kind, key)

    # ---- counters -------------------------------------------------------------------------------

    def _count(self, kind: str, key: str) -> int:
        count, last = self._counts[kind].get(key, (0, 0.0))
        return count if self.clock() - last <= FORGET_S else 0

    def _add(self, kind: str, key: str, step: int) -> None:
        table = self._counts[kind]
        count = max(0, self._count(kind, key) + step)
        table.pop(key, None)
        if count:
            table[key] = (count, self.clock())
        while len(table) > MAX_KEYS:
            table.popitem(last=False)

    @staticmethod
    def _delay(kind: str, count: int) -> float | None:
        if count < FREE[kind]:
            return 0.0
        delay = FIRST_DELAY_S * 2 ** (count - FREE[kind])
        return delay if delay <= MAX_DELAY_S else None


class RefusalPacer:
    """A token bucket for 429 answers: wait() says how long this refusal waits for its turn."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.parked = 0
        self._next_free = float("-inf")      # when the bucket next has a token, burst counted

    def wait(self) -> float:
        """Seconds to wait before answering (0: at once). Call parked_done() after a wait."""
        now = self.clock()
        self._next_free = max(self._next_free, now - REFUSAL_BURST / REFUSALS_PER_S) + 1 / REFUSALS_PER_S
        wait = self._next_free - now
        if wait <= 0:
            return 0.0
        if self.parked >= MAX_PARKED_REFUSALS:
            self._next_free -= 1 / REFUSALS_PER_S     # answered now: it takes no turn
            return 0.0
        self.parked += 1
        return wait

    def parked_done(self) -> None:
        self.parked -= 1
