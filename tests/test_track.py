"""Tracker: IoU and assignment, ids kept through motion, misses and crossings, class votes."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import PETS_GT, REPO, need_shared
from counterd.classes import CLASS_IDS
from counterd.config import CountingConfig, LineConfig, TrackerConfig
from counterd.count import LineCounter
from counterd.detections import Detections
from counterd.track import Tracker, _solve as solve_whole, box_iou, match

sys.path.insert(0, str(REPO / "bench"))
from groundtruth import crossing_totals, read_mot, true_crossings  # noqa: E402

PERSON, CAR, TRUCK = CLASS_IDS["person"], CLASS_IDS["car"], CLASS_IDS["truck"]


def boxes_at(centres, size=(20, 50)) -> np.ndarray:
    c = np.asarray(centres, float).reshape(-1, 2)
    half = np.asarray(size, float) / 2
    return np.concatenate([c - half, c + half], axis=1)


def dets(centres, scores=0.9, classes=PERSON, size=(20, 50)) -> Detections:
    xyxy = boxes_at(centres, size)
    n = len(xyxy)
    return Detections.from_arrays(xyxy, np.broadcast_to(scores, n), np.broadcast_to(classes, n))


def ids_by_x(tracks: Detections) -> list[int]:
    """Track ids ordered by box centre x, to compare frames whatever the row order."""
    return tracks.tracker_id[np.argsort(tracks.xyxy[:, 0] + tracks.xyxy[:, 2])].tolist()


def test_box_iou_matches_hand_computed_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    expected = [[50 / 150, 0, 1], [0, 0, 4 / 100]]
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-6)
    assert box_iou(a[:0], b).shape == (0, 3)


def test_match_pairs_one_to_one_above_the_threshold():
    iou = np.array([[0.9, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.6]])
    rows, cols = match(iou, 0.2)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 0), (2, 2)]


def test_match_solves_conflicts_for_the_most_pairs_not_greedily():
    # Greedy would pair row 0 with column 0 (best IoU) and leave row 1 with nothing.
    iou = np.array([[0.9, 0.5, 0.0], [0.8, 0.0, 0.0], [0.0, 0.0, 0.7]])
    rows, cols = match(iou, 0.2)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0), (2, 2)]


def exact_best(iou: np.ndarray, min_iou: float) -> tuple[int, float]:
    """(pairs, total IoU) of the best one-to-one pairing with IoU >= min_iou: most pairs, then
    most IoU. A plain exact solver for small matrices: dynamic programming over the set of
    columns used so far, row by row."""
    best = {0: (0, 0.0)}                        # columns used (bitmask) -> best (pairs, IoU)
    for row in iou:
        step = dict(best)                       # the row stays unpaired
        for used, (pairs, total) in best.items():
            for col in np.flatnonzero(row >= min_iou):
                if used >> int(col) & 1:
                    continue
                key, value = used | 1 << int(col), (pairs + 1, total + float(row[col]))
                if value > step.get(key, (-1, 0.0)):
                    step[key] = value
        best = step
    return max(best.values())


def adversarial_matrices():
    """Ties everywhere, values on the threshold, differences at float resolution, one column
    everyone wants, thin shapes, rows with no option."""
    yield np.full((5, 5), 0.5)
    yield np.full((4, 6), 0.2)
    yield 0.5 + np.arange(36).reshape(6, 6) * 1e-9
    yield np.where(np.arange(6)[None, :] == 0, 0.9, 0.0) * np.ones((6, 1))
    yield np.array([[0.9, 0.25, 0.2], [0.25, 0.0, 0.0], [0.2, 0.0, 0.0]])
    yield np.full((1, 7), 0.3)
    yield np.full((7, 1), 0.3)
    yield np.array([[1.0, 1.0 - 1e-12], [1.0 - 1e-12, 1.0]])
    yield np.array([[0.19999999, 0.2], [0.2, 0.0]])


def random_matrices(count: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shape = rng.integers(1, 8, 2)
        iou = rng.uniform(0, 1, shape) * (rng.uniform(0, 1, shape) < rng.uniform(0.2, 0.9))
        yield np.round(iou, int(rng.integers(1, 4))) if rng.uniform() < 0.5 else iou   # ties too


def test_match_agrees_with_a_plain_exact_solver_on_random_and_adversarial_matrices():
    """lap's Jonker-Volgenant with the unmatchable cost at 1e3 finds the exact optimum; at 1e6
    it did not in ~2% of random cases."""
    for iou in [*adversarial_matrices(), *random_matrices(400)]:
        rows, cols = match(iou, 0.2)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert (iou[rows, cols] >= 0.2).all()
        pairs, total = exact_best(iou, 0.2)
        assert len(rows) == pairs, iou
        assert iou[rows, cols].sum() == pytest.approx(total, abs=1e-9), iou


def test_the_padded_square_solve_equals_laps_own_rectangular_extension():
    """_solve pads a thin matrix to a square by hand (lapjv's extend_cost is ~3x slower): the
    same optimum as lapjv on the rectangle, wide and tall, up to the tracker's crowd sizes."""
    import lap
    rng = np.random.default_rng(7)
    for _ in range(200):
        shape = rng.integers(1, 60, 2)
        iou = rng.uniform(0, 1, shape) * (rng.uniform(0, 1, shape) < rng.uniform(0.02, 0.3))
        allowed = iou >= 0.2
        cost = np.where(allowed, 1.0 - iou, 1e3)
        _, row_to_col, _ = lap.lapjv(cost, extend_cost=True)
        lap_rows = np.flatnonzero(row_to_col >= 0)
        lap_rows = lap_rows[allowed[lap_rows, row_to_col[lap_rows]]]
        rows, cols = solve_whole(allowed, iou)
        assert len(set(cols.tolist())) == len(cols) and allowed[rows, cols].all()
        assert len(rows) == len(lap_rows), shape
        assert iou[rows, cols].sum() == pytest.approx(iou[lap_rows, row_to_col[lap_rows]].sum(), abs=1e-9)


@pytest.mark.parametrize("size", [30, 150])      # solved whole, and split around uncontested pairs
def test_match_in_a_crowd_equals_solving_the_whole_matrix(size):
    rng = np.random.default_rng(size)
    centres = rng.uniform(0, 8 * size, (size, 2))
    tracks = boxes_at(centres, (30, 60))
    detections = boxes_at(centres[rng.permutation(size)] + rng.normal(0, 12, (size, 2)), (30, 60))
    iou = box_iou(tracks, detections)
    rows, cols = match(iou, 0.2)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert (iou[rows, cols] >= 0.2).all()
    whole_rows, whole_cols = solve_whole(iou >= 0.2, iou)
    assert len(rows) == len(whole_rows)
    assert iou[rows, cols].sum() == pytest.approx(iou[whole_rows, whole_cols].sum())


def test_match_of_empty_matrices():
    for shape in [(0, 3), (3, 0), (0, 0)]:
        rows, cols = match(np.zeros(shape), 0.2)
        assert len(rows) == len(cols) == 0


def test_ids_are_kept_while_objects_move_and_are_never_reused():
    tracker = Tracker(TrackerConfig())
    seen = []
    for k in range(20):
        tracks = tracker.update(dets([(100 + 8 * k, 100), (400 - 5 * k, 200)]), k / 10)
        seen.append(ids_by_x(tracks))
    assert seen[1:] == [seen[1]] * 19 and len(set(seen[1])) == 2
    tracker.reset()
    again = tracker.update(dets([(100, 100)]), 3.0)
    again = tracker.update(dets([(100, 100)]), 3.1)
    assert again.tracker_id[0] > max(seen[1])


def test_a_single_detection_is_not_reported_until_seen_twice():
    tracker = Tracker(TrackerConfig())
    assert len(tracker.update(dets([(50, 50)]), 0.0)) == 0
    assert len(tracker.update(dets([(52, 50)]), 0.1)) == 1
    # Clutter seen once and gone next frame is dropped at once, not kept coasting.
    tracker.update(dets([(52, 50), (300, 300)]), 0.2)
    tracker.update(dets([(52, 50)]), 0.3)
    assert len(tracker) == 1


def test_two_people_crossing_paths_keep_their_ids():
    tracker = Tracker(TrackerConfig())
    history = {}
    for k in range(30):
        a, b = (100 + 10 * k, 200), (390 - 10 * k, 205)     # pass each other at k = 14.5
        tracks = tracker.update(dets([a, b]), k / 10)
        for tid, x in zip(tracks.tracker_id, (tracks.xyxy[:, 0] + tracks.xyxy[:, 2]) / 2):
            history.setdefault(int(tid), []).append(float(x))
    assert len(history) == 2
    walking_right = [xs for xs in history.values() if xs[-1] > xs[0]]
    walking_left = [xs for xs in history.values() if xs[-1] < xs[0]]
    assert len(walking_right) == len(walking_left) == 1
    assert all(np.diff(walking_right[0]) > 0) and all(np.diff(walking_left[0]) < 0)


def test_low_score_detections_extend_tracks_but_never_start_them():
    tracker = Tracker(TrackerConfig(high_score=0.5, low_score=0.1, new_track_score=0.6))
    tracker.update(dets([(100, 100)], 0.9), 0.0)
    first = tracker.update(dets([(105, 100)], 0.9), 0.1).tracker_id.tolist()
    half_hidden = tracker.update(dets([(110, 100), (300, 300)], [0.3, 0.3]), 0.2)
    assert half_hidden.tracker_id.tolist() == first
    assert len(tracker) == 1
    # Between high_score and new_track_score: extends nothing here, starts nothing.
    tracker.update(dets([(400, 50)], 0.55), 0.3)
    tracker.update(dets([(400, 50)], 0.55), 0.4)
    assert all(len(tracker.update(dets([(400, 50)], 0.55), 0.5 + k / 10)) == 0 for k in range(3))


def test_tracks_coast_through_misses_for_max_coast_seconds_at_any_frame_rate():
    for fps in (5, 10, 30):
        tracker = Tracker(TrackerConfig(max_coast_seconds=1.0))
        t = [k / fps for k in range(4 * fps)]
        x = lambda ts: 100 + 50 * ts                          # 50 px/s to the right
        ids = [tracker.update(dets([(x(ts), 100)]), ts).tracker_id.tolist() for ts in t[:fps]]
        # 0.8 s without a detection, then seen again where constant velocity says it would be.
        for ts in t[fps:fps + int(0.8 * fps)]:
            assert len(tracker.update(Detections.empty(), ts)) == 0
        back = t[fps + int(0.8 * fps)]
        assert tracker.update(dets([(x(back), 100)]), back).tracker_id.tolist() == ids[-1], fps
        # 1.2 s without: the track is gone and the object gets a new id.
        gone = back + 1.2
        tracker.coast(gone - 0.01)
        assert len(tracker) == 0
        tracker.update(dets([(x(gone), 100)]), gone)
        new = tracker.update(dets([(x(gone + 0.1), 100)]), gone + 0.1).tracker_id.tolist()
        assert new[0] > ids[-1][0], fps


def hidden_walk(scale: float = 1.0, back_at: tuple[float, float] = (150, 200), size=(40, 100), cls=PERSON,
                tracker: Tracker | None = None, seen_again: int = 3) -> tuple[list[int], list[int], Tracker]:
    """A walker 100 px tall going right at 100 px/s for 1 s (10 fps), hidden 0.6 s, then seen
    again at back_at on seen_again frames (each coordinate and size times scale); the ids before
    and after."""
    tracker = tracker or Tracker(TrackerConfig())
    size = (size[0] * scale, size[1] * scale)
    before = [tracker.update(dets([(scale * (50 + 10 * k), scale * 200)], size=(40 * scale, 100 * scale)),
                             k / 10).tracker_id.tolist() for k in range(10)]
    for k in range(10, 16):
        tracker.update(Detections.empty(), k / 10)
    after = [tracker.update(dets([(scale * (back_at[0] + 4 * j), scale * back_at[1])], size=size, classes=cls),
                            1.6 + j / 10).tracker_id.tolist() for j in range(seen_again)]
    return before[-1], after[-1], tracker


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_a_walker_found_again_short_of_its_predicted_path_keeps_its_id(scale):
    # Hidden 0.6 s behind someone, the walker slowed down: seen again at x 150 where constant
    # velocity says 210. Its box (40 px wide) overlaps the predicted one too little for IoU, yet
    # the 60 px gap is within its height (100 px) per second lost (0.7 s since last seen): the
    # same track, at any scale.
    before, after, tracker = hidden_walk(scale)
    assert after == before
    assert len(tracker) == 1


def test_a_lost_walker_recovered_beyond_a_line_counts_its_crossing():
    line = LineConfig("door", (170, 0), (170, 400))   # drawn downwards: left to right is "in"
    tracker, counter = Tracker(TrackerConfig()), LineCounter((line,), CountingConfig())
    events = []
    for k in range(10):                                       # x 50 .. 140 at 100 px/s
        t = k / 10
        events += counter.update(tracker.update(dets([(50 + 10 * k, 200)], size=(40, 100)), t), t)
    for k in range(10, 16):                                   # hidden while it crosses
        tracker.update(Detections.empty(), k / 10)
    for j in range(3):                                        # seen again at x 180: 30 px short
        t = 1.6 + j / 10
        events += counter.update(tracker.update(dets([(180 + 5 * j, 200)], size=(40, 100)), t), t)
    assert [(e.line, e.direction, e.track_id) for e in events] == [("door", "in", 1)]


@pytest.mark.parametrize("back_at, size, cls", [
    ((400, 200), (40, 100), PERSON),     # 190 px beyond the predicted path: farther than 0.7 s allows
    ((180, 200), (40, 210), PERSON),     # within reach, but more than twice as tall: someone nearer
    ((180, 200), (40, 100), CAR),        # within reach, another class
])
def test_someone_else_where_a_walker_was_lost_gets_a_new_id(back_at, size, cls):
    before, after, _ = hidden_walk(back_at=back_at, size=size, cls=cls)
    assert after[0] > before[0]


def test_a_walker_who_turned_back_while_hidden_keeps_its_id():
    # Hidden 0.6 s, the walker (100 px tall, 100 px/s) turned back and is seen again 40 px
    # behind where it was last seen: 110 px short of the predicted path after 0.7 s. Farther
    # than a standing person could have walked (1.5 heights a second: 105 px), within what this
    # walker's own speed could have undone (100 + 150 px a second: 175 px).
    before, after, _ = hidden_walk(back_at=(100, 200), seen_again=1)
    assert after == before


def lost_and_found(back_height: float, neighbour: tuple[float, float] | None = None,
                   shrinking: bool = False) -> tuple[list[int], list[int]]:
    """A walker 40 x 100 px going right at 100 px/s for 1 s (10 fps), lost 0.6 s, then a box
    back_height tall seen at (150, 200): 60 px short of its path, too far for IoU, within the
    recovery's reach. neighbour: the centre of a person 40 x 100 px standing there all along;
    shrinking: the walker's last three boxes cut to their top 60 px (hidden behind something
    untracked, or leaving through the picture's edge). The walker's ids before and after."""
    tracker = Tracker(TrackerConfig())

    def frame(boxes: list[tuple[float, float, float, float]], t: float) -> Detections:
        boxes = boxes + ([(*neighbour, 40, 100)] if neighbour else [])
        xyxy = np.array([(x - w / 2, y - h / 2, x + w / 2, y + h / 2) for x, y, w, h in boxes]).reshape(-1, 4)
        tracks = tracker.update(Detections.from_arrays(xyxy, np.full(len(xyxy), 0.9), np.full(len(xyxy), PERSON)), t)
        return tracks.tracker_id[np.abs(tracks.xyxy[:, 1] - xyxy[0, 1]) < 1].tolist() if len(boxes) else []

    for k in range(10):
        cut = shrinking and k >= 7
        before = frame([(50 + 10 * k, 180 if cut else 200, 40, 60 if cut else 100)], k / 10)
    for k in range(10, 16):
        frame([], k / 10)
    frame([(150, 200, 40, back_height)], 1.6)
    return before, frame([(154, 200, 40, back_height)], 1.7)


def test_a_whole_box_found_again_much_taller_is_someone_else():
    # The walker's boxes were whole (alone, not shrinking): 1.4x taller 0.7 s later is someone
    # nearer or two people merged (PETS h180 75.3 s), not the walker: a new id. 1.2x: the walker.
    before, after = lost_and_found(140)
    assert after[0] > before[0]
    before, after = lost_and_found(120)
    assert after == before


@pytest.mark.parametrize("neighbour, shrinking", [((175, 265), False), (None, True)])
def test_a_partial_box_found_again_taller_keeps_its_id(neighbour, shrinking):
    # Lost while its box overlapped someone else's (175, 265: partly hidden, perhaps), or after
    # its boxes shrank: the walker comes back to a whole height, up to RECOVER_SIZE_RATIO taller.
    before, after = lost_and_found(140 if neighbour else 100, neighbour, shrinking)
    assert after == before


def hidden_stand(back_at: tuple[float, float]) -> tuple[list[int], list[int]]:
    """A person 100 px tall standing at (200, 200) for 1 s (10 fps), hidden 0.6 s, then someone
    at back_at; the ids before and on the frame they are seen (none for a new track: a track is
    reported from its second sighting)."""
    tracker = Tracker(TrackerConfig())
    before = [tracker.update(dets([(200, 200)], size=(40, 100)), k / 10).tracker_id.tolist() for k in range(10)]
    for k in range(10, 16):
        tracker.update(Detections.empty(), k / 10)
    return before[-1], tracker.update(dets([back_at], size=(40, 100)), 1.6).tracker_id.tolist()


def test_a_standing_person_is_looked_for_no_farther_than_a_walk():
    # 0.7 s after it was last seen, a standing person can have walked 1.5 heights a second at
    # most (105 px): someone 90 px away is them, someone 120 px away is somebody else.
    before, after = hidden_stand((290, 200))
    assert after == before
    before, after = hidden_stand((320, 200))
    assert after == []


def test_a_newcomer_beside_a_track_missed_this_frame_is_not_taken_for_it():
    # Recovery reaches little right after a miss (its height per second lost: 10 px here):
    # there the IoU stages decide, and someone appearing 30 px beyond the prediction is new.
    tracker = Tracker(TrackerConfig())
    for k in range(5):
        first = tracker.update(dets([(100 + 5 * k, 200)], size=(40, 100)), k / 10).tracker_id.tolist()
    newcomer = tracker.update(dets([(155, 200)], size=(40, 100)), 0.5)   # the walker is at 125
    assert len(newcomer) == 0                         # a new track, shown from its second sighting
    assert len(tracker) == 2 and first[0] in tracker._ids[:2]


def test_a_clock_stepped_back_does_not_keep_lost_tracks_alive():
    tracker = Tracker(TrackerConfig(max_coast_seconds=1.0))
    for k in range(3):
        tracker.update(dets([(100 + 5 * k, 100)]), 1000.0 + k / 10)
    tracker.coast(400.0)                                  # the wall clock went back ten minutes
    assert len(tracker) == 0


def test_prediction_follows_a_fast_object_whose_boxes_do_not_overlap_between_frames():
    # Speeds up to 18 px a frame, more than its 12 px width: only the prediction can follow it.
    steps = [6, 8, 10, 12, 14, 16] + [18] * 10
    xs = 50 + np.cumsum([0] + steps)
    tracker = Tracker(TrackerConfig())
    ids = [tracker.update(dets([(x, 100)], size=(12, 30)), k / 10).tracker_id.tolist()
           for k, x in enumerate(xs)]
    assert ids[1:] == [ids[1]] * (len(xs) - 1) and len(ids[1]) == 1


def test_class_is_the_confidence_weighted_vote_over_the_tracks_life():
    tracker = Tracker(TrackerConfig())
    classes = [CAR, CAR, TRUCK, CAR, TRUCK, TRUCK, TRUCK]
    scores = [0.9, 0.9, 0.6, 0.9, 0.6, 0.6, 0.6]           # car 2.7 against truck 2.4
    out = [tracker.update(dets([(100 + 3 * k, 100)], s, c), k / 10)
           for k, (c, s) in enumerate(zip(classes, scores))]
    assert [int(o.class_id[0]) for o in out[1:]] == [CAR] * 6
    out = tracker.update(dets([(130, 100)], 0.6, TRUCK), 0.8)
    assert int(out.class_id[0]) == TRUCK                    # now 3.0 against 2.7


def test_many_objects_grow_the_state_and_keep_distinct_ids():
    tracker = Tracker(TrackerConfig(), capacity=4)
    grid = [(30 + 40 * i, 40 + 80 * j) for i in range(15) for j in range(8)]
    for k in range(5):
        tracks = tracker.update(dets([(x + 2 * k, y) for x, y in grid]), k / 10)
    assert len(tracks) == len(grid) and len(set(tracks.tracker_id.tolist())) == len(grid)


def test_returned_boxes_are_the_detections_of_this_frame():
    tracker = Tracker(TrackerConfig())
    tracker.update(dets([(100, 100)], 0.8), 0.0)
    d = dets([(104, 101)], 0.7)
    out = tracker.update(d, 0.1)
    np.testing.assert_array_equal(out.xyxy, d.xyxy)
    assert out.confidence.tolist() == pytest.approx([0.7])


box_rows = st.tuples(st.floats(0, 600), st.floats(0, 400), st.floats(0, 80), st.floats(0, 160),
                    st.floats(0, 1), st.sampled_from([PERSON, CAR, TRUCK]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(box_rows, max_size=12), min_size=1, max_size=25),
       st.floats(0.01, 0.5))
def test_any_detection_stream_gives_unique_ids_on_boxes_of_that_frame(frames, step):
    """Random boxes (empty ones, duplicates, empty frames included) never break the invariants."""
    tracker, seen = Tracker(TrackerConfig()), set()
    for k, rows in enumerate(frames):
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h, _, _ in rows], np.float32).reshape(-1, 4)
        d = Detections.from_arrays(xyxy, [r[4] for r in rows], [r[5] for r in rows])
        out = tracker.update(d, k * step)
        ids = out.tracker_id.tolist()
        assert len(set(ids)) == len(ids)
        new = set(ids) - seen
        assert not (new and seen) or min(new) > max(seen)      # ids only count up
        seen |= new
        for box in out.xyxy:                                   # every track is on a box of this frame
            assert (xyxy == box).all(1).any()
        assert set(out.class_id.tolist()) <= {PERSON, CAR, TRUCK}
        assert len(tracker) <= sum(len(f) for f in frames[:k + 1])


