"""Count: line crossings from tracks (the pipeline's fourth stage).

- counter.py: LineCounter, the per-track state and the rules that turn tracks into crossing
  events and totals (its docstring lists every rule), and CrossingEvent;
- geometry.py: the lines as arrays and pure functions over them (sides, chords, bands, boxes cut
  by the frame's edge).
"""
from counterd.count.counter import CrossingEvent, LineCounter
from counterd.count.geometry import LineGeometry, cut_by_frame, near_lines

__all__ = ["CrossingEvent", "LineCounter", "LineGeometry", "cut_by_frame", "near_lines"]
