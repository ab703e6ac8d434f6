"""Count accuracy on every scene with ground truth, for every shared model and the motion detector.

    python bench/accuracy.py [--scenes pets,tud,people,car,highway] [--detectors yolox_nano,motion]
                             [--threads 1] [--model NAME=FILE ...] [--option SECTION.KEY=VALUE ...]
                             [--every N]

Scenes (../shared/data, see bench/truth/README.md):
- pets: PETS09-S2L1, 12 lines; true crossings from its MOT gt by the rule in ../shared/data/README.md.
- tud: TUD-Stadtmitte (eye-level shopping street), 7 vertical lines every 80 px across the
  pavement; true crossings from its MOT gt by the same rule.
- people: one-by-one-person-detection.mp4, entry and exit lines; bench/truth CSV made by hand.
- car: car_traffic_small.mp4, the issue's two lines; bench/truth CSV made by hand.
- highway: highway_cctv_video2.avi, one line across each carriageway; bench/truth CSV made by hand.

Each scene is counted in one pass per detector, every line at once. Per scene: accuracy = 1 -
sum|counted - true| / sum(true) over (line, class, direction), per-class accuracy, wrong-direction
counts (a counted crossing that matches no true crossing its way within 2 s but lies that close
to one the other way; share of true crossings), and frames per second (faster than the clip's
frame rate = faster than real time). `--every N` analyses only every Nth frame of each clip, as a
box that cannot keep up with its camera drops frames (the clip's own timestamps kept).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from counterd.commands.validate import count_source  # noqa: E402
from counterd.source import open_source  # noqa: E402
from counterd.config import LineConfig, config_from_dict  # noqa: E402
from counterd.truth import Counted, Truth, read_crossings_csv, read_mot, score, truth_from_mot  # noqa: E402

SHARED = Path(os.environ.get("COUNTERD_SHARED", BENCH.parent.parent / "shared"))
DATA, TRUTH = SHARED / "data", BENCH / "truth"
PERSON_ONLY = ("person",)
TRAFFIC_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")

# PETS (480x360): vertical, horizontal, diagonal, a short segment, and lines near the frame's edges.
# Nearer the right edge than x = 440 the ground truth is incomplete: its tracks start and end
# 10-40 px inside the picture, where a detector already sees people entering, so a line there
# measures the annotation rather than the counter.
PETS_LINES = {
    "v120": ((120, 0), (120, 360)),
    "v240": ((240, 0), (240, 360)),
    "v360": ((360, 0), (360, 360)),
    "v440_right_edge": ((440, 0), (440, 360)),
    "v20_left_edge": ((20, 0), (20, 360)),
    "h330_bottom_edge": ((0, 330), (480, 330)),
    "h130": ((0, 130), (480, 130)),
    "h180": ((0, 180), (480, 180)),
    "h250": ((0, 250), (480, 250)),
    "diagonal": ((0, 0), (480, 360)),
    "antidiagonal": ((0, 360), (480, 0)),
    "segment": ((150, 150), (330, 150)),
}
# TUD-Stadtmitte (640x480): people walk along the shop fronts, feet at y 230-330; a vertical line
# every 80 px across the pavement, from the shop fronts (y 150) to the cobbles (y 400).
TUD_LINES = {f"v{x}": ((x, 150), (x, 400)) for x in range(80, 640, 80)}


@dataclass(frozen=True)
class Scene:
    name: str
    video: Path
    classes: tuple[str, ...]
    lines: tuple[LineConfig, ...]
    truth: Truth


def _lines(table: dict) -> tuple[LineConfig, ...]:
    return tuple(LineConfig(name, a, b) for name, (a, b) in table.items())


def _mot_scene(name: str, video: Path, gt: Path, lines: dict, fps: float) -> Scene:
    lines = _lines(lines)
    return Scene(name, video, PERSON_ONLY, lines, truth_from_mot(read_mot(gt), lines, fps))


def _csv_scene(name: str, video: Path, csv: Path, classes: tuple[str, ...]) -> Scene:
    truth = read_crossings_csv(csv)
    return Scene(name, video, classes, truth.lines, truth)


SCENES = {
    "pets": lambda: _mot_scene("pets", DATA / "pets09_s2l1" / "vtest_480x360.avi",
                               DATA / "pets09_s2l1" / "gt_480x360.txt", PETS_LINES, 10.0),
    "tud": lambda: _mot_scene("tud", DATA / "tud_stadtmitte" / "tud_stadtmitte_640x480.mp4",
                              DATA / "tud_stadtmitte" / "gt_640x480.txt", TUD_LINES, 25.0),
    "people": lambda: _csv_scene("people", DATA / "people" / "one-by-one-person-detection.mp4",
                                 TRUTH / "one-by-one-person-detection.csv", PERSON_ONLY),
    "car": lambda: _csv_scene("car", DATA / "traffic" / "car_traffic_small.mp4",
                              TRUTH / "car_traffic_small.csv", TRAFFIC_CLASSES),
    "highway": lambda: _csv_scene("highway", DATA / "traffic" / "highway_cctv_video2.avi",
                                  TRUTH / "highway_cctv_video2.csv", TRAFFIC_CLASSES),
}
DETECTORS = {
    "yolov8n_int8_640": {"type": "onnx", "model": str(SHARED / "models" / "yolov8n_int8_640.onnx")},
    "yolo11n_int8_320": {"type": "onnx", "model": str(SHARED / "models" / "yolo11n_int8_320.onnx")},
    "yolox_nano": {"type": "onnx", "model": str(SHARED / "models" / "yolox_nano.onnx")},
    "motion": {"type": "motion"},
}


def overrides(settings: list[str]) -> dict:
    """--set section.key=value (value in TOML syntax) as a nested dict."""
    merged: dict = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"--set {item!r}: expected section.key=value")
        section, name = key.rsplit(".", 1)
        node = merged
        for part in section.split("."):
            node = node.setdefault(part, {})
        node[name] = tomllib.loads(f"v = {value}")["v"]
    return merged


class EveryNth:
    """A source's frames thinned to every nth (its width, height and timestamps kept)."""

    def __init__(self, source, n: int):
        self.source, self.n = source, n
        self.width, self.height = source.width, source.height

    def __iter__(self):
        return (frame for frame in self.source if frame.index % self.n == 0)


