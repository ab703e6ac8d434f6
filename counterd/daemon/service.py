"""`counterd run` assembled: one process, one asyncio loop, two threads of our own.

- the capture thread (inside VideoSource) reads frames;
- the inference worker thread runs detect -> track -> count on them (a short queue: source.live_frames);
- the loop serves the HTTP API, /metrics and /healthz, flushes counts to the store and publishes
  each committed batch on the bus (counterd/bus.py), runs the one scheduler
  (counterd/daemon/jobs.py), and talks to systemd.

Each resource is one cleanup_ctx on the aiohttp application, so startup and shutdown are paired
and a failure half-way through unwinds what was started. Shutdown order (the reverse of startup):
stop pinging systemd, stop the worker, flush the last counts, close the store.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from typing import TYPE_CHECKING, Callable

from aiohttp import web
from apscheduler.triggers.interval import IntervalTrigger

from counterd.api.app import add_api
from counterd.api.site import Site
from counterd.bus import BatchBus
from counterd.config import Config, ConfigError
from counterd.confighub import ConfigHub, changed_keys, restart_needed
from counterd.daemon.camera import Camera, LinkState
from counterd.daemon.console import lend_console
from counterd.daemon.flusher import Flusher
from counterd.daemon.guard import LISTEN_BACKLOG, ConnectionGuard, raise_open_files_limit
from counterd.daemon.http import HEALTHY_HEARTBEAT_S, add_daemon_routes, problems
from counterd.daemon.jobs import Jobs
from counterd.daemon.liveview import LiveView
from counterd.daemon.metrics import Metrics
from counterd.daemon.notify import Notifier
from counterd.daemon.worker import InferenceWorker, Recorder
from counterd.detect import Detector
from counterd.errors import RuntimeFailure, UserError
from counterd.pipeline import Pipeline
from counterd.source import CaptureFactory, VideoSource, open_source, redact, wait_for_readers
from counterd.store import AlertRules, AsyncStore, Pruned, Store
from counterd.upload.metrics import UploadMetrics
from counterd.upload.uploader import Uploader

if TYPE_CHECKING:
    from counterd.mqtt.bridge import MqttBridge

log = logging.getLogger("counterd.daemon")

PRUNE_JOB, CHECKPOINT_JOB = "retention-prune", "wal-checkpoint"
CHECKPOINT_EVERY_S = 3600.0   # fold the WAL into the database file this often
STATUS_EVERY_S = 5.0      # STATUS= line for `systemctl status` when systemd has no watchdog
STOP_WORKER_S = 5.0       # the worker finishes its frame within this on shutdown
READER_GRACE_S = 2.0      # how long exit waits for a capture thread stuck in a frozen read()
# Sections read once at start-up (the capture, the state directory, the database): a change
# is accepted and waits for a restart, and the config hub says so.
RESTART_SECTIONS = ("camera", "source", "daemon", "store")


@dataclasses.dataclass
class Daemon:
    """What the daemon's parts share; one per application, under DAEMON."""
    hub: ConfigHub
    metrics: Metrics
    notifier: Notifier
    capture_factory: CaptureFactory | None = None   # the demo's synthetic camera; None = config's source
    detector: Detector | None = None                # None: built from [detector]
    store: Store | None = None
    astore: AsyncStore | None = None
    worker: InferenceWorker | None = None
    recorder: Recorder | None = None
    flusher: Flusher | None = None
    bus: BatchBus = dataclasses.field(default_factory=BatchBus)
    alert_rules: AlertRules | None = None
    jobs: Jobs | None = None
    guard: ConnectionGuard | None = None            # bounds on HTTP connections (slowloris)
    damage: list[str] = dataclasses.field(default_factory=list)   # the store's quick_check findings
    site: Site | None = None                        # the HTTP API's shared state
    uploader: Uploader | None = None
    mqtt: MqttBridge | None = None
    started_at: float = dataclasses.field(default_factory=time.time)
    started_monotonic: float = dataclasses.field(default_factory=time.monotonic)
    live_view: LiveView = dataclasses.field(default_factory=LiveView)   # the console's picture
    healthy_heartbeat_s: float = HEALTHY_HEARTBEAT_S   # a worker silent this long is stuck (/healthz, MQTT)
    _upload_metrics: UploadMetrics | None = None

    def upload_metrics(self) -> UploadMetrics:
        # Registered once per registry: a second uploader (enabled again on reload) reuses them.
        if self._upload_metrics is None:
            self._upload_metrics = UploadMetrics(self.metrics.registry)
        return self._upload_metrics

    def store_path(self) -> Path:
        return Path(self.config.store.path or Path(self.config.daemon.state_dir) / "counts.db")

    @property
    def config(self) -> Config:
        """The config file as loaded (for what setparams never sets: paths, the source)."""
        return self.hub.base

    @property
    def effective_config(self) -> Config:
        """The config file with the API's stored setparams values laid over it."""
        return self.hub.effective


