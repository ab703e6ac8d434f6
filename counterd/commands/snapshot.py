"""`counterd snapshot --config FILE --out frame.jpg`: one frame from the configured camera, without
the daemon, to draw lines on a laptop (the daemon's console does the same live at /).

A live camera's first frames are often grey or half-decoded while the stream settles, so for
live sources a few frames are read and the last one kept. `--lines` draws the configured lines
and their `in` sides on the picture. The file is written atomically.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from counterd.config import Config, load_config
from counterd.errors import UserError
from counterd.source import EndOfStream, SourceError, is_live, open_source
from counterd.durable import write_atomically

SETTLE_FRAMES = 5            # live sources: frames read before the one kept


def register(subparsers) -> None:
    p = subparsers.add_parser("snapshot", help="save one frame from the configured camera as JPEG",
                              description="Grab one frame from camera.source (no daemon needed) and save it as "
                                          "JPEG, to place lines on it in frame pixels; --lines draws the "
                                          "configured ones.")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML config file (camera.source)")
    p.add_argument("--out", required=True, metavar="FILE", help="JPEG file to write")
    p.add_argument("--lines", action="store_true", help="draw the configured lines on the picture")
    p.set_defaults(func=run)


def grab_frame(config: Config) -> np.ndarray:
    """One settled frame from camera.source; raises SourceError naming what went wrong."""
    cfg, spec = config.source, config.camera.source
    source = open_source(spec, open_timeout_s=cfg.open_timeout_s, read_timeout_s=cfg.read_timeout_s,
                         rtsp_transport=cfg.rtsp_transport)
    try:
        wanted = SETTLE_FRAMES if is_live(spec) else 1
        image, deadline = None, time.monotonic() + cfg.open_timeout_s + cfg.read_timeout_s
        while wanted and time.monotonic() < deadline:
            try:
                frame = source.read(timeout=max(0.1, deadline - time.monotonic()))
            except EndOfStream as exc:
                if image is not None:
                    break
                raise SourceError(f"{source.name}: no frame ({exc})") from None
            if frame is not None:
                image, wanted = frame.image, wanted - 1
        if image is None:
            raise SourceError(f"{source.name}: no frame within {cfg.open_timeout_s + cfg.read_timeout_s:g} s")
        return image
    finally:
        source.close()


def draw_lines(image: np.ndarray, config: Config) -> np.ndarray:
    """The lines, their names and an arrow to each line's `in` side (as the console draws them)."""
    out = image.copy()
    for line in config.lines:
        a, b = np.array(line.start, float), np.array(line.end, float)
        d = b - a
        normal = np.array([d[1], -d[0]]) / max(np.hypot(*d), 1e-9) * (-1 if line.invert else 1)
        mid = (a + b) / 2
        tip = mid + normal * 30
        cv2.line(out, tuple(map(int, a)), tuple(map(int, b)), (0, 176, 255), 2, cv2.LINE_AA)
        cv2.arrowedLine(out, tuple(map(int, mid)), tuple(map(int, tip)), (0, 176, 255), 2, cv2.LINE_AA)
        cv2.putText(out, "in", tuple(map(int, tip + normal * 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 176, 255), 1, cv2.LINE_AA)
        cv2.putText(out, line.name, (int(a[0]) + 6, max(16, int(a[1]) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 176, 255), 2, cv2.LINE_AA)
    return out


def run(args) -> int:
    config = load_config(args.config)
    if not config.camera.source:
        raise UserError(f"{args.config}: camera.source: no video source configured")
    image = grab_frame(config)
    if args.lines:
        image = draw_lines(image, config)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise UserError("could not encode the frame as JPEG")
    out = Path(args.out)
    try:
        write_atomically(out, data.tobytes())
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    h, w = image.shape[:2]
    print(f"{out}: {w}x{h} frame from {config.camera.name} (draw lines in these pixel coordinates)")
    return 0
