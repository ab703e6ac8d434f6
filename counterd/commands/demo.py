"""`counterd demo [--host H] [--port N] [--state DIR]`: the whole daemon on a synthetic scene.

No camera and no weights: person-sized shapes walk across a floor, through the motion detector
and a counting line. The API listens on 127.0.0.1 (--host to expose it) with anonymous viewer
access and the live view on, so the printed URLs open in a browser; an operator password is
generated and printed. The demo's config is written to <state>/demo.toml, so the console's
lines editor saves there as it would on a real box. State lives in a temporary directory unless
--state is given; nothing is uploaded.
"""
from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import tomllib
from pathlib import Path

import tomlkit

from counterd.api.auth import make_ha1
from counterd.config import Config, load_config
from counterd.config.lines_file import replace_lines
from counterd.daemon import scene
from counterd.daemon.logs import setup_logging
from counterd.daemon.service import leave, make_daemon_app, serve

REALM = "counterd"


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the whole daemon on a built-in synthetic scene",
                              description="Run the whole daemon (motion detector, store, HTTP API on "
                                          "127.0.0.1 unless --host says otherwise) on a built-in synthetic scene of people crossing a "
                                          "line: no camera, no model weights. Prints the URLs to try.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    p.add_argument("--state", metavar="DIR", help="keep counts and logs here (default: a temporary directory)")
    p.set_defaults(func=run)


def demo_config(state_dir: str, port: int, operator_password: str, host: str = "127.0.0.1") -> dict:
    ha1 = make_ha1("operator", REALM, operator_password)
    return {
        "camera": {"name": "counterd-demo", "source": "synthetic scene",
                   "width": scene.WIDTH, "height": scene.HEIGHT},
        "detector": {"type": "motion"},
        "lines": [{"name": "demo", "start": [scene.LINE_X, 20], "end": [scene.LINE_X, scene.HEIGHT - 10]}],
        "daemon": {"state_dir": state_dir},
        "api": {"host": host, "port": port, "realm": REALM, "anonymous_viewer": True, "live_view": True},
        "users": [{"name": "operator", "role": "operator", "ha1": ha1}],
    }


def write_config(path: Path, data: dict) -> Config:
    """The demo's config as a TOML file (the lines editor saves into it), loaded back. Lines
    edited in an earlier run with the same --state are kept."""
    text = "# counterd demo configuration, written by `counterd demo`\n" + tomlkit.dumps(data)
    try:
        kept = tomllib.loads(path.read_text(encoding="utf-8")).get("lines")
    except (OSError, tomllib.TOMLDecodeError):
        kept = None
    if kept:
        text = replace_lines(text, [{**line, "was": line.get("name")} for line in kept])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def run(args) -> int:
    with tempfile.TemporaryDirectory(prefix="counterd-demo-") as tmp:
        state = str(Path(args.state).resolve()) if args.state else tmp
        password = secrets.token_urlsafe(9)
        config = write_config(Path(state) / "demo.toml", demo_config(state, args.port, password, args.host))
        setup_logging(config.daemon.log_path, verbose=args.verbose)
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        base = f"http://{shown}:{args.port}"
        reach = ("only this machine can open it; to reach it from another one, run with --host 0.0.0.0"
                 if args.host in ("127.0.0.1", "localhost", "::1") else
                 f"listening on {args.host}: other machines use this box's address instead of {shown}")

        def announce() -> None:
            print(f"""
counterd demo: people walk across a synthetic scene; the line "demo" counts them.
  console       {base}/
  live totals   {base}/local/tvpc/.api?live-sum.json
  export (CSV)  {base}/local/tvpc/.api?export-csv&res=1h
  metrics       {base}/metrics
  health        {base}/healthz
  viewer access needs no password; operator: user "operator", password "{password}"
  {reach}
  state (counts, log, config demo.toml): {state}
Stop with Ctrl-C.
""", file=sys.stderr, flush=True)

        app = make_daemon_app(config, capture_factory=scene.DemoScene)
        asyncio.run(serve(app, config.api.host, config.api.port, on_started=announce))
    return leave(0)
