"""Line geometry as pure functions over arrays: which side of each line an anchor is on, whether
a chord meets a segment, how wide a line's band is for a box, and which boxes the frame's edge cuts.

The counter (counterd/count/counter.py) holds the per-track state and applies its rules to these.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from counterd.config import CountingConfig, LineConfig

EDGE_SHARE = 0.01     # a box this close to the frame's edge (share of the frame's size) is cut by it:
                      # detectors place the edge of a cut box a few pixels inside the picture
EDGE_PX = 2.0         # ... and never less close than this


@dataclass(frozen=True)
class LineGeometry:
    """L lines as arrays: start (L,2), unit direction A->B (L,2), length (L,), and the unit normal
    (L,2) pointing to the 'in' side: toward (dy, -dx), or away from it when the line is inverted."""

    start: np.ndarray
    direction: np.ndarray
    length: np.ndarray
    normal: np.ndarray
    offset: np.ndarray      # start . normal, so the signed distance is point . normal - offset
    spread: np.ndarray      # (3, L) nx^2, ny^2, 2 nx ny: a covariance (var x, var y, cov xy) @ spread
                            # is the variance across each line

    @classmethod
    def of(cls, lines: Sequence[LineConfig]) -> LineGeometry:
        start = np.array([line.start for line in lines], float).reshape(-1, 2)
        end = np.array([line.end for line in lines], float).reshape(-1, 2)
        length = np.hypot(*(end - start).T)
        direction = (end - start) / np.maximum(length, 1e-9)[:, None]
        flip = np.array([-1.0 if line.invert else 1.0 for line in lines]).reshape(-1, 1)
        normal = np.stack([direction[:, 1], -direction[:, 0]], axis=1) * flip
        spread = np.stack([normal[:, 0] ** 2, normal[:, 1] ** 2, 2 * normal[:, 0] * normal[:, 1]])
        return cls(start, direction, length, normal, (start * normal).sum(1), spread)


def signed_distance(points: np.ndarray, lines: LineGeometry) -> np.ndarray:
    """(N, L) distance of each point from each line, positive on the line's 'in' side."""
    return points @ lines.normal.T - lines.offset


def along_lines(points: np.ndarray, lines: LineGeometry) -> np.ndarray:
    """(N, L) position of each point's foot on each line, from its start toward its end."""
    return np.einsum("nlk,lk->nl", points[:, None, :] - lines.start, lines.direction)


def decided_side(distance: np.ndarray, band: float | np.ndarray) -> np.ndarray:
    """+1 beyond the band on the 'in' side, -1 beyond it on the 'out' side, 0 inside it (band: a
    number, or one per point as an (N, 1) column)."""
    side = np.greater(distance, band).view(np.int8)       # a bool is one byte: 1 or 0, no copy
    side -= np.less(distance, np.negative(band))
    return side


def chord_meets_segment(p0: np.ndarray, p1: np.ndarray, line: np.ndarray, lines: LineGeometry) -> np.ndarray:
    """(M,) whether the chord p0[i] -> p1[i], whose ends lie on opposite sides of line[i],
    meets that line within its segment (ends included)."""
    # (take, and dot products of two columns added by hand: a fancy index and a sum(1)
    # reduction cost two to three times as much on these few rows; the sums are the same.)
    start, normal = lines.start.take(line, 0), lines.normal.take(line, 0)
    d0 = _row_dot(p0 - start, normal)
    d1 = _row_dot(p1 - start, normal)
    meet = p0 + (p1 - p0) * (d0 / (d0 - d1))[:, None]
    along = _row_dot(meet - start, lines.direction.take(line, 0))
    return (along >= 0) & (along <= lines.length.take(line))


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M,) dot product of each row of two (M, 2) arrays: (a * b).sum(1), in the same order."""
    product = a * b
    return product[:, 0] + product[:, 1]


def near_lines(p0: np.ndarray, p1: np.ndarray, lines: LineGeometry, band: float | np.ndarray) -> bool:
    """Whether any point moving from p0[i] to p1[i] (both (N, 2)) is inside a line's band or enters
    it on the way: within band of the line, or on both sides of it, alongside the segment (its
    ends widened by the band). The detection schedule never skips such a frame."""
    if not len(p0) or not len(lines.length):
        return False
    d0, d1 = signed_distance(p0, lines), signed_distance(p1, lines)                  # (N, L)
    meets = (np.abs(d0) <= band) | (np.abs(d1) <= band) | (np.sign(d0) != np.sign(d1))
    along0, along1 = along_lines(p0, lines), along_lines(p1, lines)
    lo, hi = np.minimum(along0, along1), np.maximum(along0, along1)
    beside = (hi >= -band) & (lo <= lines.length + band)
    return bool(np.count_nonzero(meets & beside))


def band_width(xyxy: np.ndarray, counting: CountingConfig, input_px: float | None = None) -> np.ndarray:
    """(N, 1) half-width of the undecided band for each box: a share of its height, with a floor in
    frame pixels and one in the detector's input pixels (input_px frame pixels each, if known)."""
    height = xyxy[:, 3:4] - xyxy[:, 1:2]
    return np.maximum(counting.hysteresis_ratio * height, band_floor(counting, input_px))


