"""`counterd run --config FILE`: the counting daemon (camera, HTTP API, uploads) until SIGTERM."""
from __future__ import annotations

import asyncio
import dataclasses

from counterd.config import Config, load_config
from counterd.daemon.logs import setup_logging
from counterd.daemon.service import leave, make_daemon_app, serve


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run the counting daemon: camera, HTTP API, uploads",
                              description="Run the counting daemon for one camera: read camera.source, count "
                                          "line crossings into the counts store, serve the Axis and /api/v1 "
                                          "HTTP API and push hourly reports when [upload] is enabled. "
                                          "SIGHUP reloads the config; systemd's unit runs this.")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML config file")
    p.add_argument("--state-dir", metavar="DIR",
                   help="override daemon.state_dir (counts database, outbox, log); the systemd units pass it")
    p.set_defaults(func=run)


def run(args) -> int:
    def adjust(config: Config) -> Config:
        if not args.state_dir:
            return config
        return dataclasses.replace(config, daemon=dataclasses.replace(config.daemon, state_dir=args.state_dir))

    config = adjust(load_config(args.config))   # ConfigError -> one line per problem, exit 2
    d = config.daemon
    setup_logging(d.log_path, verbose=args.verbose, max_bytes=d.log_max_bytes, backups=d.log_backups)
    app = make_daemon_app(config, adjust=adjust)
    asyncio.run(serve(app, config.api.host, config.api.port))
    return leave(0)
