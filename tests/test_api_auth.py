"""Authentication with real clients: aiohttp's DigestAuthMiddleware and requests' HTTPDigestAuth
against a real port, Basic, roles, the anonymous-viewer switch, nonce expiry, replays, slowdown."""
from __future__ import annotations

import asyncio
import hashlib
import io
import re
import tomllib

import aiohttp
import pytest
import requests
from requests.auth import HTTPDigestAuth

from api_support import BERLIN, NOW, PASSWORDS, Clock, make_config, seed_site
from counterd.api.app import make_app
from counterd.api.auth import make_ha1
from counterd.api.site import SITE
from counterd.cli import main
from counterd.config import config_from_dict
from counterd.store import Store

LIVE = "/local/people-counter/.api?live-sum.json"
CLEAR = "/local/people-counter/.apioperator?clear-data"
ADMIN = "/local/people-counter/.apiadmin?list-cnt.json"


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
async def server(aiohttp_server, tmp_path, clock):
    store = Store(tmp_path / "counts.db", BERLIN)
    seed_site(store)
    delays: list[float] = []

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)

    app = make_app(make_config(tmp_path), store, clock=clock, sleep=record_sleep)
    server = await aiohttp_server(app)
    server.delays = delays
    server.auth_failures = lambda: dict(app[SITE].auth._failures)
    yield server
    store.close()


async def status_with(server, user: str | None, path: str, password: str | None = None) -> int:
    middlewares = (aiohttp.DigestAuthMiddleware(user, password or PASSWORDS[user]),) if user else ()
    async with aiohttp.ClientSession(middlewares=middlewares) as session:
        async with session.get(server.make_url(path)) as response:
            return response.status


async def test_401_carries_digest_then_basic_challenges(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(LIVE)) as response:
            challenges = response.headers.getall("WWW-Authenticate")
            assert response.status == 401 and response.content_type == "text/plain"
    assert challenges[0].startswith('Digest realm="counterd", qop="auth", algorithm=MD5, nonce="')
    assert challenges[1].startswith('Basic realm="counterd"')


@pytest.mark.parametrize("user, path, expected", [
    ("vera", LIVE, 200), ("vera", CLEAR, 403), ("otto", LIVE, 200), ("otto", ADMIN, 403),
    ("ada", ADMIN, 200), ("ada", CLEAR, 200), (None, LIVE, 401),
])
async def test_roles_with_aiohttp_digest(server, user, path, expected):
    assert await status_with(server, user, path) == expected


async def test_aiohttp_digest_session_reuses_its_nonce(server):
    async with aiohttp.ClientSession(middlewares=(aiohttp.DigestAuthMiddleware("vera", "view-pw"),)) as session:
        for _ in range(3):
            async with session.get(server.make_url(LIVE)) as response:
                assert response.status == 200 and (await response.json())["serial"]


async def test_wrong_password_is_401(server):
    assert await status_with(server, "vera", LIVE, password="guess") == 401


def _requests_get(url: str, **kwargs) -> requests.Response:
    with requests.Session() as session:
        return session.get(url, timeout=10, **kwargs)


async def test_requests_digest_basic_and_url_credentials(server):
    url = str(server.make_url(LIVE))
    digest = await asyncio.to_thread(_requests_get, url, auth=HTTPDigestAuth("vera", "view-pw"))
    assert digest.status_code == 200 and digest.json()["in"] == 1
    assert (await asyncio.to_thread(_requests_get, url, auth=HTTPDigestAuth("vera", "nope"))).status_code == 401
    assert (await asyncio.to_thread(_requests_get, url, auth=("otto", "oper-pw"))).status_code == 200   # Basic tuple
    with_credentials = url.replace("http://", "http://otto:oper-pw@")                                # PHP fopen style
    assert (await asyncio.to_thread(_requests_get, with_credentials)).status_code == 200
    clear = str(server.make_url(CLEAR))
    assert (await asyncio.to_thread(_requests_get, clear, auth=HTTPDigestAuth("vera", "view-pw"))).status_code == 403
    assert (await asyncio.to_thread(_requests_get, clear, auth=HTTPDigestAuth("otto", "oper-pw"))).status_code == 200


