"""Big host arrays in huge-page mappings of their own: the same arrays as NumPy's, placed on 2 MiB."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from liqdesk.core import hostmem


@pytest.mark.parametrize("shape", [7, (3, 5), 0, hostmem.MIN_BYTES // 8 + 1, (1001, 1000)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int8])
def test_empty_and_zeros_are_arrays_of_the_shape_and_type_asked(shape, dtype) -> None:
    z = hostmem.zeros(shape, dtype)
    e = hostmem.empty(shape, dtype)
    want = np.zeros(shape, dtype)
    for a in (z, e):
        assert a.shape == want.shape and a.dtype == want.dtype
        assert a.flags.c_contiguous and a.flags.writeable
    np.testing.assert_array_equal(z, want)
    e[...] = 1
    assert (e == 1).all()


def test_big_arrays_start_on_a_huge_page_and_small_ones_are_numpys() -> None:
    big = hostmem.empty(hostmem.MIN_BYTES // 8 + 3)
    small = hostmem.empty(1000)
    if hostmem._ADVICE is not None:  # Linux
        assert big.ctypes.data % hostmem.HUGE_PAGE == 0
        assert isinstance(big.base, np.ndarray)  # a view of its own mapping
    assert small.base is None


def test_a_mapping_outlives_every_view_of_it() -> None:
    a = hostmem.zeros((600, 1000))
    row = a[599]
    del a
    gc.collect()
    row[:] = 2.0  # still mapped: the view holds it
    assert row.sum() == 2000.0
