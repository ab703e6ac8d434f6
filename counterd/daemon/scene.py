"""The demo's camera: a synthetic scene of person-sized shapes walking across a floor.

People walk left-to-right and right-to-left at 50-160 px/s, alone or two side by side, through a
640x360 view with a counting line down the middle. It behaves like a capture (read/get/release),
paced at `fps` in real time, so the demo runs the daemon's real path: capture thread, motion
detector, tracker, counter, store, API. `crossings_until(t)` is the ground truth the tests use.
"""
from __future__ import annotations

import bisect
import math
import random
import time
from dataclasses import dataclass

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 10.0
LINE_X = WIDTH // 2                      # the demo's line: (320, 20) -> (320, 340), "in" = rightwards
BODY_W, BODY_H = 28, 80
LANES = (150, 215, 280, 345)             # feet rows; side-by-side walkers use lanes 2 apart
MIN_SPEED, MAX_SPEED = 50.0, 160.0       # px/s
LONGEST_WALK_S = (WIDTH + 2 * BODY_W) / MIN_SPEED


@dataclass(frozen=True)
class Walker:
    start: float        # seconds when the walker's feet are at the entry edge
    speed: float        # px/s, > 0 rightwards
    feet_y: int
    shade: int          # grey level of the body

    def x(self, t: float) -> float:
        entry = -BODY_W if self.speed > 0 else WIDTH + BODY_W
        return entry + self.speed * (t - self.start)

    def crosses_at(self, x: float) -> float:
        entry = -BODY_W if self.speed > 0 else WIDTH + BODY_W
        return self.start + (x - entry) / self.speed

    def gone_at(self) -> float:
        return self.start + (WIDTH + 2 * BODY_W) / abs(self.speed)


def schedule(seconds: float, seed: int = 7) -> list[Walker]:
    """Walkers entering in the first `seconds`: a group every 1.5-4 s, one or two side by side."""
    rng = random.Random(seed)
    walkers, t = [], 1.0     # the first second is empty floor: the background model learns it
    while t < seconds:
        rightwards = rng.random() < 0.5
        speed = rng.uniform(MIN_SPEED, MAX_SPEED) * (1 if rightwards else -1)
        lane = rng.randrange(len(LANES) - 2)
        pair = rng.random() < 0.35
        for k in range(2 if pair else 1):
            walkers.append(Walker(t, speed, LANES[lane + 2 * k], rng.randrange(20, 90)))
        t += rng.uniform(1.5, 4.0)
    return walkers


def floor() -> np.ndarray:
    """A static, lightly textured floor (a flat image would be unlike any camera)."""
    rng = np.random.default_rng(3)
    texture = rng.integers(-6, 7, (HEIGHT, WIDTH, 1), dtype=np.int16)
    ramp = np.linspace(170, 205, WIDTH, dtype=np.float32)[None, :, None]
    image = np.clip(ramp + texture, 0, 255).astype(np.uint8)
    return np.repeat(image, 3, axis=2)


class DemoScene:
    """A capture of the synthetic scene. `realtime=False` renders as fast as read() is called."""

    def __init__(self, *, fps: float = FPS, seed: int = 7, realtime: bool = True, horizon_s: float = 86400.0):
        self.fps = fps
        self.realtime = realtime
        self.horizon_s = horizon_s
        self.walkers = schedule(horizon_s, seed)
        self._starts = [w.start for w in self.walkers]
        self._floor = floor()
        self._index = 0
        self._started = time.monotonic()

    def read(self) -> tuple[bool, np.ndarray]:
        t = self._index / self.fps
        if self.realtime:
            delay = self._started + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._index += 1
        return True, self.render(t)

    def render(self, t: float) -> np.ndarray:
        t %= self.horizon_s          # a demo left running for longer than the horizon starts over
        image = self._floor.copy()
        for walker in self._visible(t):
            x = walker.x(t)
            # a stride: the body bobs a little as it walks
            bob = int(3 * math.sin(2 * math.pi * 1.8 * (t - walker.start)))
            top = walker.feet_y - BODY_H + bob
            left = int(round(x - BODY_W / 2))
            cv2.rectangle(image, (left + 3, top + 18), (left + BODY_W - 3, walker.feet_y), (walker.shade,) * 3, -1)
            cv2.circle(image, (left + BODY_W // 2, top + 9), 9, (walker.shade + 30,) * 3, -1)
        return image

    def _visible(self, t: float):
        # Walkers are in start order and none takes longer than LONGEST_WALK_S to cross.
        first = bisect.bisect_left(self._starts, t - LONGEST_WALK_S)
        last = bisect.bisect_right(self._starts, t)
        return (w for w in self.walkers[first:last] if t <= w.gone_at())

    def crossings_until(self, t: float, x: float = LINE_X) -> dict[str, int]:
        """How many walkers' feet passed `x` by time t: 'in' rightwards, 'out' leftwards."""
        done = [w for w in self.walkers if w.crosses_at(x) <= t]
        return {"in": sum(w.speed > 0 for w in done), "out": sum(w.speed < 0 for w in done)}

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: WIDTH,
                cv2.CAP_PROP_FRAME_HEIGHT: HEIGHT}.get(prop, 0.0)

    def release(self) -> None:
        pass
