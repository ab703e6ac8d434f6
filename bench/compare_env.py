"""The benchmark's own environment: ultralytics, supervision and counterd side by side.

It lives outside the repository, in ~/.cache/counterd-bench/<hash of REQUIREMENTS>, and is built once
(about 6 GB: the registry's torch wheels carry CUDA libraries). Installing by hand
does the same:

    python3 -m venv ~/.cache/counterd-bench/manual
    ~/.cache/counterd-bench/manual/bin/pip install torch torchvision \
        ultralytics==8.4.190 supervision==0.30.9 lap shapely onnx matplotlib py-spy -e .

Only the standard library here: this module runs under whatever python started bench/compare.py.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The anchors are pinned so that a result names exactly what it measured (the report prints every
# version, torch's included). supervision 0.30.9 is the last release line that still ships
# sv.ByteTrack (deprecated since 0.28; 0.31 moved tracking to the `trackers` package).
# torch and torchvision float within what ultralytics accepts: a machine whose pip caps torch
# (a constraints file, e.g. /etc/xdg/pip/constraints.txt capping it at 2.14.1) still builds the
# environment, and pip picks the torchvision built for the torch it chose (torchvision's compiled
# ops only load against that build). Both are the registry's builds (CUDA-enabled, run on CPU).
REQUIREMENTS = (
    "torch",
    "torchvision",
    "ultralytics==8.4.190",
    "supervision==0.30.9",
    "lap>=0.5.12",          # ultralytics' trackers try to pip-install it at run time otherwise
    "shapely>=2.0",         # ditto, for solutions.ObjectCounter
    "onnx>=1.15",           # ditto, for its ONNX Runtime backend
    "matplotlib>=3.6",      # the PNG plot
    "py-spy>=0.3",          # profiles in the report
)

ENV_MARKER = "COUNTERD_BENCH_ENV"


def env_dir() -> Path:
    key = hashlib.sha256("\n".join((sys.version.split()[0],) + REQUIREMENTS).encode()).hexdigest()[:12]
    root = Path(os.environ.get("COUNTERD_BENCH_CACHE", Path.home() / ".cache" / "counterd-bench"))
    return root / f"env-{key}"


def install_command(venv: Path) -> list[list[str]]:
    py = str(venv / "bin" / "python")
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [py, "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [py, "-m", "pip", "install", "-q", *REQUIREMENTS],
        [py, "-m", "pip", "install", "-q", "-e", str(REPO)],
    ]


def ensure_env(quiet: bool = False) -> Path:
    """Build the environment unless a complete one exists; return its python."""
    venv = env_dir()
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        print(f"compare: building the benchmark environment in {venv} (once; several minutes)",
              file=sys.stderr, flush=True)
        if venv.exists():
            subprocess.run(["rm", "-rf", str(venv)], check=True)
        for cmd in install_command(venv):
            subprocess.run(cmd, check=True)
        (venv / ".complete").write_text("\n".join(REQUIREMENTS) + "\n")
    # The checkout may have moved since the build, or its dependencies changed (bench/fleet.py runs
    # the daemon itself in this environment): reinstall it, with its dependencies, when either did.
    stamp = hashlib.sha256(str(REPO).encode() + (REPO / "pyproject.toml").read_bytes()).hexdigest()
    marker = venv / ".counterd-checkout"
    if not marker.exists() or marker.read_text() != stamp:
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(REPO)],
                              capture_output=quiet, text=True)
        if done.returncode != 0:
            raise SystemExit(f"compare: installing {REPO} into {venv} failed:\n{done.stdout}{done.stderr}")
        marker.write_text(stamp)
    return python


def reexec_in_env(argv: list[str]) -> None:
    """Replace this process with the same script run by the benchmark environment's python."""
    if os.environ.get(ENV_MARKER) == "1":
        return
    python = ensure_env(quiet=True)
    env = dict(os.environ, **{ENV_MARKER: "1", "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    env.setdefault("YOLO_CONFIG_DIR", str(env_dir() / "yolo-config"))
    os.execve(str(python), [str(python), *argv], env)
