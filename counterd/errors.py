"""Errors meant for people: one line naming the thing and what to do. Tracebacks are for bugs."""


class UserError(Exception):
    """A problem with the user's input (file, option, model, source): one line, exit code 2,
    which the systemd units do not restart (RestartPreventExitStatus=2)."""
    exit_code = 2


class RuntimeFailure(UserError):
    """A failure of the moment, not of the configuration (the port is in use, the database is
    locked, the disk fails): one line, exit code 1, so systemd restarts the service."""
    exit_code = 1
