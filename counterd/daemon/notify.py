"""systemd's notify protocol (sd_notify(3)) in a few lines: datagrams to $NOTIFY_SOCKET.

READY=1 once serving, STATUS=... for `systemctl status`, WATCHDOG=1 pings while the daemon is
healthy, STOPPING=1 on the way out. Without $NOTIFY_SOCKET (not under systemd) every call is a
no-op, so the same code runs in a terminal and in tests.
"""
from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):          # abstract namespace socket
            address = "\0" + address[1:]
        self.address = address or None
        self._socket: socket.socket | None = None
        # WATCHDOG_USEC is systemd's WatchdogSec; WATCHDOG_PID, when set, must be us.
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send KEY=VALUE lines in one datagram; False when there is nowhere to send or it failed."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError:
            return False   # systemd gone or socket full: never worth crashing the daemon for

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
