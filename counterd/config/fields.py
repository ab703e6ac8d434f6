"""The building blocks of config sections: limits on numeric fields, secrets, the error type."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import field
from typing import Any

from counterd.errors import UserError


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


# Characters XML 1.0 cannot carry at all, escaped or not (its Char production): C0 controls
# other than tab/LF/CR, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_unsafe(text: str) -> str:
    """'U+FFFF' for the first character of text that XML cannot carry, else ''."""
    found = _NOT_XML.search(text)
    return f"U+{ord(found.group()):04X}" if found else ""


def xml_safe(text: str) -> str:
    """text without the characters XML cannot carry (for output built from older stored data)."""
    return _NOT_XML.sub("", text)


class CredentialUrl(str):
    """A URL that may carry a user and password (rtsp://user:pw@cam/, https://user:pw@hook/):
    a plain str to the code that connects, shown only through redact_url."""
    __slots__ = ()


_URL_USERINFO_RE = re.compile(r"://([^:/@\s]*)(:[^@/\s]*)?@")


def redact_url(text: str) -> str:
    """Every URL password in `text` replaced: rtsp://user:secret@host -> rtsp://user:***@host;
    a user part alone may be a token: https://token@host -> https://***@host."""
    return _URL_USERINFO_RE.sub(lambda m: f"://{m.group(1)}:***@" if m.group(2) is not None else "://***@", text)


REDACTED = "<redacted>"


def redact(value: Any) -> Any:
    """How a config value may be shown anywhere (check-config, generate-logs, params, logs):
    decided by its type, in this one place. Secrets are replaced whole, URLs lose their password."""
    if isinstance(value, Secret):
        return REDACTED if value else ""
    if isinstance(value, CredentialUrl):
        return redact_url(value)
    return value