def count_scene(scene: Scene, detector: dict, threads: int, extra: dict, every: int = 1):
    detector_section = {**detector, "classes": list(scene.classes), "threads": threads,
                        **extra.get("detector", {})}
    config = config_from_dict({
        **extra, "detector": detector_section,
        "lines": [{"name": line.name, "start": list(line.start), "end": list(line.end)} for line in scene.lines],
    }, "bench/accuracy.py")
    with open_source(str(scene.video)) as source:
        fps = source.fps
        events, frames, seconds, detected = count_source(config, EveryNth(source, every) if every > 1 else source)
    print(f"  {scene.name}: {detected} of {frames} frames analysed went through the detector"
          + (f" (every {every}th frame of the clip)" if every > 1 else ""), file=sys.stderr)
    counted = [Counted(e.timestamp, e.line, e.direction, e.class_name) for e in events]
    return score(scene.truth.crossings, counted, classes=scene.classes), frames / seconds, fps


def print_scene(scene: Scene, results: dict) -> None:
    names = list(results)
    first = next(iter(results.values()))[0]
    print(f"\n## {scene.name}: {scene.video.name}")
    header = f"{'line':18} {'class':10} {'true in/out':>11}" + "".join(f" {n[:16]:>16}" for n in names)
    print(header)
    print("-" * len(header))
    for line, cls in sorted({(k[0], k[1]) for name in names for k in results[name][0].keys}):
        true = first.true
        row = f"{line:18} {cls:10} {true[line, cls, 'in']:>5}/{true[line, cls, 'out']:<5}"
        for name in names:
            c = results[name][0].counted
            row += f" {c[line, cls, 'in']:>8}/{c[line, cls, 'out']:<7}"
        print(row)
    print("-" * len(header))
    print(f"{'accuracy':40}" + "".join(f" {results[n][0].accuracy:>16.3f}" for n in names))
    for cls in sorted(first.by_class()):
        print(f"{'  ' + cls:40}" + "".join(f" {results[n][0].by_class().get(cls, 0.0):>16.3f}" for n in names))
    print(f"{'wrong direction (share of true)':40}" + "".join(
        f" {results[n][0].wrong_direction:>6} ({100 * results[n][0].wrong_direction_share:4.1f}%)" for n in names))
    print(f"{'missed / spurious':40}" + "".join(
        f" {results[n][0].missed:>7}/{results[n][0].spurious:<8}" for n in names))
    clip_fps = next(iter(results.values()))[2]
    print(f"{f'fps (clip is {clip_fps:.0f})':40}" + "".join(f" {results[n][1]:>16.1f}" for n in names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default=",".join(SCENES), help="comma-separated subset")
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                        help="also measure this model file (e.g. one from `counterd model optimize`), "
                             "added to --detectors; repeatable")
    parser.add_argument("--option", "--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a config setting for every run, VALUE in TOML (e.g. gating.stride=true, "
                             "counting.reverse_hold_seconds=0); repeatable")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="analyse only every Nth frame (a box that drops frames); default 1")
    args = parser.parse_args()
    if args.every < 1:
        parser.error("--every must be at least 1")
    for spec in args.model:
        name, _, path = spec.partition("=")
        DETECTORS[name] = {"type": "onnx", "model": path}
        args.detectors += f",{name}"
    if not (DATA / "pets09_s2l1").exists():
        print(f"needs {DATA} (../shared beside the repo)", file=sys.stderr)
        return 2
    extra = overrides(args.option)
    summary = []
    for scene_name in args.scenes.split(","):
        scene = SCENES[scene_name]()
        results = {}
        for name in args.detectors.split(","):
            started = time.perf_counter()
            results[name] = count_scene(scene, DETECTORS[name], args.threads, extra, args.every)
            print(f"{scene_name} {name}: accuracy {results[name][0].accuracy:.3f}, "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        print_scene(scene, results)
        summary += [f"acc_{scene_name}_{n}={r[0].accuracy:.3f} wrongdir_{scene_name}_{n}={r[0].wrong_direction}"
                    f" fps_{scene_name}_{n}={r[1]:.1f}" for n, r in results.items()]
    print("\nRESULT " + " ".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
