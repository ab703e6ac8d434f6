"""Shared fixtures. Material from ../shared (videos, models, specs) is never copied into the repo:
tests that need it skip with a message when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COUNTERD_SHARED", REPO.parent / "shared"))
PETS_VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"
PETS_GT = SHARED / "data" / "pets09_s2l1" / "gt_480x360.txt"
SHARED_MODELS = {
    "yolov8n_int8_640": SHARED / "models" / "yolov8n_int8_640.onnx",
    "yolo11n_int8_320": SHARED / "models" / "yolo11n_int8_320.onnx",
    "yolox_nano": SHARED / "models" / "yolox_nano.onnx",
}
REID_MODEL = SHARED / "models" / "osnet_x0_25_msmt17.onnx"


def need_shared(path: Path) -> Path:
    """Skip the calling test unless a file from ../shared is present."""
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared material, not in the repo)")
    return path


@pytest.fixture
def pets_video() -> Path:
    return need_shared(PETS_VIDEO)
