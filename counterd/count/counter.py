"""Line crossings from tracks: events and running totals per line, direction and class.

Each track has, per line, a decided side: the side its anchor was last seen on outside a band
either side of the line, and the point it was seen at. The band scales with the object: its
half-width is hysteresis_ratio of the box's height, never less than hysteresis_px (nor than
hysteresis_input_px pixels of the detector's input, where the pipeline says how big those are),
because a box edge jitters in proportion to the box (a 6 px band means nothing to a person 400 px tall at 1080p,
or to a bus). Some boxes jitter more than their size says (a small person whose legs the detector
keeps losing: the bottom jumps a fifth of the height), so each track also measures its anchor's
own noise, and its band is at least hysteresis_noise times that noise across each line. A
crossing is a change of decided side whose chord (last point on the old side -> first point on
the new side) passes through the segment itself, not the line beyond its ends. So
jitter inside the band never counts, a jump across the line between two frames counts, and a
track missing for frames while it crosses counts once when it reappears.

Six rules keep one object from counting back and forth:
- A track's first crossing of a line counts at once. Crossing back (against the direction it
  last counted) counts only once the track has stayed on the far side, beyond the band,
  for reverse_hold_seconds; coming back earlier cancels it. The event carries the time it crossed.
- A box touching the frame's edge is cut: its anchor is not the object's (the bottom-centre of
  a car half out of the picture jumps as it leaves). A cut box may give a track its first side
  (a person walking in from the bottom edge) but never changes a side, so it never counts.
  Except across a line that the cut cannot move it over: a box cut only at an edge the anchor
  does not use keeps its anchor (a tall person's head above the picture, the bottom-centre
  anchor at the feet), and with counting.side_cut_lines (cut_moves_across) a box cut only by the
  left or right edge keeps its top and bottom, so its distance from a line drawn across the
  picture is the object's (a car leaving through the side as it crosses a kerb line); such a box
  keeps its height too, so the whole-box rule below re-draws it like an uncut box.
- A box whose width or height jumps by more than JUMP_RATIO from its track's steady size is not
  the object's outline (half hidden, merged with a neighbour's, or another object after an id
  switch) and decides no side. Staying so for JUMP_SETTLE_SECONDS it becomes the steady box; if
  its anchor has also moved far from the last steady one's, the track has become another object:
  its sides start over, so what the old object did never counts for the new one.
- Reversals are never settled on a lost track: crossing back has to be seen held.
- A box whose height jumps while one edge stays (the legs hidden behind someone in front, a box
  merged with a neighbour's below) would move the anchor across a line by itself. It is re-drawn
  at the track's recent height from the edge that stayed, so the anchor stays on the object.
  Held past HEIGHT_SETTLE_SECONDS the new height is the object's own; if the anchor's edge was
  the one that moved, the box is another object's (a first box merged over two people): the
  track's sides start over rather than count the jump.
- Two tracks whose boxes overlapped (two people passing) that cross one line back in opposite
  directions on the same frame, one of them by a leap of its anchor, have exchanged people: each
  takes the other's history on that line, and neither counts.

Two rules cover tracks that end inside a band, where no side change can be seen. When the
tracker loses a track there and starts a new id beside it (an id switch on the line), the new
track takes over the old one's side: the crossing counts once, when it leaves the band. A track
that vanished inside the band past the line, with no new track taking over within
handoff_seconds (it left the frame there), counts as crossed if it had not counted on that line
before; finish() does the same for every track when a stream ends.

One rule covers someone who stops on a line, inside its band: after dwell_seconds standing still
there, the track takes the side of the mean of its stay, when the evidence says which (the mean
past the line by more than DWELL_CONFIDENCE standard errors and the band's floor). The crossing
counts at the time the stay began.

The geometry is pure functions over arrays (counterd/count/geometry.py); LineCounter holds the
per-track state.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from counterd.classes import class_name
from counterd.config import CountingConfig, LineConfig
from counterd.count.geometry import (LineGeometry, along_lines, band_floor, band_width, chord_meets_segment,
                                     cut_edges, cut_moves_across, decided_side, near_lines, noise_band,
                                     signed_distance)
from counterd.detections import ANCHOR_WEIGHTS, Detections
from counterd.packed import PackedRows

DIRECTIONS = ("in", "out")
SWEEP_SECONDS = 0.5   # how often lost tracks are settled and old ones forgotten
JUMP_RATIO = 2.0      # a box this much wider, narrower, taller or shorter than the track's last
                      # steady one is not that object's whole outline (half hidden, merged with a
                      # neighbour's, or another object after an id switch)
JUMP_SETTLE_SECONDS = 0.5   # ... when it stays so this long, the box is the object's from then on,
JUMP_AWAY = 0.33            # and when its anchor is also this far (share of the steady box's height)
                            # from where the last steady box had it, the track is another object
NO_TIME = np.inf      # no reversal pending
EXCHANGE_IDS = True   # two tracks whose boxes overlapped crossing one line back in opposite directions on one
                      # frame, one by a leap, exchanged objects: they exchange their line histories (_exchanged)
CLOCK_SLACK = 1e-6    # seconds: frame timestamps are floats (34.9 - 34.7 < 0.2), so a hold of
                      # exactly reverse_hold_seconds must not miss by a rounding error
NOISE_SECONDS = 2.0   # time constant of each track's anchor-noise estimate (counting.hysteresis_noise)
NOISE_GAP_SECONDS = 0.5   # a track unseen (or unmeasured) this long starts its filter over
NOISE_LEAP = 0.25         # an anchor this far from where it was predicted (share of box height) is
                          # another object's (an id switch, a merged box): not measured, the filter starts over
ANCHOR_COLUMNS = 11       # per track: the anchor's filter and noise (LineCounter._measure_noise)
SPIKE_SD = 3.0            # a box that crosses back off its track's own path by more than this many of the
SPIKE_PAST = 1.0          # anchor's noise sd, yet no farther past the band than this many, is one box's
                          # jitter and decides no side (LineCounter._spikes; inf: off, bench/ablate.py)
NOISE_UNBIASED = True     # a young track's noise is its average so far, not a running average from zero
NOISE_ALPHA = 0.5     # the anchor's alpha-beta filter: share of the residual taken into its position,
NOISE_BETA = 0.17     # ... and into its velocity (alpha^2 / (2 - alpha): follows steady walking and driving
                      # without lag, so the residual is the box's jitter, not the object's motion)
HEIGHT_JUMP_RATIO = 1.25  # a box this much taller or shorter than its track's last whole one, one edge
                          # kept, is hidden or merged at the other (_whole_boxes): a detector's box height
                          # changes 2-9 % a frame (95th percentile; 11-14 % for cars closing in at 25 fps),
                          # a box over someone's feet or missing the legs by 30-60 %
HEIGHT_SETTLE_SECONDS = 1.0   # ... while its last whole box is younger than this (a person passing behind
                              # another); older, the new height is the object's own
SETTLE_AWAY = JUMP_AWAY       # ... and when the anchor then lies this far (share of the old height) from
                              # where the re-drawn box kept it, the track is another object: its sides start over
DWELL_RADIUS = 0.1        # an anchor within this share of its box's height of the mean of its stay is still
                          # standing (a walker at a fifth of its height a second leaves it within a second)
DWELL_LOOK_SECONDS = 0.25  # stays are sampled this often, not every frame: a standing person's jitter is alike
                          # from one frame to the next, so looks this far apart are nearer independent ones
                          # (the standard error below counts them), and the work is the same at any frame rate
DWELL_CONFIDENCE = 3.0    # a dwelling anchor's side: its mean this many standard errors past the line
BOTH_ENDS = np.ones(2, bool)  # (cut_moves_across: an anchor that uses both the top and bottom edge)
ANCHOR_EDGES_ONLY = True  # a box cut by the frame only at edges its anchor does not use (a tall person's head
                          # above the picture, the anchor at the feet) still decides sides (bench/ablate.py: off)
DWELL_COLUMNS = 9         # per track: its stay's start, when its last anchor was, their mean x, y, how many,
SPREAD_COLUMNS = [5, 8, 6]  # and the sums of squares of their spread xx, xy, yx, yy (these: xx, yy, xy)


@dataclass(frozen=True, slots=True)
class CrossingEvent:
    timestamp: float
    line: str
    direction: str      # "in" or "out"
    class_name: str     # lowercase COCO name
    track_id: int


def box_jumped(steady: np.ndarray, size: np.ndarray) -> np.ndarray:
    """(N,) whether each box's width or height differs by more than JUMP_RATIO from the steady size."""
    ratio = size / steady
    jumped = ratio > JUMP_RATIO
    jumped |= ratio < 1.0 / JUMP_RATIO
    return jumped[:, 0] | jumped[:, 1]          # (two columns: cheaper than numpy's any(1) reduction)


