"""Big host arrays in their own huge-page mappings: one page fault per 2 MiB, and a free that is one unmap.

A build writes tens of MB of fresh memory (a month of levels, the grids). Through the C allocator that
memory is mapped in 4 KiB pages on first touch, a page fault per page, and given back page range by page
range when freed (or kept, or trimmed, as the allocator's thresholds of the moment decide). When several
engines build at once in one process (an aggregate) the threads' faults and unmaps contend in the kernel
and cost more than the build's arithmetic. So arrays of `MIN_BYTES` and more get an anonymous mapping of
their own, on a 2 MiB boundary and advised to use transparent huge pages: first touch maps 2 MiB at a
time, and dropping the array's last reference unmaps it at once. A fresh mapping reads as zeros, so
`zeros` costs nothing more than `empty`. Without huge-page advice (not Linux), or for small arrays, they
are plain NumPy arrays.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import Any

import numpy as np

HUGE_PAGE = 2 << 20
MIN_BYTES = 2 << 20  # smaller arrays fault little, and a huge page would be mostly empty
_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)


def empty(shape: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """np.empty (its contents are zeros when it has a mapping of its own)."""
    return _array(shape, dtype, zero=False)


def zeros(shape: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """np.zeros."""
    return _array(shape, dtype, zero=True)


def _array(shape: int | tuple[int, ...], dtype: Any, *, zero: bool) -> np.ndarray:
    dt = np.dtype(dtype)
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    if nbytes < MIN_BYTES or _ADVICE is None:
        return np.zeros(dims, dt) if zero else np.empty(dims, dt)
    size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
    try:
        # private (a shared mapping is file memory, which huge-page advice does not reach); room to start on a
        # 2 MiB boundary
        block = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (
        OSError
    ):  # out of address space or mappings: the allocator's way (it raises MemoryError if it too fails)
        return np.zeros(dims, dt) if zero else np.empty(dims, dt)
    raw = np.frombuffer(block, np.uint8)  # the array keeps the mapping alive; the last reference unmaps it
    start = -raw.ctypes.data % HUGE_PAGE
    with contextlib.suppress(OSError):  # huge pages off: still one mapping, in small pages
        block.madvise(_ADVICE, start, size)
    out: np.ndarray = raw[start : start + nbytes].view(dt).reshape(dims)
    return out
