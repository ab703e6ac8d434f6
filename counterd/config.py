"""Configuration: TOML parsed once, at the edge, into frozen dataclasses.

Each section is a dataclass; its fields carry their type, default and limits, and the loader
checks every key against them. An error names the file and the dotted key, e.g.
``counterd.toml: detector.confidence: must be <= 1, got 1.5``.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from counterd.classes import CLASS_IDS, DEFAULT_CLASSES
from counterd.detections import ANCHORS
from counterd.errors import UserError
from counterd.upload.schema import CAMERA_REF_PATTERN, COUNT_COLUMNS


class ConfigError(UserError):
    """One or more problems with a configuration; each line names the file and key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def setting(default: Any = dataclasses.MISSING, *, min: float | None = None, max: float | None = None,
            above: float | None = None, factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with numeric limits the loader enforces (min/max inclusive, above exclusive)."""
    meta = {"min": min, "max": max, "above": above}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Secret:
    """A value that must never be shown (a PIN): repr, str and check-config print it redacted.
    The code that needs it calls reveal()."""
    __slots__ = ("_value",)

    def __init__(self, value: str = ""):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('<redacted>')" if self._value else "Secret('')"

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------
# Sections. Defaults are what a production box runs with when the key is absent; the documented
# example is config/counterd.toml.


@dataclass(frozen=True)
class CameraConfig:
    name: str = "counterd"          # the counter's name in the Axis API and in reports
    serial: str = ""                # 12 hex digits; empty = derived from the machine id
    source: str = ""                # file path, rtsp:// URL, USB index ("0") or /dev/videoN
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
    type: Literal["onnx", "ultralytics", "motion"] = "onnx"
    model: str = "yolox_nano"       # a file path, or a name from models/manifest.toml
    models_dir: str = ""            # where model names are looked up; empty = the default search
    confidence: float = setting(0.25, min=0.0, max=1.0)
    nms_iou: float = setting(0.45, min=0.0, max=1.0)
    classes: tuple[str, ...] = DEFAULT_CLASSES
    threads: int = setting(1, min=1, max=64)
    motion: MotionConfig = field(default_factory=MotionConfig)

    def problems(self) -> list[tuple[str, str]]:
        unknown = [c for c in self.classes if c not in CLASS_IDS]
        if unknown:
            return [("classes", f"unknown COCO class name(s): {', '.join(map(repr, unknown))}")]
        if not self.classes:
            return [("classes", "must name at least one class")]
        return []


@dataclass(frozen=True)
class TrackerConfig:
    high_score: float = setting(0.5, min=0.0, max=1.0)     # first association pass
    low_score: float = setting(0.1, min=0.0, max=1.0)      # second pass recovers occluded objects
    new_track_score: float = setting(0.55, min=0.0, max=1.0)
    match_iou: float = setting(0.2, above=0.0, max=1.0)    # least IoU that may pair track and box
    max_coast_seconds: float = setting(1.5, min=0.0)       # a lost track survives this long

    def problems(self) -> list[tuple[str, str]]:
        if self.low_score > self.high_score:
            return [("low_score", f"must be <= high_score ({self.high_score}), got {self.low_score}")]
        return []


@dataclass(frozen=True)
class CountingConfig:
    anchor: Literal["bottom-center", "center", "top-center"] = "bottom-center"
    hysteresis_px: float = setting(6.0, min=0.0)   # half-width of the band where side is undecided
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

    def problems(self) -> list[tuple[str, str]]:
        if self.backoff_cap_s < self.backoff_base_s:
            return [("backoff_cap_s", f"must be >= backoff_base_s ({self.backoff_base_s:g}), "
                                      f"got {self.backoff_cap_s:g}")]
        return []


@dataclass(frozen=True)
class GatingConfig:
    """Motion gating: skip detection while the scene is static; tracks coast meanwhile."""
    enabled: bool = True
    width: int = setting(64, min=8, max=640)               # frames are compared at this width
    pixel_delta: int = setting(12, min=1, max=255)         # grey-level change that counts as motion
    min_changed: float = setting(0.002, min=0.0, max=1.0)  # fraction of changed pixels = motion
    max_skip_s: float = setting(0.5, min=0.0)              # detect at least this often (keep < tracker.max_coast_seconds)


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


@dataclass(frozen=True)
class UserConfig:
    """An HTTP API user. ha1 = md5("name:realm:password") in hex: `counterd passwd` prints it."""
    name: str
    role: Literal["viewer", "operator", "admin"]
    ha1: str

    def problems(self) -> list[tuple[str, str]]:
        if not re.fullmatch(r"[0-9a-f]{32}", self.ha1):
            return [("ha1", "must be 32 lower-case hex digits (make it with: counterd passwd NAME)")]
        if not self.name or ":" in self.name:
            return [("name", f"must be non-empty without ':', got {self.name!r}")]
        return []


@dataclass(frozen=True)
class ApiConfig:
    """The HTTP API: Axis tvpc paths and /api/v1/ (README: HTTP API)."""
    host: str = "0.0.0.0"
    port: int = setting(8080, min=1, max=65535)
    realm: str = "counterd"         # part of every user's ha1: changing it invalidates them
    anonymous_viewer: bool = False  # viewer commands without credentials (wget-style clients)
    nonce_seconds: float = setting(300.0, above=0.0)   # a Digest nonce is stale after this


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
    webhook_url: str = ""           # each alert is POSTed here as JSON; empty = none

    def problems(self) -> list[tuple[str, str]]:
        if self.webhook_url and not re.match(r"https?://[^/\s]+", self.webhook_url):
            return [("webhook_url", f"must be an http:// or https:// URL, got {self.webhook_url!r}")]
        return []


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
    url: str = ""                   # the service's base URL; reports are POSTed to <url>/upload_report
    camera_ref: str = ""            # this camera at the service: [a-z0-9_-]+ (it breaks on spaces)
    pin: Secret = Secret()          # the upload PIN itself; or, better:
    pin_env: str = ""               # the name of an environment variable holding it; or
    pin_file: str = ""              # a file holding it (surrounding whitespace ignored)
    model_name: Literal["yolo", "tf2"] = "yolo"     # the service's column schema
    class_map: tuple[tuple[str, str], ...] = ()     # [detector class, column] pairs; empty = default
    lines: tuple[str, ...] = ()     # lines whose crossings are reported; empty = every line
    direction: Literal["in", "out", "both"] = "both"
    minute: int = setting(5, min=0, max=59)          # the hourly job runs this many minutes past
    backoff_base_s: float = setting(10.0, above=0.0)     # first retry wait, doubling, with jitter
    backoff_cap_s: float = setting(900.0, above=0.0)     # longest wait between retries
    unauthorized_retry_s: float = setting(1800.0, above=0.0)  # retry wait after a 401 or bad url
    connect_timeout_s: float = setting(10.0, above=0.0)
    timeout_s: float = setting(60.0, above=0.0)          # a whole upload, answer included
    spool_warn_mb: float = setting(50.0, above=0.0)      # outbox size that raises a warning
    backfill_days: float = setting(7.0, min=0.0)         # oldest missing hour still built and sent
    overwrite: bool = False         # send overwrite=t: a rebuilt hour replaces the service's row

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
    path: str = field(default="<defaults>", metadata={"internal": True})

    @property
    def primary_line(self) -> LineConfig | None:
        for line in self.lines:
            if line.name == self.counting.primary_line:
                return line
        return self.lines[0] if self.lines else None

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


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file; raises ConfigError naming every problem found."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return config_from_dict(data, str(path))


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    errors: list[str] = []
    config = _build(Config, data, "", source, errors)
    if not errors:
        config = dataclasses.replace(config, path=source)
        _collect_problems(config, "", source, errors)
    if errors:
        raise ConfigError(errors)
    return config


def _collect_problems(obj: Any, prefix: str, source: str, errors: list[str]) -> None:
    """Run each dataclass's own cross-field checks, depth first."""
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _collect_problems(value, key + ".", source, errors)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                _collect_problems(item, f"{key}[{i}].", source, errors)
    if hasattr(obj, "problems"):
        for key, message in obj.problems():
            errors.append(f"{source}: {prefix}{key}: {message}")


def _build(cls: type, data: Any, prefix: str, source: str, errors: list[str]) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        errors.append(f"{source}: {where}: expected a table, got {_kind(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    errors_before = len(errors)
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            errors.append(f"{source}: {prefix}{key}: unknown key (known keys here: {known})")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                errors.append(f"{source}: {key}: required key is missing")
            continue
        before = len(errors)
        value = _convert(hints[name], data[name], key, source, errors)
        if len(errors) == before:
            _check_limits(f, value, key, source, errors)
        kwargs[name] = value
    if len(errors) > errors_before:
        return None
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str, source: str, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value == "" and type(None) in args):
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key, source, errors)
    if origin is Literal:
        if value not in args:
            errors.append(f"{source}: {key}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", source, errors)
    if origin is tuple:
        if not isinstance(value, list):
            errors.append(f"{source}: {key}: expected an array, got {_kind(value)}")
            return None
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]", source, errors) for i, v in enumerate(value))
        if len(value) != len(args):
            errors.append(f"{source}: {key}: expected {len(args)} values, got {len(value)}")
            return None
        return tuple(_convert(a, v, f"{key}[{i}]", source, errors) for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{source}: {key}: expected true or false, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{source}: {key}: expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{source}: {key}: expected a number, got {_kind(value)}")
            return value
        return float(value)
    if tp is Secret:  # never echo the value: it is the secret
        if not isinstance(value, str):
            errors.append(f"{source}: {key}: expected a string")
            return Secret()
        return Secret(value)
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{source}: {key}: expected a string, got {_kind(value)}")
        return value
    raise TypeError(f"config field {key} has an unsupported type {tp!r}")  # a bug, not a user error


def _check_limits(f: dataclasses.Field, value: Any, key: str, source: str, errors: list[str]) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    lo, hi, above = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("above")
    if lo is not None and value < lo:
        errors.append(f"{source}: {key}: must be >= {lo:g}, got {value:g}")
    elif above is not None and value <= above:
        errors.append(f"{source}: {key}: must be > {above:g}, got {value:g}")
    elif hi is not None and value > hi:
        errors.append(f"{source}: {key}: must be <= {hi:g}, got {value:g}")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__) + f" ({value!r})"[:60]


def config_to_dict(config: Any) -> Any:
    """The resolved config as plain TOML-shaped data (for check-config and params)."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)
                if not f.metadata.get("internal")}
    if isinstance(config, tuple):
        return [config_to_dict(v) for v in config]
    if isinstance(config, Secret):
        return "<redacted>" if config else ""
    return config
