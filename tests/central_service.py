"""A faithful stand-in for the central CCTV GCC API service's upload endpoint, for tests.

It follows ../shared/spec/central-service.md and the service's code (views.upload_report,
utils.handle_uploaded_report_file, schemas.remote, pydantic 1 parsing) step by step:
the PIN is read from the form body only, `overwrite` means overwrite only for the literal "t",
every file field's last file is processed, the content is sniffed, parsed with the first row's
schema and fully validated before anything is stored, and anything it cannot parse is an HTML
500. Rows are insert-or-ignore on (timestamp, camera), or upserts with overwrite.
"""
from __future__ import annotations

import asyncio
import csv
import gzip
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from aiohttp import web

COLUMNS = {
    "yolo": ("car", "pedestrian", "cyclist", "motorcycle", "bus", "lorry", "van", "taxi"),
    "tf2": ("car", "person", "bicycle", "motorcycle", "bus", "truck"),
}
UNAUTHORIZED = {"status_code": 401, "message": "unauthorized"}
DJANGO_500 = ('\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n'
              '<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n')

# pydantic 1's datetime format (pydantic/datetime_parse.py), matched from the start.
DATETIME_RE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})[T ]"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:\.(?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$")


class Rejected(Exception):
    """Content the real service would fail on (it answers an HTML 500)."""


def parse_datetime(value: str | None) -> datetime:
    if value is None:
        raise Rejected("datetime required")
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if number > 2e10:           # pydantic 1 reads big numbers as milliseconds
            number /= 1000
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=number)
    match = DATETIME_RE.match(value)
    if not match:
        raise Rejected(f"invalid datetime format {value!r}")
    parts = match.groupdict()
    tz = parts.pop("tzinfo")
    if parts["microsecond"]:
        parts["microsecond"] = parts["microsecond"].ljust(6, "0")
    kwargs = {k: int(v) for k, v in parts.items() if v is not None}
    if tz is None or tz == "Z":
        tzinfo = UTC                # no offset: the service's TIME_ZONE, UTC
    else:
        minutes = int(tz[-2:]) if len(tz) > 3 else 0
        offset = 60 * int(tz[1:3]) + minutes
        tzinfo = timezone(timedelta(minutes=-offset if tz[0] == "-" else offset))
    try:
        return datetime(**kwargs, tzinfo=tzinfo).astimezone(UTC)
    except ValueError as exc:
        raise Rejected(str(exc)) from None


def parse_int(value: str | None, optional: bool = False) -> int | None:
    if value is None:
        if optional:
            return None
        raise Rejected("none is not an allowed value")
    try:
        return int(value)           # pydantic 1: int(v); "1.0", "" and "x" fail
    except (TypeError, ValueError):
        raise Rejected(f"value is not a valid integer: {value!r}") from None


@dataclass
class Row:
    timestamp: datetime             # image_capt, the key with the camera
    camera_id: str
    counts: dict[str, int]
    camera_ok: bool | None
    image_proc: datetime


@dataclass
class Upload:
    """One POST as the service saw it."""
    status: int
    overwrite: bool
    pin: str | None
    rows: list[Row] = field(default_factory=list)


