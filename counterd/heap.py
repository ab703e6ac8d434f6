"""Keep the hot loop's per-frame arrays on the heap (glibc).

The tracker makes a few (tracks x detections) float32 temporaries every frame: 160 KB each at
200 objects, above glibc's default 128 KB mmap threshold, so each was mapped fresh, page-faulted
in and unmapped again, and box_iou ran at half speed. glibc raises that threshold by itself
after the first large free, which is why importing scipy (whose OpenBLAS allocates and frees big
buffers at start) used to hide the cost. Here it is set on purpose: arrays up to 4 MiB come
from the heap, and up to 8 MiB of freed heap top is kept for the next frame instead of being
returned to the kernel. Elsewhere than glibc this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 8 << 20


def _glibc_function(name: str):
    """A function of the C library, or None where it is missing (not glibc)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def keep_arrays_on_the_heap() -> bool:
    """True when glibc took the settings."""
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def give_back_freed_memory() -> bool:
    """Return freed heap to the kernel now (malloc_trim): after a one-off burst of allocations,
    such as the copies of a model rewritten at load (counterd/detect/fitinput.py), which would
    otherwise stay in the process's RSS (about 20 MB for yolox_nano). True when glibc did it."""
    malloc_trim = _glibc_function("malloc_trim")
    return malloc_trim is not None and bool(malloc_trim(0))
