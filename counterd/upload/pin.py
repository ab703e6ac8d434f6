"""The upload PIN, from the config, an environment variable or a file (counterd.config.secrets)."""
from __future__ import annotations

from counterd.config import Secret, UploadConfig
from counterd.config.secrets import SecretError, read_secret


class PinError(SecretError):
    """The PIN could not be read; the message says where it was looked for."""


def read_pin(config: UploadConfig) -> Secret:
    """Blocking when the PIN is in a file: call it off the event loop."""
    try:
        pin = read_secret("upload.pin", config.pin, config.pin_env, config.pin_file)
    except SecretError as exc:
        raise PinError(str(exc)) from None
    if pin is None:
        raise PinError("upload: no PIN configured: set one of pin, pin_env, pin_file")
    return pin
