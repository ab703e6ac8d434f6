"""Ground truth for commissioning (`counterd validate`) and benchmarks: true line crossings, and
how counted crossings score against them.

Two kinds of truth file:
- a crossings CSV, made by walking the line (or by reviewing frames): a header row with at least
  `time_s,line,direction,class` (a `frame` column may stand in for `time_s` when the video's
  frame rate is known), one row per crossing; `#` lines are comments, and `# line NAME x1,y1,x2,y2`
  comments declare the lines the crossings refer to.
- MOT ground-truth tracks (`frame,id,x,y,w,h,...`, frame 1 = the video's first frame, no header):
  true crossings follow from the rule in ../shared/data/README.md. The anchor is the box's
  bottom-centre; a true crossing is a step between two consecutive annotated frames of one track
  whose path intersects the segment A->B; 'in' is movement toward (dy, -dx), (dx, dy) = B - A.
  MOT has no classes: every object is a person.

The crossing rule is written plainly, a loop over steps, so that it checks the counter
(counterd/count/) rather than repeating it.
"""
from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from counterd.config import LineConfig
from counterd.errors import UserError

DIRECTIONS = ("in", "out")
MATCH_SECONDS = 2.0   # a counted crossing matches a true one this close in time (a late decision, a
                      # truth read off frames a few tenths of a second out)


@dataclass(frozen=True)
class TrueCrossing:
    time: float         # seconds from the video's first frame
    line: str
    direction: str      # "in" or "out"
    class_name: str
    track_id: int = -1  # the ground-truth track, where the truth has tracks


@dataclass(frozen=True)
class Truth:
    crossings: tuple[TrueCrossing, ...]
    lines: tuple[LineConfig, ...] = ()     # lines the file declares, if any


# ---------------------------------------------------------------------------------------------
# MOT ground truth


@dataclass(frozen=True)
class MotTracks:
    """One row per annotated box, sorted by (track, frame). frame 1 is the video's first frame."""

    frame: np.ndarray     # (N,) int
    track_id: np.ndarray  # (N,) int64
    xyxy: np.ndarray      # (N, 4) float32


