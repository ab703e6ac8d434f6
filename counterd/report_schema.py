"""The central service's report format (../shared/spec/central-service.md): columns, the
default mapping from COCO detector classes, and the warning codes counterd writes.

A contract of its own: counterd.config validates [upload] against it and counterd.upload writes
it, and it imports neither, so the two do not import each other."""
from __future__ import annotations

# Count columns per schema, in the contract's order. The service picks the schema from the
# first row's model_name and matches columns by name. The names are the service's; what counterd
# puts in them is different from the service's own engine (objects visible in one still every
# 30 min or so): crossings of upload.lines during the whole hour (README: Hourly reports).
COUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "yolo": ("car", "pedestrian", "cyclist", "motorcycle", "bus", "lorry", "van", "taxi"),
    "tf2": ("car", "person", "bicycle", "motorcycle", "bus", "truck"),
}

# Detector class -> report column when upload.class_map is empty. van and taxi are not COCO
# classes, so a COCO detector reports them as 0.
DEFAULT_CLASS_MAP: dict[str, tuple[tuple[str, str], ...]] = {
    "yolo": (("car", "car"), ("person", "pedestrian"), ("bicycle", "cyclist"),
             ("motorcycle", "motorcycle"), ("bus", "bus"), ("truck", "lorry")),
    "tf2": (("car", "car"), ("person", "person"), ("bicycle", "bicycle"),
            ("motorcycle", "motorcycle"), ("bus", "bus"), ("truck", "truck")),
}

# `warnings` column. The service stores camera_ok = not bool(warnings), so any non-zero code
# marks the hour as not trustworthy.
WARNING_OK = 0            # the whole hour was analysed (at least FULL_COVERAGE of it)
WARNING_PARTIAL = 1       # part of the hour was analysed: counts are a lower bound
WARNING_NO_COVERAGE = 2   # nothing was analysed: the zeros mean "unknown", not "nobody"

# Short gaps (a restart, a reconnect) should not flag an hour: 99% is 36 s missing.
FULL_COVERAGE = 0.99

CAMERA_REF_PATTERN = r"[a-z0-9_-]+"


def header(model_name: str) -> tuple[str, ...]:
    return ("image_proc", "image_capt", "camera_ref", "model_name", *COUNT_COLUMNS[model_name], "warnings")
