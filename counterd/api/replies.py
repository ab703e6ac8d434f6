"""One-line text/plain answers and refusals: what every API error looks like."""
from __future__ import annotations

from aiohttp import web


def plain(text: str, status: int = 200) -> web.Response:
    """A one-line text/plain answer."""
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


def refusal(status: int, text: str, headers=None) -> web.HTTPException:
    """A one-line text/plain error to raise."""
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
           429: web.HTTPTooManyRequests, 501: web.HTTPNotImplemented,
           503: web.HTTPServiceUnavailable}[status]
    return cls(text=text + "\n", content_type="text/plain", headers=headers)
