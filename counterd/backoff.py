"""Exponential backoff with jitter: the one implementation behind every reconnect and retry
(camera, uploads, MQTT).

The ceiling doubles per failure from `base` up to `cap`; each wait is drawn from the upper half
of the ceiling, so many boxes that lost one server (a camera NVR, the central service, a broker)
together do not all come back in the same second. reset() after a success.
"""
from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float, cap: float, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.failures = 0

    def ceiling(self) -> float:
        """The longest the next wait can be."""
        return min(self.cap, self.base * 2 ** min(self.failures, 60))

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        self.failures += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