def test_hot_loop_benchmark_runs_and_counts():
    import hotloop
    frames = hotloop.synthetic_scene(20, 60)
    wall, cpu, crossings = hotloop.run_once(frames)
    assert wall > 0 and cpu > 0 and crossings > 0


def test_assignment_benchmark_finds_contested_matrices_where_the_solvers_agree():
    import assignment
    cases = assignment.contested_matrices(50, 40)
    assert cases and all(allowed.shape == iou.shape for allowed, iou in cases)
    for allowed, iou in cases:
        rows, cols = solve_whole(allowed, iou)
        lap_rows, lap_cols = assignment.lap_rectangle(allowed, iou)
        assert len(rows) == len(lap_rows)
        assert iou[rows, cols].sum() == pytest.approx(iou[lap_rows, lap_cols].sum(), abs=1e-9)


@pytest.fixture(scope="module")
def pets_gt():
    return read_mot(need_shared(PETS_GT))


def test_tracker_and_counter_on_ground_truth_boxes_without_ids(pets_gt):
    """The counts from re-tracking the ground-truth boxes come close to the true crossings."""
    lines = (LineConfig("v240", (240, 0), (240, 360)), LineConfig("h200", (0, 200), (480, 200)),
             LineConfig("diagonal", (100, 50), (400, 330)))
    tracker, counter = Tracker(TrackerConfig()), LineCounter(lines, CountingConfig())
    for index, gt in pets_gt.frames():
        t = index / 10
        counter.update(tracker.update(Detections.from_arrays(gt.xyxy, gt.confidence, gt.class_id), t), t)
    true = sum(sum(crossing_totals(true_crossings(pets_gt, line.start, line.end)).values()) for line in lines)
    error = sum(abs(sum(counter.totals[line.name][d].values())
                    - crossing_totals(true_crossings(pets_gt, line.start, line.end))[d])
                for line in lines for d in ("in", "out"))
    assert 1 - error / true >= 0.95
