"""`counterd process`: the JSON contract, the events file, and one-line errors with exit code 2."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from conftest import SHARED_MODELS, need_shared
from counterd.commands.process import parse_line
from counterd.errors import UserError


def counterd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "counterd", *args], capture_output=True, text=True, timeout=300)


def test_parse_line():
    line = parse_line("door=240,0,240.5,360")
    assert (line.name, line.start, line.end) == ("door", (240.0, 0.0), (240.5, 360.0))
    for bad in ("door", "door=1,2,3", "=1,2,3,4", "door=a,b,c,d", "door=1,1,1,1"):
        with pytest.raises(UserError, match="--line"):
            parse_line(bad)


def test_motion_json_totals_and_events(pets_video, tmp_path):
    events = tmp_path / "events.csv"
    out = counterd("process", str(pets_video), "--detector", "motion", "--line", "mid=240,0,240,360",
                   "--line", "edge=0,180,480,180", "--events", str(events), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one JSON object on stdout
    assert set(result) == {"frames", "seconds", "fps", "lines"}
    assert result["frames"] == 795
    assert result["fps"] > 0 and result["seconds"] > 0
    mid = result["lines"]["mid"]
    assert set(mid) == {"in", "out"}
    # Ground truth for this line is 13 in and 18 out (../shared/data/README.md): plausible, not exact.
    assert 8 <= mid["in"].get("person", 0) <= 18 and 12 <= mid["out"].get("person", 0) <= 24
    rows = list(csv.DictReader(events.open()))
    assert set(rows[0]) == {"timestamp", "line", "direction", "class", "track_id"}
    from_events = sum(1 for r in rows if r["line"] == "mid" and r["direction"] == "in")
    assert from_events == sum(mid["in"].values())


def test_onnx_model_counts_people(pets_video):
    model = need_shared(SHARED_MODELS["yolox_nano"])
    out = counterd("process", str(pets_video), "--model", str(model), "--line", "mid=240,0,240,360", "--json")
    assert out.returncode == 0, out.stderr
    mid = json.loads(out.stdout)["lines"]["mid"]
    assert 10 <= mid["in"].get("person", 0) <= 16 and 14 <= mid["out"].get("person", 0) <= 22


def test_table_output(pets_video):
    out = counterd("process", str(pets_video), "--detector", "motion", "--line", "mid=240,0,240,360")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["line", "class", "in", "out"]
    assert "795 frames" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["/no/such/video.avi", "--line", "a=0,0,1,1"], "/no/such/video.avi: no such file"),
    (["{video}", "--line", "a=0,0,1"], "--line 'a=0,0,1': expected NAME=x1,y1,x2,y2"),
    (["{video}", "--line", "a=0,0,900,1"], "lines[0].end: point (900, 1) is outside the 480x360 frame"),
    (["{video}", "--line", "a=0,0,100,1", "--model", "{bad_model}"], "cannot load it"),
    (["{video}"], "no counting lines"),
    (["{not_video}", "--line", "a=0,0,1,1"], "cannot be decoded"),
])
def test_errors_are_one_line_exit_2(args, message, pets_video, tmp_path):
    bad_model = tmp_path / "broken.onnx"
    bad_model.write_bytes(b"not a model")
    not_video = tmp_path / "notes.avi"
    not_video.write_text("hello")
    args = [a.format(video=pets_video, bad_model=bad_model, not_video=not_video) for a in args]
    out = counterd("process", *args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
