"""Errors meant for people: one line naming the thing and what to do. Tracebacks are for bugs."""


class UserError(Exception):
    """A problem with the user's input (file, option, model, source): one line, exit code 2."""
