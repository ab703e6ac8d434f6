"""The daemon's one scheduler: every timed job on one APScheduler AsyncIOScheduler.

Jobs (added by the parts that own them): retention-prune and wal-checkpoint
(counterd/daemon/service.py), upload-hourly and upload-spool-check (counterd/upload/uploader.py).
Each is visible on /metrics:

    counterd_job_last_run_timestamp_seconds{job}   when it last finished (0: never)
    counterd_job_next_run_timestamp_seconds{job}   when it runs next (0: paused or removed)
    counterd_job_runs_total{job}, counterd_job_failures_total{job}

A job is a coroutine function run on the event loop; blocking work inside it goes to a thread
(asyncio.to_thread or the store's pool). Tests drive time with time-machine and call
`scheduler.wakeup()` (APScheduler's public "look for due jobs now"), never private methods.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("counterd.jobs")


class Jobs:
    def __init__(self, registry: CollectorRegistry):
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.last_run = Gauge("counterd_job_last_run_timestamp_seconds",
                              "When each scheduled job last finished (epoch seconds; 0 = never)",
                              ["job"], registry=registry)
        self.next_run = Gauge("counterd_job_next_run_timestamp_seconds",
                              "When each scheduled job runs next (epoch seconds; 0 = not scheduled)",
                              ["job"], registry=registry)
        self.runs = Counter("counterd_job_runs", "Scheduled job runs", ["job"], registry=registry)
        self.failures = Counter("counterd_job_failures", "Scheduled job runs that raised or were missed",
                                ["job"], registry=registry)
        self.scheduler.add_listener(self._finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def add(self, name: str, func, trigger, **options) -> None:
        """Schedule `func` (a coroutine function) as job `name`, replacing one of that name."""
        self.scheduler.add_job(func, trigger, id=name, name=name, replace_existing=True, coalesce=True,
                               max_instances=1, misfire_grace_time=3600, **options)
        self.last_run.labels(name)
        self.runs.labels(name)
        self.failures.labels(name)
        self.next_run.labels(name).set_function(lambda: self._next_run(name))

    def reschedule(self, name: str, trigger) -> None:
        self.scheduler.reschedule_job(name, trigger=trigger)

    def remove(self, name: str) -> None:
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _next_run(self, name: str) -> float:
        job = self.scheduler.get_job(name)
        return job.next_run_time.timestamp() if job is not None and job.next_run_time else 0.0

    def _finished(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("scheduled job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            self.failures.labels(event.job_id).inc()
            return
        self.last_run.labels(event.job_id).set(datetime.now(UTC).timestamp())
        self.runs.labels(event.job_id).inc()
        if event.exception is not None:
            log.error("scheduled job %s failed: %s", event.job_id, event.exception)
            self.failures.labels(event.job_id).inc()
