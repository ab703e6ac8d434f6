"""The uploader on the daemon's event loop: build every finished hour into the outbox, send the
outbox oldest first, retry what did not arrive.

One task does everything in turn (build, then send), woken by a job on the daemon's one
scheduler (counterd/daemon/jobs.py) at upload.minute past each hour, at start-up, and when a
retry wait ends. A second job checks the outbox's size hourly. Store queries and disk
writes run in worker threads. Hours are UTC hours.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import aiohttp
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from counterd.backoff import Backoff
from counterd.config import UploadConfig
from counterd.upload.metrics import UploadMetrics
from counterd.upload.outbox import DeliveryStatus, Outbox, iso_utc
from counterd.upload.pin import PinError, read_pin
from counterd.upload.report import HOUR, CountSource, Report, build_report, hour_floor, hour_of_name, warning_of
from counterd.report_schema import WARNING_OK
from counterd.upload.sender import Outcome, SendResult, display_url, send_report, upload_endpoint

log = logging.getLogger("counterd.upload")

HOURLY_JOB = "upload-hourly"
SPOOL_JOB = "upload-spool-check"


class Clock(Protocol):
    def now(self) -> datetime: ...                     # aware

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Uploader:
    """Daemon use, on its event loop, after the store is open and before it closes:

        uploader = Uploader(config.upload, store, config.daemon.state_dir,
                            metrics=UploadMetrics(registry_served_on_metrics))
        await uploader.start(jobs)    # start-up backfill and send begin at once
        uploader.reconfigure(new.upload)  # on SIGHUP
        await uploader.stop()

    One-shot use (CLI, tests): `await uploader.run_once()`, then `await uploader.close()`."""

    def __init__(self, config: UploadConfig, source: CountSource, state_dir: str | Path, *,
                 clock: Clock | None = None, metrics: UploadMetrics | None = None,
                 rng: random.Random | None = None):
        self.config = config
        self.source = source
        self.outbox = Outbox(Path(state_dir) / "outbox")
        self.clock = clock or SystemClock()
        self.metrics = metrics or UploadMetrics(CollectorRegistry())
        self.rng = rng or random.Random()
        self.endpoint = upload_endpoint(config.url)
        self._backoff = Backoff(config.backoff_base_s, config.backoff_cap_s, self.rng)   # unreachable answers
        self._status_lock = threading.Lock()
        self._was_over_limit = False
        self._warned_unknown_camera: tuple[str, int] | None = None   # (camera_ref, camera_pk) told about
        self._session: aiohttp.ClientSession | None = None
        self._session_outdated = False
        self._jobs = None                    # the daemon's scheduler (counterd.daemon.jobs.Jobs)
        self._task: asyncio.Task | None = None
        self._blocking_work: set[asyncio.Future] = set()   # worker-thread calls still running
        self._wake = asyncio.Event()
        # Set while the sender waits (next hour, a retry, a wake): the last cycle's writes to the
        # outbox and status.json are done. Cleared when a cycle starts.
        self.idle = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, jobs) -> None:
        """Add the hourly and spool-check jobs to `jobs` (the daemon's one scheduler) and start
        the sender; the first cycle (start-up backfill and send) begins at once."""
        self._jobs = jobs
        jobs.add(HOURLY_JOB, self._on_the_hour, self._hourly_trigger())
        jobs.add(SPOOL_JOB, self._check_spool, IntervalTrigger(hours=1))
        self._task = asyncio.create_task(self._run(), name="counterd-upload")
        log.info("uploading hourly reports for %r to %s at minute %d past each hour",
                 self.config.camera_ref, display_url(self.endpoint), self.config.minute)

    async def stop(self) -> None:
        if self._jobs is not None:
            self._jobs.remove(HOURLY_JOB)
            self._jobs.remove(SPOOL_JOB)
            self._jobs = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._blocking_work:
            # Store queries or outbox writes in worker threads (the sender's, and the spool-check
            # job's beside it): let them finish before the store closes.
            await asyncio.gather(*self._blocking_work, return_exceptions=True)
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reconfigure(self, config: UploadConfig) -> None:
        """Apply a reloaded [upload] section (SIGHUP) from a cycle that starts now. Turning
        uploads off is the daemon's call: it stops the uploader."""
        self.config = config
        self.endpoint = upload_endpoint(config.url)
        self._backoff.base, self._backoff.cap = config.backoff_base_s, config.backoff_cap_s
        self._session_outdated = True          # the timeouts may have changed
        if self._jobs is not None:
            self._jobs.reschedule(HOURLY_JOB, self._hourly_trigger())
        self.wake()

    def _hourly_trigger(self) -> CronTrigger:
        return CronTrigger(minute=self.config.minute, timezone=UTC)

    def wake(self) -> None:
        """Build and send now instead of waiting for the next hour or retry."""
        self._wake.set()

    async def _on_the_hour(self) -> None:
        self._wake.set()

    async def _check_spool(self) -> None:
        """Hourly: the outbox's size on /metrics, and a warning while it is over its limit."""
        await self._blocking(self._refresh_spool_metrics, True)

    async def _run(self) -> None:
        cleaned = False
        while True:
            self._wake.clear()
            self.idle.clear()
            try:
                if not cleaned:
                    await self._blocking(self._forget_partial_writes)
                    cleaned = True
                retry_in = await self.run_once()
            except OSError as exc:   # disk full, permissions: keep the daemon up, try again later
                log.error("upload: %s; trying again in %g s", exc, self.config.backoff_cap_s)
                retry_in = self.config.backoff_cap_s
            except Exception:        # a bug: say so loudly, but never take the counting down
                log.exception("upload cycle failed; trying again in %g s", self.config.backoff_cap_s)
                retry_in = self.config.backoff_cap_s
            self.idle.set()
            await self._sleep_or_wake(retry_in)

    async def _sleep_or_wake(self, seconds: float | None) -> None:
        waits = {asyncio.ensure_future(self._wake.wait())}
        if seconds is not None:
            waits.add(asyncio.ensure_future(self.clock.sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _blocking(self, fn, *args):
        """Run fn in a worker thread. If our task is cancelled meanwhile the thread still
        finishes, and stop() waits for it."""
        work = asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))
        self._blocking_work.add(work)
        work.add_done_callback(self._blocking_work.discard)
        return await asyncio.shield(work)

    # -- one cycle ------------------------------------------------------------------------------

    async def run_once(self) -> float | None:
        """Build every finished hour not yet built, then send the outbox. Returns None when the
        outbox is empty, else seconds to wait before trying again."""
        await self._blocking(self.build_due)
        return await self.send_pending()

    def build_due(self) -> list[Report]:
        """Blocking. Build each finished hour after the last one built (within the backfill
        horizon) into the outbox, oldest first, recording each as built once it is on disk."""
        now = self.clock.now()
        with self._status_lock:
            status = self.outbox.read_status()
            first = self._first_hour_to_build(status, now)
            built = []
            hour = first
            while hour + HOUR <= now:
                report = build_report(self.source, self.config, hour, now)
                self.outbox.put(report.name, report.data)
                status.last_built_hour = iso_utc(hour)
                self.outbox.write_status(status)
                built.append(report)
                hour += HOUR
        if built:
            names = [r.name for r in built]
            log.info("built %d report(s): %s", len(names),
                     ", ".join(names) if len(names) <= 3 else f"{names[0]} ... {names[-1]}")
        self._refresh_spool_metrics()
        return built

    def _first_hour_to_build(self, status: DeliveryStatus, now: datetime) -> datetime:
        """Where building resumes. Records it at once when it was not known, so hours missed
        while the daemon is down before the next report is built are still backfilled."""
        horizon = now - timedelta(days=self.config.backfill_days)
        oldest = hour_floor(horizon)
        if oldest < horizon:
            oldest += HOUR
        if status.last_built_hour is not None:
            first = datetime.fromisoformat(status.last_built_hour).astimezone(UTC) + HOUR
            if first < oldest:
                log.warning("upload: hours %s to %s are older than upload.backfill_days (%g) and are not sent",
                            iso_utc(first), iso_utc(oldest - HOUR), self.config.backfill_days)
                first = oldest
            return first
        if status.problems:
            # Resending is harmless (the service keys on camera and hour): rebuild the horizon.
            log.warning("upload: %s; rebuilding every hour of the last %g days",
                        status.problems[0], self.config.backfill_days)
            first = oldest
        else:
            first = hour_floor(now)   # first start: the first report is the hour in progress
        status.problems.clear()
        status.last_built_hour = iso_utc(first - HOUR)
        self.outbox.write_status(status)
        return first

    async def send_pending(self) -> float | None:
        """Send waiting reports oldest first, stopping at the first one that cannot be sent now
        (order matters to the service's readers). A report answered 500 is held back for a retry
        while the next ones still go: their fate tells the service's trouble from our content."""
        pending = await self._blocking(self.outbox.pending)
        retry_in = None
        for i, path in enumerate(pending):
            try:
                data = await self._blocking(path.read_bytes)
            except FileNotFoundError:
                continue   # `counterd report push` delivered it meanwhile
            try:
                pin = await self._blocking(read_pin, self.config)
            except PinError as exc:
                result = SendResult(Outcome.REFUSED, str(exc))
            else:
                result = await send_report(await self._client(), self.endpoint, path.name, data,
                                           pin.reveal(), self.may_overwrite(path, data))
            self.metrics.attempts.labels(result.outcome.value).inc()
            wait = await self._settle(path, result, waiting=len(pending) - i)
            if wait is not None:
                retry_in = wait if retry_in is None else min(retry_in, wait)
                if result.outcome is not Outcome.REJECTED:
                    break
        await self._blocking(self._refresh_spool_metrics)
        return retry_in

    def may_overwrite(self, path: Path, data: bytes) -> bool:
        """overwrite=t only for a report of a fully analysed hour. A partly or never analysed
        hour (rebuilt after a lost status.json or counts database, say) goes without it, so it
        fills an empty slot at the service but never replaces a row delivered before."""
        if not self.config.overwrite:
            return False
        if warning_of(data) == WARNING_OK:
            return True
        log.debug("upload: %s is not a fully analysed hour: sent without overwrite, so it cannot "
                  "replace a row the service already has", path.name)
        return False

    async def _settle(self, path: Path, result: SendResult, waiting: int) -> float | None:
        """Act on one answer; returns a retry wait when sending must pause."""
        if result.outcome is Outcome.DELIVERED:
            self._backoff.reset()
            requeued = await self._blocking(self._record_delivery, path)
            log.info("delivered %s (%s)", path.name, result.message)
            self._check_camera_known(result.unknown_cameras)
            if requeued:
                log.warning("upload: the service accepts reports again; %s back from quarantine for "
                            "one more try", ", ".join(requeued))
                return self.config.backoff_base_s
            return None
        if result.outcome is Outcome.REJECTED:
            return await self._rejected(path, result.message)
        if result.outcome is Outcome.REFUSED:
            wait = self.config.unauthorized_retry_s
            log.error("UPLOAD REFUSED: %s; %d report(s) kept in %s, retrying in %g s",
                      result.message, waiting, self.outbox.dir, wait)
        else:
            wait = self._backoff.next_delay()
            log.warning("%s; %d report(s) kept in %s, retrying in %.0f s",
                        result.message, waiting, self.outbox.dir, wait)
        await self._blocking(self._record_error, path, result.message)
        return wait

    async def _rejected(self, path: Path, message: str) -> float | None:
        """A 500 is the service's answer to content it cannot parse, but also to its own locked
        or missing database. Retry with backoff; set the report aside (quarantine, never
        deleted) only when it fails again after the service accepted another report, or after
        upload.reject_attempts tries -- and then bring it back for one more try as soon as
        another report is accepted."""
        verdict, attempts = await self._blocking(self._note_rejection, path)
        await self._blocking(self._record_error, path, message)
        if verdict == "retry":
            wait = self._backoff.next_delay()
            log.warning("%s for %s (try %d of %d; the service's database may be busy): kept, "
                        "retrying in %.0f s", message, path.name, attempts, self.config.reject_attempts, wait)
            return wait
        if verdict == "park":
            why = (f"{message}; {attempts} tries: set aside until the service accepts another report, "
                   "then tried once more")
        else:
            why = f"{message} again after the service accepted another report: it rejects this content"
        target = await self._blocking(self.outbox.quarantine, path, why)
        log.error("%s; moved %s to %s (README: Hourly reports, troubleshooting)", why, path.name, target)
        return None

    def _check_camera_known(self, unknown_pks: tuple[int, ...]) -> None:
        """The service lists every camera it cannot show yet (no label, lon, lat), by number;
        say so about this camera only when upload.camera_pk says which number is ours."""
        pk = self.config.camera_pk
        key = (self.config.camera_ref, pk)
        if self._warned_unknown_camera == key:
            return
        if pk and pk in unknown_pks:
            self._warned_unknown_camera = key
            log.warning("the service does not know camera_ref %r (camera %d) yet: its rows are stored "
                        "but stay hidden until the camera is registered there (label, lon, lat)",
                        self.config.camera_ref, pk)
        elif not pk and unknown_pks:
            self._warned_unknown_camera = key
            log.info("the service has %d camera(s) it cannot show yet (numbers %s); set upload.camera_pk "
                     "to this camera's number there to be told whether %r is one of them",
                     len(unknown_pks), ", ".join(map(str, unknown_pks[:10])), self.config.camera_ref)

    async def _client(self) -> aiohttp.ClientSession:
        if self._session_outdated:
            self._session_outdated = False
            await self.close()
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout_s,
                                            sock_connect=self.config.connect_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    # -- bookkeeping (blocking) -----------------------------------------------------------------

    def _note_rejection(self, path: Path) -> tuple[str, int]:
        """Count one more 500 for this report: ("retry" | "park" | "quarantine", attempts)."""
        with self._status_lock:
            status = self.outbox.read_status()
            entry = status.rejections.get(path.name) or {"attempts": 0, "delivered_since": False}
            entry["attempts"] += 1
            if entry.get("delivered_since"):
                verdict = "quarantine"
            elif entry["attempts"] >= self.config.reject_attempts:
                verdict = "park"
            else:
                verdict = "retry"
            entry.update(delivered_since=False, parked=verdict == "park")
            if verdict == "quarantine":
                status.rejections.pop(path.name, None)
            else:
                status.rejections[path.name] = entry
            if not status.problems:
                self.outbox.write_status(status)
        return verdict, entry["attempts"]

    def _record_delivery(self, path: Path) -> list[str]:
        """Bookkeeping for a delivered report; returns the reports set aside after repeated 500s
        that came back from quarantine for one more try (the service works again)."""
        self.outbox.remove(path)
        now = self.clock.now()
        requeued = []
        with self._status_lock:
            status = self.outbox.read_status()
            status.rejections.pop(path.name, None)
            for name, entry in status.rejections.items():
                entry["delivered_since"] = True
                if entry.get("parked"):
                    try:
                        self.outbox.requeue(name)
                        requeued.append(name)
                    except FileNotFoundError:
                        pass        # requeued or removed by hand meanwhile
                    entry["parked"] = False
            status.last_success = {"time": iso_utc(now), "file": path.name}
            hour = hour_of_name(path.name)
            if hour is not None and (status.last_delivered_hour is None
                                     or datetime.fromisoformat(status.last_delivered_hour) < hour):
                status.last_delivered_hour = iso_utc(hour)
            if not status.problems:   # an unreadable file keeps its build cursor for build_due
                self.outbox.write_status(status)
        self.metrics.last_success.set(now.timestamp())
        return requeued

    def _record_error(self, path: Path, message: str) -> None:
        with self._status_lock:
            status = self.outbox.read_status()
            status.last_error = {"time": iso_utc(self.clock.now()), "file": path.name, "message": message}
            if not status.problems:
                self.outbox.write_status(status)

    def _forget_partial_writes(self) -> None:
        for path in self.outbox.remove_partial_writes():
            log.info("removed %s, a report interrupted mid-write; its hour is built again", path.name)
        self._refresh_spool_metrics()

    def _refresh_spool_metrics(self, announce: bool = False) -> None:
        pending = self.outbox.pending()
        size = sum(p.stat().st_size for p in pending if p.exists())
        over = size > self.config.spool_warn_mb * 1e6
        self.metrics.spool_files.set(len(pending))
        self.metrics.spool_bytes.set(size)
        self.metrics.spool_over_limit.set(int(over))
        self.metrics.quarantined_files.set(len(self.outbox.quarantined()))
        if over and (announce or not self._was_over_limit):
            log.warning("upload: the outbox %s holds %.1f MB in %d undelivered report(s), over "
                        "upload.spool_warn_mb (%g); nothing is deleted: check `counterd report status`",
                        self.outbox.dir, size / 1e6, len(pending), self.config.spool_warn_mb)
        self._was_over_limit = over