def read_mot(path: str | Path) -> MotTracks:
    """Read `frame,id,x,y,w,h,...` rows (MOTChallenge gt.txt)."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise UserError(f"{path}: not MOT ground truth (frame,id,x,y,w,h,...): {exc}") from None
    if rows.shape[1] < 6 or not len(rows):
        raise UserError(f"{path}: MOT ground truth needs at least 6 columns (frame,id,x,y,w,h)")
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    x, y, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    xyxy = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)
    return MotTracks(rows[:, 0].astype(int), rows[:, 1].astype(np.int64), xyxy)


def mot_crossings(tracks: MotTracks, line: LineConfig) -> list[tuple[int, int, str]]:
    """(frame, track, direction) for every step of a track whose path intersects the line's
    segment; frame is the one the anchor reached the far side in."""
    (ax, ay), end = line.start, line.end
    dx, dy = end[0] - ax, end[1] - ay
    anchor_x = (tracks.xyxy[:, 0] + tracks.xyxy[:, 2]) / 2
    anchor_y = tracks.xyxy[:, 3]
    found = []
    for i in range(len(tracks.frame) - 1):
        if tracks.track_id[i] != tracks.track_id[i + 1]:
            continue
        p, q = (anchor_x[i], anchor_y[i]), (anchor_x[i + 1], anchor_y[i + 1])
        # Side of the line for each end of the step, and of the step's line for each end of the segment.
        side_p = dx * (p[1] - ay) - dy * (p[0] - ax)
        side_q = dx * (q[1] - ay) - dy * (q[0] - ax)
        sx, sy = q[0] - p[0], q[1] - p[1]
        side_a = sx * (ay - p[1]) - sy * (ax - p[0])
        side_b = sx * (end[1] - p[1]) - sy * (end[0] - p[0])
        if side_p * side_q < 0 and side_a * side_b <= 0:
            inward = side_q < 0          # side < 0 is the 'in' side: toward (dy, -dx)
            if line.invert:
                inward = not inward
            found.append((int(tracks.frame[i + 1]), int(tracks.track_id[i]), "in" if inward else "out"))
    return found


def truth_from_mot(tracks: MotTracks, lines: Sequence[LineConfig], fps: float) -> Truth:
    """True crossings of these lines; frame k is at (k - 1) / fps seconds."""
    crossings = [TrueCrossing((frame - 1) / fps, line.name, direction, "person", track)
                 for line in lines for frame, track, direction in mot_crossings(tracks, line)]
    return Truth(tuple(sorted(crossings, key=lambda c: c.time)))


# ---------------------------------------------------------------------------------------------
# Crossings CSV


def read_crossings_csv(path: str | Path, fps: float | None = None) -> Truth:
    text = Path(path).read_text(encoding="utf-8")
    lines, rows = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("#"):
            words = raw[1:].split()
            if len(words) == 3 and words[0] == "line":
                lines.append(_declared_line(path, number, words[1], words[2]))
        elif raw.strip():
            rows.append((number, raw))
    if not rows:
        raise UserError(f"{path}: no header row (time_s,line,direction,class)")
    reader = csv.DictReader([raw for _, raw in rows])
    header = set(reader.fieldnames or ())
    missing = [name for name in ("line", "direction", "class") if name not in header]
    if not header & {"time_s", "frame"}:
        missing.append("time_s (or frame)")
    if missing:
        raise UserError(f"{path}: the header row lacks {', '.join(missing)}")
    crossings = [_crossing(path, number, row, fps) for (number, _), row in zip(rows[1:], reader)]
    return Truth(tuple(sorted(crossings, key=lambda c: c.time)), tuple(lines))


def _declared_line(path, number: int, name: str, coords: str) -> LineConfig:
    try:
        x1, y1, x2, y2 = (float(v) for v in coords.split(","))
    except ValueError:
        raise UserError(f"{path}:{number}: '# line NAME x1,y1,x2,y2' needs four numbers, got {coords!r}") from None
    return LineConfig(name=name, start=(x1, y1), end=(x2, y2))


def _crossing(path, number: int, row: dict, fps: float | None) -> TrueCrossing:
    where = f"{path}:{number}"
    direction = (row.get("direction") or "").strip()
    if direction not in DIRECTIONS:
        raise UserError(f"{where}: direction must be 'in' or 'out', got {direction!r}")
    try:
        if (row.get("time_s") or "").strip():
            time = float(row["time_s"])
        elif fps:
            time = float(row["frame"]) / fps
        else:
            raise UserError(f"{where}: no time_s, and the frame rate to read 'frame' by is unknown")
    except ValueError:
        raise UserError(f"{where}: time_s / frame must be a number") from None
    line, class_name = (row.get("line") or "").strip(), (row.get("class") or "").strip()
    if not line or not class_name:
        raise UserError(f"{where}: line and class must not be empty")
    return TrueCrossing(time, line, direction, class_name)


def is_mot(path: str | Path) -> bool:
    """Whether the file's first data row is all numbers with at least six fields (MOT gt)."""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            if raw.strip() and not raw.startswith("#"):
                fields = raw.strip().split(",")
                try:
                    [float(v) for v in fields]
                except ValueError:
                    return False
                return len(fields) >= 6
    return False


def load_truth(path: str | Path, lines: Sequence[LineConfig], fps: float | None) -> Truth:
    """A crossings CSV or MOT gt; MOT needs the lines to count against and the frame rate."""
    if not Path(path).is_file():
        raise UserError(f"truth file {path} does not exist")
    if is_mot(path):
        if not lines:
            raise UserError(f"{path} is MOT ground truth: give the lines to count (--config or --line)")
        if not fps:
            raise UserError(f"{path} is MOT ground truth: the video's frame rate is unknown")
        return truth_from_mot(read_mot(path), lines, fps)
    return read_crossings_csv(path, fps)


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Counted:
    """What a counter reported: the parts of a crossing event the score needs."""

    time: float
    line: str
    direction: str
    class_name: str