# ---------------------------------------------------------------------------------------------
# Counter


class LineCounter(PackedRows):
    """Turns tracks into crossing events and keeps totals: {line: {"in": {class: n}, "out": ...}}."""

    _ARRAYS = ("_ids", "_seen", "_box", "_class", "_steady", "_steady_at", "_odd_since", "_side", "_decided_at",
               "_counted", "_reverse_at", "_anchor", "_whole", "_dwell")

    def __init__(self, lines: Sequence[LineConfig], counting: CountingConfig, capacity: int = 64):
        self._count = 0                                  # live rows are [0, _count)
        self._ids = np.zeros(capacity, np.int64)
        self._seen = np.zeros(capacity)                  # timestamp the track was last seen
        self._box = np.zeros((capacity, 4), np.float32)  # its box when last seen
        self._class = np.zeros(capacity, np.int32)       # its class then
        self._steady = np.ones((capacity, 2))            # width and height of its last steady box
        self._steady_at = np.zeros((capacity, 2))        # and its anchor
        self._odd_since = np.zeros(capacity)             # since when its box has not been steady
        self._whole = np.zeros((capacity, 4))           # its reference height, and the top, bottom and
                                                        # time of its last whole box (_whole_boxes)
        self._anchor = np.zeros((capacity, ANCHOR_COLUMNS))   # its anchor's filter and noise (_measure_noise)
        self._dwell = np.zeros((capacity, DWELL_COLUMNS))     # where it has stood in a band (_stay)
        self._sorted_ids = np.zeros(0, np.int64)         # lookup: _ids[_order] == _sorted_ids
        self._order = np.zeros(0, np.intp)
        self._last_sweep = -np.inf
        self._last_update = -np.inf                      # timestamp of the newest update
        self._last_look = -np.inf                        # when stays on lines were last looked at (_dwell_sides)
        self.lines: tuple[LineConfig, ...] = ()
        self._side = np.zeros((capacity, 0), np.int8)          # decided side per line, 0 = none yet
        self._decided_at = np.zeros((capacity, 0, 2))          # the anchor when it was decided
        self._counted = np.zeros((capacity, 0), np.int8)       # side its last counted crossing ended on
        self._reverse_at = np.zeros((capacity, 0))             # when it crossed back, uncounted yet
        self._totals: dict[str, dict[str, dict[str, int]]] = {}
        self._input_px: float | None = None     # frame pixels per detector input pixel, last told
        self.counting = counting
        self.reconfigure(lines, counting)

    # -- settings and totals -------------------------------------------------------------------

    def reconfigure(self, lines: Sequence[LineConfig], counting: CountingConfig) -> None:
        """Replace lines and settings. Totals of lines kept by name survive; a line whose points
        changed starts its tracks undecided, so nothing counts from the old geometry. A line
        whose alert settings alone changed keeps its tracks' sides (someone standing on it
        still counts when they step off)."""
        lines = tuple(lines)
        anchor_kept = self.counting.anchor == counting.anchor
        old_column = {line.geometry: i for i, line in enumerate(self.lines)}
        per_line = {"_side": 0, "_decided_at": 0.0, "_counted": 0, "_reverse_at": NO_TIME}
        columns = {}
        for name, fill in per_line.items():
            old = getattr(self, name)
            columns[name] = np.full((len(old), len(lines)) + old.shape[2:], fill, old.dtype)
        for j, line in enumerate(lines):
            i = old_column.get(line.geometry)
            if i is not None and anchor_kept:
                for name in per_line:
                    columns[name][:, j] = getattr(self, name)[:, i]
        for name, array in columns.items():
            setattr(self, name, array)
        self._totals = {line.name: self._totals.get(line.name, {d: {} for d in DIRECTIONS}) for line in lines}
        self.lines = lines
        self.counting = counting
        self._geometry = LineGeometry.of(lines)
        self._anchor_edges = ANCHOR_WEIGHTS[counting.anchor].any(1)    # the box edges its anchor uses
        self._anchor_edge_bits = self._anchor_edges.view(np.uint32)[0]   # (as update reads a box's edges)

    def watching(self, boxes_now: np.ndarray, boxes_then: np.ndarray, band: np.ndarray | None = None) -> bool:
        """Whether a tracked object whose box moves from boxes_now to boxes_then is inside a
        line's band (or the (N, 1) `band` given) or enters it meanwhile (near_lines, at the
        counted anchor)."""
        weights = ANCHOR_WEIGHTS[self.counting.anchor]
        return near_lines(boxes_now @ weights, boxes_then @ weights, self._geometry,
                          band_width(boxes_now, self.counting, self._input_px) if band is None else band)

    def undecided(self) -> bool:
        """Whether a decision of this counter is pending for a track it saw lately (within
        handoff_seconds: a coasting track that reappears decides from where it was last seen):
        a crossing back held for reverse_hold_seconds, a box jump settling within its own height
        of a line, or an anchor inside a line's band alongside the segment, where the side it
        leaves the band on is still to be decided. "Alongside" is along the whole chord the
        counter will judge, from where the side was last decided to the anchor now, ends widened
        by the band: a walker drifting past a segment's end inside the band still counts by
        that chord, decided on the frame it leaves. The detection schedule never rests the
        detector while this holds, so every decision is made on a detected frame."""
        if not self._count or not self.lines:
            return False
        recent = np.flatnonzero(self._last_update - self._seen[:self._count] <= self.counting.handoff_seconds)
        if not len(recent):
            return False
        if np.isfinite(self._reverse_at[recent]).any():
            return True
        anchor, box = self._last_anchor(recent), self._box[recent]
        band = self._band(recent, box)                                           # (R, 1) or (R, L)
        jumping = np.isfinite(self._odd_since[recent])
        reach = np.where(jumping[:, None], np.maximum(band, box[:, 3:4] - box[:, 1:2]), band)
        inside = np.abs(signed_distance(anchor, self._geometry)) <= reach       # (R, L)
        if not np.count_nonzero(inside):
            return False
        geometry = self._geometry
        along = along_lines(anchor, geometry)
        decided_at = np.einsum("rlk,lk->rl", self._decided_at[recent] - geometry.start, geometry.direction)
        since = np.where(self._side[recent] != 0, decided_at, along)   # (R, L) where the judged chord starts
        lo, hi = np.minimum(along, since), np.maximum(along, since)
        beside = (hi >= -reach) & (lo <= geometry.length + reach)
        return bool(np.count_nonzero(inside & beside))

    @property
    def input_px(self) -> float | None:
        """Frame pixels per pixel of the detector's input, as the last update was told."""
        return self._input_px

    @property
    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """Counts since start (or reset_totals) for every configured line, as a fresh copy."""
        return copy.deepcopy(self._totals)

    def reset_totals(self) -> None:
        self._totals = {line.name: {d: {} for d in DIRECTIONS} for line in self.lines}

    def finish(self) -> list[CrossingEvent]:
        """The stream has ended, so every track has too: those last seen inside a band past a
        line count as crossed, as lost tracks do after handoff_seconds. Per-track state is
        cleared; totals are kept."""
        events = self._settle_lost(np.inf)
        self._count = 0
        self._reindex()
        return events

    # -- the hot loop --------------------------------------------------------------------------

    def update(self, tracks: Detections, timestamp: float, frame_size: tuple[int, int] | None = None,
               input_px: float | None = None) -> list[CrossingEvent]:
        """Feed the tracks seen in one frame (of this width and height, if known: boxes cut by
        its edge then never count; input_px: frame pixels per pixel of the detector's input, if
        known, for counting.hysteresis_input_px); returns the crossings they made."""
        t = float(timestamp)
        self._input_px = input_px
        self._last_update = t
        settled = []
        if abs(t - self._last_sweep) >= SWEEP_SECONDS:      # also when a wall clock steps back
            settled = self._settle_lost(t)
            self._forget(t)
            self._last_sweep = t
        if not len(tracks) or not self.lines:
            return settled
        if np.count_nonzero(tracks.tracker_id < 0):
            tracks = tracks[tracks.tracker_id >= 0]
        rows, born = self._rows_for(tracks.tracker_id)
        edges = cut_edges(tracks.xyxy, frame_size)
        # A box's four edge flags are four bytes in a row: read as one uint32, "any edge" is one
        # comparison (numpy's any(1) reduction costs half as much again at this size).
        edge_bits = edges.view(np.uint32)[:, 0]
        cut = edge_bits != 0
        short = anchor_cut = cut
        side_cut = self.counting.side_cut_lines
        if np.count_nonzero(cut):
            # A box cut only at the side keeps its top and bottom: its height is the object's.
            if side_cut:
                short = edges[:, 1] | edges[:, 3]
            if ANCHOR_EDGES_ONLY:
                anchor_cut = (edge_bits & self._anchor_edge_bits) != 0
        whole = self._whole_boxes(rows, tracks.xyxy, short, t)
        points = whole @ ANCHOR_WEIGHTS[self.counting.anchor]
        if born is not None and self.counting.handoff_seconds > 0:
            self._hand_over(rows, born, points, t)

        odd = self._unsteady(rows, tracks.xyxy, points, cut, t)
        raw = None
        if self.counting.hysteresis_noise:
            # The band covers the detector's own anchor: jumps too small to re-draw still reach it.
            raw = points if whole is tracks.xyxy else tracks.xyxy @ ANCHOR_WEIGHTS[self.counting.anchor]
            self._measure_noise(rows, raw, tracks.xyxy[:, 3] - tracks.xyxy[:, 1], ~(odd | cut), t)
        band = self._band(rows, whole)
        side = decided_side(signed_distance(points, self._geometry), band)
        if np.count_nonzero(odd):
            side[odd] = 0                           # a box that is not the object's outline: no side
        before = self._side.take(rows, 0)
        if np.count_nonzero(cut):                   # a cut box only gives a first side
            # (compress: a third of a boolean index's cost on these 2-D rows)
            moved = (cut_moves_across(tracks.xyxy.compress(cut, 0), edges.compress(cut, 0), self._geometry,
                                      band.compress(cut, 0),
                                      self._anchor_edges[1::2] if ANCHOR_EDGES_ONLY else BOTH_ENDS)
                     if side_cut else anchor_cut[cut, None])
            cut_sides = side.compress(cut, 0)
            np.multiply(cut_sides, before.compress(cut, 0) == 0, out=cut_sides, where=moved)
            side[cut] = cut_sides
        crossed_at = t
        watched = self._looking(rows, t) if self.counting.dwell_seconds else None
        if watched is not None:
            judged = ~(odd | anchor_cut)
            judged &= watched
            crossed_at, points = self._dwell_sides(rows, points, whole, side, judged, t)
        flipped = (side * before) < 0
        events = (self._crossings(flipped, rows, points, side, tracks, t, crossed_at, raw, band)
                  if np.count_nonzero(flipped) else [])
        reverse_at = self._reverse_at.take(rows, 0)
        if np.count_nonzero(self._held(t, reverse_at)):
            events += self._held_reversals(rows, reverse_at, tracks, t)

        decided = side != 0
        np.copyto(before, side, where=decided)
        self._side[rows] = before
        decided_at = self._decided_at.take(rows, 0)
        np.copyto(decided_at, points[:, None, :], where=decided[..., None])
        self._decided_at[rows] = decided_at
        self._seen[rows] = t
        self._box[rows] = tracks.xyxy
        self._class[rows] = tracks.class_id
        return settled + events if settled else events

    def _crossings(self, flipped, rows, points, side, tracks, t, crossed_at, raw=None, band=None) -> list[CrossingEvent]:
        """Side changes: through the segment, a first crossing counts, crossing back starts the
        hold (counted by _held_reversals), returning to the counted side cancels a hold; round
        an end of the segment, the track's history on that line starts over. crossed_at: when
        each track crossed (t, or per track: a dwelling one crossed when it stopped). raw, band:
        each box's anchor as the noise filter measured it and its band, for _spikes (None: not judged)."""
        which, line = np.divmod(flipped.ravel().nonzero()[0], flipped.shape[1])
        row, new_side = rows[which], side[which, line]
        when = np.full(len(which), t) if isinstance(crossed_at, float) else crossed_at[which]
        real = chord_meets_segment(self._decided_at[row, line], points[which], line, self._geometry)
        counted = self._counted[row, line] * real                   # round an end: start over
        back = real & (counted == -new_side)
        if raw is not None and np.count_nonzero(back):
            spike = self._spikes(row, which, line, back & (when == t), raw, points, band, t)
            back &= ~spike
            side[which[spike], line[spike]] = 0             # decides no side: the next box judges
        if EXCHANGE_IDS and np.count_nonzero(back) >= 2:
            exchanged = self._exchanged(row, line, new_side, back, points[which])
            counted = np.where(exchanged, new_side, counted)        # the other's history: nothing to count
            back &= ~exchanged
        self._counted[row, line] = counted
        self._reverse_at[row, line] = np.where(back, when, NO_TIME)
        first = real & (counted == 0)
        which, line = which[first], line[first]
        self._counted[rows[which], line] = side[which, line]
        return self._record(when[first], line, side[which, line],
                            tracks.class_id[which], tracks.tracker_id[which])

    def _spikes(self, row, which, line, back, raw, points, band, t: float) -> np.ndarray:
        """Which crossings back (back: (M,) of _crossings' side changes, a stay's side excluded)
        were seen on a box that left its track's own path: the anchor's residual from the noise
        filter's prediction, across the line, over SPIKE_SD of the track's measured noise there,
        with the anchor past the band by no more than SPIKE_PAST of that noise. One such box (legs
        spread mid-step, a box reaching below the shoes) is not evidence that the object went
        back: it decides no side and the next box judges. Not judged: a box the filter did not
        measure (cut, jumped, or another object's: NOISE_LEAP), a track with no noise measured yet."""
        judged = np.flatnonzero(back)
        which, line = which[judged], line[judged]
        state = self._anchor[row[judged]]
        normal = self._geometry.normal[line]
        # _measure_noise moved the filter NOISE_ALPHA of the residual toward this anchor, and its
        # average a gain of the way toward this residual's spread: both undone exactly, across the
        # line (the prior's spread and weight are both times 1 - gain, which cancels).
        across = ((raw[which] - state[:, 1:3]) * normal).sum(1)
        across /= 1.0 - NOISE_ALPHA
        gain = -np.expm1(state[:, 10] / -NOISE_SECONDS)
        spread = (state[:, 6:9] * self._geometry.spread.T[line]).sum(1) - gain * np.square(across)
        weight = state[:, 9] - gain if NOISE_UNBIASED else 1.0 - gain
        sd = np.sqrt(np.maximum(spread, 0.0) / np.maximum(weight, 1e-9))
        off_path = np.abs(across) / SPIKE_SD > sd           # (inf: off)
        spike = np.zeros(len(back), bool)
        if not np.count_nonzero(off_path):                  # nearly always: a crossing back on its path
            return spike
        past = np.abs((points[which] * normal).sum(1) - self._geometry.offset[line])
        past -= band[which, line] if band.shape[1] > 1 else band[which, 0]
        off_path &= past / SPIKE_PAST <= sd
        off_path &= state[:, 0] == t                        # measured with this box,
        off_path &= state[:, 5] * weight > 1e-6             # after a noise was measured
        spike[judged[off_path]] = True
        return spike

    def _looking(self, rows: np.ndarray, t: float) -> np.ndarray | bool | None:
        """Which tracks' stays are looked at in this frame: all of them (True) every
        DWELL_LOOK_SECONDS; between, those holding a crossing back ((N,) mask: a standing track
        whose stay still says the side it counted has come back, so the reversal is cancelled,
        not counted); None: none."""
        if abs(t - self._last_look) >= DWELL_LOOK_SECONDS - CLOCK_SLACK:      # (also when a clock steps back)
            self._last_look = t
            return True
        if not np.count_nonzero(np.isfinite(self._reverse_at[:self._count])):     # (half any()'s cost)
            return None
        return np.isfinite(self._reverse_at.take(rows, 0)).any(1)

    def _dwell_sides(self, rows, points, whole, side, judged, t: float):
        """Someone standing on a line: a track whose anchor stays inside a band, within
        DWELL_RADIUS of its box's height of the mean of its stay there, for dwell_seconds gets a
        side from the evidence: the side of that mean, when it lies more than DWELL_CONFIDENCE
        standard errors of the mean (from the stay's own spread across the line) and the band's
        floor past the line. The anchor of someone standing jitters about one place, so the mean
        knows that place far better than one frame does. Only anchors the box shows (judged: not
        cut at an edge the anchor uses, not jumped in size) are gathered. Sets `side` in place;
        returns when each track crossed (for those decided here, when their stay began; else t)
        and the anchors (the stay's mean for those)."""
        inside = (side == 0).any(1)
        inside &= judged
        which = inside.nonzero()[0]                     # (np.flatnonzero adds a Python-level ravel)
        if not len(which):
            return t, points
        box = whole.take(which, 0)
        stays = self._stay(rows.take(which), points.take(which, 0), DWELL_RADIUS * (box[:, 3] - box[:, 1]), t)
        standing = stays[:, 0] <= t - self.counting.dwell_seconds + CLOCK_SLACK
        if not np.count_nonzero(standing):
            return t, points
        which, stays = which[standing], stays[standing]
        samples = stays[:, 4:5]
        variance = stays[:, SPREAD_COLUMNS] / np.maximum(samples - 1.0, 1.0)       # var x, var y, cov xy
        error = noise_band(variance, self._geometry, 1.0) / np.sqrt(samples)
        needed = np.maximum(DWELL_CONFIDENCE * error, band_floor(self.counting, self._input_px))
        dwell_side = decided_side(signed_distance(stays[:, 2:4], self._geometry), needed)
        dwell_side *= side[which] == 0                      # lines whose band the anchor is in
        decided = dwell_side.any(1)
        if not np.count_nonzero(decided):
            return t, points
        side[which] += dwell_side
        which, stays = which[decided], stays[decided]
        points = points.copy()
        points[which] = stays[:, 2:4]
        crossed_at = np.full(len(rows), t)
        crossed_at[which] = stays[:, 0]
        return crossed_at, points

    def _stay(self, rows, points, reach, t: float) -> np.ndarray:
        """Each track's stay inside a band with this anchor added (Welford's update, all tracks at
        once; columns of _dwell: since when, when the last anchor was added, their mean x and y,
        how many, and the sums of squares of their spread xx, xy, yx, yy). An anchor farther than
        `reach` from the mean, or after NOISE_GAP_SECONDS without one, starts a new stay."""
        state = self._dwell.take(rows, 0)
        step = points - state[:, 2:4]
        still = np.hypot(step[:, 0], step[:, 1]) <= reach
        still &= state[:, 1] >= t - NOISE_GAP_SECONDS        # a new track's is -inf: it starts one
        state[:, 0] = np.where(still, state[:, 0], t)
        state[:, 1] = t
        state[:, 4:] *= still[:, None]                  # a new stay: no anchors, no spread
        state[:, 4] += 1.0
        state[:, 2:4] += step / state[:, 4:5]           # a new stay's mean is its first anchor
        state[:, 5:] += (step[:, :, None] * (points - state[:, 2:4])[:, None, :]).reshape(-1, 4)
        self._dwell[rows] = state
        return state

    def _exchanged(self, row, line, new_side, back, points) -> np.ndarray:
        """Which crossings back (of the side changes row[i], line[i], anchors now at points[i]) are
        half of an id exchange: two tracks that cross one line back in opposite directions on the
        same frame, their boxes as last seen overlapping (one blob as two people passed), one of
        them with its anchor leapt more than NOISE_LEAP of its height since (it took the other's
        person; two walkers who both turn back side by side step, they do not leap). Each takes
        the other's history on that line: its object's counted side is the one it now stands on,
        so neither counts."""
        exchanged = np.zeros(len(row), bool)
        pending = np.flatnonzero(back)
        last = self._box[row[pending]]
        x1, y1, x2, y2 = last.T
        overlap = ((x1[:, None] < x2) & (x1 < x2[:, None]) & (y1[:, None] < y2) & (y1 < y2[:, None]))
        step = np.hypot(*(points[pending] - last @ ANCHOR_WEIGHTS[self.counting.anchor]).T)
        leapt = step > NOISE_LEAP * (y2 - y1)
        opposite = (line[pending, None] == line[pending]) & (new_side[pending, None] == -new_side[pending])
        opposite &= leapt[:, None] | leapt
        for a, b in zip(*np.nonzero(np.triu(overlap & opposite, 1))):
            i, k = pending[a], pending[b]
            if not (exchanged[i] or exchanged[k]):
                exchanged[[i, k]] = True
        return exchanged

    def _held_reversals(self, rows, reverse_at, tracks, t) -> list[CrossingEvent]:
        """Tracks that crossed back and have not returned for reverse_hold_seconds: count them
        now, at the time they crossed."""
        which, line = np.nonzero(self._held(t, reverse_at))
        row = rows[which]
        side = -self._counted[row, line]
        self._counted[row, line] = side
        self._reverse_at[row, line] = NO_TIME
        return self._record(reverse_at[which, line], line, side, tracks.class_id[which], tracks.tracker_id[which])

    def _held(self, t: float, reverse_at: np.ndarray) -> np.ndarray:
        """Which pending reversals have been held for reverse_hold_seconds at time t."""
        return t - reverse_at >= self.counting.reverse_hold_seconds - CLOCK_SLACK

    def _settle_lost(self, t: float) -> list[CrossingEvent]:
        """A track that vanished inside a band past the line (left the frame there, or was lost)
        and that no new track took over within handoff_seconds counts as having crossed, at the
        time it was last seen. By then the tracker has given up its id, so it cannot count twice."""
        n = self._count
        if not n or not self.lines:
            return []
        lost = (t - self._seen[:n] > self.counting.handoff_seconds).nonzero()[0]
        if not len(lost):
            return []
        anchor = self._last_anchor(lost)
        beyond = signed_distance(anchor, self._geometry) * self._side[lost] < 0
        if not beyond.any():
            return []
        which, line = np.nonzero(beyond)
        rows = lost[which]
        last = anchor[which]
        real = chord_meets_segment(self._decided_at[rows, line], last, line, self._geometry)
        if self.counting.reverse_hold_seconds > 0:      # crossing back has to be seen held
            real &= self._counted[rows, line] == 0
        rows, line = rows[real], line[real]
        side = -self._side[rows, line]
        self._side[rows, line] = side
        self._counted[rows, line] = side
        self._decided_at[rows, line] = last[real]
        return self._record(self._seen[rows], line, side, self._class[rows], self._ids[rows])

    def _record(self, times, line, side, class_id, track_id) -> list[CrossingEvent]:
        """Crossing events from parallel arrays, added to the totals."""
        events = []
        for t, j, s, c, tid in zip(times.tolist(), line.tolist(), side.tolist(), class_id.tolist(),
                                   track_id.tolist()):
            event = CrossingEvent(t, self.lines[j].name, "in" if s > 0 else "out", class_name(c), tid)
            by_class = self._totals[event.line][event.direction]
            by_class[event.class_name] = by_class.get(event.class_name, 0) + 1
            events.append(event)
        return events

    # -- per-track state -----------------------------------------------------------------------

    def _rows_for(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """State rows for these track ids, adding rows for ids not seen before; and a mask of
        which ids are new (None when none are)."""
        if self._count:
            pos = np.minimum(self._sorted_ids.searchsorted(ids), self._count - 1)
            rows = self._order[pos]
            known = self._sorted_ids[pos] == ids
            if np.count_nonzero(known) == len(ids):
                return rows, None
        else:
            rows = np.zeros(len(ids), np.intp)
            known = np.zeros(len(ids), bool)
        born = ~known
        new = self._add_rows(int(born.sum()))
        self._ids[new] = ids[born]
        self._side[new] = 0
        self._counted[new] = 0
        self._reverse_at[new] = NO_TIME
        self._whole[new] = (np.nan, 0.0, 0.0, -np.inf)
        self._steady[new] = np.nan                  # the first box is steady whatever its size
        self._anchor[new] = 0.0
        self._anchor[new, 0] = -np.inf              # no anchor filtered yet
        self._dwell[new] = 0.0
        self._dwell[new, 1] = -np.inf               # no stay yet: the first anchor in a band starts one
        self._odd_since[new] = NO_TIME
        self._seen[new] = -np.inf
        rows[born] = np.arange(new.start, new.stop)
        self._reindex()
        return rows, born

    def _hand_over(self, rows: np.ndarray, born: np.ndarray, points: np.ndarray, t: float) -> None:
        """An id switch on a line: the tracker lost a track inside a line's band and started a new
        one beside it. The new track takes over the old one's decided side for that line (and the
        old one gives it up), so the crossing counts once when the new track leaves the band."""
        present = np.zeros(self._count, bool)
        present[rows] = True
        age = t - self._seen[:self._count]
        lost = np.flatnonzero(~present & (age > 0) & (age <= self.counting.handoff_seconds))
        if not len(lost):
            return
        last = self._last_anchor(lost)
        band = band_width(self._box[lost], self.counting, self._input_px)
        in_band = np.abs(signed_distance(last, self._geometry)) <= band
        orphan = in_band & (self._side[lost] != 0)                           # (lost, L)
        if not orphan.any():
            return
        newborn = np.flatnonzero(born)
        gap = np.hypot(*(points[newborn, None, :] - last[None, :, :]).transpose(2, 0, 1))
        reach = np.maximum(self._box[lost, 2] - self._box[lost, 0], 2 * band[:, 0])
        for j in np.flatnonzero(orphan.any(0)):
            # Nearest pairs first; each lost track and each new one hands over at most once.
            near = (gap <= reach) & orphan[:, j]
            taken_new, taken_lost = set(), set()
            for a, b in zip(*np.unravel_index(np.argsort(np.where(near, gap, np.inf), axis=None), gap.shape)):
                if not near[a, b]:
                    break
                if a in taken_new or b in taken_lost:
                    continue
                taken_new.add(a)
                taken_lost.add(b)
                heir, old = rows[newborn[a]], lost[b]
                for name in ("_side", "_decided_at", "_counted", "_reverse_at"):
                    state = getattr(self, name)
                    state[heir, j] = state[old, j]
                self._side[old, j] = 0
                self._counted[old, j] = 0
                self._reverse_at[old, j] = NO_TIME

    def _whole_boxes(self, rows, xyxy, cut, t: float) -> np.ndarray:
        """Each box as the object's whole outline. A box whose height differs from its track's
        reference (its recent whole boxes) by more than HEIGHT_JUMP_RATIO is hidden at one edge
        (someone in front covers the legs, a car's roof a pickup's bumper) or merged with a
        neighbour's there: it is re-drawn at the reference height from the edge that moved less
        since the last whole box, so its anchor stays where the object is. Once the last whole
        box is HEIGHT_SETTLE_SECONDS old, the height is the object's own (it turned, or the
        track is another object now). Boxes cut (at the top or bottom: the caller says which
        cuts count) are partial by nature and kept as they are."""
        state = self._whole.take(rows, 0)            # (take: a third of a fancy index's cost on rows)
        height = xyxy[:, 3] - xyxy[:, 1]
        reference = state[:, 0]                         # NaN for a new track: compares False
        ratio = height / reference
        fresh = t - state[:, 3] < HEIGHT_SETTLE_SECONDS
        uncut = ~cut
        beyond = ratio > HEIGHT_JUMP_RATIO
        beyond |= ratio * HEIGHT_JUMP_RATIO < 1.0
        beyond &= uncut
        jumped = beyond & fresh
        if np.count_nonzero(beyond ^ jumped):
            self._settle_height(rows, xyxy, state, beyond ^ jumped, t)
        fixed = xyxy
        if np.count_nonzero(jumped):
            fixed = xyxy.copy()
            fixed[jumped] = self._redrawn(xyxy[jumped], state[jumped])
        whole = uncut ^ jumped                          # uncut and not jumped: jumped boxes are uncut
        # The reference follows whole boxes half-way each frame: a borderline partial box taken
        # for whole does not become the height the next whole box is judged by.
        followed = np.sqrt(reference * height)
        np.copyto(followed, height, where=~fresh | np.isnan(followed))
        np.copyto(state[:, 0], followed, where=whole)
        np.copyto(state[:, 1:3], xyxy[:, 1::2], where=whole[:, None])
        np.copyto(state[:, 3], t, where=whole)
        self._whole[rows] = state
        return fixed

    @staticmethod
    def _redrawn(xyxy: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Boxes re-drawn at their tracks' reference height (state: _whole's rows) from the edge
        that moved less since the last whole box."""
        fixed = xyxy.copy()
        top, bottom, reference = xyxy[:, 1], xyxy[:, 3], state[:, 0]
        keep_top = np.abs(top - state[:, 1]) <= np.abs(bottom - state[:, 2])
        fixed[:, 3] = np.where(keep_top, top + reference, bottom)
        fixed[:, 1] = np.where(keep_top, top, bottom - reference)
        return fixed

    def _settle_height(self, rows, xyxy, state, settled, t: float) -> None:
        """A changed height held past HEIGHT_SETTLE_SECONDS is the object's own from now on (it is
        taken as whole). If it was seen just before (not a track coming back after a gap of more
        than NOISE_GAP_SECONDS: a car that closed in while hidden) and the anchor the re-drawn box
        would keep lies SETTLE_AWAY of the old height from the box's own, the edge that moved is
        the anchor's: the track's box is another object's now (a first box merged over two people,
        an id switch), and what the old one did on the lines is not this one's: its sides start over."""
        settled = settled & (t - self._seen.take(rows) <= NOISE_GAP_SECONDS)
        weights = ANCHOR_WEIGHTS[self.counting.anchor]
        kept = self._redrawn(xyxy[settled], state[settled]) @ weights
        moved = np.hypot(*(xyxy[settled] @ weights - kept).T)
        other = rows[settled][moved > SETTLE_AWAY * state[settled, 0]]
        self._side[other] = 0
        self._counted[other] = 0
        self._reverse_at[other] = NO_TIME

    def _unsteady(self, rows, xyxy, points, cut, t: float) -> np.ndarray:
        """(N,) which boxes jumped in size away from their track's steady size: they decide no side.
        A box that stays so for JUMP_SETTLE_SECONDS is the track's steady one from then on; if its
        anchor is also far from the last steady one's, the track has become another object and its
        sides start over (nothing the old object did counts for it). Boxes cut by the frame are
        partial by nature: they neither jump nor set the steady size."""
        size = np.maximum(xyxy[:, 2:] - xyxy[:, :2], 1.0)
        steady_size = self._steady.take(rows, 0)
        uncut = ~cut
        odd = box_jumped(steady_size, size)
        odd &= uncut
        if not np.count_nonzero(odd):                   # nearly always: no box jumped, none settles
            self._odd_since[rows] = NO_TIME
        else:
            since = np.where(odd, np.minimum(self._odd_since[rows], t), NO_TIME)
            settled = odd & (t - since >= JUMP_SETTLE_SECONDS)
            if np.count_nonzero(settled):
                moved = np.hypot(*(points[settled] - self._steady_at[rows[settled]]).T)
                other = rows[settled][moved > JUMP_AWAY * self._steady[rows[settled], 1]]
                self._side[other] = 0
                self._counted[other] = 0
                self._reverse_at[other] = NO_TIME
                odd &= ~settled
                since[settled] = NO_TIME
            self._odd_since[rows] = since
        # Each track's row is fetched, updated where the box is steady and written back whole:
        # fewer numpy calls than indexing the steady rows out on both sides (rows are unique).
        steady = (uncut ^ odd)[:, None]                 # uncut and not odd: odd boxes are uncut
        np.copyto(steady_size, size, where=steady)
        self._steady[rows] = steady_size
        steady_at = self._steady_at.take(rows, 0)
        np.copyto(steady_at, points, where=steady)
        self._steady_at[rows] = steady_at
        return odd

    def _band(self, rows: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Each track's band: (N, 1) a share of its box's height with floors (band_width), or (N, L)
        widened to hysteresis_noise times its own anchor noise across each line."""
        band = band_width(xyxy, self.counting, self._input_px)
        if not self.counting.hysteresis_noise:
            return band
        return np.maximum(band, noise_band(self._anchor_noise(rows), self._geometry, self.counting.hysteresis_noise))

    def _anchor_noise(self, rows: np.ndarray) -> np.ndarray:
        """(N, 3) each track's anchor residual covariance (var x, var y, cov xy): the average over
        what it has been seen doing so far while that is shorter than NOISE_SECONDS (a young track's
        running average would start near zero and trust its first jumps)."""
        noise = self._anchor.take(rows, 0)[:, 6:10]
        if not NOISE_UNBIASED:          # bench/ablate.py measures the average without this
            return noise[:, :3]
        return noise[:, :3] / np.maximum(noise[:, 3:], 1e-9)

    def _measure_noise(self, rows, points, height, whole, t: float) -> None:
        """Each track's anchor noise. An alpha-beta filter predicts the anchor; the residual's
        covariance is averaged over NOISE_SECONDS. A track's first anchor (or its first after a gap,
        or one that lands more than NOISE_LEAP box heights from the prediction: another object's
        box) starts the filter over, the next gives it a velocity, and the ones after are measured.
        Only whole boxes (not cut, not jumped) count. Columns of _anchor: time, x, y, vx, vy,
        velocity known, var x, var y, cov xy, weight the average has gathered (1 = settled), and the
        time step of the last update (_spikes recovers that update's residual and prior noise)."""
        if np.count_nonzero(whole) < len(whole):
            rows, points, height = rows[whole], points.compress(whole, 0), height[whole]
        state = self._anchor.take(rows, 0)
        age = t - state[:, 0]
        dt = np.minimum(np.maximum(age, 1e-3), NOISE_GAP_SECONDS)[:, None]
        predicted = state[:, 3:5] * dt
        predicted += state[:, 1:3]
        residual = points - predicted
        # The residual's spread (x^2, y^2, xy, and the weight 1) in one buffer, which the leap
        # test reads too. Rows not measured are left unmasked: their average is not added to
        # (where=measured below), and the velocity and position take the other branch for them.
        spread = np.empty((len(rows), 4))
        np.multiply(residual, residual, out=spread[:, :2])
        np.multiply(residual[:, 0], residual[:, 1], out=spread[:, 2])
        spread[:, 3] = 1.0
        moving = state[:, 5] > 0
        leap = spread[:, 0] + spread[:, 1] > np.square(NOISE_LEAP * height)
        leap &= moving
        restart = age > NOISE_GAP_SECONDS
        restart |= leap
        kept = ~restart
        measured = (moving & kept)[:, None]
        # average += gain * (spread - average), gain = -expm1(-dt / NOISE_SECONDS), written with
        # the signs moved (exact in floating point): one operation fewer on each side.
        loss = np.expm1(dt / -NOISE_SECONDS)
        spread -= state[:, 6:10]
        spread *= loss
        np.subtract(state[:, 6:10], spread, out=state[:, 6:10], where=measured)
        # Each branch written where it applies (out=, where=) instead of np.where over two whole
        # temporaries: the same values, fewer numpy calls. A filter that starts over takes the
        # step from its old position as its velocity, and this anchor as its position.
        velocity = points - state[:, 1:3]
        velocity /= dt
        step = NOISE_BETA * residual
        step /= dt
        np.add(state[:, 3:5], step, out=velocity, where=measured)
        np.multiply(velocity, kept[:, None], out=state[:, 3:5])
        state[:, 1:3] = points
        residual *= NOISE_ALPHA
        np.add(predicted, residual, out=state[:, 1:3], where=measured)
        state[:, 5] = kept
        state[:, 0] = t
        state[:, 10] = dt[:, 0]
        self._anchor[rows] = state

    def _last_anchor(self, rows: np.ndarray) -> np.ndarray:
        return self._box[rows] @ ANCHOR_WEIGHTS[self.counting.anchor]

    def _forget(self, t: float) -> None:
        """Drop tracks unseen for forget_seconds, so the state stays as small as the scene."""
        keep = (np.abs(t - self._seen[:self._count]) <= self.counting.forget_seconds).nonzero()[0]
        if len(keep) == self._count:
            return
        self._keep_rows(keep)
        self._reindex()

    def _reindex(self) -> None:
        self._order = np.argsort(self._ids[:self._count], kind="stable")
        self._sorted_ids = self._ids[self._order]

    def __len__(self) -> int:
        """Tracks the counter remembers."""
        return self._count
