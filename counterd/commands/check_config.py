"""`counterd check-config FILE`: print the resolved config, or every error, exit non-zero."""
from __future__ import annotations

import json
import sys

from counterd.config import config_to_dict, load_config
from counterd.preflight import deployment_errors, save_warnings, upload_warnings


def register(subparsers) -> None:
    p = subparsers.add_parser("check-config", help="validate a config file and print it resolved",
                              description="Validate a config file as `counterd run` would load it, print it "
                                          "resolved (secrets redacted), and check what a first start needs: "
                                          "the model is found and loads, a file source exists. Exits 2 on "
                                          "any error; warnings (upload columns that can never be filled, a "
                                          "config the console could not save lines into as this user) go to stderr.")
    p.add_argument("file", help="TOML config file")
    p.set_defaults(func=run)


def run(args) -> int:
    config = load_config(args.file)  # ConfigError -> one line per problem, exit 2
    print(json.dumps(config_to_dict(config), indent=2))
    for warning in upload_warnings(config) + save_warnings(args.file):
        print(f"counterd: warning: {warning}", file=sys.stderr)
    errors = deployment_errors(config)
    for error in errors:
        print(f"counterd: error: {args.file}: {error}", file=sys.stderr)
    return 2 if errors else 0
