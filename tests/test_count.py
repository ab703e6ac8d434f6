"""Line counting rules, each one driven by scripted tracks fed straight to LineCounter."""
from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import PETS_GT, REPO, need_shared
from counterd.classes import CLASS_IDS
from counterd.config import ConfigError, CountingConfig, LineConfig, config_from_dict
import counterd.count.counter as count_module
from counterd.count import CrossingEvent, LineCounter, cut_by_frame
from counterd.detections import Detections

sys.path.insert(0, str(REPO / "bench"))
from groundtruth import crossing_totals, read_mot, true_crossings  # noqa: E402

FPS = 10.0
DOWN = LineConfig("down", (240, 0), (240, 360))         # drawn top -> bottom: left-to-right is 'in'
ACROSS = LineConfig("across", (0, 200), (480, 200))     # drawn left -> right: upward is 'in'


def frame(*objects) -> Detections:
    """Tracks from (track_id, x, y[, class name]) with (x, y) the bottom-centre anchor."""
    if not objects:
        return Detections.empty()
    ids, xs, ys, names = zip(*[(o + ("person",))[:4] for o in objects])
    x, y = np.array(xs, float), np.array(ys, float)
    xyxy = np.stack([x - 10, y - 40, x + 10, y], axis=1)
    return Detections.from_arrays(xyxy, np.full(len(ids), 0.9), [CLASS_IDS[n] for n in names], ids)


def play(counter: LineCounter, frames, start: int = 0) -> list[CrossingEvent]:
    """Feed frames at 10 fps; returns every event."""
    events = []
    for i, dets in enumerate(frames, start):
        events += counter.update(dets, i / FPS)
    return events


def walk(track_id, start, end, steps, name="person"):
    """Frames of one object walking from start to end (both included) in equal steps."""
    return [frame((track_id, *np.add(start, np.subtract(end, start) * k / steps), name))
            for k in range(steps + 1)]


def counts(counter: LineCounter, line: str = "down") -> tuple[int, int]:
    totals = counter.totals[line]
    return sum(totals["in"].values()), sum(totals["out"].values())


def counter(*lines: LineConfig, **settings) -> LineCounter:
    return LineCounter(lines or (DOWN,), CountingConfig(**settings))


def test_direction_follows_the_drawing_order_and_invert_swaps_it():
    c = counter(DOWN, ACROSS, LineConfig("down_inverted", (240, 0), (240, 360), invert=True))
    play(c, walk(1, (200, 100), (280, 100), 8))   # left to right
    play(c, walk(2, (100, 260), (100, 140), 8), start=20)   # upward
    assert counts(c, "down") == (1, 0)
    assert counts(c, "across") == (1, 0)
    assert counts(c, "down_inverted") == (0, 1)


def test_event_carries_time_line_direction_class_and_track():
    events = play(counter(), walk(7, (200, 100), (280, 100), 8, "car"))
    assert events == [CrossingEvent(0.5, "down", "in", "car", 7)]  # anchor leaves the band at x=250


def test_jitter_on_the_line_never_counts():
    rng = np.random.default_rng(1)
    c = counter(hysteresis_px=6)
    approach = walk(1, (150, 100), (236, 100), 10)
    jitter = [frame((1, 240 + rng.uniform(-5.9, 5.9), 100 + rng.uniform(-3, 3))) for _ in range(300)]
    back = walk(1, (236, 100), (150, 100), 10)
    assert play(c, approach + jitter + back) == []
    # Without the band the same jitter would count many times: the band is what stops it.
    assert len(play(counter(hysteresis_px=0, hysteresis_ratio=0, hysteresis_noise=0, reverse_hold_seconds=0),
                    approach + jitter + back)) > 50


def test_in_and_back_out_counts_one_each():
    c = counter()
    play(c, walk(1, (200, 100), (280, 100), 8) + walk(1, (280, 100), (150, 100), 13))
    assert counts(c) == (1, 1)


def box(track_id, x, y, height, width=None) -> tuple:
    """(track_id, xyxy) of a box with bottom-centre (x, y)."""
    width = height / 2 if width is None else width
    return track_id, (x - width / 2, y - height, x + width / 2, y)


def boxes(*items) -> Detections:
    ids, xyxy = zip(*items)
    return Detections.from_arrays(np.array(xyxy, float), np.full(len(ids), 0.9), [0] * len(ids), ids)


def test_crossing_back_counts_only_once_held_beyond_the_band():
    c = counter(reverse_hold_seconds=0.5)
    # In, then 3 frames (0.3 s) back beyond the band, then in again: one 'in', nothing else.
    dip = [frame((1, 200, 100))] * 3 + [frame((1, 280, 100))] * 10
    events = play(c, walk(1, (200, 100), (280, 100), 8) + dip)
    assert [e.direction for e in events] == ["in"]
    # Back out for good: counts once held 0.5 s, stamped with the time it crossed.
    events = play(c, [frame((1, 200, 100))] * 8, start=30)
    assert [(e.direction, e.timestamp) for e in events] == [("out", 3.0)]
    # Without the hold the dip would have counted out and in again.
    quick = counter(reverse_hold_seconds=0)
    events = play(quick, walk(1, (200, 100), (280, 100), 8) + dip)
    assert [e.direction for e in events] == ["in", "out", "in"]


def test_a_reversal_never_settles_on_a_lost_track():
    c = counter(handoff_seconds=0.5)
    # In, then back out and gone 0.2 s later: the reversal was never seen held.
    play(c, walk(1, (200, 100), (280, 100), 8) + [frame((1, 200, 100))] * 2)
    assert play(c, [Detections.empty()] * 20, start=11) == [] and counts(c) == (1, 0)
    assert c.finish() == []


