"""`counterd process` and `counterd run` count a recording the same, on every scene of bench/accuracy.py.

    python bench/process_vs_run.py [--scenes pets,tud,people,car,highway] [--detector yolox_nano]
                                   [--option gating.stride=true --option detector.mosaic=true ...]

For each scene, one config (the scene's lines and classes, the detector, the overrides) counts
the clip twice: `counterd process VIDEO --config FILE --json` as a subprocess, and the daemon that
`counterd run` starts (make_daemon_app, with its camera, inference worker, recorder, flusher and
SQLite store) playing the same file to its end. Prints both totals per line, direction and class
and whether they are equal; exits 1 when any scene differs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from accuracy import DATA, DETECTORS, SCENES, overrides  # noqa: E402

from counterd.config import load_config  # noqa: E402


def toml_value(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_config(folder: Path, scene, detector: dict, extra: dict) -> Path:
    sections = {"camera": {"source": str(scene.video), "timezone": "UTC"},
                "detector": {**detector, "classes": list(scene.classes), "threads": 1},
                "daemon": {"state_dir": str(folder / "state")}}
    for section, values in extra.items():
        sections.setdefault(section, {}).update(values)
    text = ""
    for section, values in sections.items():
        text += f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items() if not isinstance(v, dict))
        for sub, sub_values in ((k, v) for k, v in values.items() if isinstance(v, dict)):
            text += f"[{section}.{sub}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in sub_values.items())
    for line in scene.lines:
        text += f'[[lines]]\nname = "{line.name}"\nstart = {list(line.start)}\nend = {list(line.end)}\n'
    path = folder / "counterd.toml"
    path.write_text(text)
    return path


def count_with_process(scene, path: Path) -> Counter:
    out = subprocess.run([sys.executable, "-m", "counterd", "process", str(scene.video), "--config", str(path),
                          "--json"], capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise SystemExit(f"counterd process failed on {scene.name}: {out.stderr.strip()}")
    return Counter({(line, direction, cls): n for line, directions in json.loads(out.stdout)["lines"].items()
                    for direction, classes in directions.items() for cls, n in classes.items() if n})


async def count_with_daemon(path: Path) -> Counter:
    from aiohttp import web

    from counterd.daemon.service import DAEMON, make_daemon_app

    app = make_daemon_app(load_config(str(path)))
    runner = web.AppRunner(app)
    await runner.setup()            # the daemon's startup: store, flusher, worker playing the file
    try:
        daemon = app[DAEMON]
        if not await asyncio.to_thread(daemon.worker.finished.wait, 1800):
            raise SystemExit("the daemon never finished the file")
        await daemon.flusher.flush()
        return Counter((line, direction, cls) for _, line, direction, cls, _ in daemon.store.events_between(0, 2e10))
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default=",".join(SCENES), help="comma-separated subset")
    parser.add_argument("--detector", default="yolox_nano", choices=DETECTORS)
    parser.add_argument("--option", "--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for both, e.g. gating.stride=true")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"needs {DATA} (../shared beside the repo)", file=sys.stderr)
        return 2
    extra = overrides(args.option)
    differ = []
    for name in args.scenes.split(","):
        scene = SCENES[name]()
        with tempfile.TemporaryDirectory() as folder:
            path = write_config(Path(folder), scene, DETECTORS[args.detector], extra)
            offline = count_with_process(scene, path)
            live = asyncio.run(count_with_daemon(path))
        same = offline == live
        print(f"\n## {name}: {scene.video.name} ({args.detector}{', ' + ', '.join(args.option) if args.option else ''})")
        print(f"{'line':18} {'direction':9} {'class':10} {'process':>8} {'run':>8}")
        for key in sorted(set(offline) | set(live)):
            print(f"{key[0]:18} {key[1]:9} {key[2]:10} {offline[key]:>8} {live[key]:>8}")
        print(f"total {sum(offline.values())} / {sum(live.values())}: {'same' if same else 'DIFFERENT'}")
        if not same:
            differ.append(name)
    print("\nRESULT " + ("every scene the same" if not differ else "different: " + ",".join(differ)))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
