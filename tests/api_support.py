"""Shared by the store and API tests: a scripted site (config, clock, events) in Europe/Berlin."""
from __future__ import annotations

import calendar
from zoneinfo import ZoneInfo

import pytest

from counterd.api.app import make_app
from counterd.api.auth import make_ha1
from counterd.config import config_from_dict
from counterd.count import CrossingEvent
from counterd.api.site import SITE
from counterd.daemon.flusher import Flusher
from counterd.daemon.worker import Recorder
from counterd.store import AlertRules, Store

BERLIN = ZoneInfo("Europe/Berlin")
SERIAL = "ACCC8E54905A"
NAME = "Axis-ACCC8E54905A"
PASSWORDS = {"vera": "view-pw", "otto": "oper-pw", "ada": "admin-pw"}
ROLES = {"vera": "viewer", "otto": "operator", "ada": "admin"}


def local(y, mo, d, h=0, mi=0, s=0, tz=BERLIN) -> float:
    """Epoch of a Berlin wall-clock time (the first one, on a fall-back day)."""
    from counterd.store.wallclock import from_wall
    return from_wall(tz, calendar.timegm((y, mo, d, h, mi, s)))


def make_config(tmp_path=None, webhook_url: str = "", **api):
    users = [{"name": n, "role": ROLES[n], "ha1": make_ha1(n, "counterd", pw)} for n, pw in PASSWORDS.items()]
    data = {
        "camera": {"name": NAME, "serial": SERIAL, "timezone": "Europe/Berlin", "width": 320, "height": 240},
        "counting": {"primary_line": "door"},
        "lines": [{"name": "door", "start": [296, 88], "end": [0, 152], "tailgate_seconds": 2.0},
                  {"name": "exit", "start": [10, 10], "end": [10, 200], "forbidden_direction": "out"}],
        "api": api,
        "users": users,
        "alerts": {"webhook_url": webhook_url},
    }
    if tmp_path is not None:
        data["daemon"] = {"state_dir": str(tmp_path), "log_file": str(tmp_path / "counterd.log")}
    return config_from_dict(data, "<test>")


def ev(ts: float, direction: str = "in", line: str = "door", class_name: str = "person", track: int = 1):
    return CrossingEvent(ts, line, direction, class_name, track)


class Clock:
    """A settable clock: time moves only when a test says so."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def seed_site(store) -> None:
    """2019-03-16: a full day analysed, primary-line people 3 in / 1 out in 01:00-02:00, plus other
    lines and classes that the Axis formats must leave out. 2019-03-17: nothing. 2019-03-18: one
    analysed hour with one person in at 09:05."""
    store.add_coverage(local(2019, 3, 16), local(2019, 3, 17))
    t = local(2019, 3, 16, 1, 10)
    store.add_events([ev(t, track=1), ev(t + 10, track=2), ev(t + 20, track=3), ev(t + 600, "out", track=1),
                      ev(t + 30, line="exit", track=4), ev(t + 40, class_name="car", track=5)])
    store.add_coverage(local(2019, 3, 18, 9), local(2019, 3, 18, 10))
    store.add_events([ev(local(2019, 3, 18, 9, 5), track=6)])


NOW = local(2019, 3, 18, 12, 34, 56)


async def record(app, events) -> None:
    """What the daemon does with crossings: the real flusher checks the alert rules, writes the
    batch in one transaction and publishes it on the app's bus (live totals, webhook)."""
    site = app[SITE]
    recorder = Recorder(max_gap_s=1.0)
    recorder.give_back(list(events), [])
    flusher = Flusher(recorder, site.astore, AlertRules(site.config.lines), site.bus, "counts.db")
    assert await flusher.flush() is not None


# Fixtures for the API tests (imported by name into each module): a seeded store and an app
# with the anonymous viewer on, at a fixed clock.

@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def store(tmp_path, clock):
    s = Store(tmp_path / "counts.db", BERLIN)
    seed_site(s)
    yield s
    s.close()


@pytest.fixture
async def client(aiohttp_client, tmp_path, store, clock):
    config = make_config(tmp_path, anonymous_viewer=True)
    return await aiohttp_client(make_app(config, store, clock=clock))
