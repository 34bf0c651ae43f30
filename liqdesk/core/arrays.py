"""Array helpers shared by the NumPy and the CuPy paths: a growable buffer and a scalar search.

Both take the array module (`xp`) they work on, so the engine keeps its state the same way on
the host and on a GPU.
"""

from __future__ import annotations

from typing import Any


class Growable:
    """An array (NumPy or CuPy) with amortised O(1) appends along axis 0."""

    def __init__(self, data: Any, xp: Any) -> None:
        self.xp = xp
        self._buf = data
        self.n = int(data.shape[0])

    @property
    def a(self) -> Any:
        """The filled rows (a view: writes go to the buffer)."""
        return self._buf[: self.n]

    def extend(self, rows: Any, *, adopt: bool = False) -> None:
        """Append rows; adopt=True lets an empty buffer take over `rows` (only for arrays its owner made)."""
        m = int(rows.shape[0])
        writeable = getattr(rows.flags, "writeable", True)  # CuPy arrays have no such flag
        if adopt and self.n == 0 and m > int(self._buf.shape[0]) and writeable:
            self._buf = self.xp.ascontiguousarray(rows)  # a build adopts its arrays: no second copy
            self.n = m
            return
        need = self.n + m
        if need > int(self._buf.shape[0]):
            # headroom, so that the first live appends after a big build do not copy everything
            cap = max(need + need // 8, 2 * int(self._buf.shape[0]), 64)
            grown = self.xp.empty((cap, *self._buf.shape[1:]), dtype=self._buf.dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown
        self._buf[self.n : need] = rows
        self.n = need

    @property
    def capacity_nbytes(self) -> int:
        """Bytes of the whole buffer (filled rows and headroom)."""
        return int(self._buf.nbytes)

    def truncate(self, n: int) -> None:
        self.n = min(self.n, n)


def count_upto(xp: Any, sorted_a: Any, value: int, side: str) -> int:
    """searchsorted for one value (CuPy takes the value as an array, not a Python int)."""
    return int(xp.searchsorted(sorted_a, xp.asarray(value, dtype=sorted_a.dtype), side))