def test_the_band_scales_with_the_object():
    # A person 400 px tall whose feet jitter 15 px either side of the line: a 6 px band would
    # count it every time, 5% of its height (20 px) never does.
    rng = np.random.default_rng(3)
    path = [boxes(box(1, 300, 140 - 5 * k, 400)) for k in range(12)]   # walks up to y = 85
    path += [boxes(box(1, 300, 85 + rng.uniform(-15, 15), 400)) for _ in range(100)]
    line = LineConfig("across", (0, 85), (640, 85))
    assert play(counter(line, hysteresis_ratio=0.05, hysteresis_noise=0), path) == []
    assert len(play(counter(line, hysteresis_ratio=0.0, hysteresis_noise=0, reverse_hold_seconds=0), path)) > 10
    # A small object in the same place still uses the pixel floor: a 12 px step counts.
    small = [boxes(box(2, 300, y, 40)) for y in (100, 100, 70, 70)]
    assert [e.direction for e in play(counter(line, hysteresis_ratio=0.05), small)] == ["in"]


def legs_lost(track_id, xs, feet, height=42.0, jump=7.0) -> list[Detections]:
    """A person walking through (xs[k], feet[k]) whose legs the detector loses for 4 frames in
    every 10: the box bottom rises by `jump` px (the top stays), plus +-1 px of ordinary jitter."""
    rng = np.random.default_rng(track_id)
    path = []
    for k, (x, y) in enumerate(zip(xs, feet)):
        bottom = y - (jump if k % 10 >= 6 else 0.0) + rng.uniform(-1, 1)
        top = y - height
        path.append(Detections.from_arrays(np.array([[x - 10, top, x + 10, bottom]]), [0.9], [0], [track_id]))
    return path


def test_the_band_follows_each_tracks_own_anchor_noise():
    # PETS h130: a person 42 px tall walks along a line 3.5 px below it for 15 s (band 2.1 px),
    # and the box bottom jumps 7 px up whenever the legs are lost: each jump crosses the line.
    line = LineConfig("across", (0, 130), (640, 130))          # upward is 'in'
    along = legs_lost(1, np.linspace(60, 420, 150), np.full(150, 133.5))
    assert play(counter(line), along) == []
    # The jitter is what the noise band stops: without it the walker counts in and out every second.
    assert len(play(counter(line, hysteresis_noise=0.0), along)) >= 20
    # A person crossing the same line with the same jitter still counts, the right way, and
    # crossing back counts again.
    crossing = legs_lost(2, np.full(90, 300.0), np.r_[np.linspace(200, 60, 40), np.full(10, 60), np.linspace(60, 200, 40)])
    assert [e.direction for e in play(counter(line), crossing)] == ["in", "out"]
    # So does a walker that jitters along the line first and then crosses it.
    turn = legs_lost(3, np.r_[np.linspace(60, 300, 100), np.full(40, 300.0)], np.r_[np.full(100, 133.5),
                                                                                    np.linspace(133.5, 60, 40)])
    assert [e.direction for e in play(counter(line), turn)] == ["in"]


def play_scaled(c: LineCounter, frames, input_px: float | None) -> list[CrossingEvent]:
    return [e for i, dets in enumerate(frames) for e in c.update(dets, i / FPS, None, input_px)]


def test_the_band_floor_in_detector_input_pixels_is_the_same_at_any_resolution():
    # A person 40 px tall (band 2 px) whose feet jitter 3 px either side of the line: with a
    # floor of 3 input px at 1.15 frame px each (a 480 px frame in a 416 px model) the band is
    # 3.5 px and the jitter never counts; without the floor, or without knowing the scale, it does.
    rng = np.random.default_rng(5)
    feet = [120 - 3 * k for k in range(8)] + list(85 + rng.uniform(-3, 3, 60))
    line = LineConfig("across", (0, 85), (640, 85))

    def path(scale):
        return [boxes(box(1, 300 * scale, y * scale, 40 * scale)) for y in feet]

    floor = dict(hysteresis_input_px=3.0, hysteresis_noise=0.0, reverse_hold_seconds=0.0)
    assert play_scaled(counter(line, **floor), path(1), 480 / 416) == []
    assert len(play_scaled(counter(line, hysteresis_noise=0.0, reverse_hold_seconds=0.0), path(1), 480 / 416)) > 2
    assert len(play_scaled(counter(line, **floor), path(1), None)) > 2
    # The same scene 4x larger (a 1920 px camera, the same model): one input pixel is 4x larger too.
    big = LineConfig("across", (0, 85 * 4), (640 * 4, 85 * 4))
    assert play_scaled(counter(big, **floor), path(4), 4 * 480 / 416) == []


def test_a_box_cut_by_the_frame_edge_never_changes_side():
    line = LineConfig("across", (0, 300), (640, 300))   # 'in' is upward
    c = counter(line)
    size = (640, 360)
    # A car drives down past the line, then leaves through the right edge: as it is cut its box
    # shrinks and the bottom-centre jumps back above the line. That must not count.
    down = [boxes(box(1, 500, y, 60, 100)) for y in range(260, 345, 8)]
    leaving = [boxes((1, (x, 250, 636.5, 290))) for x in range(560, 630, 10)]   # edge a few px inside
    events = [e for k, d in enumerate(down + leaving) for e in c.update(d, k / FPS, size)]
    assert [e.direction for e in events] == ["out"]
    assert c.finish() == []
    # Walking in from the bottom edge: the cut box gives the first side, the feet coming into
    # view above the line count 'in'.
    c = counter(line)
    entering = [boxes((2, (300, y, 340, 360))) for y in (330, 300, 270)]
    entering += [boxes(box(2, 320, y, 80)) for y in (340, 320, 290, 280, 280)]
    events = [e for k, d in enumerate(entering) for e in c.update(d, k / FPS, size)]
    assert [e.direction for e in events] == ["in"]


def leave_through_the_side(c: LineCounter, bottoms, size=(640, 360)) -> list[tuple[float, CrossingEvent]]:
    """A car 100 px tall cut by the right edge (its box ends a few px inside it) driving down
    with its bottom at each of bottoms, one frame each; (frame time, event) for every event."""
    frames = [boxes((1, (560, y - 100, 636.5, y))) for y in bottoms]
    return [(k / FPS, e) for k, d in enumerate(frames) for e in c.update(d, k / FPS, size)]


