"""The durable outbox: reports wait here, on disk, until the service has them.

Layout under <state_dir>/outbox/:
  20261121T10Z_<camera_ref>.csv.gz   a report waiting to be sent (names sort oldest first)
  .<name>.tmp                        a report being written; never sent, removed at start-up
  quarantine/<name>                  a report the service rejected (HTTP 500), kept for a person
  quarantine/<name>.why              what the service answered
  status.json                        last built / delivered hour, last success, last error

Every write is temp file, fsync, rename, fsync of the directory, so a crash or power cut
leaves either the old file or the new one. All methods block: call them off the event loop.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from counterd.durable import fsync_dir, write_atomically

log = logging.getLogger(__name__)

REPORT_SUFFIX = ".csv.gz"


@dataclass
class DeliveryStatus:
    """What status.json holds. Times are ISO 8601 UTC strings; hours are the hour's start."""
    last_built_hour: str | None = None       # newest hour written to the outbox
    last_delivered_hour: str | None = None   # newest hour the service accepted
    last_success: dict | None = None         # {"time", "file"}
    last_error: dict | None = None           # {"time", "file", "message"}
    # Reports the service answered 500: name -> {"attempts", "delivered_since", "parked"}
    # (uploader.py: a 500 is retried; quarantined after upload.reject_attempts, or at once when
    # it comes again after the service accepted another report).
    rejections: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list, repr=False)  # why the file was unreadable

    def to_json(self) -> dict:
        data = asdict(self)
        del data["problems"]
        return data


class Outbox:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.quarantine_dir = self.dir / "quarantine"
        self.status_path = self.dir / "status.json"

    def put(self, name: str, data: bytes) -> Path:
        """Durably add (or replace) a report; once this returns it survives a crash."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        write_atomically(path, data)
        return path

    def pending(self) -> list[Path]:
        """Reports waiting to be sent, oldest hour first."""
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if p.name.endswith(REPORT_SUFFIX) and p.is_file())

    def quarantined(self) -> list[Path]:
        if not self.quarantine_dir.is_dir():
            return []
        return sorted(p for p in self.quarantine_dir.iterdir() if p.name.endswith(REPORT_SUFFIX))

    def remove(self, path: Path) -> None:
        """Called only once the service has answered 2xx for this file."""
        path.unlink(missing_ok=True)
        fsync_dir(self.dir)

    def quarantine(self, path: Path, why: str) -> Path:
        """Set a rejected report aside (never deleted); returns where it went."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / path.name
        write_atomically(target.with_name(target.name + ".why"), (why + "\n").encode("utf-8"))
        try:
            os.replace(path, target)
        except FileNotFoundError:
            pass   # another sender (`counterd report push` beside the daemon) moved it first
        fsync_dir(self.quarantine_dir)
        fsync_dir(self.dir)
        return target

    def requeue(self, name: str) -> Path:
        """Move a quarantined report back into the outbox (after its cause was fixed)."""
        source = self.quarantine_dir / name
        target = self.dir / name
        os.replace(source, target)
        source.with_name(name + ".why").unlink(missing_ok=True)
        fsync_dir(self.dir)
        fsync_dir(self.quarantine_dir)
        return target

    def remove_partial_writes(self) -> list[Path]:
        """Temp files left by a crash mid-write. They were never in the outbox proper (the hour's
        build was not recorded), so the hour is built again."""
        if not self.dir.is_dir():
            return []
        partial = [p for p in self.dir.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
        for p in partial:
            p.unlink(missing_ok=True)
        return partial

    def read_status(self) -> DeliveryStatus:
        """The saved status; a missing file is a first start, an unreadable one is reported in
        `problems` (and treated as a first start that backfills the whole horizon)."""
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
            known = {k: data[k] for k in DeliveryStatus().to_json() if k in data}
            status = DeliveryStatus(**known)
            for key in ("last_built_hour", "last_delivered_hour"):
                value = getattr(status, key)
                if value is not None:
                    datetime.fromisoformat(value)
            for key in ("last_success", "last_error"):
                if not isinstance(getattr(status, key), (dict, type(None))):
                    raise TypeError(f"{key} is not an object")
            if not isinstance(status.rejections, dict) or not all(
                    isinstance(v, dict) and isinstance(v.get("attempts"), int) for v in status.rejections.values()):
                raise TypeError("rejections is not an object of {attempts, ...} objects")
            return status
        except FileNotFoundError:
            return DeliveryStatus()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            return DeliveryStatus(problems=[f"{self.status_path}: unreadable ({exc.__class__.__name__}: {exc})"])

    def write_status(self, status: DeliveryStatus) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.status_path, json.dumps(status.to_json(), indent=2).encode("utf-8"))


def iso_utc(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds")
