"""Prometheus metrics for uploads, in whichever registry the daemon serves on /metrics:
`UploadMetrics(daemon.metrics.registry)`. Nothing is registered at import, so several daemons
(or tests) in one process never collide."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class UploadMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.spool_files = Gauge("counterd_upload_spool_files",
                                 "Reports waiting in the outbox", registry=registry)
        self.spool_bytes = Gauge("counterd_upload_spool_bytes",
                                 "Bytes of reports waiting in the outbox", registry=registry)
        self.spool_over_limit = Gauge("counterd_upload_spool_over_limit",
                                      "1 while the outbox is bigger than upload.spool_warn_mb", registry=registry)
        self.quarantined_files = Gauge("counterd_upload_quarantined_files",
                                       "Reports the service rejected, set aside in outbox/quarantine",
                                       registry=registry)
        self.attempts = Counter("counterd_upload_attempts",
                                "Uploads tried, by outcome (delivered, rejected, refused, unreachable)",
                                ["outcome"], registry=registry)
        self.last_success = Gauge("counterd_upload_last_success_timestamp_seconds",
                                  "When the service last accepted a report (Unix time)", registry=registry)
        for outcome in ("delivered", "rejected", "refused", "unreachable"):
            self.attempts.labels(outcome)