def test_a_car_cut_by_the_side_edge_counts_when_it_crosses_a_line_drawn_across():
    # A kerb line across the picture; the car is cut by the right edge the whole time (it drives
    # along it), so its x is not the object's, but its bottom edge is: it counts as it crosses.
    line = LineConfig("across", (0, 300), (620, 300))
    seen = leave_through_the_side(counter(line, side_cut_lines=True), range(270, 340, 5))
    assert [(t, e.direction) for t, e in seen] == [(0.8, "out")]    # bottom 310: past the 5 px band
    # Off (the default: a cut box never changes a side), the crossing is not seen while it happens.
    assert leave_through_the_side(counter(line), range(270, 340, 5)) == []


def test_a_side_cut_box_still_never_counts_across_a_slanted_line():
    # 45 degrees: the cut moves the anchor along x, and so across this line: it decides nothing.
    slanted = LineConfig("slanted", (400, 100), (700, 400))
    assert leave_through_the_side(counter(slanted, side_cut_lines=True), range(270, 340, 5)) == []


def test_a_side_cut_box_whose_height_jumps_is_redrawn_and_does_not_count_back():
    # The car has crossed (out); its cut box then takes in only the car behind it (same top, half
    # the height): the whole-box rule keeps its anchor where the car is, so nothing counts 'in'.
    line = LineConfig("across", (0, 300), (620, 300))
    c = counter(line, side_cut_lines=True)
    seen = leave_through_the_side(c, [280, 290, 300, 310, 320, 330, 330, 330])
    assert [e.direction for _, e in seen] == ["out"]
    half = [boxes((1, (565, 230, 636.5, 280))) for _ in range(6)]     # bottom 20 px above the line
    assert [e for k, d in enumerate(half, 8) for e in c.update(d, k / FPS, (640, 360))] == []


def visitor(feet_at_table: float, seconds: float, jitter: float = 4.0, seed: int = 7) -> list[Detections]:
    """The people clip's visitor 3 (768 x 432, 10 fps): a person 390 px tall walks in from the
    bottom edge up to a table, her box's top cut by the picture's top edge, and stands there
    `seconds` with her feet at `feet_at_table` (+- jitter px), then walks off to the right with her
    feet 4 px back across the line (inside the band)."""
    rng = np.random.default_rng(seed)
    path = [boxes((3, (380, 432 - h, 540, 432))) for h in (280, 340, 380)]          # cut at the bottom
    path += [boxes((3, (380, 0, 540, y))) for y in (425, 415)]                       # cut at the top
    path += [boxes((3, (380, 0, 540, feet_at_table + rng.uniform(-jitter, jitter))))
             for _ in range(int(seconds * FPS))]
    path += [boxes((3, (380 + 40 * k, 0, 540 + 40 * k, 404))) for k in range(1, 6)]   # 4 px back
    return path


def test_someone_who_stops_just_past_a_line_counts_when_they_stopped():
    # Visitor 3 of the people clip: her feet stop 8 px past the entry line (band: 5 % of 390 px
    # = 19.5 px) and stay there 17 s. Her stay's mean is known to a fraction of a pixel, so the
    # crossing counts, about when she stepped over it (0.4-0.5 s), not when she walks on at 17 s.
    entry = LineConfig("entry", (100, 400), (680, 400))      # drawn left -> right: upward is 'in'
    size = (768, 432)
    path = visitor(392.0, 17.0)

    def events(c):
        return [e for k, d in enumerate(path) for e in c.update(d, k / FPS, size)] + c.finish()

    counted = events(counter(entry))
    assert [e.direction for e in counted] == ["in"]
    assert counted[0].timestamp == pytest.approx(0.45, abs=0.2)
    # Without the rule, or when a box cut at the top may not decide a side (the feet are the
    # anchor: the top edge does not move them), she is never counted: her anchor never leaves the band.
    assert events(counter(entry, dwell_seconds=0.0)) == []
    saved = count_module.ANCHOR_EDGES_ONLY
    count_module.ANCHOR_EDGES_ONLY = False
    try:
        assert events(counter(entry)) == []
    finally:
        count_module.ANCHOR_EDGES_ONLY = saved
    # Standing on the line itself (feet jittering 4 px either side of it) decides nothing: the
    # mean lies within the band's 2 px floor of the line.
    assert [e for seed in range(5) for e in events_of(entry, size, visitor(400.0, 17.0, seed=seed))] == []


def events_of(line: LineConfig, size, path, **settings) -> list[CrossingEvent]:
    c = counter(line, **settings)
    return [e for k, d in enumerate(path) for e in c.update(d, k / FPS, size)] + c.finish()


def test_walking_along_a_line_inside_the_band_is_not_standing_on_it():
    # A person 100 px tall (band 5 px) steps down to a line and walks along it 4 px past it, at
    # a third of its height a second (slow), then turns back up. The anchor's mean is 4 px past
    # the line, but the walker never stands still within a tenth of its height for a second:
    # no side is decided inside the band, so nothing counts.
    line = LineConfig("across", (0, 200), (640, 200))        # upward is 'in'
    path = [boxes(box(1, 100, 150, 100))]
    path += [boxes(box(1, x, 204, 100)) for x in np.arange(100, 500, 100 / 3 / FPS)]
    path += [boxes(box(1, 500, y, 100)) for y in range(200, 140, -5)]
    assert events_of(line, None, path) == []
    # Were walking standing, the stay's mean would count it out and back in.
    saved = count_module.DWELL_RADIUS
    count_module.DWELL_RADIUS = 10.0
    try:
        assert [e.direction for e in events_of(line, None, path)] == ["out", "in"]
    finally:
        count_module.DWELL_RADIUS = saved


