"""The one detection schedule: which frames go through the detector, for the daemon and
`counterd process` alike (Pipeline.step asks it about every frame).

Three policies make one decision per frame, checked in this order:

- motion gate (`gating.enabled`, counterd/motiongate.py): a picture that has not changed
  since the last detected frame rests the detector (STATIC), unless the little that changed is
  something no tracked object explains (a newcomer: motiongate.NewcomerLook);
- stride (`gating.stride`, counterd/stride.py): while every track moves slowly, the detector
  rests until the fastest one can have moved `stride_max_shift` of its size (STRIDE), unless
  something moved that no tracked object explains (a newcomer: motiongate.NewcomerLook);
- mosaic (`detector.mosaic`, counterd/detect/mosaic.py): a frame due for detection is held
  until the next due frame, so the two share one inference (HOLD), but only while every tracked
  object would stay large enough for the model at the mosaic's scale (Pipeline.mosaic_fits);
  only backends that can batch allow it (counterd/choices.py), and the config refuses it for
  the others.

Neither rest is taken while a tracked object is inside a line's band or will enter one before
the next detection could come, nor while the counter has a decision pending for a track
(Pipeline.watching_lines, LineCounter.undecided): a crossing is only ever decided on a detected
frame.

Rest semantics: a rested frame is not shown to the tracker at all. "Not detected" is not
"nothing there": a coast would count as a miss and end every track seen only once, so the
tracker simply sees a longer time step at the next detected frame.
"""
from __future__ import annotations

import enum
from collections.abc import Callable

import numpy as np

from counterd.config import Config, GatingConfig
from counterd.motiongate import MotionGate, NewcomerLook
from counterd.source import Frame
from counterd.stride import DetectionStride


class Decision(enum.Enum):
    DETECT = "detect"       # run the detector on this frame (and on a held one with it)
    HOLD = "hold"           # keep it for the next due frame to share one inference
    STATIC = "static"       # rested: the picture has not changed (motion gate)
    STRIDE = "stride"       # rested: no track can have moved far (stride)

    @property
    def rested(self) -> bool:
        return self in (Decision.STATIC, Decision.STRIDE)


class DetectionSchedule:
    def __init__(self, config: Config):
        self.mosaic = config.detector.mosaic       # fixed for the detector's life (a restart changes it)
        self.gate = MotionGate(config.gating)
        self.stride = self._stride_for(config.gating)
        self.look = self._look_for(config.gating)
        self._tracked = np.zeros((0, 4))      # boxes of the objects tracked at the last detection

    def decide(self, frame: Frame, holding: bool,
               watching: Callable[[float, float], bool] = lambda timestamp, horizon_s: False,
               pairable: Callable[[Frame], bool] = lambda frame: True) -> Decision:
        """What to do with this frame; `holding`: a frame is already held for a mosaic;
        `watching(timestamp, horizon_s)`: whether a tracked object is in a line's band or enters
        one within horizon_s (Pipeline.watching_lines). Neither rest is taken while it is: the
        gating never costs a count. `pairable(frame)`: whether this frame's objects stay large
        enough in a mosaic (Pipeline.mosaic_fits); a frame is only held for a partner if so. Neither
        rest is taken either when the frame shows motion no tracked object explains (a newcomer),
        looked for last since it costs a shrink of the frame."""
        t = frame.timestamp
        if self.gate.cfg.enabled and not self.gate.should_detect(frame.image, t) \
                and not watching(t, self.gate.cfg.max_skip_s) and not self.look.sees_newcomer(frame.image, self._tracked):
            return Decision.STATIC
        if self.stride is not None and not self.stride.should_detect(t) and not watching(t, self.stride.max_rest_s) \
                and not self.look.sees_newcomer(frame.image, self._tracked):
            return Decision.STRIDE
        if self.mosaic and not holding and pairable(frame):
            if self.stride is not None:
                self.stride.hold(frame.timestamp)
            return Decision.HOLD
        return Decision.DETECT

    def observe(self, tracks, frame: Frame, input_px: float | None) -> None:
        """The tracks of a detected frame: the newcomer look takes the frame as its reference
        (input_px: frame pixels per pixel of what the detector saw), and the stride sets when the
        next detection is due."""
        self.look.detected(frame.image, input_px)
        self._tracked = tracks.xyxy
        if self.stride is not None:
            self.stride.observe(tracks, frame.timestamp)

    def reconfigure(self, gating: GatingConfig) -> None:
        if gating != self.gate.cfg:
            if (gating.stride, gating.stride_max_shift, gating.stride_max_rest_s) != \
                    (self.gate.cfg.stride, self.gate.cfg.stride_max_shift, self.gate.cfg.stride_max_rest_s):
                self.stride = self._stride_for(gating)
            self.look = self._look_for(gating)
            self.gate.reconfigure(gating)

    @staticmethod
    def _stride_for(gating: GatingConfig) -> DetectionStride | None:
        return DetectionStride(gating.stride_max_shift, gating.stride_max_rest_s) if gating.stride else None

    @staticmethod
    def _look_for(gating: GatingConfig) -> NewcomerLook:
        return NewcomerLook(gating.pixel_delta, gating.stride_max_shift)
