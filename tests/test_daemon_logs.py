"""Daemon logging: journald priority prefixes on stderr under systemd, and a rotating file."""
from __future__ import annotations

import logging

import pytest

from counterd.daemon.logs import setup_logging
from counterd.errors import UserError


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_under_journald_lines_carry_priorities_and_the_file_has_timestamps(tmp_path, monkeypatch, capsys,
                                                                            restore_root_logging):
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    log_file = tmp_path / "state" / "counterd.log"
    setup_logging(str(log_file))
    log = logging.getLogger("counterd.camera")
    log.warning("camera x: lost")
    log.info("camera x: streaming")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == ["<4>counterd.camera: camera x: lost", "<6>counterd.camera: camera x: streaming"]
    assert all(line.startswith("<3>") for line in err[2:]) and any("ValueError: boom" in l for l in err)
    text = log_file.read_text().splitlines()
    assert text[0].endswith(" WARNING counterd.camera: camera x: lost")
    assert text[0][:4].isdigit() and "T" in text[0].split()[0]     # ISO time first: show-logs reads it


def test_the_file_rotates(tmp_path, restore_root_logging):
    log_file = tmp_path / "counterd.log"
    setup_logging(str(log_file), max_bytes=2000, backups=2)
    for i in range(200):         # distinct messages: one repeated message is rate-limited
        logging.getLogger("counterd").info(f"line {i} of a long-running daemon")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counterd.log", "counterd.log.1", "counterd.log.2"]
    assert all(p.stat().st_size <= 2100 for p in tmp_path.iterdir())


def test_unwritable_log_file_is_one_line(tmp_path, restore_root_logging):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"log file .*file/counterd\.log: cannot write"):
        setup_logging(str(tmp_path / "file" / "counterd.log"))