def _digest(user: str, nonce: str, nc: int, path: str = LIVE) -> str:
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()     # noqa: E731
    ha1 = md5(f"{user}:counterd:{PASSWORDS[user]}")
    response = md5(f"{ha1}:{nonce}:{nc:08x}:abc:auth:{md5('GET:' + path)}")
    return (f'Digest username="{user}", realm="counterd", nonce="{nonce}", uri="{path}", '
            f'response="{response}", qop=auth, nc={nc:08x}, cnonce="abc"')


async def _challenge_nonce(session, server) -> str:
    async with session.get(server.make_url(LIVE)) as response:
        return re.search(r'nonce="([^"]+)"', response.headers["WWW-Authenticate"]).group(1)


async def test_nonce_expiry_answers_stale_and_replays_fail(server, clock):
    async with aiohttp.ClientSession() as session:
        nonce = await _challenge_nonce(session, server)
        headers = {"Authorization": _digest("vera", nonce, 1)}
        async with session.get(server.make_url(LIVE), headers=headers) as response:
            assert response.status == 200
        async with session.get(server.make_url(LIVE), headers=headers) as response:
            assert response.status == 401                       # the same nc again: a replay
        clock.now += 301
        async with session.get(server.make_url(LIVE), headers={"Authorization": _digest("vera", nonce, 2)}) as response:
            assert response.status == 401 and "stale=true" in response.headers["WWW-Authenticate"]
        fresh = await _challenge_nonce(session, server)
        async with session.get(server.make_url(LIVE), headers={"Authorization": _digest("vera", fresh, 1)}) as response:
            assert response.status == 200
    assert server.delays == []           # stale nonces and the handshake are not failures


async def test_repeated_failures_from_one_address_slow_down(server):
    basic = {"Authorization": aiohttp.encode_basic_auth("vera", "wrong")}
    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            async with session.get(server.make_url(LIVE), headers=basic) as response:
                assert response.status == 401
        assert server.delays == [0.25, 0.5, 1.0]               # the first three failures are free
        good = {"Authorization": aiohttp.encode_basic_auth("vera", "view-pw")}
        async with session.get(server.make_url(LIVE), headers=good) as response:
            assert response.status == 200                     # slowed, but then forgiven
        async with session.get(server.make_url(LIVE), headers=good) as response:
            assert response.status == 200
    assert server.delays == [0.25, 0.5, 1.0, 2.0]


async def test_anonymous_viewer_switch(aiohttp_client, tmp_path, clock):
    store = Store(tmp_path / "counts.db", BERLIN)
    client = await aiohttp_client(make_app(make_config(tmp_path, anonymous_viewer=True), store, clock=clock))
    assert (await client.get(LIVE)).status == 200                  # wget scripts, no credentials
    assert (await client.get(CLEAR)).status == 401
    assert (await client.get("/api/v1/live")).status == 200
    client.app[SITE].auth.anonymous_viewer = False
    assert (await client.get("/api/v1/live")).status == 401
    store.close()


async def test_api_v1_follows_roles(server):
    assert await status_with(server, None, "/api/v1/counts") == 401
    assert await status_with(server, "vera", "/api/v1/counts") == 200
    assert await status_with(server, "vera", "/api/v1/openapi.json") == 200


def test_passwd_prints_an_entry_the_config_accepts(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["passwd", "ada", "--role", "admin", "--password-stdin"]) == 0
    printed = capsys.readouterr().out
    assert "correct horse" not in printed
    config = config_from_dict(tomllib.loads(printed))
    (user,) = config.users
    assert (user.name, user.role) == ("ada", "admin")
    assert user.ha1 == make_ha1("ada", "counterd", "correct horse")


async def test_nonce_from_before_a_restart_is_stale_only_with_the_right_password(server):
    old_nonce = "1552908000.0011223344556677.00000000000000000000000000000000"
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(LIVE), headers={"Authorization": _digest("vera", old_nonce, 1)}) as r:
            assert r.status == 401 and "stale=true" in r.headers["WWW-Authenticate"]
        wrong = _digest("vera", old_nonce, 2).replace('response="', 'response="0')
        async with session.get(server.make_url(LIVE), headers={"Authorization": wrong}) as r:
            assert r.status == 401 and "stale" not in r.headers["WWW-Authenticate"]
    assert len(server.auth_failures()) == 1