def leaving_visitor(seed: int, spike: bool = True, back_across: bool = False) -> list[Detections]:
    """The people clip's visitor 5 (768 x 432, 10 fps): a person 380 px tall walks up across the
    entry line (y 400, band 19 px), stands 10 s with her feet 11 px past it (+- 2 px), then walks
    off to the right along the line with her feet 4 px back (inside the band). One box as she
    steps off reaches 21.5 px below the line (legs spread: the bottom 17 px below her soles),
    1.5 px past the band; the next ones are back inside it. back_across: she then walks on down,
    well past the band."""
    rng = np.random.default_rng(seed)
    feet = [425.0, 410.0, 395.0, 380.0, 375.0]
    feet += list(389.0 + rng.uniform(-2, 2, 100))
    feet += list(np.linspace(391.5, 404.0, 6) + rng.uniform(-2, 2, 6))      # stepping off
    feet += [421.5 if spike else 404.0]
    feet += list(404.0 + rng.uniform(-2, 2, 12))
    if back_across:
        feet += [410.0, 418.0, 425.0, 425.0, 425.0, 425.0]
    x = np.cumsum([460.0] + [0.0] * 104 + [1.5 * k for k in range(1, 7)] + [8.0] * (len(feet) - 111))
    return [boxes((5, (cx - 80, f - 380 - (17 if f == 421.5 else 0), cx + 80, f))) for cx, f in zip(x, feet)]


def test_one_box_off_its_path_barely_past_the_band_does_not_count_a_crossing_back():
    # Counted 'in', she steps off along the line; one box's bottom reaches past the band by less
    # than her anchor's own noise, off her path by more than 3 of it. Without the rule the
    # reversal hold counts her 'out' (the frames after are inside the band: they cancel nothing).
    entry = LineConfig("entry", (100, 400), (680, 400))      # drawn left -> right: upward is 'in'
    size = (768, 432)
    for seed in range(5):
        assert [e.direction for e in events_of(entry, size, leaving_visitor(seed))] == ["in"]
        # Walking on down past the band is evidence: that crossing back counts.
        assert [e.direction for e in events_of(entry, size, leaving_visitor(seed, back_across=True))] == ["in", "out"]
    saved = count_module.SPIKE_SD
    count_module.SPIKE_SD = np.inf
    try:
        assert [e.direction for e in events_of(entry, size, leaving_visitor(0))] == ["in", "out"]
    finally:
        count_module.SPIKE_SD = saved


def test_crossing_twice_the_same_way_counts_two():
    c = counter(LineConfig("short", (240, 100), (240, 200)))
    # In through the segment, back round its lower end (not through it), in again.
    path = (walk(1, (200, 150), (280, 150), 8) + walk(1, (280, 150), (280, 300), 8)
            + walk(1, (280, 300), (200, 300), 8) + walk(1, (200, 300), (200, 150), 8)
            + walk(1, (200, 150), (280, 150), 8))
    play(c, path)
    assert counts(c, "short") == (2, 0)


def test_a_jump_across_the_line_between_two_frames_counts():
    c = counter()
    assert [e.direction for e in play(c, [frame((1, 150, 100)), frame((1, 330, 120))])] == ["in"]


def test_a_jump_past_the_end_of_the_segment_does_not_count():
    c = counter(LineConfig("short", (240, 100), (240, 200)))
    # The step changes side, but its path meets the line at y = 260, below the segment's end.
    play(c, [frame((1, 200, 250)), frame((1, 280, 270))])
    assert counts(c, "short") == (0, 0)


def test_occlusion_while_crossing_counts_once():
    c = counter()
    before = walk(1, (180, 100), (230, 100), 5)
    after = walk(1, (255, 100), (320, 100), 6)
    events = play(c, before) + play(c, after, start=len(before) + 6)   # gone for 6 frames
    assert [(e.direction, e.track_id) for e in events] == [("in", 1)]


def test_id_switch_on_the_line_counts_once():
    c = counter()
    old = walk(1, (180, 100), (238, 100), 6)              # ends inside the band
    new = walk(2, (242, 102), (320, 102), 8)              # starts inside it, leaves on the far side
    events = play(c, old) + play(c, new, start=len(old))
    assert [(e.direction, e.track_id) for e in events] == [("in", 2)]
    # The old id coming back later cannot count the same crossing again.
    assert play(c, walk(1, (250, 100), (300, 100), 3), start=40) == []
    assert counts(c) == (1, 0)


def test_id_switch_that_turns_back_counts_nothing():
    c = counter()
    old = walk(1, (180, 100), (238, 100), 6)
    new = walk(2, (242, 102), (180, 102), 8)             # the new id walks back where it came from
    assert play(c, old) + play(c, new, start=len(old)) == []


def test_without_hand_over_the_id_switch_is_missed():
    c = counter(handoff_seconds=0)
    old = walk(1, (180, 100), (238, 100), 6)
    new = walk(2, (242, 102), (320, 102), 8)
    assert play(c, old) + play(c, new, start=len(old)) == []


def test_hand_over_needs_the_new_track_to_be_near():
    c = counter()
    old = walk(1, (180, 100), (238, 100), 6)
    far = walk(2, (242, 300), (320, 300), 8)             # someone else, 200 px away
    assert play(c, old) + play(c, far, start=len(old)) == []


def test_vanishing_past_the_line_inside_the_band_counts_once_the_track_is_given_up():
    c = counter(handoff_seconds=1.0, hysteresis_px=6)
    # Walks out of the frame across the line: last seen 4 px past it, inside the band.
    events = play(c, walk(1, (200, 100), (244, 100), 11))
    assert events == []
    later = play(c, [Detections.empty()] * 15, start=12)   # until well past handoff_seconds
    assert [(e.direction, e.track_id, e.timestamp) for e in later] == [("in", 1, 1.1)]
    assert play(c, [Detections.empty()] * 20, start=27) == []


def test_finish_counts_tracks_the_stream_ended_on_inside_a_band_past_the_line():
    c = counter(DOWN, ACROSS, hysteresis_px=6)
    play(c, walk(1, (200, 100), (244, 100), 11))         # past the line, still inside the band
    play(c, walk(2, (100, 260), (100, 205), 11))         # before the other line, inside its band
    assert [(e.line, e.direction, e.track_id) for e in c.finish()] == [("down", "in", 1)]
    assert len(c) == 0 and counts(c) == (1, 0)
    assert c.finish() == []


