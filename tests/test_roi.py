"""counterd/roi.py: the region the detector sees, and boxes mapped back from it."""
import numpy as np
import pytest

from counterd.config import ConfigError, config_from_dict
from counterd.detections import Detections
from counterd.pipeline import Pipeline
from counterd.roi import WARMUP_BOXES, RegionOfInterest
from counterd.source import Frame


def config(**detector):
    return config_from_dict({"detector": {"type": "motion", **detector},
                             "lines": [{"name": "door", "start": [300, 200], "end": [400, 200]}]}, "t")


def boxes(*xyxy):
    return Detections.from_arrays(np.array(xyxy, np.float32), np.ones(len(xyxy)), np.zeros(len(xyxy)))


def test_an_explicit_region_crops_and_maps_boxes_back():
    roi = RegionOfInterest(config(roi=[100, 50, 500, 350]))
    image = np.zeros((480, 640, 3), np.uint8)
    crop, region = roi.crop(image)
    assert region == (100, 50, 500, 350) and crop.shape == (300, 400, 3)
    found = roi.restore(boxes([10, 20, 40, 100]), region, 640, 480)
    assert found.xyxy.tolist() == [[110, 70, 140, 150]]


def test_boxes_cut_by_an_inner_crop_edge_are_dropped():
    """A box touching the crop's edge is a truncated object: its track coasts instead."""
    roi = RegionOfInterest(config(roi=[100, 0, 500, 350]))
    found = roi.restore(boxes([0, 20, 30, 100], [50, 20, 80, 100], [370, 20, 400, 100],  # left, inside, right
                              [50, 0, 80, 40],                                         # top: the frame's edge
                              [50, 300, 80, 350]), (100, 0, 500, 350), 640, 480)       # bottom edge cut
    assert found.xyxy[:, 0].tolist() == [150, 150]


def test_from_lines_learns_object_size_then_crops_around_the_band():
    roi = RegionOfInterest(config(roi_from_lines=True, roi_margin=1.0))
    assert roi.region(640, 480) is None                        # nothing learned yet: whole frame
    person = [330, 120, 350, 180]                              # 20 x 60, feet 20 px above the line
    for _ in range(WARMUP_BOXES):
        roi.restore(boxes(person, [0, 0, 10, 10]), None, 640, 480)   # the far-away box is not learned
    x1, y1, x2, y2 = roi.region(640, 480)
    # Lines' band box (298, 198)-(402, 202) (the 2 px band floor); 30 px (half a width + a width)
    # sideways; above: the body (60) + a height (60); below: a height.
    assert (x1, y1, x2, y2) == (268, 78, 432, 262)


def test_a_region_covering_most_of_the_frame_is_not_cropped():
    roi = RegionOfInterest(config(roi_from_lines=True, roi_margin=3.0))
    for _ in range(WARMUP_BOXES):
        roi.restore(boxes([300, 50, 400, 200]), None, 640, 480)
    assert roi.region(640, 480) is None


@pytest.mark.parametrize("bad", [[1, 2, 3], [100, 50, 50, 60], [-1, 0, 10, 10]])
def test_a_bad_region_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="detector.roi: must be"):
        config(roi=bad)


@pytest.mark.parametrize("region, counted", [([], {"inside": 1, "outside": 1}),
                                              ([200, 100, 500, 300], {"inside": 1, "outside": 0})])
def test_the_pipeline_detects_only_inside_the_region(region, counted):
    """The real motion detector; one block walks across a line inside the region, another across
    a line outside it: with the region set only the inside one is seen and counted."""
    cfg = config_from_dict({"detector": {"type": "motion", "roi": region},
                            "lines": [{"name": "inside", "start": [300, 120], "end": [300, 290]},
                                      {"name": "outside", "start": [100, 370], "end": [100, 470]}]}, "t")
    pipeline = Pipeline(cfg)
    for k in range(70):
        image = np.full((480, 640, 3), 60, np.uint8)
        image[150:230, 180 + 3 * k:210 + 3 * k] = 230     # inside the region
        image[380:460, 0 + 3 * k:30 + 3 * k] = 230        # below it
        pipeline.step(Frame(image, k / 10, k))
    pipeline.finish()
    totals = {line: sum(sum(c.values()) for c in dirs.values()) for line, dirs in pipeline.totals.items()}
    assert totals == counted


@pytest.mark.parametrize("region, input_px", [([], 2.0), ([0, 0, 320, 240], 1.0)])
def test_the_counter_learns_how_big_the_detectors_pixels_are_in_what_it_saw(tmp_path, region, input_px):
    """counting.hysteresis_input_px needs frame pixels per model pixel: a 640x480 frame in a
    320x320 model is 2 frame px each; its 320x240 region 1."""
    from test_detect_onnx import scripted_model, ultralytics_head

    model = scripted_model(tmp_path / "m.onnx", ultralytics_head([]), [1, 3, 320, 320])
    cfg = config_from_dict({"detector": {"model": model, "roi": region},
                            "lines": [{"name": "door", "start": [100, 0], "end": [100, 200]}]}, "t")
    pipeline = Pipeline(cfg)
    pipeline.step(Frame(np.zeros((480, 640, 3), np.uint8), 0.0, 0))
    assert pipeline.counter.input_px == input_px