def band_floor(counting: CountingConfig, input_px: float | None = None) -> float:
    """The least half-width of any band: hysteresis_px frame pixels, and hysteresis_input_px of
    the detector's input pixels (input_px frame pixels each, if known)."""
    if input_px is not None and counting.hysteresis_input_px:
        return max(counting.hysteresis_px, counting.hysteresis_input_px * input_px)
    return counting.hysteresis_px


def noise_band(noise: np.ndarray, lines: LineGeometry, times: float) -> np.ndarray:
    """(N, L) times the anchor's noise across each line: sqrt(n' C n) of each track's residual
    covariance C (columns var x, var y, cov xy) along each line's normal n."""
    band = noise @ lines.spread
    np.maximum(band, 0.0, out=band)         # (in place: no temporaries, the same values)
    np.sqrt(band, out=band)
    band *= times
    return band


def cut_by_frame(xyxy: np.ndarray, frame_size: tuple[int, int] | None) -> np.ndarray:
    """(N,) whether each box touches the frame's edge (all False when the frame size is unknown)."""
    return cut_edges(xyxy, frame_size).any(1)


def cut_edges(xyxy: np.ndarray, frame_size: tuple[int, int] | None) -> np.ndarray:
    """(N, 4) whether each box's left, top, right and bottom edge touches the frame's (all False
    when the frame size is unknown)."""
    if frame_size is None:
        return np.zeros(xyxy.shape, bool)
    # x1 <= mx, y1 <= my, x2 >= width - mx, y2 >= height - my as one comparison (the far edges
    # negated, which is exact), in the boxes' own precision as the four comparisons were.
    signs, limits = _edge_limits(*frame_size, EDGE_PX, EDGE_SHARE, xyxy.dtype)
    return xyxy * signs <= limits


@functools.lru_cache(maxsize=16)
def _edge_limits(width: int, height: int, edge_px: float, edge_share: float, dtype: np.dtype):
    """cut_by_frame's signs and limits for one frame size (the same every frame of a stream), in
    the boxes' precision (integer boxes compare in float64, as against Python floats)."""
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    mx, my = max(edge_px, edge_share * width), max(edge_px, edge_share * height)
    return (np.array([1.0, 1.0, -1.0, -1.0], dtype),
            np.array([mx, my, -(width - mx), -(height - my)], dtype))


def cut_moves_across(xyxy: np.ndarray, edges: np.ndarray, lines: LineGeometry, band: np.ndarray,
                     anchor_ends: np.ndarray) -> np.ndarray:
    """(N, L) for boxes cut by the frame (edges: cut_edges of each): whether the cut can move the
    anchor across each line.

    A box cut by the left or right edge keeps its top and bottom edges, so every anchor's y
    is the object's; only its x moves, by up to half the hidden part, and a line's distance by
    |normal x| times that. The hidden part is unknown, so the cut counts unless even a hidden
    part as wide as the visible box moves the anchor by less than the band: a line drawn
    straight across the picture (normal x = 0) is never moved. A box cut at the top or bottom
    is cut for every line when the anchor uses that edge (anchor_ends: (2,) whether it uses the
    top and the bottom edge): at the bottom the anchor's own point (feet, wheels) is out of
    the picture, and for a centre anchor the centre of what is left is not where the object
    stands (measured: counting such boxes across PETS's vertical lines added wrong-direction
    counts, bench/RESULTS.md). A bottom-centre anchor does not use the top edge: a tall person
    whose head is above the picture still stands where their feet are."""
    shift = (xyxy[:, 2:3] - xyxy[:, 0:1]) * np.abs(lines.normal[:, 0])   # (N, L) across each line
    moved = shift > band
    moved &= (edges[:, 0] | edges[:, 2])[:, None]                   # only a cut side moves x
    moved |= (edges[:, 1::2] & anchor_ends).any(1)[:, None]
    return moved
