"""Appearance stitching (counterd/reid.py) on real PETS frames with the real OSNet model: a person
lost while crossing a line and picked up again under a new tracker id keeps the old id, so the
crossing counts; someone else appearing there does not; far from lines the model never runs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import PETS_GT, PETS_VIDEO, REID_MODEL, need_shared
from counterd.config import LineConfig, config_from_dict
from counterd.count import LineCounter
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.pipeline import Pipeline
from counterd.reid import Embedder, Stitcher, person_crops
from counterd.track import Tracker
from counterd.truth import read_mot

FPS = 10.0
WALKER, OTHER = 4, 1          # PETS gt tracks: one walks left alone over frames 662-681, another elsewhere
FIRST, LAST = 662, 681        # gt frame numbers (1 = the video's first frame)
SEEN_UNTIL, BACK_FROM = 669, 675   # the walker is missed by the detector in between (0.5 s)
OLD_ID, NEW_ID = 1, 7


@pytest.fixture(scope="module")
def scene():
    """(frames by gt frame number, the walker's gt box per frame, the other person's box at FIRST)."""
    gt = read_mot(need_shared(PETS_GT))
    capture = cv2.VideoCapture(str(need_shared(PETS_VIDEO)))
    capture.set(cv2.CAP_PROP_POS_FRAMES, FIRST - 1)
    frames = {}
    for number in range(FIRST, LAST + 1):
        ok, image = capture.read()
        assert ok, f"PETS frame {number} unreadable"
        frames[number] = image
    capture.release()
    walker = {int(f): box for f, box in zip(gt.frame[gt.track_id == WALKER], gt.xyxy[gt.track_id == WALKER])}
    other = gt.xyxy[(gt.track_id == OTHER) & (gt.frame == FIRST)][0]
    return frames, walker, other


@pytest.fixture(scope="module")
def embedder():
    return Embedder(str(need_shared(REID_MODEL)))


def tracker_output(box: np.ndarray, track_id: int) -> Detections:
    return Detections.from_arrays(box[None], [0.9], [0], [track_id])


def line_through_gap(walker: dict) -> LineConfig:
    """A vertical line the walker crosses while the detector misses them."""
    x = float((walker[SEEN_UNTIL][0] + walker[SEEN_UNTIL][2] + walker[BACK_FROM][0] + walker[BACK_FROM][2]) / 4)
    return LineConfig("gap", (x, 0.0), (x, 360.0))


def play(scene, embedder, lines, paste_other: bool = False):
    """Feed the walker as the tracker would report them (OLD_ID, a gap, then NEW_ID, or the id
    NEW_ID was handed over to: Tracker.take_over) through the stitcher into a LineCounter; returns
    (ids reported after the gap, events, ids handed over, the stitcher)."""
    frames, walker, other = scene
    config = config_from_dict({"lines": [{"name": line.name, "start": list(line.start), "end": list(line.end)}
                                         for line in lines]}, "test")
    counter = LineCounter(config.lines, config.counting)
    handed = []
    stitcher = Stitcher(config.tracker, embedder, counter.watching, lambda new, old: handed.append((new, old)))
    reported, events = [], []
    for number in range(FIRST, LAST + 1):
        t = (number - 1) / FPS
        image = frames[number]
        if number <= SEEN_UNTIL:
            tracks = tracker_output(walker[number], OLD_ID)
        elif number >= BACK_FROM:
            tracks = tracker_output(walker[number], dict(handed).get(NEW_ID, NEW_ID))
            if paste_other:       # someone else where the walker would be
                x1, y1, x2, y2 = np.round(walker[number]).astype(int)
                ox1, oy1, ox2, oy2 = np.round(other).astype(int)
                image = image.copy()
                image[y1:y2, x1:x2] = cv2.resize(frames[FIRST][oy1:oy2, ox1:ox2], (x2 - x1, y2 - y1))
        else:
            tracks = Detections.empty()
        tracks = stitcher.update(tracks, image, t)
        if number >= BACK_FROM:
            reported += tracks.tracker_id.tolist()
        events += counter.update(tracks, t, (480, 360))
    return reported, events, handed, stitcher


def test_a_person_picked_up_again_after_crossing_keeps_their_id_and_counts(scene, embedder):
    line = line_through_gap(scene[1])
    reported, events, handed, stitcher = play(scene, embedder, [line])
    assert handed == [(NEW_ID, OLD_ID)]
    assert set(reported) == {OLD_ID}
    assert [(e.line, e.direction, e.track_id) for e in events] == [("gap", "out", OLD_ID)]   # walking left
    assert 1 <= stitcher.embedder.crops_embedded <= 2      # the new crop and the lost one's, once


def test_without_stitching_the_crossing_between_two_ids_is_lost(scene):
    """The case the stitcher exists for: the same frames without it count nothing."""
    frames, walker, _ = scene
    line = line_through_gap(walker)
    config = config_from_dict({"lines": [{"name": "gap", "start": list(line.start), "end": list(line.end)}]}, "t")
    counter = LineCounter(config.lines, config.counting)
    events = []
    for number in [*range(FIRST, SEEN_UNTIL + 1), *range(BACK_FROM, LAST + 1)]:
        track_id = OLD_ID if number <= SEEN_UNTIL else NEW_ID
        events += counter.update(tracker_output(walker[number], track_id), (number - 1) / FPS, (480, 360))
    assert events == []


def test_someone_else_appearing_there_keeps_a_new_id(scene, embedder):
    line = line_through_gap(scene[1])
    reported, events, handed, _ = play(scene, embedder, [line], paste_other=True)
    assert handed == []
    assert set(reported) == {NEW_ID}
    assert events == []


def test_far_from_every_line_the_model_never_runs(scene):
    far = LineConfig("far", (0.0, 20.0), (480.0, 20.0))       # along the top, nobody near it
    embedder = Embedder(str(need_shared(REID_MODEL)))
    reported, _, handed, _ = play(scene, embedder, [far])
    assert embedder.crops_embedded == 0
    assert handed == [] and set(reported) == {NEW_ID}


def test_tracker_take_over_hands_the_id_on_and_drops_the_lost_track():
    config = config_from_dict({}, "t")
    tracker = Tracker(config.tracker)
    person = Detections.from_arrays([[100, 100, 130, 180]], [0.9], [0])
    tracker.update(person, 0.0)
    tracker.update(person, 0.1)
    elsewhere = Detections.from_arrays([[300, 100, 330, 180]], [0.9], [0])
    tracker.update(elsewhere, 0.2)               # the first track coasts; a second one starts
    tracker.update(elsewhere, 0.3)
    assert len(tracker) == 2
    old_id, new_id = 1, int(tracker.update(elsewhere, 0.4).tracker_id[0])
    tracker.take_over(new_id, old_id)
    assert len(tracker) == 1
    assert tracker.update(elsewhere, 0.5).tracker_id.tolist() == [old_id]


def test_a_missing_reid_model_is_a_clear_error(tmp_path):
    config = config_from_dict({"detector": {"type": "motion"},
                               "tracker": {"reid_model": str(tmp_path / "osnet.onnx")}}, "t")
    with pytest.raises(UserError, match="tracker.reid_model: .*osnet.onnx does not exist"):
        Pipeline(config)


def test_a_model_of_the_wrong_shape_is_a_clear_error():
    from conftest import SHARED_MODELS

    with pytest.raises(UserError, match=r"tracker.reid_model: .* takes input .*not \[N, 3, 256, 128\]"):
        Embedder(str(need_shared(SHARED_MODELS["yolo11n_int8_320"])))


def test_a_pipeline_keeps_the_reid_model_it_started_with_and_applies_the_thresholds():
    config = config_from_dict({"detector": {"type": "motion"}, "tracker": {"reid_model": str(need_shared(REID_MODEL))},
                               "lines": [{"name": "door", "start": [100, 0], "end": [100, 200]}]}, "t")
    pipeline = Pipeline(config)
    stitcher = pipeline.stitcher
    changed = config_from_dict({"detector": {"type": "motion"},
                                "tracker": {"reid_model": "", "reid_min_similarity": 0.8},
                                "lines": [{"name": "door", "start": [100, 0], "end": [100, 200]}]}, "t")
    pipeline.reconfigure(changed)
    assert pipeline.stitcher is stitcher and pipeline.config.tracker.reid_model == str(REID_MODEL)
    assert stitcher.cfg.reid_min_similarity == 0.8


async def test_reload_that_changes_the_reid_model_says_it_needs_a_restart(tmp_path, aiohttp_client):
    from counterd.config import load_config
    from counterd.daemon.service import DAEMON, make_daemon_app, reload

    path = tmp_path / "counterd.toml"
    text = ('[camera]\nsource = "rtsp://127.0.0.1:1/cam"\ntimezone = "UTC"\n[detector]\ntype = "motion"\n'
            '[api]\nanonymous_viewer = true\n[[lines]]\nname = "door"\nstart = [100, 0]\nend = [100, 200]\n')
    path.write_text(text)
    client = await aiohttp_client(make_daemon_app(load_config(path)))
    daemon = client.app[DAEMON]
    path.write_text(text + f'[tracker]\nreid_model = "{need_shared(REID_MODEL)}"\nreid_reach = 2.0\n')
    assert await reload(client.app)
    assert daemon.hub.status["pipeline"].startswith("needs restart: tracker.reid_model changed")
    assert daemon.effective_config.tracker.reid_reach == 2.0


def test_crops_come_from_grey_and_bgra_frames_too():
    """IR cameras send grey frames at night; the detector takes them, so must the stitcher."""
    grey = np.zeros((360, 480), np.uint8)
    grey[100:200, 50:100] = 200
    bgra = np.zeros((360, 480, 4), np.uint8)
    for image in (grey, bgra):
        crops = person_crops(image, np.array([[50, 100, 100, 200], [-5, 300, 20, 400]], np.float32))
        assert crops.shape == (2, 256, 128, 3) and crops.dtype == np.uint8
    assert person_crops(grey, np.array([[50, 100, 100, 200]], np.float32)).min() == 200
