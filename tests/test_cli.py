"""The command line a first user meets: every subcommand explains itself, `-v` works after the
subcommand, and `counterd process` ends its progress bar at the last frame, prints the totals so
far on Ctrl-C and says so when given a directory (issue 12 points 15 and 16)."""
from __future__ import annotations

import argparse
import json
import os
import pty
import signal
import subprocess
import sys
import threading

import pytest

import rtsp_server
from counterd.cli import COMMANDS, build_parser

LINE = "mid=240,0,240,360"


def leaf_parsers(parser: argparse.ArgumentParser, path: str = "counterd"):
    """Every (sub)command parser with its command line, depth first."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            assert helps.get(name), f"{path} {name} has no one-line help in the command list"
            yield from leaf_parsers(sub, f"{path} {name}")


def test_every_subcommand_has_a_description_and_takes_v_after_it():
    parser = build_parser()
    leaves = list(leaf_parsers(parser))
    assert len(leaves) >= 10            # process, check-config, run, demo, passwd, model x2, report x4
    for path, sub in leaves:
        assert sub.description and len(sub.description) > 20, f"{path}: no description"
        assert "-v" in sub._option_string_actions, f"{path}: no -v"
    assert parser.parse_args(["check-config", "c.toml", "-v"]).verbose is True
    assert parser.parse_args(["-v", "report", "push"]).verbose is True
    assert parser.parse_args(["report", "push"]).verbose is False


def test_a_directory_given_as_video_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "counterd", "process", str(tmp_path), "--detector", "motion",
                          "--line", LINE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == f"counterd: error: video file {tmp_path}: is a directory; give one video file in it"


class OnATerminal:
    """`counterd process ...` with stderr on a pseudo-terminal, so it draws its progress bar;
    `seen` is set once the bar shows a frame count."""

    def __init__(self, *args: str):
        master, slave = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "counterd", "process", *args],
                                        stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self.seen = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:          # EIO: the child closed the terminal
                break
            if not chunk:
                break
            self.chunks.append(chunk)
            if b" frames" in b"".join(self.chunks):
                self.seen.set()

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        stdout, _ = self.process.communicate(timeout=timeout)
        self.reader.join(timeout=30)
        os.close(self.master)
        return self.process.returncode, stdout, b"".join(self.chunks).decode("utf-8", "replace")


def test_progress_bar_ends_at_the_last_frame(pets_video):
    run = OnATerminal(str(pets_video), "--detector", "motion", "--line", LINE, "--json")
    code, stdout, terminal = run.finish()
    assert code == 0, terminal
    frames = json.loads(stdout)["frames"]
    last = terminal.rstrip("\r\n").split("\r")[-1]
    assert last.startswith("[" + "#" * 30 + "] " + f"{frames}/{frames} frames"), last


@pytest.fixture(scope="module")
def rtsp_camera():
    why = rtsp_server.available()
    if why:
        pytest.skip(f"RTSP server unavailable: {why}")
    with rtsp_server.RtspServer() as server:
        yield server.url


def test_ctrl_c_prints_the_totals_so_far(rtsp_camera):
    """A live stream never ends: Ctrl-C is how a run stops, and its totals must not be lost."""
    run = OnATerminal(rtsp_camera, "--detector", "motion", "--line", "mid=160,0,160,240", "--json")
    try:
        assert run.seen.wait(120), "no progress before the timeout"
        run.process.send_signal(signal.SIGINT)
        code, stdout, terminal = run.finish(timeout=60)
    finally:
        if run.process.poll() is None:
            run.process.kill()
    assert code == 130, terminal
    result = json.loads(stdout)
    assert result["interrupted"] is True and result["frames"] > 0
    assert set(result["lines"]) == {"mid"}
    assert f"interrupted after {result['frames']} frames: partial totals follow" in terminal
    assert "Traceback" not in terminal


def test_the_command_list_matches_each_commands_own_help():
    full = {a.dest: a.help for action in build_parser()._actions
            if isinstance(action, argparse._SubParsersAction) for a in action._choices_actions}
    assert full == {name: help for name, (_, help) in COMMANDS.items()}


HEAVY = ("cv2", "numpy", "aiohttp", "onnxruntime", "apscheduler", "counterd.daemon")


def imported(*args: str) -> set[str]:
    """Top-level names of the modules `counterd ARGS` imports (from -X importtime)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "counterd", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    return {n for n in names if n.startswith(HEAVY)}


def test_version_and_check_config_load_only_the_command_they_run(tmp_path):
    """Lazy subcommands: the command line costs what the command needs (bench/footprint.py
    measures the time and memory)."""
    assert imported("--version") == set()
    config = tmp_path / "c.toml"
    config.write_text('[camera]\nsource = "rtsp://127.0.0.1:8554/cam"\n[detector]\ntype = "motion"\n'
                      '[[lines]]\nname = "door"\nstart = [100, 0]\nend = [100, 200]\n')
    assert imported("check-config", str(config)) == set()
