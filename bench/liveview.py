"""What the console's live view costs: the worker's hand-over per analysed frame (on the hot path)
against the JPEG encoding it defers to a request (at most once a second, in a thread).

    .venv/bin/python bench/liveview.py [--frames 2000]

Prints one line per frame size: hand-over microseconds per frame (LiveView.update with a typical
handful of tracks) and JPEG encode milliseconds per picture, with the ratio.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from counterd.daemon.liveview import LiveView, View, encode
from counterd.detections import Detections

SIZES = ((640, 360), (1280, 720), (1920, 1080))


def camera_like(width: int, height: int) -> np.ndarray:
    """A textured gradient with a few dark bodies: compresses like a real scene, not like noise."""
    rng = np.random.default_rng(1)
    ramp = np.linspace(60, 200, width, dtype=np.float32)[None, :, None]
    image = np.clip(ramp + rng.normal(0, 8, (height, width, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    for x in range(width // 8, width, width // 5):
        image[height // 3: height // 3 + height // 4, x: x + width // 40] = 30
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    tracks = Detections.from_arrays(np.tile([100, 100, 140, 220], (6, 1)), np.full(6, 0.8), np.zeros(6),
                                    np.arange(6))
    print(f"load average {os.getloadavg()[0]:.2f}")
    for width, height in SIZES:
        image = camera_like(width, height)
        view = LiveView()
        for i in range(100):                # warm-up: first calls pay for imports and caches
            view.update(image, tracks, float(i))
        t0 = time.perf_counter()
        for i in range(args.frames):
            view.update(image, tracks, float(i))
        handover_us = (time.perf_counter() - t0) / args.frames * 1e6
        times = []
        for i in range(20):
            t0 = time.perf_counter()
            picture = encode(View(i, 0.0, image, tracks))
            times.append(time.perf_counter() - t0)
        encode_ms = statistics.median(times) * 1000
        print(f"RESULT {width}x{height}: hand-over {handover_us:.1f} us/frame, JPEG encode {encode_ms:.1f} ms "
              f"({len(picture.jpeg) // 1024} KiB), encode / hand-over = {encode_ms * 1000 / handover_us:.0f}x")


if __name__ == "__main__":
    main()
