"""The C allocator's policy for a process that builds models all day (Linux with glibc; elsewhere nothing).

glibc moves its thresholds as the process runs: a block is mapped apart or taken from the heap depending
on the largest block freed so far, and the heap's free top is given back to the system as soon as it
passes twice that. A model build allocates its per-bar arrays and temporaries (hundreds of KB to a few MB
each) afresh every time; with the moving thresholds they are often mapped and faulted in page by page on
one build and given back after it, again and again. An aggregate of several venues, whose engines all
stay alive, pays it most. Fixed instead, from the start:

- blocks below 32 MiB (glibc's own upper bound for its moving threshold) come from the heap, so a build
  reuses the memory the last one freed; the engine's big arrays do not go through here (core.hostmem maps
  them apart, in huge pages);
- the heap keeps up to 64 MiB free at its top for the next build instead of trimming it.

Measured by tests/benchmarks/aggregate.py, which sets the same policy: a four-venue build on one thread
costs 4.0× one venue with it and 4.6× without (the engines' memory faulted in again). Environment settings
of the allocator (MALLOC_*_, GLIBC_TUNABLES) win: the policy is then left to them; LIQDESK_DEFAULT_ALLOCATOR=1
keeps glibc's own.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 32 << 20  # glibc's maximum for its moving threshold
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
_M_MMAP_THRESHOLD = -3
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES",
        "LIQDESK_DEFAULT_ALLOCATOR")  # fmt: skip


def set_policy() -> bool:
    """Fix the thresholds (see the module); False where this is not glibc or the environment decides."""
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _ENV):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl's mallopt does nothing)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
