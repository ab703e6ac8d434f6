"""Names that the config, the command line, the API and the pipeline choose from, defined once.

Light on purpose (no numpy, no backend imports): counterd.config validates against it, so
`counterd check-config` stays quick.
"""
from __future__ import annotations

from dataclasses import dataclass

# The point of each box that crosses lines (counting.anchor, setparams Counter.Anchor);
# counterd/detections.py maps each to its weights on a box.
ANCHORS: tuple[str, ...] = ("bottom-center", "center", "top-center")

# HTTP API roles (users' role, `counterd passwd --role`), each allowed what those below it are.
ROLES: dict[str, int] = {"viewer": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Backend:
    """A detector backend (detector.type): where its class lives, imported only when chosen,
    and whether it can batch frames into one inference (detector.mosaic needs that)."""
    target: str             # "module:Class"
    can_batch: bool


BACKENDS: dict[str, Backend] = {
    "onnx": Backend("counterd.detect.onnx:OnnxDetector", can_batch=True),
    # The same detector on OpenVINO's runtime (counterd/detect/engines.py; counterd[openvino]).
    "openvino": Backend("counterd.detect.onnx:OnnxDetector", can_batch=True),
    "ultralytics": Backend("counterd.detect.ultralytics:UltralyticsDetector", can_batch=False),
    "motion": Backend("counterd.detect.motion:MotionDetector", can_batch=False),
}
