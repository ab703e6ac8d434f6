"""Footprint of a counterd tree on this box: CLI start-up time and memory, installed size of the
default dependencies, and the demo daemon's resident memory.

    python bench/footprint.py [--tree PATH] [--repeats 5]

--tree runs another checkout (e.g. an older commit unpacked in /tmp) with the same interpreter,
so two trees are compared on the same packages. Each CLI command runs --repeats times in a fresh
process; the best wall time and the peak RSS (getrusage of that child) are printed. Installed
size is the sum of the files recorded for each distribution in the closure of the tree's
pyproject `dependencies` (what `pip install counterd` pulls in), as installed in this venv.
The daemon's RSS is read from /proc 5 s after `counterd demo` answers /healthz. Prints a table
and one line starting with `FOOTPRINT_JSON `.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(argv: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process. `python -m` puts the working directory
    first on sys.path, so a tree's commands run from that tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


# check-config of a camera config that needs no model file (a model to load costs what the
# detector costs: onnxruntime alone is ~80 MB, and check-config loads it on purpose).
CHECKED_CONFIG = """[camera]\nsource = "rtsp://127.0.0.1:8554/cam"\n[detector]\ntype = "motion"\n
[[lines]]\nname = "door"\nstart = [100, 0]\nend = [100, 200]\n"""


def cli_costs(tree: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = {}
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as config:
        config.write(CHECKED_CONFIG)
        config.flush()
        for name, args in (("--version", ["--version"]), ("check-config", ["check-config", config.name])):
            runs = [run_child([sys.executable, "-m", "counterd", *args], env, tree) for _ in range(repeats)]
            out[name] = {"best_s": round(min(r[0] for r in runs), 3), "rss_mb": round(max(r[1] for r in runs), 1)}
    return out


def python_floor() -> float:
    return min(run_child([sys.executable, "-c", "pass"], dict(os.environ))[0] for _ in range(3))


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def dependency_closure(tree: Path) -> set[str]:
    """Distribution names pulled in by the tree's default dependencies (extras left out)."""
    project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    todo, seen = [_requirement_name(d) for d in project["dependencies"]], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_requirement_name(r) for r in requires if "extra ==" not in r]
    return seen


def installed_mb(names: set[str]) -> dict[str, float]:
    sizes = {}
    for name in sorted(names):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total = 0
        for f in dist.files or ():
            path = Path(dist.locate_file(f))
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = round(total / 1e6, 1)
    return sizes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_rss(tree: Path) -> float:
    """VmRSS in MB of `counterd demo` 5 s after it answers /healthz."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as state:
        proc = subprocess.Popen([sys.executable, "-m", "counterd", "demo", "--port", str(port), "--state", state],
                                env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("counterd demo did not come up")
                    time.sleep(0.2)
            time.sleep(5)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            return round(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024, 1)
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="counterd checkout to measure")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tree = args.tree.resolve()
    sizes = installed_mb(dependency_closure(tree))
    result = {"tree": str(tree), "load": os.getloadavg()[0], "cli": cli_costs(tree, args.repeats),
              "installed_mb": round(sum(sizes.values()), 1), "packages_mb": sizes,
              "demo_rss_mb": demo_rss(tree)}
    for name, cost in result["cli"].items():
        print(f"counterd {name:<14} best {cost['best_s']:.3f} s, peak RSS {cost['rss_mb']:.1f} MB")
    print(f"default dependencies installed: {result['installed_mb']:.1f} MB "
          f"({', '.join(f'{k} {v:g}' for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:6])} ...)")
    print(f"counterd demo RSS 5 s after start: {result['demo_rss_mb']:.1f} MB (load {result['load']:.2f})")
    print(f"python -c pass: {python_floor():.3f} s (the interpreter's own start on this box, now)")
    print("FOOTPRINT_JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
