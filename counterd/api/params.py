"""Axis parameters (params.json, setparams): the settable ones map onto config fields.

Values set through setparams are kept in the store and laid over the config file at every start,
so they survive restarts. A change takes effect at once through the config hub
(counterd/confighub.py), which hands the new effective Config to every component; counts are
never touched, since every line is always stored.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Callable

from counterd import __version__
from counterd.api.query import BadRequest
from counterd.config import Config
from counterd.config.fields import xml_unsafe
from counterd.choices import ANCHORS

log = logging.getLogger("counterd.api")


@dataclass(frozen=True)
class Param:
    section: str | None      # the Config section and field it sets; None: an Axis-only one
    field: str | None
    parse: Callable[[str, Config], object]   # raises ValueError with the reason
    show: Callable[[object], object] = lambda v: v
    effect: bool = True      # False: an Axis parameter counterd stores and shows but never acts on
    default: object = None   # what params.json shows for an Axis-only one never set (None: absent)


def _name(text: str, config: Config) -> str:
    if not 1 <= len(text) <= 64 or any(ord(c) < 32 for c in text):
        raise ValueError("must be 1-64 printable characters")
    bad = xml_unsafe(text)
    if bad:
        # export-xml carries the name; XML 1.0 has no way to write these characters at all.
        raise ValueError(f"{bad} cannot be written in XML (export-xml carries the name)")
    return text


def _text(text: str, config: Config) -> str:
    if len(text) > 128 or any(ord(c) < 32 for c in text) or xml_unsafe(text):
        raise ValueError("must be at most 128 printable characters")
    return text


def _port(text: str, config: Config) -> int:
    if not re.fullmatch(r"\d{1,5}", text) or not 1 <= int(text) <= 65535:
        raise ValueError("must be a TCP port, 1-65535")
    return int(text)


def _centimetres(text: str, config: Config) -> int:
    if not re.fullmatch(r"\d{1,5}", text) or int(text) > 10000:
        raise ValueError("must be a whole number of centimetres, 0-10000")
    return int(text)


def _flag(text: str, config: Config) -> bool:
    if text not in ("0", "1", "yes", "no", "true", "false"):
        raise ValueError("must be 1 or 0")
    return text in ("1", "yes", "true")


def _line(text: str, config: Config) -> str:
    names = [line.name for line in config.lines]
    if text not in names:
        raise ValueError(f"no line is named {text!r} (lines: {', '.join(names) or 'none'})")
    return text


def _pixels(text: str, config: Config) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of pixels") from None
    if not 0 <= value <= 1000:
        raise ValueError("must be between 0 and 1000")
    return value


def _anchor(text: str, config: Config) -> str:
    if text not in ANCHORS:
        raise ValueError(f"must be one of {', '.join(ANCHORS)}")
    return text


def _clock(text: str, config: Config) -> str:
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
        raise ValueError("must be HH:MM")
    return text


def _hidden(value: object) -> str:
    return "********" if value else ""


def _axis_only(parse: Callable[[str, Config], object], default: object = None, show=lambda v: v) -> Param:
    return Param(None, None, parse, show, effect=False, default=default)


PARAMS: dict[str, Param] = {
    "Counter.Name": Param("camera", "name", _name),
    "Counter.Enabled": Param("counting", "enabled", _flag, int),
    "Counter.PrimaryLine": Param("counting", "primary_line", _line),
    "Counter.Hysteresis": Param("counting", "hysteresis_px", _pixels),
    "Counter.Anchor": Param("counting", "anchor", _anchor),
    "Occupancy.ResetTime": Param("occupancy", "reset_time", _clock),
    # Axis parameters real clients and the Axis doc send that mean nothing to counterd (spec
    # axis-tvpc.md, params.json): accepted, kept and shown, so a client's setparams succeeds and
    # reads back what it wrote; the reply says they had no effect. Defaults are the device's.
    "Counter.Height": _axis_only(_centimetres),                 # mounting height: counterd needs none
    "Counter.SlaveAddress": _axis_only(_text),                  # master/slave counting over TCP
    "Counter.SlavePort": _axis_only(_port, 4066),
    "Counter.MasterPort": _axis_only(_port, 4066),
    "Counter.SlavePass": _axis_only(_text, show=_hidden),       # a password: never shown back
    "Counter.EventListenerPort": _axis_only(_port, 23456),
    "Counter.EventListenerMessage": _axis_only(_text, "passage"),
}
ALIASES = {
    "Counter.Enable": "Counter.Enabled",        # the Axis doc's setparams example spells it so
    # The axparameter spellings under root.tvpc (one counter, index 0).
    **{f"Counter0{name.split('.')[1]}": name for name in
       ("Counter.SlaveAddress", "Counter.SlavePort", "Counter.MasterPort", "Counter.SlavePass",
        "Counter.EventListenerPort", "Counter.EventListenerMessage")},
}


class Settings:
    """The effective configuration: the config file with setparams values laid over it."""

    def __init__(self, base: Config):
        self.base = base
        self.values: dict[str, object] = {}
        self.config = base

    def load(self, stored: dict[str, str]) -> None:
        """Lay values kept by earlier setparams over the config; ones that no longer fit it (a
        removed line) are skipped with a warning."""
        for name, text in stored.items():
            try:
                self.values[name] = PARAMS[name].parse(text, self.base)
            except (KeyError, ValueError) as exc:
                log.warning("ignoring stored parameter %s=%r: %s", name, text, exc)
        self.config = self._apply()

    def rebase(self, base: Config) -> Config:
        """A reloaded config file; setparams values stay on top of it."""
        self.base = base
        self.config = self._apply()
        return self.config

    def _apply(self) -> Config:
        config = self.base
        for name, value in self.values.items():
            param = PARAMS[name]
            if param.section is None:
                continue        # Axis-only: kept and shown, never applied
            section = dataclasses.replace(getattr(config, param.section), **{param.field: value})
            config = dataclasses.replace(config, **{param.section: section})
        return config

    def parse(self, pairs: list[tuple[str, str]]) -> dict[str, tuple[object, str]]:
        """Check every name and value first (all-or-nothing); name -> (value, text to store)."""
        out = {}
        for raw_name, text in pairs:
            name = ALIASES.get(raw_name, raw_name)
            if name not in PARAMS:
                raise BadRequest(f"setparams: unknown parameter {raw_name[:60]!r} "
                                 f"(settable: {', '.join(PARAMS)})")
            if name in out:
                raise BadRequest(f"setparams: {raw_name}: given more than once")
            try:
                out[name] = (PARAMS[name].parse(text, self.base), text)
            except ValueError as exc:
                raise BadRequest(f"setparams: {raw_name}: {exc}, got {text[:40]!r}") from None
        if not out:
            raise BadRequest("setparams: no parameters given (use setparams&Group.Name=value)")
        return out

    def set(self, parsed: dict[str, tuple[object, str]]) -> Config:
        for name, (value, _) in parsed.items():
            self.values[name] = value
        self.config = self._apply()
        return self.config

    def as_groups(self, serial: str) -> dict:
        """params.json: parameters grouped as the Axis app groups them."""
        config = self.config
        counter = {name.split(".", 1)[1]: PARAMS[name].show(self._current(name))
                   for name in PARAMS if name.startswith("Counter.") and self._current(name) is not None}
        counter["Lines"] = ",".join(line.name for line in config.lines)
        return {
            "Counter": counter,
            "Occupancy": {"ResetTime": config.occupancy.reset_time, "Mode": "naive"},
            "Build": {"Name": "counterd", "Version": __version__},
            "Static": {"Manufacturer": "counterd", "ModelName": "counterd", "Serial": serial, "Errors": []},
        }

    def _current(self, name: str):
        param = PARAMS[name]
        if param.section is None:
            return self.values.get(name, param.default)
        if name == "Counter.PrimaryLine":
            line = self.config.primary_line
            return line.name if line else ""
        return getattr(getattr(self.config, param.section), param.field)
