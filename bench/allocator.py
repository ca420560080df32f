"""One allocator state for every measurement: glibc's malloc thresholds, fixed.

asyncio's StreamReader copies every received byte into a fresh ``bytes``; how much
that costs depends on where glibc takes the memory from.  Its mmap and trim
thresholds adapt to what a process has freed so far, so a young process pays for
new, page-faulted memory on each large read while an older one reuses its heap.
Measured on the kernel's receive case (2 CPUs, pinned): ~700 MB/s in a new
process, 1,450-2,200 MB/s with the thresholds fixed at the values below, and the
same 1,600-2,200 MB/s that a bench run's later rounds reached by themselves.
Fixing them gives every round, stack and loop the state of a long-running
process instead of whichever state the previous measurement left.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 64 << 20
MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for its own adaptive threshold


def steady() -> bool:
    """Fix the thresholds in this process; False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok)
