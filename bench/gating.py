"""Motion gating's effect: detector calls and time saved, and whether counts change.

    .venv/bin/python bench/gating.py [--detector onnx|motion] [--model FILE]

Each clip (decoding included) runs through the daemon's per-frame path (Pipeline.step, whose schedule runs the motion gate)
twice, gating off and on, and prints a Markdown table for bench/RESULTS.md. Clips: the demo's
synthetic scene (quiet floor between walkers), ../shared people and PETS videos.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from counterd.config import config_from_dict
from counterd.daemon import scene
from counterd.pipeline import Pipeline
from counterd.source import Frame, open_source

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COUNTERD_SHARED", REPO.parent / "shared"))


def clips() -> list[tuple[str, callable, tuple]]:
    """(name, frames factory, line) for each clip available here."""
    def demo():
        world = scene.DemoScene(realtime=False, horizon_s=70)
        for i in range(600):
            yield Frame(world.read()[1], i / world.fps, i)

    def video(path):
        def frames():
            with open_source(str(path)) as source:
                yield from source
        return frames

    out = [("demo scene, 60 s", demo, ((scene.LINE_X, 20), (scene.LINE_X, scene.HEIGHT - 10)))]
    people = SHARED / "data" / "people" / "one-by-one-person-detection.mp4"
    pets = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"
    if people.exists():
        out.append((people.name, video(people), None))
    if pets.exists():
        out.append((pets.name, video(pets), ((240, 0), (240, 360))))
    return out


def run(frames, config, gated: bool) -> tuple[int, int, float, int]:
    """(frames, frames detected, CPU seconds, crossings). CPU time, not wall time: the boxes this
    runs on are shared, and wall time swings by tens of percent between runs."""
    cfg = config_from_dict({**config, "gating": {"enabled": gated}}, "<bench>")
    pipeline = Pipeline(cfg)
    n = detected = 0
    started = time.process_time()
    for frame in frames():
        n += 1
        pipeline.step(frame)            # the pipeline's schedule gates (counterd/schedule.py)
        detected += not pipeline.last_decision.rested
    pipeline.finish()
    seconds = time.process_time() - started
    crossings = sum(sum(by_class.values()) for line in pipeline.totals.values() for by_class in line.values())
    pipeline.close()
    return n, detected, seconds, crossings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", choices=("onnx", "motion"), default="onnx")
    ap.add_argument("--model", default=str(SHARED / "models" / "yolox_nano.onnx"))
    args = ap.parse_args()
    detector = {"type": args.detector, **({"model": args.model} if args.detector == "onnx" else {})}
    print(f"detector {args.detector}" + (f" ({Path(args.model).name})" if args.detector == "onnx" else "")
          + ", gating defaults (width 64, pixel_delta 12, min_changed 0.002, max_skip_s 0.5)\n")
    print("| clip | frames | detected (gated) | CPU ms/frame off | CPU ms/frame on | CPU saved | crossings off | crossings on |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, frames, line in clips():
        sample = next(iter(frames()))
        h, w = sample.image.shape[:2]
        start, end = line or ((w / 2, 0), (w / 2, h))
        config = {"detector": detector, "lines": [{"name": "l", "start": list(start), "end": list(end)}]}
        n, _, off_s, off_count = run(frames, config, gated=False)
        _, detected, on_s, on_count = run(frames, config, gated=True)
        print(f"| {name} | {n} | {detected} ({100 * detected / n:.0f} %) | {1000 * off_s / n:.1f} | "
              f"{1000 * on_s / n:.1f} | {100 * (1 - on_s / off_s):.0f} % | {off_count} | {on_count} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
