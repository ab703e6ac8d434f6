"""`counterd validate VIDEO --truth FILE`: commission a site by comparing what counterd counts on a
recording with what truly crossed (walk the line N times, record it, note each crossing).

The truth is a crossings CSV or MOT ground truth (counterd/truth.py). Prints, per line and class,
the true and counted crossings each way, the wrong-direction counts, and the accuracy; exits 1 when
the accuracy is below --min-accuracy.
"""
from __future__ import annotations

import json
import time

from counterd.errors import UserError

DEFAULT_MIN_ACCURACY = 0.95


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="compare counts on a recording with the true crossings (commissioning)",
        description="Count a recording with the site's config and compare with the true crossings.")
    p.add_argument("video", help="a recording of the site, from this camera")
    p.add_argument("--truth", required=True, metavar="FILE",
                   help="true crossings: CSV (time_s or frame, line, direction, class) or MOT gt")
    p.add_argument("--config", help="the site's TOML config (detector, tracker, lines...)")
    p.add_argument("--detector", choices=("onnx", "ultralytics", "motion"), help="override detector.type")
    p.add_argument("--model", help="override detector.model (a file path or a manifest name)")
    p.add_argument("--line", action="append", default=[], metavar="NAME=x1,y1,x2,y2",
                   help="a counting line, repeatable; replaces the config's lines")
    p.add_argument("--min-accuracy", type=float, default=DEFAULT_MIN_ACCURACY, metavar="A",
                   help=f"exit 1 below this accuracy (default {DEFAULT_MIN_ACCURACY})")
    p.add_argument("--tolerance", type=float, default=None, metavar="SECONDS",
                   help="how far apart in time a counted and a true crossing may be to match (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def count_video(config, video: str):
    """Run the pipeline over a recording: (crossing events, frame rate, frames, seconds, frames
    that went through the detector)."""
    from counterd.source import open_source  # heavy imports only once the arguments are good

    with open_source(video) as source:
        events, frames, seconds, detected = count_source(config, source)
        return events, source.fps, frames, seconds, detected


def count_source(config, source):
    """Run the pipeline over an opened recording: (crossing events, frames, seconds, frames that
    went through the detector)."""
    from counterd.pipeline import Pipeline

    config.check_frame_size(source.width, source.height)
    pipeline = Pipeline(config)
    events, frames, started = [], 0, time.perf_counter()
    try:
        for frame in source:
            events += pipeline.step(frame)
            frames += 1
        events += pipeline.finish()
    finally:
        pipeline.close()
    return events, frames, time.perf_counter() - started, pipeline.times.frames


def run(args) -> int:
    from counterd.commands.process import resolve_config
    from counterd.source import open_source
    from counterd.truth import MATCH_SECONDS, Counted, load_truth, read_crossings_csv, score

    if not 0.0 <= args.min_accuracy <= 1.0:
        raise UserError(f"--min-accuracy must be between 0 and 1, got {args.min_accuracy}")
    tolerance = MATCH_SECONDS if args.tolerance is None else args.tolerance
    if tolerance <= 0:
        raise UserError(f"--tolerance must be > 0 seconds, got {tolerance}")
    declared = () if args.line or args.config else _declared_lines(args.truth, read_crossings_csv)
    config = resolve_config(args, fallback_lines=declared)
    with open_source(args.video) as source:
        truth = load_truth(args.truth, config.lines, source.fps)
        names = [line.name for line in config.lines]
        unknown = sorted({c.line for c in truth.crossings} - set(names))
        if unknown:
            raise UserError(f"{args.truth} names line(s) {', '.join(unknown)} that the config does not have "
                            f"(lines: {', '.join(names)})")
        events, frames, seconds, _ = count_source(config, source)
    counted = [Counted(e.timestamp, e.line, e.direction, e.class_name) for e in events]
    result = score(truth.crossings, counted, classes=config.detector.classes, tolerance=tolerance)
    passed = result.accuracy >= args.min_accuracy
    if args.json:
        print(json.dumps({
            "accuracy": round(result.accuracy, 4), "passed": passed, "min_accuracy": args.min_accuracy,
            "true": result.true_total, "wrong_direction": result.wrong_direction,
            "spurious": result.spurious, "missed": result.missed, "frames": frames,
            "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
            "rows": [dict(zip(("line", "class", "direction"), k), true=result.true[k], counted=result.counted[k])
                     for k in result.keys]}))
    else:
        print(format_score(result, args.min_accuracy, frames, seconds))
    return 0 if passed else 1


def _declared_lines(path: str, reader):
    """The lines a crossings CSV declares, when neither --config nor --line gives any."""
    from counterd.truth import is_mot
    try:
        return () if is_mot(path) else reader(path).lines
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--truth {path}: cannot read: {exc}") from None


def format_score(result, min_accuracy: float, frames: int, seconds: float) -> str:
    rows = [("line", "class", "true in", "counted in", "true out", "counted out")]
    for line, cls in sorted({(k[0], k[1]) for k in result.keys}):
        rows.append((line, cls, *(str(n) for d in ("in", "out")
                                  for n in (result.true[line, cls, d], result.counted[line, cls, d]))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    table.insert(1, "  ".join("-" * w for w in widths))
    verdict = "PASS" if result.accuracy >= min_accuracy else "FAIL"
    table += [
        "",
        f"true crossings {result.true_total}; missed {result.missed}, spurious {result.spurious}, "
        f"wrong direction {result.wrong_direction} ({100 * result.wrong_direction_share:.1f}% of true)",
        f"accuracy {result.accuracy:.3f} (1 - sum|counted - true| / sum true, per line, class and "
        f"direction): {verdict} against --min-accuracy {min_accuracy:g}",
        f"{frames} frames in {seconds:.1f} s",
    ]
    return "\n".join(table)

