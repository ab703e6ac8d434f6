"""`counterd run --config FILE`: the counting daemon (camera, HTTP API, uploads) until SIGTERM."""
from __future__ import annotations

import asyncio

from counterd.config import load_config
from counterd.daemon.logs import setup_logging
from counterd.daemon.service import leave, make_daemon_app, serve


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run the counting daemon: camera, HTTP API, uploads")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML config file")
    p.set_defaults(func=run)


def run(args) -> int:
    config = load_config(args.config)   # ConfigError -> one line per problem, exit 2
    d = config.daemon
    setup_logging(d.log_path, verbose=args.verbose, max_bytes=d.log_max_bytes, backups=d.log_backups)
    asyncio.run(serve(make_daemon_app(config), config.api.host, config.api.port))
    return leave(0)