def test_vanishing_inside_the_band_before_the_line_does_not_count():
    c = counter()
    play(c, walk(1, (200, 100), (237, 100), 10) + [Detections.empty()] * 30)
    assert counts(c) == (0, 0)


def test_objects_crossing_side_by_side_in_one_frame_each_count():
    c = LineCounter((DOWN,), CountingConfig(), capacity=2)      # also makes the state grow
    ys = [40, 80, 120, 160, 200, 240]
    frames = [frame(*[(i, x, y) for i, y in enumerate(ys)]) for x in range(200, 290, 10)]
    events = play(c, frames)
    assert sorted(e.track_id for e in events) == list(range(len(ys)))
    assert counts(c) == (len(ys), 0)


def test_crossings_beyond_the_segment_ends_do_not_count():
    c = counter(LineConfig("short", (240, 100), (240, 200)))
    play(c, walk(1, (200, 250), (280, 250), 8))       # below the segment
    play(c, walk(2, (200, 60), (280, 60), 8))         # above it
    assert counts(c, "short") == (0, 0)
    play(c, walk(3, (200, 150), (280, 150), 8))       # through it
    assert counts(c, "short") == (1, 0)


def test_lines_at_the_frame_edge_count():
    # A line spanning the whole width, ends on the frame border; someone crossing at x = 0.
    full = LineConfig("full", (0, 300), (480, 300))
    # A line 10 px above the bottom edge: people leave the frame there, anchors stop at y = 360.
    bottom = LineConfig("bottom", (0, 350), (480, 350))
    c = counter(full, bottom)
    play(c, walk(1, (0, 320), (0, 280), 8))
    play(c, walk(2, (100, 320), (100, 360), 8), start=10)
    assert counts(c, "full") == (1, 0)
    assert counts(c, "bottom") == (0, 1)


def test_counts_are_per_class():
    c = counter()
    play(c, walk(1, (200, 100), (280, 100), 8, "person"))
    play(c, walk(2, (200, 100), (280, 100), 8, "car"), start=10)
    play(c, walk(3, (280, 100), (200, 100), 8, "car"), start=20)
    assert c.totals["down"] == {"in": {"person": 1, "car": 1}, "out": {"car": 1}}


@pytest.mark.parametrize("angle", [0, 17, 45, 90, 133, 180, 250, 315])
def test_lines_at_any_angle(angle):
    a = math.radians(angle)
    direction = np.array([math.cos(a), math.sin(a)])
    centre = np.array([240.0, 180.0])
    line = LineConfig("tilted", tuple(centre - 100 * direction), tuple(centre + 100 * direction))
    toward_in = np.array([direction[1], -direction[0]])           # (dy, -dx)
    c = counter(line)
    play(c, walk(1, tuple(centre - 30 * toward_in), tuple(centre + 30 * toward_in), 10))
    play(c, walk(2, tuple(centre + 30 * toward_in + 20 * direction),
                 tuple(centre - 30 * toward_in + 20 * direction), 10), start=20)
    assert counts(c, "tilted") == (1, 1)


def test_untracked_detections_are_ignored():
    c = counter()
    play(c, [Detections.from_arrays([[190, 60, 210, 100]], [0.9], [0]),
             Detections.from_arrays([[270, 60, 290, 100]], [0.9], [0])])
    assert counts(c) == (0, 0)


def test_anchor_setting_picks_the_point_that_crosses():
    # A 40 px tall box moving up 50 px: its top and centre cross y = 180, its bottom stays below.
    boxes = [[100, 200 - 50 * k / 10, 120, 240 - 50 * k / 10] for k in range(11)]
    frames = [Detections.from_arrays([b], [0.9], [0], [1]) for b in boxes]
    for anchor, expected in [("bottom-center", (0, 0)), ("top-center", (1, 0)), ("center", (1, 0))]:
        c = counter(LineConfig("across", (0, 180), (480, 180)), anchor=anchor)
        play(c, frames)
        assert counts(c, "across") == expected, anchor


def test_totals_list_every_line_and_reset():
    c = counter(DOWN, ACROSS)
    assert c.totals == {"down": {"in": {}, "out": {}}, "across": {"in": {}, "out": {}}}
    play(c, walk(1, (200, 100), (280, 100), 8))
    c.totals["down"]["in"]["person"] = 99               # a copy: callers cannot corrupt the counter
    assert counts(c) == (1, 0)
    c.reset_totals()
    assert c.totals == {"down": {"in": {}, "out": {}}, "across": {"in": {}, "out": {}}}


def test_reconfigure_keeps_totals_and_track_sides_of_unchanged_lines():
    c = counter(DOWN)
    play(c, walk(1, (200, 100), (280, 100), 8))
    play(c, walk(2, (180, 300), (230, 300), 5), start=10)    # halfway: left of the line
    c.reconfigure([DOWN, ACROSS], CountingConfig(hysteresis_px=3))
    assert set(c.totals) == {"down", "across"}
    assert counts(c) == (1, 0)
    play(c, walk(2, (230, 300), (280, 300), 5), start=16)    # finishes crossing after the reload
    assert counts(c) == (2, 0)
    c.reconfigure([ACROSS], CountingConfig())
    assert set(c.totals) == {"across"}


def test_adding_an_alert_setting_on_reload_keeps_the_side_of_someone_standing_on_the_line():
    """The reload bug: a line whose alert settings alone changed kept no track state, so a
    person standing inside its band during the reload was never counted stepping off."""
    c = counter(DOWN)
    play(c, walk(1, (200, 100), (240, 100), 4))              # from the left onto the line, and stays
    c.reconfigure([dataclasses.replace(DOWN, tailgate_seconds=2.0, forbidden_direction="out")],
                  CountingConfig())
    play(c, walk(1, (240, 100), (280, 100), 4), start=5)     # steps off to the right
    assert counts(c) == (1, 0)


