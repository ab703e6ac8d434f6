"""Rewriting the [[lines]] of a config file in place, for the console's lines editor.

Only the lines change: every other key, comment and blank line of the user's file stays as it was
(tomlkit keeps them), and a line that keeps its name (or is renamed) keeps its own comments. The
new file replaces the old one atomically (temp file, fsync, rename) and the previous file is kept
beside it as <name>.bak, so a bad edit is one `mv` away from undone.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import tomlkit
from tomlkit.items import AoT, Table

from counterd.durable import write_atomically

LINE_KEYS = ("name", "start", "end", "invert", "tailgate_seconds", "forbidden_direction")
DEFAULTS = {"invert": False, "tailgate_seconds": None, "forbidden_direction": ""}


def replace_lines(text: str, lines: list[dict]) -> str:
    """The TOML `text` with its lines replaced by `lines` (dicts of LINE_KEYS, plus "was": the
    name the line had in the file, None for a new one)."""
    doc = tomlkit.parse(text)
    old = doc.get("lines")
    tables = {str(t.get("name")): t for t in old} if isinstance(old, AoT) else {}
    # What follows the last table's keys (blank lines, the next section's comments) belongs to
    # that section, not to the line: it moves to whichever table ends the array now.
    tail = _take_tail(old[-1]) if isinstance(old, AoT) and len(old) else []
    new = AoT([])
    for line in lines:
        table = tables.pop(line.get("was") or "", None)
        if table is None:
            table = tomlkit.table()
        _take_tail(table)
        _update(table, line)
        new.append(table)
    if len(new):
        new[-1].value.body.extend(tail)
    _follow_renames(doc, {line["was"]: line["name"] for line in lines if line.get("was")})
    if isinstance(old, AoT):
        doc["lines"] = new
    else:
        if "lines" in doc:
            del doc["lines"]
        doc.append("lines", new)
    return tomlkit.dumps(doc)


def _follow_renames(doc, renamed: dict[str, str]) -> None:
    """Keys that name lines (counting.primary_line, upload.lines) follow a renamed line."""
    counting, upload = doc.get("counting"), doc.get("upload")
    if counting is not None and counting.get("primary_line") in renamed:
        counting["primary_line"] = renamed[counting["primary_line"]]
    if upload is not None and any(name in renamed for name in upload.get("lines", ())):
        for i, name in enumerate(upload["lines"]):
            upload["lines"][i] = renamed.get(name, name)


def _update(table: Table, line: dict) -> None:
    for key in LINE_KEYS:
        value = line.get(key, DEFAULTS.get(key))
        if isinstance(value, (tuple, list)):
            value = [_number(v) for v in value]
        if key in table and table[key] == value:
            continue            # untouched keys keep their formatting and trailing comments
        if value is None or (key not in table and key in DEFAULTS and value == DEFAULTS[key]):
            if key in table:
                del table[key]
            continue
        table[key] = value


def _number(value: float) -> int | float:
    """Whole pixels as integers: `start = [320, 40]`, not `[320.0, 40.0]`."""
    return int(value) if float(value).is_integer() else round(float(value), 1)


def _take_tail(table: Table) -> list:
    """Remove and return the comments and whitespace after a table's last key."""
    body = table.value.body
    end = len(body)
    while end and body[end - 1][0] is None:
        end -= 1
    tail = body[end:]
    del body[end:]
    return tail


def save_config_text(path: str | Path, text: str) -> Path:
    """Replace the file atomically, keeping the previous one as <path>.bak. Returns the backup."""
    path = Path(path)
    backup = path.with_name(path.name + ".bak")
    shutil.copy2(path, backup)      # a copy, so the live file is never missing
    write_atomically(path, text.encode("utf-8"))
    try:
        os.chmod(path, backup.stat().st_mode & 0o7777)  # the new file keeps the old one's mode
    except OSError:
        pass
    return backup
