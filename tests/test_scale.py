"""Counts do not depend on the picture's resolution: the same scene upscaled 2x, 4x and to
1920x1080 (lines scaled with it) counts within 1 of the original on every line, with every frame
detected and with the detection stride (which rests the detector for a time that depends on how
far each box moved in pixels, and must never rest where the counter decides something)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import PETS_VIDEO, SHARED_MODELS, need_shared
from counterd.config import config_from_dict
from counterd.pipeline import Pipeline
from counterd.source import Frame

FRAMES = 400          # of the 795: 40 s of PETS, enough crossings on every line, a modest runtime
FPS = 10.0
LINES = {             # 480x360 pixels: vertical, horizontal, diagonal, a short segment
    "v240": ((240, 0), (240, 360)),
    "v360": ((360, 0), (360, 360)),
    "h180": ((0, 180), (480, 180)),
    "diagonal": ((0, 0), (480, 360)),
    "segment": ((150, 150), (330, 150)),
}
SCALES = {"2x": (2, 2), "4x": (4, 4), "1920x1080": (4, 3)}


@pytest.fixture(scope="module")
def pets_frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(need_shared(PETS_VIDEO)))
    frames = []
    while len(frames) < FRAMES:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def count(frames: list[np.ndarray], sx: float, sy: float, gating: dict | None = None) -> dict[str, tuple[int, int]]:
    """Totals per line of the frames scaled by (sx, sy); gating: [gating] settings (the defaults if None)."""
    model = need_shared(SHARED_MODELS["yolox_nano"])
    lines = [{"name": name, "start": [a[0] * sx, a[1] * sy], "end": [b[0] * sx, b[1] * sy]}
             for name, (a, b) in LINES.items()]
    pipeline = Pipeline(config_from_dict({"detector": {"model": str(model), "classes": ["person"]},
                                          "gating": gating or {}, "lines": lines}, "test"))
    height, width = frames[0].shape[:2]
    size = (round(width * sx), round(height * sy))
    for i, image in enumerate(frames):
        if (sx, sy) != (1, 1):
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        pipeline.step(Frame(image, i / FPS, i))
    pipeline.finish()
    pipeline.close()
    return {line: (sum(t["in"].values()), sum(t["out"].values())) for line, t in pipeline.totals.items()}


@pytest.mark.parametrize("gating", [{"stride": False}, {"stride": True}], ids=["every-frame", "stride"])
def test_counts_hold_at_every_resolution(pets_frames, gating):
    original = count(pets_frames, 1, 1, gating)
    assert sum(a + b for a, b in original.values()) >= 40     # the lines are crossed: the test bites
    for name, (sx, sy) in SCALES.items():
        scaled = count(pets_frames, sx, sy, gating)
        for line, (ins, outs) in original.items():
            assert abs(scaled[line][0] - ins) <= 1 and abs(scaled[line][1] - outs) <= 1, (name, line, original, scaled)