@dataclass
class Score:
    """Counted against true crossings, per (line, class, direction), and event by event: a counted
    crossing is matched to a true one on the same line and in the same direction within
    MATCH_SECONDS (class aside); one left unmatched that lies that close to a true crossing the
    other way is a wrong-direction count."""

    true: Counter = field(default_factory=Counter)      # (line, class, direction) -> n
    counted: Counter = field(default_factory=Counter)
    wrong_direction: int = 0
    spurious: int = 0      # unmatched, and no true crossing near it either way
    missed: int = 0        # true crossings no counted one matched

    @property
    def keys(self) -> list[tuple[str, str, str]]:
        return sorted(set(self.true) | set(self.counted))

    @property
    def true_total(self) -> int:
        return sum(self.true.values())

    @property
    def accuracy(self) -> float:
        """1 - sum |counted - true| / sum true over (line, class, direction)."""
        error = sum(abs(self.counted[k] - self.true[k]) for k in self.keys)
        return 1.0 - error / max(self.true_total, 1)

    @property
    def wrong_direction_share(self) -> float:
        return self.wrong_direction / max(self.true_total, 1)

    def by_class(self) -> dict[str, float]:
        """Accuracy of each class over its lines and directions."""
        result = {}
        for name in sorted({k[1] for k in self.keys}):
            keys = [k for k in self.keys if k[1] == name]
            true = sum(self.true[k] for k in keys)
            if true:
                result[name] = 1.0 - sum(abs(self.counted[k] - self.true[k]) for k in keys) / true
        return result


def score(truth: Iterable[TrueCrossing], counted: Iterable[Counted], lines: Sequence[str] | None = None,
          classes: Sequence[str] | None = None, tolerance: float = MATCH_SECONDS) -> Score:
    """Score counted crossings against the truth, restricted to these lines and classes (None: all)."""
    def keep(c) -> bool:
        return (lines is None or c.line in lines) and (classes is None or c.class_name in classes)

    truth = [c for c in truth if keep(c)]
    counted = [c for c in counted if keep(c)]
    result = Score()
    result.true.update((c.line, c.class_name, c.direction) for c in truth)
    result.counted.update((c.line, c.class_name, c.direction) for c in counted)
    missed, wrong, spurious = event_errors(truth, counted, tolerance)
    result.missed, result.wrong_direction, result.spurious = len(missed), len(wrong), len(spurious)
    return result


def event_errors(truth: Sequence[TrueCrossing], counted: Sequence[Counted], tolerance: float = MATCH_SECONDS):
    """Event by event, line by line: the true crossings no counted one matched, and the counted
    ones that matched none, split into wrong-direction counts (a true crossing the other way lies
    within tolerance) and spurious ones. Returns (missed, wrong, spurious); the counted ones are
    the objects given."""
    missed, wrong, spurious = [], [], []
    for line in {c.line for c in truth} | {c.line for c in counted}:
        true_here = [c for c in truth if c.line == line]
        unmatched, free = _match(true_here, [c for c in counted if c.line == line], tolerance)
        missed += free
        for c in unmatched:
            near = any(t.direction != c.direction and abs(t.time - c.time) <= tolerance for t in true_here)
            (wrong if near else spurious).append(c)
    return missed, wrong, spurious


def _match(truth: list[TrueCrossing], counted: list[Counted], tolerance: float):
    """Pair counted with true crossings of the same direction, closest in time first; returns the
    counted ones left unpaired and the true ones left unpaired."""
    pairs = sorted((abs(t.time - c.time), i, j) for i, t in enumerate(truth) for j, c in enumerate(counted)
                   if t.direction == c.direction and abs(t.time - c.time) <= tolerance)
    used_true, used_counted = set(), set()
    for _, i, j in pairs:
        if i not in used_true and j not in used_counted:
            used_true.add(i)
            used_counted.add(j)
    return ([c for j, c in enumerate(counted) if j not in used_counted],
            [t for i, t in enumerate(truth) if i not in used_true])
