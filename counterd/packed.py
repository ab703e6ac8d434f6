"""Per-object state held as numpy arrays, one row per object, for the tracker and the counter.

Live rows are packed at the front, [0, _count), so every per-frame operation is a slice or a
fancy index over them; the arrays grow by doubling and are compacted when objects go.
"""
from __future__ import annotations

import numpy as np


class PackedRows:
    """Mix-in: a subclass names its state arrays (all with one row per object) in _ARRAYS."""

    _ARRAYS: tuple[str, ...] = ()
    _count: int

    def _grow(self, needed: int) -> None:
        """Room for at least `needed` rows; live rows are copied over."""
        first = getattr(self, self._ARRAYS[0])
        capacity = max(needed, 2 * len(first))
        for name in self._ARRAYS:
            old = getattr(self, name)
            new = np.zeros((capacity,) + old.shape[1:], old.dtype)
            new[:self._count] = old[:self._count]
            setattr(self, name, new)

    def _add_rows(self, k: int) -> slice:
        """k new live rows after the others (contents left to the caller); their slice."""
        start, end = self._count, self._count + k
        if end > len(getattr(self, self._ARRAYS[0])):
            self._grow(end)
        self._count = end
        return slice(start, end)

    def _keep_rows(self, keep: np.ndarray) -> None:
        """Keep only these live rows (ascending indices), packed at the front in that order."""
        for name in self._ARRAYS:
            arr = getattr(self, name)
            arr[:len(keep)] = arr[keep]
        self._count = len(keep)
