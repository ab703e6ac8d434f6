"""Config sections: one frozen dataclass per TOML table. Defaults are what a production box runs
with when a key is absent; config/counterd.toml documents every key."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from counterd.choices import ANCHORS, BACKENDS, ROLES
from counterd.classes import CLASS_IDS, DEFAULT_CLASSES
from counterd.config.fields import ConfigError, CredentialUrl, Secret, setting, xml_unsafe
from counterd.report_schema import CAMERA_REF_PATTERN, COUNT_COLUMNS


@dataclass(frozen=True)
class CameraConfig:
    name: str = "counterd"          # the counter's name in the Axis API and in reports
    serial: str = ""                # 12 hex digits; empty = derived from the machine id
    source: CredentialUrl = CredentialUrl("")   # file path, rtsp:// URL, USB index ("0") or /dev/videoN
    width: int | None = setting(None, min=1)   # expected frame size, to check lines at load
    height: int | None = setting(None, min=1)
    timezone: str = ""              # IANA name for local-time bins and reports; empty = the system's

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.timezone and not _is_zone(self.timezone):
            out.append(("timezone", f"unknown time zone {self.timezone!r} (use an IANA name like 'Europe/Oslo')"))
        if self.serial and (len(self.serial) != 12 or any(c not in "0123456789ABCDEF" for c in self.serial)):
            out.append(("serial", f"must be 12 upper-case hex digits, got {self.serial!r}"))
        if (self.width is None) != (self.height is None):
            out.append(("width", "give both width and height, or neither"))
        if xml_unsafe(self.name) or any(ord(c) < 32 for c in self.name):
            out.append(("name", f"must be printable text that XML can carry (export-xml shows it), "
                                f"got {self.name!r}"))
        return out


@dataclass(frozen=True)
class MotionConfig:
    """The `motion` detector: background subtraction for overhead cameras, no weights."""
    algorithm: Literal["knn", "mog2"] = "knn"   # knn finds more of the people on the PETS clip
    history: int = setting(300, min=2)          # frames the background model remembers
    min_area: int = setting(200, min=1)         # px; foreground blobs smaller than this are noise
    merge_px: int = setting(7, min=1, max=99)   # closing kernel: joins blobs this close into one
    class_name: str = "person"                  # the class every motion box is counted as

    def problems(self) -> list[tuple[str, str]]:
        if self.class_name not in CLASS_IDS:
            return [("class_name", f"unknown COCO class name {self.class_name!r}")]
        return []


@dataclass(frozen=True)
class DetectorConfig:
    type: Literal[tuple(BACKENDS)] = "onnx"
    model: str = "yolox_nano"       # a file path, or a name from models/manifest.toml
    models_dir: str = ""            # where model names are looked up; empty = the default search
    confidence: float = setting(0.25, min=0.0, max=1.0)
    nms_iou: float = setting(0.45, min=0.0, max=1.0)
    # A car/truck/bus box lying this share of its area inside a higher-scoring car/truck/bus box
    # is dropped: a second box on one vehicle (counterd/detect/overlap.py); 0 keeps them all.
    vehicle_nested_share: float = setting(0.8, min=0.0, max=1.0)
    classes: tuple[str, ...] = DEFAULT_CLASSES
    threads: int = setting(1, min=1, max=64)
    # onnx: two frames share one inference while every tracked object near a line stays large
    # enough for the model at the mosaic's scale (Pipeline.mosaic_fits; one frame of latency)
    mosaic: bool = False
    # onnx, openvino: the model's square input cut to the frames' aspect ratio at the first frame
    # (counterd/detect/fitinput.py): the same scale without the letterbox's padding
    fit_input: bool = True
    # onnx: ONNX Runtime execution providers, in order of preference (an unknown or unavailable
    # one is an error at start, naming what this installation has)
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    # Region of interest (counterd/roi.py): detect only in [x1, y1, x2, y2] (frame pixels), or with
    # roi_from_lines in the box around the lines' bands grown by roi_margin object sizes.
    roi: tuple[float, ...] = ()
    roi_from_lines: bool = False
    roi_margin: float = setting(1.0, min=0.0, max=10.0)
    motion: MotionConfig = field(default_factory=MotionConfig)

    def problems(self) -> list[tuple[str, str]]:
        if self.mosaic and not BACKENDS[self.type].can_batch:
            batching = ", ".join(name for name, backend in BACKENDS.items() if backend.can_batch)
            return [("mosaic", f"the {self.type} backend cannot share one inference between frames "
                               f"(only {batching} can); set detector.mosaic = false")]
        unknown = [c for c in self.classes if c not in CLASS_IDS]
        if unknown:
            return [("classes", f"unknown COCO class name(s): {', '.join(map(repr, unknown))}")]
        if not self.classes:
            return [("classes", "must name at least one class")]
        if self.roi and (len(self.roi) != 4 or self.roi[0] >= self.roi[2] or self.roi[1] >= self.roi[3]
                         or min(self.roi) < 0):
            return [("roi", f"must be [x1, y1, x2, y2] with 0 <= x1 < x2 and 0 <= y1 < y2, got {list(self.roi)}")]
        return []


@dataclass(frozen=True)
class TrackerConfig:
    high_score: float = setting(0.5, min=0.0, max=1.0)     # first association pass
    low_score: float = setting(0.1, min=0.0, max=1.0)      # second pass recovers occluded objects
    new_track_score: float = setting(0.55, min=0.0, max=1.0)
    match_iou: float = setting(0.2, above=0.0, max=1.0)    # least IoU that may pair track and box
    max_coast_seconds: float = setting(1.5, min=0.0)       # a lost track survives this long
    # Appearance stitching (counterd/reid.py): an OSNet re-id ONNX file; empty = off
    reid_model: str = ""
    reid_min_similarity: float = setting(0.6, min=-1.0, max=1.0)   # cosine for one person
    reid_reach: float = setting(1.0, above=0.0, max=10.0)         # box heights from a lost track

    def problems(self) -> list[tuple[str, str]]:
        if self.low_score > self.high_score:
            return [("low_score", f"must be <= high_score ({self.high_score}), got {self.low_score}")]
        return []


@dataclass(frozen=True)
class CountingConfig:
    enabled: bool = True                            # Counter.Enabled: off = no detection, nothing stored
    anchor: Literal[ANCHORS] = "bottom-center"
    hysteresis_px: float = setting(2.0, min=0.0)   # least half-width of the band where side is undecided
    hysteresis_ratio: float = setting(0.05, min=0.0, max=1.0)  # the band's half-width as a share of box height
    hysteresis_input_px: float = setting(0.0, min=0.0)  # least half-width in the detector's input pixels; 0 = off
    hysteresis_noise: float = setting(2.0, min=0.0)  # least half-width in multiples of the anchor's own noise; 0 = off
    reverse_hold_seconds: float = setting(0.2, min=0.0)  # crossing back counts once held this long
    side_cut_lines: bool = False                    # a box cut only at the frame's side decides lines drawn across
    dwell_seconds: float = setting(1.0, min=0.0)  # standing on a line this long: side from the stay's mean; 0 = off
    primary_line: str = ""                          # the line the Axis API reports; default: first
    handoff_seconds: float = setting(1.5, min=0.0)  # id switch on a line: new track takes over a side
    forget_seconds: float = setting(10.0, above=0.0)  # a track unseen this long leaves the counter

    def problems(self) -> list[tuple[str, str]]:
        if self.forget_seconds <= self.handoff_seconds:
            return [("forget_seconds", f"must be > handoff_seconds ({self.handoff_seconds:g}), "
                                       f"got {self.forget_seconds:g}")]
        return []


@dataclass(frozen=True)
class SourceConfig:
    """How live cameras are read and recovered (counterd run); files only use `loop`."""
    loop: bool = False                                     # replay a file source from the start at its end
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = setting(5.0, above=0.0, max=300.0)   # a camera that accepts but never answers
    read_timeout_s: float = setting(5.0, above=0.0, max=300.0)   # a stream that stops mid-read
    watchdog_s: float = setting(10.0, above=0.0)           # no new frame this long = stream down
    backoff_base_s: float = setting(1.0, above=0.0)        # first wait before reconnecting, doubling
    backoff_cap_s: float = setting(30.0, above=0.0)        # longest wait between reconnect attempts
    live_frames: int = setting(8, min=1, max=250)          # frames held while the detector catches up

    def problems(self) -> list[tuple[str, str]]:
        if self.backoff_cap_s < self.backoff_base_s:
            return [("backoff_cap_s", f"must be >= backoff_base_s ({self.backoff_base_s:g}), "
                                      f"got {self.backoff_cap_s:g}")]
        return []


@dataclass(frozen=True)
class GatingConfig:
    """Motion gating: skip detection while the scene is static; the tracker rests meanwhile."""
    enabled: bool = True
    width: int = setting(64, min=8, max=640)               # frames are compared at this width
    pixel_delta: int = setting(12, min=1, max=255)         # grey-level change that counts as motion
    min_changed: float = setting(0.002, min=0.0, max=1.0)  # fraction of changed pixels = motion
    max_skip_s: float = setting(0.5, min=0.0)              # detect at least this often (keep < tracker.max_coast_seconds)
    # Detection stride: rest the detector while every track can have moved less than
    # stride_max_shift of its own box size, for at most stride_max_rest_s (counterd/stride.py),
    # and nothing untracked moves (motiongate.NewcomerLook).
    stride: bool = True
    stride_max_shift: float = setting(0.2, above=0.0, max=1.0)
    stride_max_rest_s: float = setting(0.15, above=0.0, max=2.0)


@dataclass(frozen=True)
class DaemonConfig:
    """The long-running service (counterd run)."""
    state_dir: str = "/var/lib/counterd"       # counts database, outbox; systemd's StateDirectory
    log_file: str = ""                         # rotating log read by show-logs; empty = <state_dir>/counterd.log
    log_max_bytes: int = setting(5_000_000, min=10_000)
    log_backups: int = setting(3, min=0, max=100)
    flush_interval_s: float = setting(0.5, above=0.0, max=1.0)   # counts are on disk within this
    max_gap_s: float = setting(2.0, above=0.0)  # frames further apart than this leave a coverage gap

    @property
    def log_path(self) -> str:
        return self.log_file or str(Path(self.state_dir) / "counterd.log")


@dataclass(frozen=True)
class StoreConfig:
    """The counts database (README: HTTP API)."""
    path: str = ""                  # SQLite file; empty = <daemon.state_dir>/counts.db
    retention_days: int = setting(400, min=1)   # older bins, events and alerts are pruned daily
    prune_max_fraction: float = setting(0.1, min=0.0, max=1.0)   # a prune taking more is refused, with a warning

    def problems(self) -> list[tuple[str, str]]:
        if self.path.strip() == ":memory:" or self.path.startswith("file::memory:"):
            return [("path", "an in-memory database loses every count at exit; give a file path "
                             "(or leave it empty for <daemon.state_dir>/counts.db)")]
        return []


@dataclass(frozen=True)
class UserConfig:
    """An HTTP API user. ha1 = md5("name:realm:password") in hex, ha1_sha256 the same with
    SHA-256 (for Digest SHA-256): `counterd passwd` prints both. Login-equivalent: secrets."""
    name: str
    role: Literal[tuple(ROLES)]
    ha1: Secret
    ha1_sha256: Secret = Secret()

    def problems(self) -> list[tuple[str, str]]:
        if not re.fullmatch(r"[0-9a-f]{32}", self.ha1.reveal()):
            return [("ha1", "must be 32 lower-case hex digits (make it with: counterd passwd NAME)")]
        if self.ha1_sha256 and not re.fullmatch(r"[0-9a-f]{64}", self.ha1_sha256.reveal()):
            return [("ha1_sha256", "must be 64 lower-case hex digits (make it with: counterd passwd NAME)")]
        if not self.name or ":" in self.name:
            return [("name", f"must be non-empty without ':', got {self.name!r}")]
        return []

    def password_is_empty(self, realm: str) -> bool:
        return self.ha1.reveal() == hashlib.md5(f"{self.name}:{realm}:".encode()).hexdigest()


@dataclass(frozen=True)
class ApiConfig:
    """The HTTP API: Axis tvpc paths and /api/v1/ (README: HTTP API)."""
    host: str = "0.0.0.0"
    port: int = setting(8080, min=1, max=65535)
    realm: str = "counterd"         # part of every user's ha1: changing it invalidates them
    anonymous_viewer: bool = False  # viewer commands without credentials (wget-style clients)
    nonce_seconds: float = setting(300.0, above=0.0)   # a Digest nonce is stale after this
    max_connections: int = setting(256, min=8, max=100_000)   # open HTTP connections at most
    header_timeout_s: float = setting(10.0, above=0.0, max=300.0)   # to send a request's headers (and its body)
    max_heavy_exports: int = setting(1, min=1, max=16)    # exports of over a month at once; more get 429
    live_view: bool = False         # the console's picture and snapshot.jpg; off: no pixels leave the box
    # /metrics and /healthz: "viewer" = a viewer login (or the anonymous viewer), "none" = open
    metrics_auth: Literal["viewer", "none"] = "viewer"


@dataclass(frozen=True)
class OccupancyConfig:
    """Naive occupancy: in - out of the primary line since the last reset, never below 0."""
    reset_time: str = "00:00"       # local HH:MM at which occupancy returns to 0 every day

    def problems(self) -> list[tuple[str, str]]:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", self.reset_time):
            return [("reset_time", f"must be HH:MM (00:00-23:59), got {self.reset_time!r}")]
        return []


@dataclass(frozen=True)
class AlertsConfig:
    """Where alerts (lines' tailgate_seconds, forbidden_direction) go besides the log and the store."""
    webhook_url: CredentialUrl = CredentialUrl("")   # each alert is POSTed here as JSON; empty = none

    def problems(self) -> list[tuple[str, str]]:
        if self.webhook_url and not re.match(r"https?://[^/\s]+", self.webhook_url):
            return [("webhook_url", f"must be an http:// or https:// URL, got {self.webhook_url!r}")]
        return []


TOPIC_LEVEL_FORBIDDEN = ("+", "#", "\x00")   # MQTT wildcards and NUL may not appear in a topic name


def _topic_problems(key: str, topic: str) -> list[tuple[str, str]]:
    """An MQTT topic name to publish under: no wildcards, no empty levels at its ends."""
    if any(c in topic for c in TOPIC_LEVEL_FORBIDDEN):
        return [(key, f"must not contain '+', '#' or NUL (MQTT wildcards), got {topic!r}")]
    if topic.startswith("/") or topic.endswith("/") or "//" in topic:
        return [(key, f"must not start or end with '/' or hold an empty level, got {topic!r}")]
    return []


@dataclass(frozen=True)
class MqttConfig:
    """Crossings, today's totals, occupancy, alerts and health on an MQTT broker, with optional
    Home Assistant discovery (README: Building systems)."""
    enabled: bool = False
    host: str = "localhost"
    port: int = setting(1883, min=1, max=65535)
    tls: bool = False
    ca_file: str = ""               # CA that signed the broker's certificate; empty = the system's CAs
    cert_file: str = ""             # client certificate, for brokers that ask for one
    key_file: str = ""              # its private key (empty = inside cert_file)
    username: str = ""
    password: Secret = Secret()     # the password itself; or, better:
    password_env: str = ""          # the name of an environment variable holding it; or
    password_file: str = ""         # a file holding it (surrounding whitespace ignored)
    client_id: str = ""             # empty = counterd-<camera.name>
    topic_prefix: str = ""          # empty = counterd/<camera.name>
    qos: int = setting(1, min=0, max=2)
    retain: bool = True             # state topics (totals, occupancy, health) are retained
    queue_size: int = setting(10_000, min=1)   # events and alerts held while the broker is away
    keepalive_s: int = setting(60, min=5, max=65535)
    backoff_base_s: float = setting(1.0, above=0.0)    # first reconnect wait, doubling, with jitter
    backoff_cap_s: float = setting(60.0, above=0.0)    # longest wait between reconnect attempts
    health_interval_s: float = setting(60.0, min=1.0)
    discovery: bool = False         # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"

    def problems(self) -> list[tuple[str, str]]:
        out = _topic_problems("topic_prefix", self.topic_prefix)
        out += _topic_problems("discovery_prefix", self.discovery_prefix)
        if not self.discovery_prefix:
            out.append(("discovery_prefix", "must not be empty"))
        if self.enabled and not self.host:
            out.append(("host", "required when mqtt is enabled"))
        files = [k for k in ("ca_file", "cert_file", "key_file") if getattr(self, k)]
        if files and not self.tls:
            out.append((files[0], "is only used with TLS: set mqtt.tls = true (or empty it)"))
        if self.key_file and not self.cert_file:
            out.append(("key_file", "needs cert_file (the certificate that goes with the key)"))
        password_sources = [k for k in ("password", "password_env", "password_file") if getattr(self, k)]
        if len(password_sources) > 1:
            out.append(("password", f"give only one of password, password_env, password_file "
                                    f"(got {', '.join(password_sources)})"))
        if password_sources and not self.username:
            out.append(("username", "required when a password is given"))
        if self.backoff_cap_s < self.backoff_base_s:
            out.append(("backoff_cap_s", f"must be >= backoff_base_s ({self.backoff_base_s:g}), "
                                         f"got {self.backoff_cap_s:g}"))
        return out


def _is_zone(name: str) -> bool:
    import zoneinfo
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class LineConfig:
    name: str
    start: tuple[float, float]      # point A, pixels; 'in' is movement toward (dy, -dx), (dx, dy) = B - A
    end: tuple[float, float]        # point B
    invert: bool = False            # swap in and out
    tailgate_seconds: float | None = setting(None, above=0.0)   # alert: 2+ 'in' crossings this close
    forbidden_direction: Literal["", "in", "out"] = ""          # alert: a crossing this way

    @property
    def geometry(self) -> tuple:
        """What a track's side of this line depends on: its name, points and orientation (not
        its alert settings)."""
        return (self.name, tuple(self.start), tuple(self.end), self.invert)

    def problems(self) -> list[tuple[str, str]]:
        if tuple(self.start) == tuple(self.end):
            return [("end", "a line needs two different points")]
        if not self.name.strip():
            return [("name", "must not be empty")]
        return []


@dataclass(frozen=True)
class UploadConfig:
    """Hourly reports pushed to the central CCTV GCC API service (README: Hourly reports)."""
    enabled: bool = False
    url: CredentialUrl = CredentialUrl("")   # the service's base URL; reports are POSTed to <url>/upload_report
    camera_ref: str = ""            # this camera at the service: [a-z0-9_-]+ (it breaks on spaces)
    pin: Secret = Secret()          # the upload PIN itself; or, better:
    pin_env: str = ""               # the name of an environment variable holding it; or
    pin_file: str = ""              # a file holding it (surrounding whitespace ignored)
    model_name: Literal["yolo", "tf2"] = "yolo"     # the service's column schema
    class_map: tuple[tuple[str, str], ...] = ()     # [detector class, column] pairs; empty = default
    lines: tuple[str, ...] = ()     # lines whose crossings are reported; empty = the primary line (set at load)
    direction: Literal["in", "out", "both"] = "both"
    minute: int = setting(5, min=0, max=59)          # the hourly job runs this many minutes past
    backoff_base_s: float = setting(10.0, above=0.0)     # first retry wait, doubling, with jitter
    backoff_cap_s: float = setting(900.0, above=0.0)     # longest wait between retries
    unauthorized_retry_s: float = setting(1800.0, above=0.0)  # retry wait after a 401 or bad url
    connect_timeout_s: float = setting(10.0, above=0.0)
    timeout_s: float = setting(60.0, above=0.0)          # a whole upload, answer included
    spool_warn_mb: float = setting(50.0, above=0.0)      # outbox size that raises a warning
    backfill_days: float = setting(7.0, min=0.0)         # oldest missing hour still built and sent
    overwrite: bool = False         # send overwrite=t: a rebuilt, fully analysed hour replaces the service's row
    reject_attempts: int = setting(4, min=1, max=100)    # 500s (with backoff) before a report is set aside
    camera_pk: int = setting(0, min=0)                   # this camera's number at the service; 0 = unknown

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.camera_ref and not re.fullmatch(CAMERA_REF_PATTERN, self.camera_ref):
            out.append(("camera_ref", f"must be lower-case letters, digits, '-' or '_' only "
                                      f"(the service breaks on spaces), got {self.camera_ref!r}"))
        pin_sources = [k for k in ("pin", "pin_env", "pin_file") if getattr(self, k)]
        if len(pin_sources) > 1:
            out.append(("pin", f"give only one of pin, pin_env, pin_file (got {', '.join(pin_sources)})"))
        if self.enabled:
            if not self.url:
                out.append(("url", "required when upload is enabled"))
            if not self.camera_ref:
                out.append(("camera_ref", "required when upload is enabled"))
            if not pin_sources:
                out.append(("pin_env", "one of pin, pin_env or pin_file is required when upload is enabled"))
        if self.url and not re.match(r"https?://[^/]", self.url):
            out.append(("url", f"must start with http:// or https://, got {self.url!r}"))
        columns = COUNT_COLUMNS[self.model_name]
        seen = set()
        for i, (detector_class, column) in enumerate(self.class_map):
            if detector_class not in CLASS_IDS:
                out.append((f"class_map[{i}]", f"unknown COCO class name {detector_class!r}"))
            elif detector_class in seen:
                out.append((f"class_map[{i}]", f"class {detector_class!r} is mapped more than once"))
            if column not in columns:
                out.append((f"class_map[{i}]", f"{column!r} is not a {self.model_name} column "
                                               f"(one of {', '.join(columns)})"))
            seen.add(detector_class)
        if self.backoff_cap_s < self.backoff_base_s:
            out.append(("backoff_cap_s", f"must be >= backoff_base_s ({self.backoff_base_s:g}), "
                                         f"got {self.backoff_cap_s:g}"))
        return out

    def line_problems(self, line_names: list[str]) -> list[tuple[str, str]]:
        unknown = [n for n in self.lines if n not in line_names]
        if unknown:
            return [("upload.lines", f"no line is named {', '.join(map(repr, unknown))}")]
        return []


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    counting: CountingConfig = field(default_factory=CountingConfig)
    lines: tuple[LineConfig, ...] = ()
    source: SourceConfig = field(default_factory=SourceConfig)
    gating: GatingConfig = field(default_factory=GatingConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    users: tuple[UserConfig, ...] = ()
    occupancy: OccupancyConfig = field(default_factory=OccupancyConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    path: str = field(default="<defaults>", metadata={"internal": True})

    @property
    def primary_line(self) -> LineConfig | None:
        for line in self.lines:
            if line.name == self.counting.primary_line:
                return line
        return self.lines[0] if self.lines else None

    def with_derived_defaults(self) -> Config:
        """Defaults that depend on other sections, filled in once at load so that check-config
        shows them: upload.lines defaults to the primary line alone (summing every line would
        count a person who crosses two lines twice)."""
        primary = self.primary_line
        if self.upload.lines or primary is None:
            return self
        return dataclasses.replace(self, upload=dataclasses.replace(self.upload, lines=(primary.name,)))

    def user_problems(self) -> list[tuple[str, str]]:
        """Two entries for one name would make the login depend on their order; an empty
        password is no password."""
        out = []
        names = [user.name for user in self.users]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(("users", f"user name {name!r} is used more than once"))
        for i, user in enumerate(self.users):
            if user.password_is_empty(self.api.realm):
                out.append((f"users[{i}].ha1", f"user {user.name!r} has an empty password "
                                               f"(set one with: counterd passwd {user.name})"))
        return out

    def check_frame_size(self, width: int, height: int) -> None:
        """Refuse lines that leave the actual frame (the file may not have known its size)."""
        problems = frame_problems(self.lines, width, height)
        if problems:
            raise ConfigError([f"{self.path}: {key}: {message}" for key, message in problems])

    def problems(self) -> list[tuple[str, str]]:
        out = []
        names = [line.name for line in self.lines]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(("lines", f"line name {name!r} is used more than once"))
        out += self.user_problems()
        if self.counting.primary_line and self.counting.primary_line not in names:
            out.append(("counting.primary_line", f"no line is named {self.counting.primary_line!r}"))
        out += self.upload.line_problems(names)
        if self.camera.width is not None:
            out += frame_problems(self.lines, self.camera.width, self.camera.height)
        return out


def frame_problems(lines, width: int, height: int) -> list[tuple[str, str]]:
    """Lines with an end outside a width x height frame (the edge itself is inside)."""
    out = []
    for i, line in enumerate(lines):
        for key in ("start", "end"):
            x, y = getattr(line, key)
            if not (0 <= x <= width and 0 <= y <= height):
                out.append((f"lines[{i}].{key}",
                            f"point ({x:g}, {y:g}) is outside the {width}x{height} frame"))
    return out
