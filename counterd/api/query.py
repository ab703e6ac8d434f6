"""Query strings of the Axis API: `export-csv&date=20240101-20240107&res=1h`. Everything a client
sends is checked here; a problem raises BadRequest with one line naming the parameter (HTTP 400)."""
from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qsl

from counterd.store.wallclock import RESOLUTIONS, wall_of_date

MAX_QUERY_BYTES = 4096
MAX_FIELDS = 64


class BadRequest(Exception):
    """A client mistake; str() is the one-line reason sent with HTTP 400."""


def parse_query(raw: str | bytes) -> list[tuple[str, str]]:
    """Decode a raw (still percent-encoded) query string strictly as UTF-8."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise BadRequest("query: not valid UTF-8") from None
    if len(raw) > MAX_QUERY_BYTES:
        raise BadRequest(f"query: too long ({len(raw)} bytes, at most {MAX_QUERY_BYTES})")
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest("query: not valid UTF-8") from None
    except ValueError:
        raise BadRequest(f"query: more than {MAX_FIELDS} parameters") from None
    for key, value in pairs:
        if any(ord(c) < 32 for c in key + value):
            raise BadRequest(f"{key or 'query'}: control characters are not allowed")
    return pairs


def one_value_each(pairs: list[tuple[str, str]], may_repeat: str | None = None) -> dict[str, str]:
    """The one rule for repeated parameters, on the Axis CGIs and /api/v1 alike: a parameter
    given twice is refused, naming it (a silent first-wins or last-wins would answer a question
    the client did not ask). `may_repeat` is the Axis command, which the doc's own setparams form
    sends both in the URL and in the body."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out and key != may_repeat:
            raise BadRequest(f"{key}: given more than once (each parameter at most once)")
        out[key] = value
    return out


_DAY_RE = re.compile(r"\d{8}")


def parse_day(text: str, param: str = "date") -> int:
    """YYYYMMDD -> wall epoch of that local midnight."""
    if not _DAY_RE.fullmatch(text):
        raise BadRequest(f"{param}: expected YYYYMMDD, got {text[:40]!r}")
    try:
        return wall_of_date(date(int(text[:4]), int(text[4:6]), int(text[6:])))
    except ValueError:
        raise BadRequest(f"{param}: {text} is not a calendar date") from None


class DaySelection:
    """What `date=` asked for: all days, a range (inclusive), or a list of days."""

    def __init__(self, first: int | None = None, last: int | None = None, days: set[int] | None = None):
        self.first, self.last, self.days = first, last, days

    def pick(self, available: list[int]) -> list[int]:
        """The requested days that have data, oldest first (days without data yield nothing)."""
        if self.days is not None:
            return [d for d in available if d in self.days]
        return [d for d in available
                if (self.first is None or d >= self.first) and (self.last is None or d <= self.last)]


def parse_dates(text: str | None, default: str = "all", param: str = "date") -> DaySelection:
    text = default if text is None else text
    if text == "all":
        return DaySelection()
    if "-" in text:
        a, _, b = text.partition("-")
        first, last = parse_day(a, param), parse_day(b, param)
        if last < first:
            raise BadRequest(f"{param}: range end {b} is before its start {a}")
        return DaySelection(first, last)
    if "," in text:
        return DaySelection(days={parse_day(part, param) for part in text.split(",")})
    day = parse_day(text, param)
    return DaySelection(day, day)


def parse_res(text: str | None, allowed: tuple[str, ...], default: str = "15m", param: str = "res") -> int:
    text = default if text is None else text
    if text not in allowed:
        raise BadRequest(f"{param}: must be one of {', '.join(allowed)}, got {text[:20]!r}")
    return RESOLUTIONS[text]


# Per export or /api/v1/counts request, one limit for both APIs: a year at 15m (35 k bins) fits,
# ~34 days at 1m; beyond it a small box would spend seconds and megabytes on one answer.
MAX_BINS = 50_000


def check_bin_count(days: int, res: int, res_name: str, limit: int = MAX_BINS) -> None:
    """Refuse an export that would be too big to build quickly on a small box."""
    if days * (86400 // res) > limit:
        raise BadRequest(f"date: {days} days at res={res_name} is more than {limit} bins; "
                         f"ask for fewer days or a coarser res")


def parse_int(text: str | None, param: str, *, default: int | None = None, lo: int = 0,
              hi: int = 10**9) -> int:
    if text is None or text == "":
        if default is None:
            raise BadRequest(f"{param}: required (an integer)")
        return default
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise BadRequest(f"{param}: expected an integer, got {text[:20]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadRequest(f"{param}: must be between {lo} and {hi}, got {value}")
    return value


def parse_epoch(text: str | None, param: str, default: float) -> float:
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{param}: expected epoch seconds, got {text[:20]!r}") from None
    if not 0 <= value < 253402300800:      # the year 10000
        raise BadRequest(f"{param}: epoch seconds out of range, got {text[:20]!r}")
    return value