DAEMON = web.AppKey("daemon", Daemon)


def make_daemon_app(config: Config, *, capture_factory: CaptureFactory | None = None,
                    notifier: Notifier | None = None,
                    adjust: Callable[[Config], Config] | None = None,
                    detector: Detector | None = None,
                    healthy_heartbeat_s: float = HEALTHY_HEARTBEAT_S) -> web.Application:
    """`detector` replaces the one [detector] would build (tests: a scripted or stuck one);
    `healthy_heartbeat_s` is how long the worker may go without turning round before /healthz
    calls it stuck (tests: shorter)."""
    hub = ConfigHub(config, adjust=adjust or (lambda config: config))
    daemon = Daemon(hub, Metrics(), notifier or Notifier(), capture_factory, detector=detector,
                    healthy_heartbeat_s=healthy_heartbeat_s)
    daemon.upload_metrics()      # on /metrics from the start, even while uploads are off
    daemon.jobs = Jobs(daemon.metrics.registry)
    daemon.recorder = Recorder(config.daemon.max_gap_s)
    daemon.bus.subscribe(daemon.metrics.count_committed)
    for section in RESTART_SECTIONS:
        hub.register(section, (section,), restart_needed(section))
    hub.register("upload", ("upload",), lambda old, new: apply_upload(daemon, new))
    hub.validators.append(lambda new: check_frame_size(daemon, new))
    api = config.api
    daemon.guard = ConnectionGuard(api.max_connections, api.header_timeout_s, daemon.metrics.http_refused.inc)
    app = web.Application(middlewares=[daemon.guard.middleware])
    app[DAEMON] = daemon
    app.cleanup_ctx.append(store_ctx)
    # The API's own contexts (stored setparams, alert webhook) run once the store is open.
    daemon.site = add_api(app, hub, lambda: daemon.astore, daemon.bus)
    lend_console(app, daemon)
    app.cleanup_ctx.append(mqtt_ctx)         # stops after the flusher: it publishes the last batch
    # The flusher starts before the worker, so it stops after it: the last batch is flushed.
    app.cleanup_ctx.append(flusher_ctx)
    app.cleanup_ctx.append(worker_ctx)
    app.cleanup_ctx.append(jobs_ctx)
    app.cleanup_ctx.append(uploader_ctx)
    app.cleanup_ctx.append(systemd_ctx)
    add_daemon_routes(app, daemon)
    return app


# ---------------------------------------------------------------------------------------------
# Resources


async def store_ctx(app: web.Application):
    daemon = app[DAEMON]
    path = daemon.store_path()
    daemon.store = await asyncio.to_thread(Store.open, path, time_zone(daemon.config.camera.timezone))
    daemon.astore = AsyncStore(daemon.store)
    log.info("counts store %s", path)
    daemon.damage = await asyncio.to_thread(daemon.store.quick_check)
    if daemon.damage:
        log.error("the counts store %s is damaged (PRAGMA quick_check: %s); counting goes on, but copy it "
                  "away and recover it (sqlite3 %s .recover)", path, "; ".join(daemon.damage), path)
    yield
    await asyncio.to_thread(daemon.astore.shutdown)   # waits for queued SQLite calls
    await asyncio.to_thread(daemon.store.close)


def time_zone(name: str) -> tzinfo:
    """camera.timezone, or the system's zone (DST-aware: from $TZ or /etc/localtime), else UTC."""
    if name:
        return ZoneInfo(name)       # validated at config load
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(os.path.realpath("/etc/localtime").split("/zoneinfo/", 1)[1])
    except IndexError:
        pass
    for candidate in candidates:
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return timezone.utc


def source_opener(daemon: Daemon) -> Callable[[], VideoSource]:
    cfg, spec = daemon.config.source, daemon.config.camera.source
    observe = daemon.metrics.stage_seconds.labels("decode").observe
    if daemon.capture_factory is not None:
        return lambda: VideoSource(daemon.capture_factory, name="demo scene", live=True,
                                   live_frames=cfg.live_frames, observe_read=observe)
    if not spec:
        raise UserError(f"{daemon.config.path}: camera.source: no video source configured")
    return lambda: open_source(spec, loop=cfg.loop, open_timeout_s=cfg.open_timeout_s,
                               read_timeout_s=cfg.read_timeout_s, rtsp_transport=cfg.rtsp_transport,
                               live_frames=cfg.live_frames, observe_read=observe)