class CentralService:
    def __init__(self, pin: str = "4321"):
        self.pin = pin
        self.cameras: dict[str, int] = {}          # camera_id -> pk; none is complete until registered
        self.complete: set[str] = set()
        self.records: dict[str, dict[tuple[datetime, str], Row]] = {"yolo": {}, "tf2": {}}
        self.uploads: list[Upload] = []
        self.outage: int | None = None              # a proxy's answer while the service is down
        self.database_down = 0                      # answer this many uploads with the Django 500
        self.login_page = False                     # a proxy in front answers 200 with its login page
        self.stored_rows = asyncio.Event()          # set whenever an upload stores rows

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/upload_report", self.upload_report)
        return app

    def stored(self, schema: str = "yolo") -> list[Row]:
        return sorted(self.records[schema].values(), key=lambda r: (r.camera_id, r.timestamp))

    def accepted(self) -> list[Upload]:
        return [u for u in self.uploads if u.status == 200 and u.rows]

    async def upload_report(self, request: web.Request) -> web.Response:
        if self.outage is not None:
            return web.Response(status=self.outage, text=f"<html><body>{self.outage}</body></html>",
                                content_type="text/html")
        if self.login_page:
            return web.Response(text="<html><body><form>Sign in to continue</form></body></html>",
                                content_type="text/html")
        form = await request.post()
        fields = {k: [v for v in form.getall(k) if isinstance(v, str)] for k in set(form)}
        files = {k: [v for v in form.getall(k) if isinstance(v, web.FileField)] for k in set(form)}
        pin = (fields.get("pin-code") or [None])[-1]            # request.POST.get: the last value
        overwrite = (fields.get("overwrite") or [None])[-1] == "t"
        upload = Upload(status=200, overwrite=overwrite, pin=pin)
        self.uploads.append(upload)
        if pin != self.pin:
            upload.status = 401
            return web.json_response(UNAUTHORIZED, status=401)
        answer: dict = {}
        try:
            if self.database_down:              # a locked or missing database: the same HTML 500
                self.database_down -= 1
                raise OSError("database is locked")
            for name in sorted(files):
                if files[name]:                                 # request.FILES.values(): last per name
                    answer.update(self.handle_file(files[name][-1].file.read(), overwrite, upload))
        except (Rejected, ValueError, KeyError, csv.Error, OSError, UnicodeDecodeError, EOFError,
                zipfile.BadZipFile):
            upload.status = 500
            return web.Response(status=500, text=DJANGO_500, content_type="text/html")
        if upload.rows:
            self.stored_rows.set()
        return web.json_response(answer)

    def handle_file(self, content: bytes, overwrite: bool, upload: Upload) -> dict:
        if content[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                text = archive.read("report.csv").decode("utf8")
        elif content[:2] == b"\x1f\x8b":
            text = gzip.decompress(content).decode("utf-8")
        else:
            raise Rejected("File is not a zip or gzip file")
        schema = self.discover_schema(text)
        rows = [self.parse_row(row, schema) for row in csv.DictReader(io.StringIO(text))]
        # Everything parsed: now stored, camera by camera, with no transaction around it.
        for row in sorted(rows, key=lambda r: r.camera_id):
            self.store(row, schema, overwrite)
            upload.rows.append(row)
        unknown = [pk for camera, pk in self.cameras.items() if camera not in self.complete]
        return {"status": "ok", "message": "Report file was processed successfully",
                "have_unknown_cameras": bool(unknown), "pks_of_unknown_cameras": unknown}

    @staticmethod
    def discover_schema(text: str) -> str:
        dialect = csv.Sniffer().sniff(text[:1024])
        try:
            first = dict(next(csv.DictReader(io.StringIO(text), dialect=dialect)))
        except StopIteration:
            raise Rejected("No data rows found in report file") from None
        model_name = (first.get("model_name") or "").lower().strip()
        if "model_name" not in first:
            raise Rejected("Model name column is not present in the report file")
        if model_name not in COLUMNS:
            raise Rejected(f"Report model_name {model_name} is not supported")
        return model_name

    @staticmethod
    def parse_row(raw: dict, schema: str) -> Row:
        row = {k: None if v == "None" else v for k, v in raw.items()}
        for text_field in ("camera_ref", "model_name"):
            if row.get(text_field) is None:
                raise Rejected(f"{text_field}: field required")
        return Row(timestamp=parse_datetime(row.get("image_capt")),
                   image_proc=parse_datetime(row.get("image_proc")),
                   camera_id=row["camera_ref"].strip().lower(),
                   counts={c: parse_int(row.get(c)) for c in COLUMNS[schema]},
                   camera_ok=None if (w := parse_int(row.get("warnings"), optional=True)) is None else not w)

    def store(self, row: Row, schema: str, overwrite: bool) -> None:
        if row.camera_id in self.cameras and " " in row.camera_id:
            raise Rejected("IntegrityError: a camera_ref with spaces breaks every later upload")
        self.cameras.setdefault(row.camera_id, len(self.cameras) + 1)
        key = (row.timestamp, row.camera_id)
        if key not in self.records[schema] or overwrite:
            self.records[schema][key] = row
