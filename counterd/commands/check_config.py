"""`counterd check-config FILE`: print the resolved config, or every error, exit non-zero."""
from __future__ import annotations

import json

from counterd.config import config_to_dict, load_config


def register(subparsers) -> None:
    p = subparsers.add_parser("check-config", help="validate a config file and print it resolved")
    p.add_argument("file", help="TOML config file")
    p.set_defaults(func=run)


def run(args) -> int:
    config = load_config(args.file)  # ConfigError -> one line per problem, exit 2
    print(json.dumps(config_to_dict(config), indent=2))
    return 0