async def worker_ctx(app: web.Application):
    daemon = app[DAEMON]
    config = daemon.effective_config
    # Building the detector loads the model: seconds of CPU, so not on the loop.
    pipeline = await asyncio.to_thread(Pipeline, config, daemon.detector)
    name = config.camera.name if daemon.capture_factory is None else "demo"
    camera = Camera(name, source_opener(daemon), config.source)
    daemon.worker = InferenceWorker(camera, pipeline, daemon.metrics, daemon.recorder,
                                    live_view=daemon.live_view)
    daemon.hub.register("pipeline", PIPELINE_SECTIONS, lambda old, new: apply_pipeline(daemon.worker, old, new))
    log.info("camera %s: %s; detector %s; %d line(s)", name,
             redact(config.camera.source) if daemon.capture_factory is None else "synthetic scene",
             pipeline.detector.describe(), len(config.lines))
    daemon.worker.start()
    yield
    if not await asyncio.to_thread(daemon.worker.stop, STOP_WORKER_S):
        log.warning("the inference worker did not stop within %g s", STOP_WORKER_S)
    pipeline.close()


async def flusher_ctx(app: web.Application):
    daemon = app[DAEMON]
    daemon.alert_rules = AlertRules(daemon.effective_config.lines)
    daemon.hub.register("alert rules", ("lines",),
                        lambda old, new: daemon.alert_rules.reconfigure(new.lines))
    daemon.flusher = Flusher(daemon.recorder, daemon.astore, daemon.alert_rules, daemon.bus,
                             daemon.store_path())

    async def flush_forever():
        while True:
            await asyncio.sleep(daemon.config.daemon.flush_interval_s)
            await daemon.flusher.flush()

    task = asyncio.create_task(flush_forever(), name="counterd-flush")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await daemon.flusher.flush()   # the worker has stopped (cleaned up before us): the last batch


async def prune(daemon: Daemon) -> None:
    """Retention: delete what is older than store.retention_days before the newest stored data,
    unless that is more than store.prune_max_fraction of the history (a clock that jumped)."""
    cfg = daemon.config.store
    report_prune(await daemon.astore.run(daemon.store.prune, time.time(), cfg.retention_days,
                                         cfg.prune_max_fraction), cfg.retention_days, cfg.prune_max_fraction)


