"""The building blocks of config sections: limits on numeric fields, secrets, the error type."""
from __future__ import annotations

import dataclasses
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
