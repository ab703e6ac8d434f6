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
    server.auth = app[SITE].auth
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
    ("vera", LIVE, 200), ("vera", CLEAR, 401), ("otto", LIVE, 200), ("otto", ADMIN, 401),
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
    assert (await asyncio.to_thread(_requests_get, clear, auth=HTTPDigestAuth("vera", "view-pw"))).status_code == 401
    assert (await asyncio.to_thread(_requests_get, clear, auth=HTTPDigestAuth("otto", "oper-pw"))).status_code == 200


def _digest(user: str, nonce: str, nc: int, path: str = LIVE, algorithm: str = "MD5") -> str:
    h = lambda s: hashlib.new(algorithm.replace("-", "").lower(), s.encode()).hexdigest()     # noqa: E731
    ha1 = h(f"{user}:counterd:{PASSWORDS[user]}")
    response = h(f"{ha1}:{nonce}:{nc:08x}:abc:auth:{h('GET:' + path)}")
    return (f'Digest username="{user}", realm="counterd", nonce="{nonce}", uri="{path}", '
            f'response="{response}", qop=auth, nc={nc:08x}, cnonce="abc", algorithm={algorithm}')


async def _challenge_nonce(session, server) -> str:
    async with session.get(server.make_url(LIVE)) as response:
        return re.search(r'nonce="([^"]+)"', response.headers["WWW-Authenticate"]).group(1)


async def test_nonce_expiry_answers_stale_and_replays_fail(server, clock):
    async with aiohttp.ClientSession() as session:
        nonce = await _challenge_nonce(session, server)
        headers = {"Authorization": _digest("vera", nonce, 1)}
        async with session.get(server.make_url(LIVE), headers=headers) as response:
            assert response.status == 200
        clock.now += 3
        async with session.get(server.make_url(LIVE), headers=headers) as response:
            assert response.status == 401                       # the same nc again later: a replay
            assert "stale=true" in response.headers["WWW-Authenticate"]
        clock.now += 298
        async with session.get(server.make_url(LIVE), headers={"Authorization": _digest("vera", nonce, 2)}) as response:
            assert response.status == 401 and "stale=true" in response.headers["WWW-Authenticate"]
        fresh = await _challenge_nonce(session, server)
        async with session.get(server.make_url(LIVE), headers={"Authorization": _digest("vera", fresh, 1)}) as response:
            assert response.status == 200
    assert server.delays == []           # stale nonces and the handshake are not failures


async def test_repeated_failures_of_one_name_slow_down_and_a_login_forgives_only_that_name(server):
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
    assert server.auth.throttle.failures("name", "vera") == 0
    assert server.auth.throttle.failures("address", "127.0.0.1") == 6     # a success forgives no address


async def test_parallel_guesses_are_counted_before_they_are_checked(server):
    """45 guesses at once: each one sees the others' counts, so most are refused unchecked (429)."""
    basic = {"Authorization": aiohttp.encode_basic_auth("ada", "guess")}
    async with aiohttp.ClientSession() as session:
        async def guess() -> int:
            async with session.get(server.make_url(ADMIN), headers=basic) as response:
                return response.status
        statuses = await asyncio.gather(*(guess() for _ in range(45)))
    assert statuses.count(401) == 9 and statuses.count(429) == 36      # 3 free + 6 slowed (up to 8 s)
    assert sorted(server.delays) == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]


async def test_interleaved_valid_logins_do_not_reset_the_guessing(server):
    """One valid viewer login every 3 guesses used to wipe the count of the address."""
    guess = {"Authorization": aiohttp.encode_basic_auth("ada", "guess")}
    viewer = {"Authorization": aiohttp.encode_basic_auth("vera", "view-pw")}
    statuses, viewer_statuses = [], []
    async with aiohttp.ClientSession() as session:
        for i in range(24):
            headers = viewer if i % 4 == 3 else guess
            async with session.get(server.make_url(ADMIN if headers is guess else LIVE), headers=headers) as r:
                (statuses if headers is guess else viewer_statuses).append(r.status)
    assert statuses[:9] == [401] * 9 and set(statuses[9:]) == {429}
    # The legitimate viewer on the same address is let in every time, and never waits long: the
    # guesses at one name lock that name, not the address.
    assert viewer_statuses == [200] * 6 and max(server.delays) == 8.0 and len(server.delays) == 6


