"""Build one hour's report: a gzip'd CSV with one row for this camera, in the service's schema."""
from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from counterd.config import UploadConfig
from counterd.report_schema import (COUNT_COLUMNS, DEFAULT_CLASS_MAP, FULL_COVERAGE, WARNING_NO_COVERAGE,
                                    WARNING_OK, WARNING_PARTIAL, header)

HOUR = timedelta(hours=1)


class CountSource(Protocol):
    """What a report needs from the counts store (counterd.store.Store); blocking calls."""

    def counts_between(self, start: datetime, end: datetime) -> dict[tuple[str, str, str], int]: ...

    def coverage_between(self, start: datetime, end: datetime) -> float: ...


@dataclass(frozen=True)
class Report:
    hour: datetime      # start of the hour, UTC
    name: str           # file name in the outbox; sorts oldest first
    data: bytes         # the gzip'd CSV


def hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour holding an aware datetime."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def report_name(camera_ref: str, hour: datetime) -> str:
    return f"{hour.astimezone(UTC):%Y%m%dT%H}Z_{camera_ref}.csv.gz"


def service_time(moment: datetime) -> str:
    """A timestamp as the contract shows it: YYYY-MM-DD HH:MM:SS+00:00, whole seconds (the
    service keys rows on image_capt, microseconds included, so they must be stable)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def warning_code(coverage_s: float, hour_s: float = HOUR.total_seconds()) -> int:
    if coverage_s <= 0:
        return WARNING_NO_COVERAGE
    if coverage_s < FULL_COVERAGE * hour_s:
        return WARNING_PARTIAL
    return WARNING_OK


def column_counts(counts: dict[tuple[str, str, str], int], config: UploadConfig) -> dict[str, int]:
    """Sum the store's (line, direction, class) counts into the schema's columns."""
    class_map = dict(config.class_map or DEFAULT_CLASS_MAP[config.model_name])
    directions = ("in", "out") if config.direction == "both" else (config.direction,)
    columns = dict.fromkeys(COUNT_COLUMNS[config.model_name], 0)
    for (line, direction, class_name), n in counts.items():
        if config.lines and line not in config.lines:
            continue
        if direction in directions and class_name in class_map:
            columns[class_map[class_name]] += n
    return columns


def build_report(source: CountSource, config: UploadConfig, hour: datetime, built_at: datetime) -> Report:
    """Blocking (it queries the store): run it off the event loop."""
    start = hour_floor(hour)
    end = start + HOUR
    columns = column_counts(source.counts_between(start, end), config)
    row = {"image_proc": service_time(built_at), "image_capt": service_time(start),
           "camera_ref": config.camera_ref, "model_name": config.model_name, **columns,
           "warnings": warning_code(source.coverage_between(start, end))}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header(config.model_name), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    # mtime=0: the same hour built twice gives the same bytes.
    data = gzip.compress(text.getvalue().encode("utf-8"), mtime=0)
    return Report(hour=start, name=report_name(config.camera_ref, start), data=data)


def warning_of(data: bytes) -> int | None:
    """The warnings code of a report built here (None when it cannot be read: a file we did not
    make). Decides whether the report may overwrite the service's row."""
    try:
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(data).decode("utf-8"))))
        return max(int(row["warnings"]) for row in rows)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError):
        return None


def hour_of_name(name: str) -> datetime | None:
    """The hour a report file is for, from its outbox name (None for a name we did not make)."""
    try:
        return datetime.strptime(name[:12], "%Y%m%dT%HZ").replace(tzinfo=UTC)
    except ValueError:
        return None
