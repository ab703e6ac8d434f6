"""`counterd demo [--port N] [--state DIR]`: the whole daemon on a synthetic scene.

No camera and no weights: person-sized shapes walk across a floor, through the motion detector
and a counting line. The API listens on 127.0.0.1 with anonymous viewer access, so the printed
URLs open in a browser; an operator password is generated and printed. State lives in a
temporary directory unless --state is given; nothing is uploaded.
"""
from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
from pathlib import Path

from counterd.api.auth import make_ha1
from counterd.config import config_from_dict
from counterd.daemon import scene
from counterd.daemon.logs import setup_logging
from counterd.daemon.service import leave, make_daemon_app, serve

REALM = "counterd"


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the whole daemon on a built-in synthetic scene",
                              description="Run the whole daemon (motion detector, store, HTTP API on "
                                          "127.0.0.1) on a built-in synthetic scene of people crossing a "
                                          "line: no camera, no model weights. Prints the URLs to try.")
    p.add_argument("--port", type=int, default=8080, help="HTTP port on 127.0.0.1 (default 8080)")
    p.add_argument("--state", metavar="DIR", help="keep counts and logs here (default: a temporary directory)")
    p.set_defaults(func=run)


def demo_config(state_dir: str, port: int, operator_password: str) -> dict:
    ha1 = make_ha1("operator", REALM, operator_password)
    return {
        "camera": {"name": "counterd-demo", "source": "synthetic scene",
                   "width": scene.WIDTH, "height": scene.HEIGHT},
        "detector": {"type": "motion"},
        "lines": [{"name": "demo", "start": [scene.LINE_X, 20], "end": [scene.LINE_X, scene.HEIGHT - 10]}],
        "daemon": {"state_dir": state_dir},
        "api": {"host": "127.0.0.1", "port": port, "realm": REALM, "anonymous_viewer": True},
        "users": [{"name": "operator", "role": "operator", "ha1": ha1}],
    }


def run(args) -> int:
    with tempfile.TemporaryDirectory(prefix="counterd-demo-") as tmp:
        state = str(Path(args.state).resolve()) if args.state else tmp
        password = secrets.token_urlsafe(9)
        config = config_from_dict(demo_config(state, args.port, password), "<demo>")
        setup_logging(config.daemon.log_path, verbose=args.verbose)
        base = f"http://127.0.0.1:{args.port}"

        def announce() -> None:
            print(f"""
counterd demo: people walk across a synthetic scene; the line "demo" counts them.
  live totals   {base}/local/tvpc/.api?live-sum.json
  export (CSV)  {base}/local/tvpc/.api?export-csv&res=1h
  metrics       {base}/metrics
  health        {base}/healthz
  viewer access needs no password; operator: user "operator", password "{password}"
  state (counts, log): {state}
Stop with Ctrl-C.
""", file=sys.stderr, flush=True)

        app = make_daemon_app(config, capture_factory=scene.DemoScene)
        asyncio.run(serve(app, config.api.host, config.api.port, on_started=announce))
    return leave(0)