def test_a_moved_line_does_not_count_from_the_old_geometry():
    c = counter(DOWN)
    play(c, walk(1, (180, 100), (220, 100), 4))
    c.reconfigure([LineConfig("down", (300, 0), (300, 360))], CountingConfig())  # now right of it
    play(c, walk(1, (220, 100), (260, 100), 4), start=5)
    assert counts(c) == (0, 0)


def test_counter_forgets_tracks_it_has_not_seen_for_a_while():
    c = counter(forget_seconds=2.0)
    for i in range(600):                        # a new object every frame for a minute
        c.update(frame((i, 100, 100)), i / FPS)
    assert len(c) <= 2.0 * FPS + 10


def test_config_refuses_forgetting_tracks_before_their_hand_over_window_ends():
    with pytest.raises(ConfigError, match=r"counting\.forget_seconds: must be > handoff_seconds"):
        config_from_dict({"counting": {"handoff_seconds": 2.0, "forget_seconds": 1.5}}, "site.toml")


def test_counter_forgets_tracks_when_the_clock_steps_back():
    c = counter(forget_seconds=5.0)
    play(c, walk(1, (100, 100), (120, 100), 4), start=10000)
    c.update(Detections.empty(), 100.0)                   # the wall clock went back
    assert len(c) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(1, 4), st.floats(-30, 30), st.floats(-30, 30)),
                         max_size=4), min_size=2, max_size=40))
def test_random_walks_count_alternately_and_never_more_than_they_change_side(steps):
    """Four walkers take random steps (some frames missing some of them) about two lines that
    reach past the frame, so no one can go round an end: each walker's crossings of a line
    alternate in and out, and never outnumber the times its anchor changed side."""
    lines = (LineConfig("h", (-1e4, 200), (1e4, 200)), LineConfig("v", (240, -1e4), (240, 1e4)))
    c = LineCounter(lines, CountingConfig(handoff_seconds=0))   # no hand-over between walkers
    position = {tid: np.array([240.0, 200.0]) for tid in range(1, 5)}
    path: dict[int, list] = {tid: [] for tid in position}
    events = []
    for k, moves in enumerate(steps):
        seen = {}
        for tid, dx, dy in moves:
            position[tid] = position[tid] + (dx, dy)
            seen[tid] = position[tid].copy()
        for tid, p in seen.items():
            path[tid].append(p)
        events += c.update(frame(*[(tid, x, y) for tid, (x, y) in seen.items()]), k / FPS)
    events += c.finish()
    for tid, points in path.items():
        for name, axis, at in (("h", 1, 200), ("v", 0, 240)):
            mine = [e.direction for e in events if e.track_id == tid and e.line == name]
            assert all(a != b for a, b in zip(mine, mine[1:])), (tid, name, mine)
            signs = [s for s in np.sign([p[axis] - at for p in points]) if s]
            assert len(mine) <= sum(a != b for a, b in zip(signs, signs[1:]))
    assert sum(sum(n.values()) for t in c.totals.values() for n in t.values()) == len(events)


def test_true_crossings_from_a_mot_file(tmp_path):
    # Track 1 walks right across x = 240 (bottom-centre anchor) and back; track 2 passes below
    # the segment's end; track 3 has a gap in its annotation while it crosses.
    rows = ["1,1,200,60,20,40", "2,1,250,60,20,40", "3,1,200,60,20,40",
            "1,2,200,300,20,40", "2,2,250,300,20,40",
            "1,3,200,150,20,40", "5,3,250,150,20,40"]
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(r + ",1,-1,-1,-1" for r in rows))
    gt = read_mot(path)
    crossings = true_crossings(gt, (240, 0), (240, 300))
    assert [(c.track_id, c.frame, c.direction) for c in crossings] == [
        (1, 2, "in"), (1, 3, "out"), (3, 5, "in")]
    assert crossing_totals(crossings) == {"in": 2, "out": 1}
    assert [len(d) for _, d in gt.frames()] == [3, 2, 1, 0, 1]


@pytest.fixture(scope="module")
def pets_gt():
    return read_mot(need_shared(PETS_GT))


PETS_LINES = (
    LineConfig("v240", (240, 0), (240, 360)),
    LineConfig("h200", (0, 200), (480, 200)),
    LineConfig("diagonal", (100, 50), (400, 330)),
    LineConfig("v100", (100, 0), (100, 360)),
    LineConfig("h300_short", (100, 300), (380, 300)),
)


def feed_ground_truth(gt, counting: CountingConfig) -> dict:
    c = LineCounter(PETS_LINES, counting)
    for index, dets in gt.frames():
        c.update(dets, index / FPS)
    return {name: {d: sum(by_class.values()) for d, by_class in t.items()} for name, t in c.totals.items()}


def test_ground_truth_tracks_give_the_true_crossings(pets_gt):
    truth = {line.name: crossing_totals(true_crossings(pets_gt, line.start, line.end)) for line in PETS_LINES}
    assert truth["v240"] == {"in": 13, "out": 18}       # the figure ../shared/data/README.md states
    # With no band the counter applies the same rule as the ground truth: exact on every line.
    assert feed_ground_truth(pets_gt, CountingConfig(hysteresis_px=0, hysteresis_ratio=0,
                                                     reverse_hold_seconds=0)) == truth
    # With the default band and no hold, people who wander along a line count less often, never wildly.
    counted = feed_ground_truth(pets_gt, CountingConfig(reverse_hold_seconds=0))
    for name in truth:
        for direction in ("in", "out"):
            assert abs(counted[name][direction] - truth[name][direction]) <= 1, (name, direction)


def test_a_box_that_jumps_to_another_object_starts_over(monkeypatch):
    line = LineConfig("across", (0, 300), (640, 300))   # 'in' is upward
    c = counter(line)
    # A car passes the line going down (out); then its track jumps to the car behind it (a box
    # twice as wide, its bottom 30 px above the line): that is not a crossing back.
    down = [boxes(box(1, 300, y, 60, 100)) for y in range(270, 335, 8)]
    jumped = [boxes(box(1, 320, 270, 70, 230))] * 10
    assert [e.direction for e in play(c, down + jumped)] == ["out"]
    # The car behind then crosses the line itself, under the old id: that counts.
    events = play(c, [boxes(box(1, 320, y, 70, 230)) for y in range(276, 340, 8)], start=30)
    assert [e.direction for e in events] == ["out"] and counts(c, "across") == (0, 2)
    # Without the rule the jump would have counted 'in'.
    monkeypatch.setattr(count_module, "JUMP_RATIO", 1e9)
    c = counter(line)
    assert [e.direction for e in play(c, down + jumped)] == ["out", "in"]


