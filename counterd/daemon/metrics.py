"""Prometheus metrics for one daemon, in its own registry (tests run several daemons in one process).
Upload metrics (counterd.upload.metrics) register in the same registry."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Stage latencies span a fast tracker (~0.1 ms) to a slow CPU detector (~1 s).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.frames_read = Counter("counterd_frames_read", "Frames decoded from the source", registry=r)
        self.frames_processed = Counter("counterd_frames_processed", "Frames analysed by the pipeline",
                                        registry=r)
        self.frames_dropped = Counter("counterd_frames_dropped",
                                      "Live frames replaced by a newer one before analysis", registry=r)
        self.frames_skipped = Counter("counterd_frames_static",
                                      "Frames whose detection was skipped by motion gating", registry=r)
        self.frames_strided = Counter("counterd_frames_strided",
                                      "Frames whose detection the detection stride rested", registry=r)
        self.stage_seconds = Histogram("counterd_stage_seconds", "Time per frame in each pipeline stage",
                                       ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.reconnects = Counter("counterd_reconnects", "Connections to the camera after the first",
                                  registry=r)
        self.stream_up = Gauge("counterd_stream_up", "1 while frames are flowing from the camera",
                               registry=r)
        self.crossings = Counter("counterd_crossings", "Line crossings counted",
                                 ["line", "direction", "class"], registry=r)
        self.coverage = Counter("counterd_coverage_seconds", "Seconds of video actually analysed",
                                registry=r)
        self.http_refused = Counter("counterd_http_connections_refused",
                                    "HTTP connections closed for being beyond api.max_connections",
                                    registry=r)
        # Live frames: from the frame's arrival (read off the stream) to the end of its analysis.
        self.frame_latency = Histogram("counterd_frame_latency_seconds",
                                       "Live frames: seconds from arrival to the end of analysis",
                                       buckets=LATENCY_BUCKETS, registry=r)
        for stage in ("decode", "detect", "track", "count"):
            self.stage_seconds.labels(stage)

    def count_committed(self, batch) -> None:
        """A bus follower (counterd/bus.py): crossings and coverage count once they are stored."""
        for event in batch.events:
            self.crossings.labels(event.line, event.direction, event.class_name).inc()
        if batch.coverage:
            self.coverage.inc(batch.coverage_seconds)