async def test_429_carries_retry_after(server):
    basic = {"Authorization": aiohttp.encode_basic_auth("ada", "guess")}
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.get(server.make_url(ADMIN), headers=basic) as response:
                last = response
    assert last.status == 429 and int(last.headers["Retry-After"]) > 0


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
    assert user.ha1.reveal() == make_ha1("ada", "counterd", "correct horse")
    assert user.ha1_sha256.reveal() == make_ha1("ada", "counterd", "correct horse", "SHA-256")


async def test_nonce_from_before_a_restart_is_stale_only_with_the_right_password(server):
    old_nonce = "1552908000.0011223344556677.00000000000000000000000000000000"
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(LIVE), headers={"Authorization": _digest("vera", old_nonce, 1)}) as r:
            assert r.status == 401 and "stale=true" in r.headers["WWW-Authenticate"]
        wrong = _digest("vera", old_nonce, 2).replace('response="', 'response="0')
        async with session.get(server.make_url(LIVE), headers={"Authorization": wrong}) as r:
            assert r.status == 401 and "stale" not in r.headers["WWW-Authenticate"]
    assert server.auth.throttle.failures("name", "vera") == 1


async def test_parallel_requests_on_one_nc_are_let_in_without_penalty(server):
    """digest-fetch counts nc up only after each answer, so parallel requests share one nc."""
    async with aiohttp.ClientSession() as session:
        nonce = await _challenge_nonce(session, server)
        headers = {"Authorization": _digest("vera", nonce, 1)}

        async def fetch() -> int:
            async with session.get(server.make_url(LIVE), headers=headers) as response:
                return response.status
        assert await asyncio.gather(*(fetch() for _ in range(6))) == [200] * 6
    assert server.delays == [] and server.auth.throttle.failures("address", "127.0.0.1") == 0


async def test_a_captured_operator_request_stays_refused_whatever_other_users_do(server, clock):
    async with aiohttp.ClientSession() as session:
        nonce = await _challenge_nonce(session, server)
        captured = {"Authorization": _digest("otto", nonce, 1, CLEAR)}
        async with session.get(server.make_url(CLEAR), headers=captured) as response:
            assert response.status == 200
        viewer_nonce = await _challenge_nonce(session, server)
        for nc in range(1, 4201):          # a viewer's traffic fills only the viewer's own table
            server.auth._first_use("vera", viewer_nonce, int(clock.now), nc)
        clock.now += 5
        async with session.get(server.make_url(CLEAR), headers=captured) as response:
            assert response.status == 401 and "stale=true" in response.headers["WWW-Authenticate"]


async def test_a_nonce_is_bound_to_the_address_it_was_issued_to(server):
    async with aiohttp.ClientSession() as session:
        nonce = await _challenge_nonce(session, server)
    issued = nonce.rpartition(".")[0]
    assert server.auth._nonce_issued(nonce, "127.0.0.1") is not None
    assert server.auth._nonce_issued(nonce, "192.0.2.7") is None                 # replayed from elsewhere
    forged = f"{int(issued.partition('.')[0]) + 9999}.{issued.partition('.')[2]}.{nonce.rpartition('.')[2]}"
    assert server.auth._nonce_issued(forged, "127.0.0.1") is None                # a later time, same signature


async def test_digest_sha256_with_requests_and_md5_with_aiohttp(aiohttp_server, tmp_path, clock):
    """Two Digest challenges (RFC 7616): requests answers the SHA-256 one, aiohttp the MD5 one."""
    store = Store(tmp_path / "counts.db", BERLIN)
    config = make_config(tmp_path)
    users = [{"name": u.name, "role": u.role, "ha1": u.ha1.reveal(),
              "ha1_sha256": make_ha1(u.name, "counterd", PASSWORDS[u.name], "SHA-256")} for u in config.users]
    config = config_from_dict({"users": users, "daemon": {"log_file": str(tmp_path / "log")}}, "<test>")
    server = await aiohttp_server(make_app(config, store, clock=clock))
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(LIVE)) as response:
            challenges = response.headers.getall("WWW-Authenticate")
    assert [c.split("algorithm=")[1].split(",")[0] for c in challenges[:2]] == ["MD5", "SHA-256"]
    seen: list[str] = []
    original = server.app[SITE].auth._check_digest

    def spy(request, fields):
        seen.append(fields.get("algorithm", "MD5").upper())
        return original(request, fields)
    server.app[SITE].auth._check_digest = spy
    url = str(server.make_url(LIVE))
    answer = await asyncio.to_thread(_requests_get, url, auth=HTTPDigestAuth("vera", "view-pw"))
    assert answer.status_code == 200 and seen == ["SHA-256"]
    assert await status_with(server, "vera", LIVE) == 200 and seen[-1] == "MD5"
    store.close()


