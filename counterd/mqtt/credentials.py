"""What the broker login needs from disk: the TLS files and the password (inline, from an
environment variable, or from a file). Read at every connect, so fixing a file needs no restart;
`counterd check-config` runs the same check. Errors name the key and the file, never a secret."""
from __future__ import annotations

from counterd.config import MqttConfig, Secret
from counterd.config.secrets import SecretError, read_secret

TLS_FILES = ("ca_file", "cert_file", "key_file")


def read_login(settings: MqttConfig) -> Secret | None:
    """The password (None = none configured), once the TLS files are known readable. Blocking:
    call it off the event loop. Raises SecretError."""
    for key in TLS_FILES:
        path = getattr(settings, key)
        if settings.tls and path:
            try:
                open(path, "rb").close()
            except OSError as exc:
                raise SecretError(f"mqtt.{key}: cannot read {path}: {exc.strerror or exc}") from None
    return read_secret("mqtt.password", settings.password, settings.password_env, settings.password_file)
