"""Secrets given inline, by an environment variable's name, or in a file (upload.pin,
mqtt.password). Read when needed rather than once, so fixing the variable or the file takes effect
without a restart. Errors name where the secret should be, never the secret."""
from __future__ import annotations

import os

from counterd.config.fields import Secret
from counterd.errors import UserError
from counterd.textfile import read_small_text

MAX_SECRET_BYTES = 64 << 10     # a PIN or password; a bigger file is the wrong file


class SecretError(UserError):
    """The secret could not be read; the message says where it was looked for."""


def read_secret(key: str, inline: Secret, env: str, path: str) -> Secret | None:
    """`key` is the dotted config name of the inline value ("upload.pin"); its _env and _file
    siblings are named after it. None when none of the three is set. Blocking when the secret
    is in a file: call it off the event loop."""
    if inline:
        return inline
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise SecretError(f"{key}_env: environment variable {env} is not set or empty")
        return Secret(value)
    if path:
        try:
            value = read_small_text(path, MAX_SECRET_BYTES).strip()
        except OSError as exc:
            raise SecretError(f"{key}_file: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SecretError(f"{key}_file: {path} is not UTF-8 text") from None
        if not value:
            raise SecretError(f"{key}_file: {path} is empty")
        return Secret(value)
    return None
