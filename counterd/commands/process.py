"""`counterd process VIDEO`: count line crossings in a video file as fast as the machine allows."""
from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time

from counterd.choices import BACKENDS
from counterd.config import Config, LineConfig, config_from_dict, load_config
from counterd.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("process", help="count line crossings in a video file",
                              description="Run detect -> track -> count over a video and print totals.")
    p.add_argument("video", help="video file (or any source counterd can open; not a directory)")
    p.add_argument("--config", help="TOML config (detector, tracker, lines...); defaults otherwise")
    p.add_argument("--detector", choices=tuple(BACKENDS), help="override detector.type")
    p.add_argument("--model", help="override detector.model (a file path or a manifest name)")
    p.add_argument("--line", action="append", default=[], metavar="NAME=x1,y1,x2,y2",
                   help="a counting line, repeatable; replaces the config's lines")
    p.add_argument("--events", metavar="FILE.csv", help="write every crossing event to this CSV file")
    p.add_argument("--json", action="store_true", help="print one JSON object with the totals on stdout")
    p.set_defaults(func=run)


def parse_line(spec: str) -> LineConfig:
    name, sep, coords = spec.partition("=")
    parts = coords.split(",")
    try:
        if not sep or not name.strip() or len(parts) != 4:
            raise ValueError
        x1, y1, x2, y2 = (float(v) for v in parts)
    except ValueError:
        raise UserError(f"--line {spec!r}: expected NAME=x1,y1,x2,y2 with four numbers") from None
    if (x1, y1) == (x2, y2):
        raise UserError(f"--line {spec!r}: the two points must differ")
    return LineConfig(name=name.strip(), start=(x1, y1), end=(x2, y2))


def resolve_config(args, fallback_lines: tuple[LineConfig, ...] = ()) -> Config:
    """The config file (or defaults) with the command line's overrides; fallback_lines count when
    neither the config nor --line gives any."""
    config = load_config(args.config) if args.config else config_from_dict({}, "<command line>")
    detector = config.detector
    if args.detector:
        detector = dataclasses.replace(detector, type=args.detector)
    if args.model:
        detector = dataclasses.replace(detector, model=args.model)
    lines = tuple(parse_line(s) for s in args.line) or config.lines or tuple(fallback_lines)
    if not lines:
        raise UserError("no counting lines: give --line NAME=x1,y1,x2,y2 or a --config with [[lines]]")
    names = [line.name for line in lines]
    if len(set(names)) != len(names):
        raise UserError(f"line names must be unique, got {', '.join(names)}")
    counting = config.counting
    if counting.primary_line not in names:
        counting = dataclasses.replace(counting, primary_line="")
    return dataclasses.replace(config, detector=detector, lines=lines, counting=counting)


def run(args) -> int:
    from counterd.pipeline import Pipeline  # heavy imports only once the arguments are good
    from counterd.source import open_source

    config = resolve_config(args)
    with open_source(args.video) as source:
        config.check_frame_size(source.width, source.height)
        events_file = _open_events(args.events)
        pipeline = Pipeline(config)
        progress = Progress(source.frame_count) if sys.stderr.isatty() else None
        frames, started, interrupted = 0, time.perf_counter(), False
        try:
            try:
                for frame in source:
                    write_events(events_file, pipeline.step(frame))
                    frames += 1
                    if progress:
                        progress.update(frames, time.perf_counter() - started)
            except KeyboardInterrupt:
                # Ctrl-C: the totals so far are still worth printing. The stream did not end, so
                # tracks near a line are not counted as crossed (pipeline.finish is skipped).
                interrupted = True
            else:
                write_events(events_file, pipeline.finish())
        finally:
            if progress:
                progress.finish(frames, time.perf_counter() - started, ended=not interrupted)
            if events_file is not None:
                events_file[0].close()
            pipeline.close()
    seconds = time.perf_counter() - started
    result = {"frames": frames, "seconds": round(seconds, 3),
              "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
              "lines": pipeline.totals}
    if interrupted:
        result["interrupted"] = True
        print(f"counterd: interrupted after {frames} frames: partial totals follow", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_totals(result, pipeline.times.mean_ms()))
    return 130 if interrupted else 0


def _open_events(path: str | None):
    if not path:
        return None
    try:
        handle = open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--events {path}: cannot write: {exc.strerror}") from None
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(("timestamp", "line", "direction", "class", "track_id"))
    return handle, writer


def write_events(events_file, events) -> None:
    if events_file is not None and events:
        events_file[1].writerows((f"{e.timestamp:.3f}", e.line, e.direction, e.class_name, e.track_id)
                                 for e in events)


def format_totals(result: dict, stage_ms: dict[str, float]) -> str:
    rows = [("line", "class", "in", "out")]
    for line, directions in result["lines"].items():
        classes = sorted(set(directions["in"]) | set(directions["out"])) or ["-"]
        for cls in classes:
            rows.append((line, cls, str(directions["in"].get(cls, 0)), str(directions["out"].get(cls, 0))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    table.insert(1, "  ".join("-" * w for w in widths))
    stages = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in stage_ms.items())
    table.append(f"\n{result['frames']} frames in {result['seconds']:.1f} s ({result['fps']:.1f} fps; "
                 f"per frame: {stages})")
    return "\n".join(table)


class Progress:
    """A one-line progress bar on stderr, redrawn at most a few times a second."""

    def __init__(self, total: int | None):
        self.total = total if total and total > 0 else None
        self.drawn_at = 0.0

    def update(self, frames: int, elapsed: float, force: bool = False) -> None:
        if elapsed - self.drawn_at < 0.2 and not force:
            return
        self.drawn_at = elapsed
        fps = frames / elapsed if elapsed else 0.0
        if self.total:
            done = min(frames / self.total, 1.0)
            bar = "#" * int(done * 30)
            sys.stderr.write(f"\r[{bar:<30}] {frames}/{self.total} frames, {fps:.1f} fps")
        else:
            sys.stderr.write(f"\r{frames} frames, {fps:.1f} fps")
        sys.stderr.flush()

    def finish(self, frames: int, elapsed: float, ended: bool) -> None:
        """Draw the last state. When the video ended, the bar is full at the last frame read: a
        container's frame count is only an estimate, often off by a few frames."""
        if ended and self.total:
            self.total = frames
        self.update(frames, elapsed, force=True)
        sys.stderr.write("\n")
        sys.stderr.flush()
