"""`counterd report build|push|status|requeue`: hourly reports for the central service by hand."""
from __future__ import annotations

import asyncio
import functools
import gzip
import json
import logging
import re
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from counterd.config import Config, load_config
from counterd.errors import UserError
from counterd.upload.outbox import Outbox
from counterd.upload.report import CountSource, build_report, hour_floor

log = logging.getLogger("counterd.report")

DEFAULT_CONFIG = "/etc/counterd/counterd.toml"


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="hourly reports for the central service",
                              description="Build, send and inspect the hourly CSV.GZ reports.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str, func):
        a = actions.add_parser(name, help=help, description=help)
        a.add_argument("--config", default=DEFAULT_CONFIG, help=f"TOML config (default {DEFAULT_CONFIG})")
        a.add_argument("--state-dir", help="override daemon.state_dir (counts database, outbox)")
        a.set_defaults(func=func)
        return a

    build = action("build", "build one hour's report from the counts store", run_build)
    build.add_argument("--hour", required=True, metavar="YYYY-MM-DDTHH",
                       help="the hour, UTC unless an offset is given (e.g. 2026-11-21T10)")
    build.add_argument("--out", metavar="FILE", help="write the .csv.gz here (default: the CSV on stdout)")
    build.add_argument("--spool", action="store_true", help="put it in the outbox to be sent")
    action("push", "build every finished hour due and send the outbox once, now", run_push)
    status = action("status", "show the outbox, quarantine, last success and last error", run_status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    requeue = action("requeue", "move quarantined reports back into the outbox", run_requeue)
    requeue.add_argument("names", nargs="*", metavar="NAME", help="file names in quarantine (default: all)")


def explained(run):
    """Disk and database trouble (permissions, a full disk, a locked database) as one line."""
    @functools.wraps(run)
    def wrapper(args) -> int:
        try:
            return run(args)
        except OSError as exc:
            raise UserError(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from None
        except sqlite3.Error as exc:
            raise UserError(f"counts database: {exc}") from None
    return wrapper


def parse_hour(text: str) -> datetime:
    """'2026-11-21T10' (UTC) or any ISO 8601 time, with or without an offset, inside the hour."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}", value):
        value += ":00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--hour: expected YYYY-MM-DDTHH (UTC), e.g. 2026-11-21T10, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return hour_floor(moment)


def state_dir(config: Config, args) -> Path:
    return Path(args.state_dir or config.daemon.state_dir)


def store_path(config: Config, args) -> Path:
    return Path(config.store.path) if config.store.path else state_dir(config, args) / "counts.db"


class NoCounts:
    """The source for a box with no counts database yet: nothing counted, nothing analysed."""

    def counts_between(self, start, end):
        return {}

    def coverage_between(self, start, end) -> float:
        return 0.0


def open_source(config: Config, args):
    """The counts store, or NoCounts when it does not exist yet (so nothing is created here)."""
    path = store_path(config, args)
    if not path.exists():
        log.info("no counts database at %s: the report says nothing was analysed", path)
        return NoCounts()
    from counterd.store import Store   # sqlite and the store's modules only when there is one
    # Reports use UTC hours, so the store's local zone does not matter here. Read-only: a report
    # never migrates the schema nor deletes anything, even when run as root beside the daemon.
    return Store.open(path, UTC, read_only=True)


def close_source(source: CountSource) -> None:
    if hasattr(source, "close"):
        source.close()


def need_camera_ref(config: Config) -> None:
    if not config.upload.camera_ref:
        raise UserError(f"{config.path}: upload.camera_ref is not set (the camera's id at the service)")


@explained
def run_build(args) -> int:
    config = load_config(args.config)
    need_camera_ref(config)
    hour = parse_hour(args.hour)
    source = open_source(config, args)
    try:
        report = build_report(source, config.upload, hour, datetime.now(UTC))
    finally:
        close_source(source)
    if args.spool:
        path = Outbox(state_dir(config, args) / "outbox").put(report.name, report.data)
        print(f"spooled {path}")
    if args.out:
        Path(args.out).write_bytes(report.data)
        print(f"wrote {args.out}")
    if not args.out and not args.spool:
        sys.stdout.write(gzip.decompress(report.data).decode("utf-8"))
    return 0


@explained
def run_push(args) -> int:
    from counterd.upload.uploader import Uploader   # aiohttp and APScheduler only for pushing
    config = load_config(args.config)
    upload = config.upload
    need_camera_ref(config)
    if not upload.url:
        raise UserError(f"{config.path}: upload.url is not set")
    source = open_source(config, args)

    async def push() -> None:
        uploader = Uploader(upload, source, state_dir(config, args))
        try:
            await uploader.run_once()
        finally:
            await uploader.close()

    try:
        asyncio.run(push())
    finally:
        close_source(source)
    left = Outbox(state_dir(config, args) / "outbox").pending()
    if left:
        print(f"{len(left)} report(s) still waiting (see the log above); the daemon retries them")
        return 1
    print("outbox empty: every report delivered or quarantined")
    return 0


def describe(outbox: Outbox) -> dict:
    status = outbox.read_status()
    return {
        "outbox": str(outbox.dir),
        "waiting": [{"file": p.name, "bytes": p.stat().st_size} for p in outbox.pending()],
        "quarantined": [{"file": p.name, "why": read_why(p)} for p in outbox.quarantined()],
        **status.to_json(),
        "problems": status.problems,
    }


def read_why(path: Path) -> str:
    try:
        return path.with_name(path.name + ".why").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@explained
def run_status(args) -> int:
    config = load_config(args.config)
    info = describe(Outbox(state_dir(config, args) / "outbox"))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"outbox: {info['outbox']}")
    print(f"waiting: {len(info['waiting'])} report(s), {sum(w['bytes'] for w in info['waiting'])} bytes")
    for w in info["waiting"]:
        print(f"  {w['file']}  {w['bytes']} B")
    print(f"quarantined: {len(info['quarantined'])}")
    for q in info["quarantined"]:
        print(f"  {q['file']}  {q['why']}")
    print(f"last built hour: {info['last_built_hour'] or '-'}")
    print(f"last delivered hour: {info['last_delivered_hour'] or '-'}")
    success, error = info["last_success"], info["last_error"]
    print(f"last success: {success['time'] + '  ' + success['file'] if success else '-'}")
    print(f"last error: {error['time'] + '  ' + error['file'] + '  ' + error['message'] if error else '-'}")
    for problem in info["problems"]:
        print(f"problem: {problem}")
    return 0


@explained
def run_requeue(args) -> int:
    config = load_config(args.config)
    outbox = Outbox(state_dir(config, args) / "outbox")
    names = args.names or [p.name for p in outbox.quarantined()]
    for name in names:
        if not (outbox.quarantine_dir / name).is_file():
            raise UserError(f"{name}: not in {outbox.quarantine_dir}")
        print(f"requeued {outbox.requeue(name)}")
    return 0
