"""counterd: people and vehicle line counter.

The `counterd` command line. Each subcommand lives in counterd/commands/<name>.py and
registers itself with `register(subparsers)`; its handler returns an exit code. Only the module
of the subcommand being run is imported (`counterd --version` and `check-config` never load
OpenCV, numpy or aiohttp); COMMANDS lists them with the one-line help `counterd --help` shows."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from counterd import __version__
from counterd.config import ConfigError
from counterd.errors import UserError

# name -> (module, one-line help); each module's register() gives the same help (tests/test_cli.py).
COMMANDS: dict[str, tuple[str, str]] = {
    "process": ("counterd.commands.process", "count line crossings in a video file"),
    "validate": ("counterd.commands.validate", "compare counts on a recording with the true crossings (commissioning)"),
    "check-config": ("counterd.commands.check_config", "validate a config file and print it resolved"),
    "run": ("counterd.commands.run", "run the counting daemon: camera, HTTP API, uploads"),
    "demo": ("counterd.commands.demo", "run the whole daemon on a built-in synthetic scene"),
    "model": ("counterd.commands.model", "list known models, download one, or optimise one for a camera"),
    "report": ("counterd.commands.report", "hourly reports for the central service"),
    "passwd": ("counterd.commands.passwd", "print a [[users]] config entry for an HTTP API user"),
    "snapshot": ("counterd.commands.snapshot", "save one frame from the configured camera as JPEG"),
}
ALL = "*"


def build_parser(command: str | None = ALL) -> argparse.ArgumentParser:
    """The parser with `command`'s own subparser (ALL: every command's); the others are listed
    by name and help only, so their modules are not imported."""
    parser = argparse.ArgumentParser(prog="counterd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"counterd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help) in COMMANDS.items():
        if command in (ALL, name):
            importlib.import_module(module).register(subparsers)
        else:
            subparsers.add_parser(name, help=help)
    add_verbose_everywhere(parser)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS), None)


def add_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """`-v` after the subcommand too (`counterd run --config F -v`). SUPPRESS as the default
    keeps a -v given before the subcommand from being reset by the subparser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "-v" not in sub._option_string_actions:
                    sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                     help="debug logging")
                add_verbose_everywhere(sub)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(chosen_command(argv)).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"counterd: error: {line}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"counterd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