def report_prune(pruned: Pruned, retention_days: int, max_fraction: float) -> None:
    cutoff = datetime.fromtimestamp(pruned.cutoff, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if pruned.refused:
        log.warning("retention: NOT pruning: data older than %s (%d days before the newest stored data) is "
                    "%d of %d rows of history (%.0f%%), more than store.prune_max_fraction (%.0f%%) in one go. "
                    "A clock that jumped ahead does this; if store.retention_days was lowered on purpose, "
                    "raise store.prune_max_fraction to 1 and restart", cutoff, retention_days, pruned.doomed,
                    pruned.history, 100 * pruned.doomed / pruned.history, 100 * max_fraction)
    elif any(pruned.deleted.values()):
        log.info("retention: pruned what was older than %s (store.retention_days = %d): %s", cutoff, retention_days,
                 ", ".join(f"{n} {table}" for table, n in pruned.deleted.items() if n))


async def checkpoint(daemon: Daemon) -> None:
    await daemon.astore.run(daemon.store.checkpoint)


async def jobs_ctx(app: web.Application):
    """The one scheduler; its store jobs first run at start-up, then every interval."""
    daemon = app[DAEMON]
    now = datetime.now(timezone.utc)
    daemon.jobs.add(PRUNE_JOB, prune, IntervalTrigger(days=1), args=(daemon,), next_run_time=now)
    daemon.jobs.add(CHECKPOINT_JOB, checkpoint, IntervalTrigger(seconds=CHECKPOINT_EVERY_S), args=(daemon,))
    daemon.jobs.start()
    yield
    daemon.jobs.shutdown()


async def mqtt_ctx(app: web.Application):
    """Events, totals and health on an MQTT broker (counterd.mqtt), when mqtt.enabled."""
    daemon = app[DAEMON]
    unsubscribe = None
    if daemon.config.mqtt.enabled:
        from counterd.mqtt.bridge import MQTT_SECTIONS, MqttBridge   # aiomqtt is imported only when used
        daemon.mqtt = MqttBridge(daemon, daemon.config.mqtt)
        await daemon.mqtt.start()
        unsubscribe = daemon.bus.subscribe(daemon.mqtt.on_batch)
        daemon.hub.register("mqtt", MQTT_SECTIONS, lambda old, new: daemon.mqtt and daemon.mqtt.apply(old, new))
    yield
    if daemon.mqtt is not None:
        unsubscribe()
        await daemon.mqtt.stop()
        daemon.mqtt = None


async def uploader_ctx(app: web.Application):
    daemon = app[DAEMON]
    if daemon.config.upload.enabled:
        await start_uploader(daemon)
    yield
    await stop_uploader(daemon)


async def start_uploader(daemon: Daemon) -> None:
    daemon.uploader = Uploader(daemon.config.upload, daemon.store, daemon.config.daemon.state_dir,
                               metrics=daemon.upload_metrics())
    await daemon.uploader.start(daemon.jobs)


async def stop_uploader(daemon: Daemon) -> None:
    uploader, daemon.uploader = daemon.uploader, None
    if uploader is not None:
        await uploader.stop()


def status_line(daemon: Daemon) -> str:
    worker = daemon.worker
    camera = worker.camera
    line = f"camera {camera.state.value}"
    if camera.state is LinkState.DOWN:
        line += f" ({camera.reason})"
    return line + f"; {worker.frames_processed} frames analysed, {camera.dropped} dropped"


async def systemd_ctx(app: web.Application):
    """READY once everything above is up; WATCHDOG pings only while the worker is healthy and
    the store writes."""
    daemon = app[DAEMON]
    notifier = daemon.notifier
    interval = notifier.watchdog_s / 2 if notifier.watchdog_s else STATUS_EVERY_S
    # A worker silent for 3/4 of WatchdogSec is stuck: stop pinging and let systemd restart us.
    stale_after = 0.75 * notifier.watchdog_s if notifier.watchdog_s else float("inf")

    async def ping_forever():
        while True:
            if not problems(daemon, stale_after):
                if notifier.watchdog_s:
                    notifier.watchdog()
                notifier.status(status_line(daemon))
            await asyncio.sleep(interval)

    task = asyncio.create_task(ping_forever(), name="counterd-systemd") if notifier.enabled else None
    notifier.ready(status_line(daemon))
    yield
    notifier.stopping()
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    notifier.close()


# ---------------------------------------------------------------------------------------------
# Configuration at run time: each part applies its own sections (counterd/confighub.py)

PIPELINE_SECTIONS = ("lines", "counting", "tracker", "gating", "detector")


def apply_pipeline(worker: InferenceWorker, old: Config, new: Config) -> str | None:
    """Lines, counting, tracker and gating apply before the next frame, live tracks kept. The
    detector (model, backend, mosaic) and the re-id model are built once: the pipeline keeps
    the ones it has."""
    worker.reconfigure(new)
    keys = changed_keys(old, new, "detector")
    if old.tracker.reid_model != new.tracker.reid_model:
        keys.append("tracker.reid_model")
    return f"{', '.join(keys)} changed; the models are loaded at start-up" if keys else None


async def apply_upload(daemon: Daemon, new: Config) -> None:
    if daemon.uploader is not None and new.upload.enabled:
        daemon.uploader.reconfigure(new.upload)
    elif new.upload.enabled:
        await start_uploader(daemon)
    else:
        await stop_uploader(daemon)


def check_frame_size(daemon: Daemon, new: Config) -> None:
    """A reloaded file whose lines leave the camera's picture is refused (ConfigError)."""
    source = daemon.worker.camera.source if daemon.worker is not None else None
    if source is not None and source.width:
        new.check_frame_size(source.width, source.height)


async def reload(app: web.Application) -> bool:
    """SIGHUP: read the config file again and apply it through the hub; keep counts. An invalid
    file is refused with its errors and the running config stays."""
    return await app[DAEMON].hub.reload()


# ---------------------------------------------------------------------------------------------
# Running


async def serve(app: web.Application, host: str, port: int, *,
                on_started: Callable[[], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP reloads. Returns after a graceful shutdown."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    check_port_free(host, port)      # before anything starts: nothing to unwind when it is taken
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    try:
        await runner.setup()   # runs every cleanup_ctx's startup: store, worker, flusher, systemd
    except BaseException:
        await runner.cleanup()   # unwinds whatever had started (a bad model after the store opened)
        raise
    guard = app[DAEMON].guard
    guard.max_connections = raise_open_files_limit(guard.max_connections)
    guard.attach(runner.server)
    try:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except OSError as exc:      # in use now, perhaps free in a moment: systemd restarts us
            raise RuntimeFailure(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, app[DAEMON].hub.reload_soon)
        log.info("serving on http://%s:%d", host, port)
        if on_started is not None:
            on_started()
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await guard.close()
        await runner.cleanup()
    log.info("stopped")


def check_port_free(host: str, port: int) -> None:
    """A port in use may be free in a moment (an old instance still stopping): a runtime
    failure that systemd retries, not a configuration error."""
    try:
        probe = socket.create_server((host, port))
    except OSError as exc:
        raise RuntimeFailure(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    probe.close()


def leave(code: int) -> int:
    """The exit code to return, after making sure no capture thread is still inside OpenCV (a
    frozen camera's read() cannot be interrupted). If one is, exit at once: the counts are
    already flushed, and a thread returning into a finalizing interpreter would abort the process."""
    if wait_for_readers(READER_GRACE_S):
        return code
    log.warning("a camera read is still blocked; exiting without waiting for it")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
