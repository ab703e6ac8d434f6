"""Loading: TOML text -> validated, typed Config, with every problem named by file and key."""
from __future__ import annotations

import dataclasses
import math
import reprlib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from counterd.config.fields import ConfigError, CredentialUrl, Secret, redact
from counterd.config.sections import Config
from counterd.textfile import NotATextFile, read_small_text

MAX_INT = 2**31 - 1
MAX_FLOAT = 1e15            # no setting means more; larger values only overflow timers and sizes
MAX_CONFIG_BYTES = 4 << 20  # a config with hundreds of lines is a few KB; more is a wrong path


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file; raises ConfigError naming every problem found."""
    path = Path(path)
    try:
        data = tomllib.loads(read_small_text(path, MAX_CONFIG_BYTES))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except NotATextFile as exc:
        raise ConfigError([f"cannot read the configuration: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: arrays or tables nested too deeply"]) from None
    return config_from_dict(data, str(path))


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    errors: list[str] = []
    config = _build(Config, data, "", source, errors)
    if not errors:
        config = dataclasses.replace(config, path=source)
        _collect_problems(config, "", source, errors)
    if errors:
        raise ConfigError(errors)
    return config.with_derived_defaults()


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
        elif abs(value) > MAX_INT:      # beyond what C libraries (OpenCV, SQLite) take as int
            errors.append(f"{source}: {key}: {value} is too large (at most {MAX_INT})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{source}: {key}: expected a number, got {_kind(value)}")
            return value
        if not math.isfinite(value) or abs(value) > MAX_FLOAT:
            # nan passes every comparison, so no range check would catch it
            errors.append(f"{source}: {key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is Secret:  # never echo the value: it is the secret
        if not isinstance(value, str):
            errors.append(f"{source}: {key}: expected a string")
            return Secret()
        return Secret(value)
    if tp is CredentialUrl:
        if not isinstance(value, str):
            errors.append(f"{source}: {key}: expected a string, got {_kind(value)}")
            return value
        return CredentialUrl(value)
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
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__) + \
        f" ({reprlib.repr(value)})"[:60]


def config_to_dict(config: Any, *, reveal: bool = False) -> Any:
    """The resolved config as plain TOML-shaped data, secrets redacted by type (check-config,
    generate-logs); reveal=True only to compare two configs."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name), reveal=reveal) for f in dataclasses.fields(config)
                if not f.metadata.get("internal")}
    if isinstance(config, tuple):
        return [config_to_dict(v, reveal=reveal) for v in config]
    if reveal:
        return config.reveal() if isinstance(config, Secret) else config
    return redact(config)
