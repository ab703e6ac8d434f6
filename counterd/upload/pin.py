"""The upload PIN, from the config, an environment variable or a file.

Read at every send rather than once, so fixing the variable's file or the PIN file takes effect
without a restart. Errors name where the PIN should be, never the PIN.
"""
from __future__ import annotations

import os

from counterd.config import Secret, UploadConfig
from counterd.errors import UserError


class PinError(UserError):
    """The PIN could not be read; the message says where it was looked for."""


def read_pin(config: UploadConfig) -> Secret:
    """Blocking when the PIN is in a file: call it off the event loop."""
    if config.pin:
        return config.pin
    if config.pin_env:
        value = os.environ.get(config.pin_env, "").strip()
        if not value:
            raise PinError(f"upload.pin_env: environment variable {config.pin_env} is not set or empty")
        return Secret(value)
    if config.pin_file:
        try:
            with open(config.pin_file, encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as exc:
            raise PinError(f"upload.pin_file: cannot read {config.pin_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise PinError(f"upload.pin_file: {config.pin_file} is not UTF-8 text") from None
        if not value:
            raise PinError(f"upload.pin_file: {config.pin_file} is empty")
        return Secret(value)
    raise PinError("upload: no PIN configured: set one of pin, pin_env, pin_file")
