"""counterd: people and vehicle line counter.

The `counterd` command line. Each subcommand lives in counterd/commands/<name>.py and
registers itself with `register(subparsers)`; its handler returns an exit code."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from counterd import __version__
from counterd.config import ConfigError
from counterd.errors import UserError

COMMAND_MODULES = (
    "counterd.commands.process",
    "counterd.commands.check_config",
    "counterd.commands.run",
    "counterd.commands.demo",
    "counterd.commands.model",
    "counterd.commands.report",
    "counterd.commands.passwd",
    "counterd.commands.snapshot",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="counterd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"counterd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    add_verbose_everywhere(parser)
    return parser


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
    args = build_parser().parse_args(argv)
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
