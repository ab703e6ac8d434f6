"""One upload to the central service, and what its answer means for the report.

The service's answers (../shared/spec/central-service.md): 200 JSON with status "ok" when stored
(duplicates included), 200 `{}` when it saw no file, 401 JSON for a bad PIN, an HTML 500 for any
content it cannot parse -- and also while its database is locked or down, so one 500 does not
prove the content bad (the uploader decides). Proxies in front of it answer 502/503/504 while it
is down. Anything else, a 200 HTML page included (a proxy's login page, a wrong url), is not a
delivery.
"""
from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass

import aiohttp

from counterd.config.fields import redact_url


class Outcome(enum.Enum):
    DELIVERED = "delivered"      # 2xx with JSON status "ok": delete the file
    REJECTED = "rejected"        # 500: our content, or the service's database; retried, then quarantined
    REFUSED = "refused"          # 401, wrong url, no file seen: fix the config; keep, retry slowly
    UNREACHABLE = "unreachable"  # timeout, connection error, 502/503/504: retry with backoff


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message: str                 # one line for the log; never contains the PIN
    unknown_cameras: tuple[int, ...] = ()   # the service's numbers (pks) of cameras it cannot show yet


def upload_endpoint(base_url: str) -> str:
    # The service's route has no trailing slash, and a redirect would turn the POST into a GET.
    return base_url.rstrip("/") + "/upload_report"


def display_url(url: str) -> str:
    """The URL for logs, its credentials redacted (config.redact_url: the one rule for URLs)."""
    return redact_url(url)


async def send_report(session: aiohttp.ClientSession, endpoint: str, name: str, data: bytes,
                      pin: str, overwrite: bool) -> SendResult:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/gzip")
    form.add_field("pin-code", pin)
    if overwrite:
        form.add_field("overwrite", "t")   # the only value the service reads as "overwrite"
    where = display_url(endpoint)
    try:
        async with session.post(endpoint, data=form, allow_redirects=False) as response:
            body = await response.read()
            return classify(response.status, body, where, response.headers.get("Location"))
    except asyncio.TimeoutError:
        return SendResult(Outcome.UNREACHABLE, f"{where} did not answer in time")
    except (aiohttp.ClientError, OSError) as exc:
        return SendResult(Outcome.UNREACHABLE, f"cannot reach {where}: {exc.__class__.__name__}: {exc}")


def classify(status: int, body: bytes, where: str, location: str | None = None) -> SendResult:
    if 200 <= status < 300:
        answer = parse_json(body)
        if answer == {}:
            return SendResult(Outcome.REFUSED, f"{where} answered 200 {{}}: it saw no file in the upload")
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            return SendResult(Outcome.REFUSED, f"{where} answered {status} without the service's JSON "
                                               f'status "ok" ({snippet(body)}), so nothing was stored: '
                                               "check upload.url (a proxy's login page? another site?)")
        unknown = answer.get("pks_of_unknown_cameras")
        pks = tuple(pk for pk in unknown if isinstance(pk, int)) if isinstance(unknown, list) else ()
        return SendResult(Outcome.DELIVERED, f"{where} answered {status}", unknown_cameras=pks)
    if status == 401:
        return SendResult(Outcome.REFUSED, f"{where} refused the PIN (401 unauthorized): "
                                           "check upload.pin / pin_env / pin_file")
    if status == 500:
        return SendResult(Outcome.REJECTED, f"{where} answered 500 ({snippet(body)})")
    if status in (408, 429) or status >= 500:
        return SendResult(Outcome.UNREACHABLE, f"{where} answered {status} (service unavailable)")
    if 300 <= status < 400:
        return SendResult(Outcome.REFUSED, f"{where} redirects ({status}) to {location}: "
                                           "set upload.url to the service's real address")
    return SendResult(Outcome.REFUSED, f"{where} answered {status} ({snippet(body)}): check upload.url")


def parse_json(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def snippet(body: bytes, limit: int = 80) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text[:limit] + ("..." if len(text) > limit else "")
