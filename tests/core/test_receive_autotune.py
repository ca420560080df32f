"""Receive-buffer autotuning (Linux ``tcp_rcv_space_adjust``, simplified).

The default receive buffer starts at 128 KiB and grows to 6 MiB only while the
application reads more than half of it per round trip: a fast reader gets the
window a fast sender needs, a slow one never has megabytes queued for it.
"""

from __future__ import annotations

import itertools

from aiotcp.core.options import RECV_BUFFER_AUTOTUNE_MAX, RECV_BUFFER_AUTOTUNE_START
from aiotcp.testing.corekit import Harness, established, opts

MSS = 1448
CHUNK = 64 * MSS


def autotuned() -> Harness:
    t = established(opts(window_scaling=True, recv_buffer=None), mss=MSS, wscale=7)
    t.conn.rtt.sample(0.010)  # a 10 ms path
    return t


def feed(t: Harness, nbytes: int, *, read: bool) -> None:
    """The peer sends ``nbytes`` as fast as the window allows, for 10 ms."""
    sent = 0
    while sent < nbytes:
        n = min(CHUNK, nbytes - sent, t.conn.rcv_wnd)
        assert n > 0, "the window closed"
        t.recv("A", payload=bytes(n))
        sent += n
        if read:
            t.read()
        t.output()
    t.advance(0.010)


def test_window_starts_at_128k_with_linux_scale() -> None:
    t = autotuned()
    assert t.conn.recv_buffer.capacity == RECV_BUFFER_AUTOTUNE_START
    assert t.conn.rcv_wscale == 7  # chosen for the 6 MiB ceiling, as Linux does


def test_a_reader_that_keeps_up_grows_the_buffer_to_the_ceiling() -> None:
    t = autotuned()
    caps = []
    for _ in range(12):
        feed(t, t.conn.recv_buffer.capacity, read=True)
        t.read()
        caps.append(t.conn.recv_buffer.capacity)
    assert caps[-1] == RECV_BUFFER_AUTOTUNE_MAX
    assert all(b >= a for a, b in itertools.pairwise(caps))
    # At least doubling every other round trip (the peer here sends only into the
    # window it has been told about, which lags a round trip behind).
    assert all(caps[i + 2] >= min(2 * caps[i], RECV_BUFFER_AUTOTUNE_MAX) for i in range(10))
    # ... and the grown window is advertised.
    t.recv("A", payload=bytes(MSS))
    t.read()
    assert t.conn.rcv_wnd > 4 * RECV_BUFFER_AUTOTUNE_START


def test_a_reader_that_does_not_read_keeps_the_small_buffer() -> None:
    t = autotuned()
    feed(t, 100_000, read=False)
    feed(t, 20_000, read=False)
    assert t.conn.recv_buffer.capacity == RECV_BUFFER_AUTOTUNE_START
    assert t.conn.readable_bytes == 120_000


def test_a_slow_trickle_does_not_grow_the_buffer() -> None:
    t = autotuned()
    for _ in range(50):
        feed(t, 10_000, read=True)  # 10 KB per 10 ms round trip: the window is idle
    assert t.conn.recv_buffer.capacity == RECV_BUFFER_AUTOTUNE_START


def test_a_fixed_recv_buffer_never_grows() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 17), mss=MSS, wscale=7)
    t.conn.rtt.sample(0.010)
    for _ in range(5):
        feed(t, t.conn.recv_buffer.capacity, read=True)
    assert t.conn.recv_buffer.capacity == 1 << 17
