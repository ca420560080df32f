"""32-bit modular sequence-number arithmetic (RFC 9293 §3.4).

Sequence numbers live in a ring of size 2**32, so ``a < b`` means "b is less than
half the ring ahead of a", not an integer comparison.  Every comparison in the
core goes through these helpers so that wrap-around near 2**32 is never special.
Plain functions on ``int`` are used instead of a wrapper class: the hot path
compares several sequence numbers per segment and a class would allocate.
"""

from __future__ import annotations

from typing import Final

MOD: Final = 1 << 32
MASK: Final = MOD - 1
HALF: Final = 1 << 31


def seq_add(a: int, n: int) -> int:
    """``a + n`` on the ring (``n`` may be negative)."""
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """Signed distance from ``b`` to ``a``: positive when ``a`` is after ``b``."""
    d = (a - b) & MASK
    return d - MOD if d >= HALF else d


def seq_lt(a: int, b: int) -> bool:
    return 0 < ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    return 0 < ((a - b) & MASK) < HALF


def seq_ge(a: int, b: int) -> bool:
    return ((a - b) & MASK) < HALF


def seq_max(a: int, b: int) -> int:
    return a if seq_ge(a, b) else b


def seq_min(a: int, b: int) -> int:
    return a if seq_le(a, b) else b


def in_window(x: int, start: int, size: int) -> bool:
    """``start <= x < start + size`` on the ring (an empty window holds nothing)."""
    return ((x - start) & MASK) < size


def between(lo: int, x: int, hi: int) -> bool:
    """``lo <= x <= hi`` on the ring, as RFC 9293 writes acceptability tests."""
    return ((x - lo) & MASK) <= ((hi - lo) & MASK)
