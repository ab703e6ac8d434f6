"""Test doubles for the uploader: a clock the test moves by hand, a counts store answering the
Store interface from a list of events, and a valid [upload] config."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from counterd.config import UploadConfig, config_from_dict
from counterd.upload.metrics import UploadMetrics
from counterd.upload.uploader import Uploader

PIN = "4321"
HOUR = timedelta(hours=1)


class FakeClock:
    """now() is whatever the test says; sleep() ends only when advance() passes its deadline.
    `sleeping` is set whenever something starts sleeping, so tests await it instead of polling."""

    def __init__(self, now: datetime):
        self._now = now
        self._sleepers: list[tuple[datetime, asyncio.Future]] = []
        self.sleeps: list[float] = []
        self.sleeping = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta) -> None:
        self._now += timedelta(**delta)
        for deadline, future in list(self._sleepers):
            if deadline <= self._now:
                self._sleepers.remove((deadline, future))
                if not future.done():
                    future.set_result(None)

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        self.sleeps.append(seconds)
        self.sleeping.set()
        await future


class FakeStore:
    """Counts and coverage as counterd.store.Store answers them, from events and intervals."""

    def __init__(self):
        self.events: list[tuple[datetime, str, str, str]] = []
        self.covered: list[tuple[datetime, datetime]] = []

    def count(self, when: datetime, line: str, direction: str, class_name: str, n: int = 1) -> None:
        self.events += [(when, line, direction, class_name)] * n

    def cover(self, start: datetime, end: datetime) -> None:
        self.covered.append((start, end))

    def counts_between(self, start: datetime, end: datetime) -> dict[tuple[str, str, str], int]:
        return dict(Counter((line, d, c) for t, line, d, c in self.events if start <= t < end))

    def coverage_between(self, start: datetime, end: datetime) -> float:
        return sum(max(0.0, (min(e, end) - max(s, start)).total_seconds()) for s, e in self.covered)


def upload_config(url: str = "http://127.0.0.1:9", line_names: tuple[str, ...] = ("door", "pavement"),
                  **overrides) -> UploadConfig:
    """A valid [upload] section with these changes, loaded beside [[lines]] of these names."""
    upload = {"enabled": True, "url": url, "camera_ref": "entrance-north", "pin": PIN,
              "backoff_base_s": 10.0, "backoff_cap_s": 80.0, "unauthorized_retry_s": 1800.0, **overrides}
    root_lines = [{"name": n, "start": [0, i], "end": [10, i]} for i, n in enumerate(line_names)]
    return config_from_dict({"upload": upload, "lines": root_lines}, "test.toml").upload


def make_uploader(config: UploadConfig, store, state_dir, clock: FakeClock, **kwargs) -> Uploader:
    import random
    return Uploader(config, store, state_dir, clock=clock, metrics=UploadMetrics(CollectorRegistry()),
                    rng=random.Random(4), **kwargs)