def test_a_moment_merged_with_a_neighbour_decides_nothing():
    line = LineConfig("across", (0, 300), (640, 300))   # 'in' is upward
    c = counter(line, reverse_hold_seconds=0)
    # Walking down toward the line, the box merges for 0.3 s with a neighbour's whose feet are
    # past it: the merged box (2.5x as wide) reaches below the line. Then it walks on, unmerged.
    approach = [boxes(box(1, 300, y, 80)) for y in range(240, 281, 10)]
    merged = [boxes((1, (250, 240, 350, 320)))] * 3
    back = [boxes(box(1, 300, 280, 80))] * 3
    assert play(c, approach + merged + back) == []
    events = play(c, [boxes(box(1, 300, y, 80)) for y in range(290, 341, 10)], start=20)
    assert [e.direction for e in events] == ["out"]


def hidden_legs(track_id, xs, feet, hidden, height=50.0, hide=15.0) -> list[Detections]:
    """A person walking through (xs[k], feet[k]); on the frames in `hidden` someone in front
    covers the legs: the box's top stays on the head, its bottom rises by `hide` px."""
    return [boxes((track_id, (x - 12, y - height, x + 12, y - (hide if k in hidden else 0.0))))
            for k, (x, y) in enumerate(zip(xs, feet))]


def test_legs_hidden_behind_someone_in_front_do_not_cross_the_line(monkeypatch):
    # PETS h130: a person walks along 10 px below a line; for 0.8 s a passer-by in front hides
    # the legs and the box's bottom rises 15 px, past the line. The person never crossed.
    line = LineConfig("across", (0, 130), (640, 130))          # upward is 'in'
    along = hidden_legs(1, np.linspace(60, 300, 40), np.full(40, 140.0), hidden=range(15, 23))
    assert play(counter(line), along) == []
    # Without re-drawing the box from its head, the hidden legs count in, and out when they reappear.
    monkeypatch.setattr(count_module, "HEIGHT_JUMP_RATIO", math.inf)
    assert [e.direction for e in play(counter(line), along)] == ["in", "out"]


def test_a_box_merged_with_a_neighbours_below_does_not_cross_the_line(monkeypatch):
    # The box reaches down over the feet of someone just behind the line for 0.3 s: 1.4x as tall,
    # as wide as before (the size-jump rule does not see it), its bottom 20 px past the line.
    line = LineConfig("across", (0, 300), (640, 300))          # upward is 'in'
    walk_by = [boxes(box(1, x, 290, 60)) for x in range(100, 200, 10)]
    merged = [boxes((1, (x - 15, 230, x + 15, 315))) for x in range(200, 230, 10)]
    after = [boxes(box(1, x, 290, 60)) for x in range(230, 330, 10)]
    assert play(counter(line), walk_by + merged + after) == []
    monkeypatch.setattr(count_module, "HEIGHT_JUMP_RATIO", math.inf)
    assert [e.direction for e in play(counter(line), walk_by + merged + after)] == ["out", "in"]


def test_crossing_with_the_legs_hidden_counts_when_the_feet_cross(monkeypatch):
    # Walking up across the line at 5 px a frame, the legs hidden for 0.8 s around the crossing:
    # the box re-drawn from the head puts the feet where they are, so it counts once, on time.
    line = LineConfig("across", (0, 130), (640, 130))          # upward is 'in'
    feet = np.linspace(180, 80, 21)                            # the feet cross y = 130 at frame 10
    path = hidden_legs(1, np.full(21, 300.0), feet, hidden=range(6, 14))
    events = play(counter(line), path)
    assert [e.direction for e in events] == ["in"] and 1.0 <= events[0].timestamp <= 1.2
    # The bare box counts it at frame 8, when the edge of what hides the legs crossed.
    monkeypatch.setattr(count_module, "HEIGHT_JUMP_RATIO", math.inf)
    assert [e.timestamp for e in play(counter(line), path)] == [0.8]


def test_a_new_height_held_longer_than_the_settle_time_is_the_objects_own(monkeypatch):
    # A box that stays 20 px shorter with its feet kept (the person bent down): after
    # HEIGHT_SETTLE_SECONDS the short box is the object's, and walking up across the line from
    # there counts when its own feet cross (5 px a frame: y 130 on frame 21, beyond the band
    # two frames later).
    line = LineConfig("across", (0, 130), (640, 130))          # upward is 'in'
    stand = [boxes((1, (288, 90, 312, 140)))] * 5
    bent = [boxes((1, (288, 110, 312, 140)))] * 15
    walk_up = [boxes((1, (288, 110 - d, 312, 140 - d))) for d in range(5, 55, 5)]
    events = play(counter(line), stand + bent + walk_up)
    assert [e.direction for e in events] == ["in"] and 2.1 <= events[0].timestamp <= 2.3
    # Were the old height kept, the box re-drawn from its head would put the feet 20 px low.
    monkeypatch.setattr(count_module, "HEIGHT_SETTLE_SECONDS", math.inf)
    assert [e.timestamp >= 2.6 for e in play(counter(line), stand + bent + walk_up)] == [True]