async def test_sha256_is_not_offered_while_a_user_lacks_its_hash(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(LIVE)) as response:
            challenges = response.headers.getall("WWW-Authenticate")
    assert [c.split()[0] for c in challenges] == ["Digest", "Basic"]
    async with aiohttp.ClientSession() as session:
        nonce = await _challenge_nonce(session, server)
        headers = {"Authorization": _digest("vera", nonce, 1, algorithm="SHA-256")}
        async with session.get(server.make_url(LIVE), headers=headers) as response:
            assert response.status == 401


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/local/people-counter/.apioperator", b""),                 # curl --digest -d: first round
    ("GET", "/local/people-counter/.api?bogus", b""),
    ("GET", "/local/people-counter/.api?export-csv&date=garbage", b""),
    ("POST", "/local/people-counter/.apioperator?setparams", b"x" * 10_000),
    ("GET", "/api/v1/counts?res=bogus", b""),
])
async def test_no_credentials_get_the_challenge_before_any_parsing(server, method, path, body):
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.make_url(path), data=body,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
            assert response.status == 401 and response.headers.getall("WWW-Authenticate")


async def test_curl_digest_post_setparams(server):
    """curl sends the body only after the challenge it got for an empty first request."""
    import shutil
    import subprocess
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    url = str(server.make_url("/local/people-counter/.apioperator"))
    done = await asyncio.to_thread(subprocess.run, [
        "curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", "--digest", "-u", "otto:oper-pw",
        "-d", "setparams&Counter.Name=Door", url], capture_output=True, text=True, timeout=30)
    assert done.stdout == "200", done.stderr


async def test_a_viewer_on_the_operator_cgi_gets_a_fresh_challenge(server):
    basic = {"Authorization": aiohttp.encode_basic_auth("vera", "view-pw")}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/local/people-counter/.apioperator?live-sum.json"),
                               headers=basic) as response:
            assert response.status == 401 and "Digest" in response.headers["WWW-Authenticate"]
            assert "viewer role" in await response.text()
    assert server.auth.throttle.failures("name", "vera") == 0          # right password: no failure


def test_refusals_beyond_a_burst_are_paced_and_parked_ones_are_bounded():
    """A flood of refused guesses is answered at REFUSALS_PER_S after REFUSAL_BURST, so it cannot
    take the event loop (and counting's cores) with it; at most MAX_PARKED_REFUSALS wait."""
    from counterd.api.throttle import MAX_PARKED_REFUSALS, REFUSAL_BURST, REFUSALS_PER_S, RefusalPacer
    now = [100.0]
    pacer = RefusalPacer(clock=lambda: now[0])
    assert [pacer.wait() for _ in range(REFUSAL_BURST)] == [0.0] * REFUSAL_BURST
    waits = [pacer.wait() for _ in range(MAX_PARKED_REFUSALS)]
    assert waits == pytest.approx([(i + 1) / REFUSALS_PER_S for i in range(MAX_PARKED_REFUSALS)])
    assert pacer.parked == MAX_PARKED_REFUSALS and pacer.wait() == 0.0      # full: answered at once
    for _ in range(MAX_PARKED_REFUSALS):
        pacer.parked_done()
    assert pacer.wait() == pytest.approx((MAX_PARKED_REFUSALS + 1) / REFUSALS_PER_S)   # still in line
    now[0] += 3600                                           # a quiet hour: the burst is back
    assert pacer.wait() == 0.0


async def test_a_guessing_flood_is_answered_at_the_paced_rate(server):
    """In any time T at most REFUSAL_BURST + REFUSALS_PER_S * T refusals are answered (real time,
    real sockets), and every one of them is still a 429."""
    from counterd.api.throttle import REFUSAL_BURST, REFUSALS_PER_S
    basic = {"Authorization": aiohttp.encode_basic_auth("ada", "guess")}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        async def guess() -> int:
            async with session.get(server.make_url(ADMIN), headers=basic) as response:
                return response.status
        started = loop.time()
        statuses = await asyncio.gather(*(guess() for _ in range(9 + REFUSAL_BURST + 25)))
        took = loop.time() - started
    assert statuses.count(401) == 9 and statuses.count(429) == REFUSAL_BURST + 25
    assert took >= 25 / REFUSALS_PER_S
