"""The one way core compiles a hot loop: numba's nopython mode, cached on disk, without the GIL.

numba has no type stubs; this wrapper keeps the compiled functions' own signatures visible to the
type checker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """`fn` compiled by numba (nopython, cache=True, nogil=True)."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))