def test_a_held_height_change_that_moved_the_anchor_is_another_object(monkeypatch):
    # PETS h180 at 36 s: a track is born on a box merged over two people, one behind the other
    # (90 px tall, its bottom the front one's feet, 20 px below the line), and after 0.5 s keeps
    # to the one behind (50 px, feet 20 px above the line). Once the new height is held past
    # HEIGHT_SETTLE_SECONDS it is the object's own, but its feet are not where the old box put
    # them: the track is another object, and nobody crossed.
    line = LineConfig("across", (0, 180), (640, 180))          # upward is 'in'
    merged = [boxes((1, (270, 110, 300, 200)))] * 5
    behind = [boxes((1, (270, 110, 300, 160)))] * 15
    c = counter(line)
    assert play(c, merged + behind) == []
    # What the track does from then on counts, its first crossing as a first crossing.
    walk_down = [boxes((1, (270, 110 + d, 300, 160 + d))) for d in range(5, 60, 5)]
    assert [e.direction for e in play(c, walk_down, start=20)] == ["out"]
    # Were its sides kept, the settled box's feet would count 'in' where nobody crossed.
    monkeypatch.setattr(count_module, "SETTLE_AWAY", math.inf)
    c = counter(line)
    assert [e.direction for e in play(c, merged + behind)] == ["in"]


def test_a_track_coming_back_after_a_gap_with_a_new_height_keeps_its_sides():
    # The car clip at 12 s: a car hidden for 1 s behind another comes back 1.6x as tall (it
    # closed in meanwhile), its bottom past the line. Its height changed while unseen, not on
    # boxes seen re-drawn: the same car, and it crossed.
    line = LineConfig("across", (0, 200), (640, 200))          # upward is 'in'
    c = counter(line)
    approach = [boxes((3, (320, 150 + k, 368, 192 + k))) for k in range(5)]
    assert play(c, approach) == []
    back = [boxes((3, (330, 160 + k, 384, 228 + k))) for k in range(5)]
    assert [e.direction for e in play(c, back, start=16)] == ["out"]


def passing(a_feet, b_feet, a_x=240.0, b_x=260.0, height=50.0) -> Detections:
    """Two walkers' boxes (tracks 1 and 2), feet at (a_x, a_feet) and (b_x, b_feet), overlapping in x."""
    return boxes((1, (a_x - 12, a_feet - height, a_x + 12, a_feet)), (2, (b_x - 12, b_feet - height, b_x + 12, b_feet)))


def test_two_tracks_that_exchange_people_where_they_pass_count_nothing(monkeypatch):
    # PETS h180 at 75 s: track 1 walks down over the line (out), track 2 up over it (in); where
    # they pass, their boxes overlap and each track takes the other's person: on one frame both
    # boxes leap back over the line, in opposite directions. Nobody crossed back.
    line = LineConfig("across", (0, 180), (640, 180))          # upward is 'in'
    crossed = [passing(170 + 4 * k, 190 - 4 * k) for k in range(6)]    # 1: 170 -> 190 (out), 2: 190 -> 170 (in)
    exchanged = [passing(166 - 2 * k, 194 + 2 * k) for k in range(6)]  # 1 now on the one going up, 2 down
    c = counter(line)
    assert sorted(e.direction for e in play(c, crossed)) == ["in", "out"]
    assert play(c, exchanged, start=6) == [] and counts(c, "across") == (1, 1)
    # Each track carries its new person's history: the walker going up (track 1 now) coming back
    # down across the line is a crossing back, counted once held.
    back_down = [passing(170 + 4 * k, 220) for k in range(8)]
    assert [(e.direction, e.track_id) for e in play(c, back_down, start=12)] == [("out", 1)]
    # Counted as two crossings back, the exchange adds an 'in' and an 'out' nobody made.
    monkeypatch.setattr(count_module, "EXCHANGE_IDS", False)
    c = counter(line)
    play(c, crossed)
    assert sorted(e.direction for e in play(c, exchanged, start=6)) == ["in", "out"]


def test_two_walkers_turning_back_side_by_side_both_count():
    # Two walkers whose boxes overlap both turn back over the line on the same frame, in opposite
    # directions, stepping 4 px a frame (bench/hotloop.py's synthetic walkers do this): no box
    # leapt, nobody exchanged people, both crossings back count.
    line = LineConfig("across", (0, 180), (640, 180))          # upward is 'in'
    c = counter(line)
    crossed = play(c, [passing(170 + 4 * k, 190 - 4 * k) for k in range(5)])
    assert sorted(e.direction for e in crossed) == ["in", "out"]
    back = play(c, [passing(182 - 4 * k, 178 + 4 * k) for k in range(10)], start=5)
    assert sorted((e.direction, e.track_id) for e in back) == [("in", 1), ("out", 2)]


def test_two_walkers_turning_back_apart_both_count():
    # The same two walkers turning back on the same frame with boxes apart (80 px): both count.
    line = LineConfig("across", (0, 180), (640, 180))
    c = counter(line)
    play(c, [passing(170 + 4 * k, 190 - 4 * k, 200, 300) for k in range(6)])
    events = play(c, [passing(166 - 2 * k, 194 + 2 * k, 200, 300) for k in range(6)], start=6)
    assert sorted((e.direction, e.track_id) for e in events) == [("in", 1), ("out", 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_cut_by_frame_is_the_four_edge_comparisons(dtype):
    """cut_by_frame folds its four comparisons into one (far edges negated, limits cached per
    frame size): it must agree with them exactly, in the boxes' own precision, on boxes right at
    each limit (12.8 px and 7.2 px from the edges of 1280 x 720)."""
    rng = np.random.default_rng(3)
    edges = np.array([12.8, 7.2, 1280 - 12.8, 720 - 7.2])
    boxes = np.concatenate([
        rng.uniform(0, [1280, 720, 1280, 720], (500, 4)),
        edges + rng.choice([-1e-3, 0.0, 1e-3, np.nextafter(0, 1)], (200, 4)),
        np.tile(edges, (4, 1)) + np.eye(4) * [0.0, 0.0, -0.5, -0.5]]).astype(dtype)
    width, height, mx, my = 1280, 720, 12.8, 7.2
    expected = ((boxes[:, 0] <= mx) | (boxes[:, 1] <= my) | (boxes[:, 2] >= width - mx)
                | (boxes[:, 3] >= height - my))
    assert np.array_equal(cut_by_frame(boxes, (width, height)), expected)
    assert 0 < np.count_nonzero(expected) < len(boxes)
