"""Ground truth files, the score of counted against true crossings, and `counterd validate`."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SHARED, SHARED_MODELS, need_shared
from counterd.config import LineConfig
from counterd.errors import UserError
from counterd.truth import (Counted, TrueCrossing, event_errors, load_truth, read_crossings_csv, read_mot, score,
                            truth_from_mot)

TUD_VIDEO = SHARED / "data" / "tud_stadtmitte" / "tud_stadtmitte_640x480.mp4"
TUD_GT = SHARED / "data" / "tud_stadtmitte" / "gt_640x480.txt"
TUD_LINES = (LineConfig("v400", (400, 150), (400, 400)), LineConfig("v480", (480, 150), (480, 400)))


def counterd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "counterd", *args], capture_output=True, text=True, timeout=300)


def write(path, text: str):
    path.write_text(text)
    return path


def test_crossings_csv_declares_lines_and_reads_frames_or_times(tmp_path):
    path = write(tmp_path / "t.csv", "# a walk test at the door\n# line door 240,0,240,360\n"
                 "frame,time_s,line,direction,class,note\n"
                 "50,,door,in,person,by frame\n12,1.5,door,out,person,by time\n")
    truth = read_crossings_csv(path, fps=10.0)
    assert truth.lines == (LineConfig("door", (240.0, 0.0), (240.0, 360.0)),)
    assert truth.crossings == (TrueCrossing(1.5, "door", "out", "person"), TrueCrossing(5.0, "door", "in", "person"))
    with pytest.raises(UserError, match="frame rate"):
        read_crossings_csv(path)


@pytest.mark.parametrize("text, message", [
    ("line,direction,class\ndoor,in,person\n", "time_s"),
    ("time_s,line,direction\n1,door,in\n", "class"),
    ("time_s,line,direction,class\n1,door,up,person\n", "direction must be"),
    ("time_s,line,direction,class\nsoon,door,in,person\n", "number"),
    ("time_s,line,direction,class\n1,,in,person\n", "must not be empty"),
    ("# line door 1,2,3\ntime_s,line,direction,class\n", "four numbers"),
    ("# only comments\n", "no header row"),
])
def test_bad_crossings_csv_names_the_problem(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        read_crossings_csv(write(tmp_path / "t.csv", text))


def test_mot_truth_is_recognised_and_needs_lines_and_a_frame_rate(tmp_path):
    # One track walks right across x = 240 between frames 2 and 3.
    path = write(tmp_path / "gt.txt", "1,1,200,60,20,40,1,-1,-1,-1\n2,1,220,60,20,40,1,-1,-1,-1\n"
                                      "3,1,250,60,20,40,1,-1,-1,-1\n")
    line = LineConfig("door", (240, 0), (240, 360))
    assert load_truth(path, [line], 10.0).crossings == (TrueCrossing(0.2, "door", "in", "person", 1),)
    inverted = LineConfig("door", (240, 0), (240, 360), invert=True)
    assert load_truth(path, [inverted], 10.0).crossings[0].direction == "out"
    with pytest.raises(UserError, match="lines"):
        load_truth(path, [], 10.0)
    with pytest.raises(UserError, match="frame rate"):
        load_truth(path, [line], None)
    with pytest.raises(UserError, match="does not exist"):
        load_truth(tmp_path / "missing.csv", [line], 10.0)


def test_score_counts_wrong_direction_spurious_and_missed():
    truth = [TrueCrossing(10.0, "mid", "out", "car"), TrueCrossing(20.0, "mid", "out", "car"),
             TrueCrossing(30.0, "mid", "in", "truck")]
    counted = [Counted(10.2, "mid", "out", "car"),    # right
               Counted(10.5, "mid", "in", "car"),     # a flip-flop: back in ...
               Counted(11.0, "mid", "out", "car"),    # ... and out again
               Counted(30.4, "mid", "in", "car"),     # right, but the detector said car
               Counted(50.0, "mid", "in", "car")]     # nothing there
    result = score(truth, counted)
    assert (result.wrong_direction, result.spurious, result.missed) == (1, 2, 1)   # 20.0 never came
    assert result.true_total == 3 and result.wrong_direction_share == pytest.approx(1 / 3)
    # Per (line, class, direction): car out 2 vs 2, car in 3 vs 0, truck in 0 vs 1.
    assert result.accuracy == pytest.approx(1 - 4 / 3)
    assert result.by_class() == {"car": pytest.approx(1 - 3 / 2), "truck": 0.0}
    only_cars = score(truth, counted, classes=["car"])
    assert only_cars.true_total == 2 and only_cars.missed == 1
    # Event by event, the same split names which crossings and counts they are (the objects given).
    missed, wrong, spurious = event_errors(truth, counted)
    assert missed == [truth[1]] and wrong[0] is counted[1] and wrong[0] in counted
    assert sorted(c.time for c in spurious) == [11.0, 50.0] and all(c in counted for c in spurious)


@pytest.fixture(scope="module")
def tud():
    return need_shared(TUD_VIDEO), need_shared(TUD_GT), need_shared(SHARED_MODELS["yolox_nano"])


def tud_config(tmp_path, model) -> str:
    lines = "".join(f'[[lines]]\nname = "{line.name}"\nstart = {list(line.start)}\nend = {list(line.end)}\n'
                    for line in TUD_LINES)
    path = tmp_path / "site.toml"
    path.write_text(f'[detector]\nmodel = "{model}"\nclasses = ["person"]\n{lines}')
    return str(path)


def test_validate_against_mot_ground_truth(tud, tmp_path):
    video, gt, model = tud
    truth = truth_from_mot(read_mot(gt), TUD_LINES, 25.0)
    out = counterd("validate", str(video), "--truth", str(gt), "--config", tud_config(tmp_path, model),
                   "--min-accuracy", "0", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["passed"] and result["true"] == len(truth.crossings) > 5
    for row in result["rows"]:
        assert row["true"] == sum(1 for c in truth.crossings if (c.line, c.direction) == (row["line"], row["direction"]))
    assert 0.5 <= result["accuracy"] <= 1.0 and result["wrong_direction"] == 0


def test_validate_with_the_lines_a_crossings_csv_declares_and_the_exit_code(tud, tmp_path):
    video, gt, model = tud
    truth = truth_from_mot(read_mot(gt), TUD_LINES, 25.0)
    rows = "".join(f"{c.time:.2f},{c.line},{c.direction},person\n" for c in truth.crossings)
    declared = "".join(f"# line {line.name} {line.start[0]},{line.start[1]},{line.end[0]},{line.end[1]}\n"
                       for line in TUD_LINES)
    path = write(tmp_path / "walks.csv", declared + "time_s,line,direction,class\n" + rows)
    out = counterd("validate", str(video), "--truth", str(path), "--model", str(model), "--min-accuracy", "0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["line", "class", "true", "in", "counted", "in", "true", "out",
                                                  "counted", "out"]
    assert "PASS" in out.stdout and "wrong direction" in out.stdout
    # Five people who never came: far below any accuracy, exit 1.
    ghosts = write(tmp_path / "ghosts.csv", declared + "time_s,line,direction,class\n"
                   + "".join(f"{t},v400,in,person\n" for t in (1, 2, 3, 4, 5)) + rows)
    out = counterd("validate", str(video), "--truth", str(ghosts), "--model", str(model))
    assert out.returncode == 1, out.stderr
    assert "FAIL" in out.stdout


def test_validate_errors_name_the_problem(tud, tmp_path):
    video, gt, model = tud
    out = counterd("validate", str(video), "--truth", str(gt), "--model", str(model))
    assert out.returncode == 2 and "no counting lines" in out.stderr
    wrong = write(tmp_path / "t.csv", "time_s,line,direction,class\n1,door,in,person\n")
    out = counterd("validate", str(video), "--truth", str(wrong), "--model", str(model), "--line", "v=1,1,2,2")
    assert out.returncode == 2 and "door" in out.stderr
    out = counterd("validate", str(video), "--truth", str(wrong), "--min-accuracy", "2")
    assert out.returncode == 2 and "--min-accuracy" in out.stderr
