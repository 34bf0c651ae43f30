"""The C allocator's policy for a process that builds models all day (Linux with glibc; elsewhere nothing).

glibc moves its thresholds as the process runs: a block is mapped apart or taken from the heap depending
on the largest block freed so far, and the heap's free top is given back to the system as soon as it
passes twice that. A model build allocates its per-bar arrays (a few hundred KB each) afresh every time,
and with the moving thresholds they are mapped and faulted in page by page on one build and given back
after it, again and again; an aggregate of several venues, whose engines all stay alive, pays it most.
Fixed instead:

- blocks of 2 MiB and more are mapped apart and unmapped when freed (the big arrays; core.hostmem gives
  the engine's its own huge-page mappings), so freeing a month of levels returns its memory at once;
- the heap keeps up to 64 MiB free at its top for the next build instead of trimming it.

Measured by tests/benchmarks/aggregate.py (which sets the same policy): without it a four-venue build
re-faults its memory and costs 4.6× one venue on one thread, with it 4.0×. Environment settings of the
allocator (MALLOC_*_, GLIBC_TUNABLES) win: the policy is then left to them; LIQDESK_DEFAULT_ALLOCATOR=1 keeps
glibc's own.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 2 << 20
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
