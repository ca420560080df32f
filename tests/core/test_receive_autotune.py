"""Receive-buffer autotuning (Linux ``tcp_rcv_space_adjust``).

The default receive buffer starts at 128 KiB and grows toward 6 MiB only while the
application reads more per round trip than it did before: a fast reader gets the
window a fast sender needs (four times what arrived, during slow start), a slow
one never has megabytes queued for it.  What is offered is gated separately, like
Linux's ``rcv_ssthresh``: a reader that took a burst and then paused is offered
twice the burst, not the buffer the burst earned.
"""

from __future__ import annotations

import itertools

from aiotcp.core.options import RECV_BUFFER_AUTOTUNE_MAX, RECV_BUFFER_AUTOTUNE_START
from aiotcp.core.seq import seq_sub
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


# -- the gate on what is offered (Linux's rcv_ssthresh) ------------------------


def paused_after_reading(t: Harness, bursts: list[int]) -> tuple[int, int]:
    """The peer sends ``bursts[i]`` bytes in round trip ``i`` to a reader that takes
    everything at once; then the reader stops, and the peer sends into whatever
    window it is offered until the window closes.  Returns (bytes read, bytes
    taken in after the pause), checking on the way that the window never offered
    more than the buffer holds."""
    read = 0
    for burst in bursts:
        sent = 0
        while sent < burst:
            n = min(CHUNK, burst - sent, t.conn.rcv_wnd)
            assert n > 0, "the window closed on a reader that keeps up"
            t.recv("A", payload=bytes(n))
            sent += n
            read += len(t.read())
            t.output()
        t.advance(0.010)
    for _ in range(1000):  # the reader sleeps; the peer fills what it is offered
        window = t.conn.rcv_wnd
        if window == 0:
            break
        # Never more than the buffer holds (the scaled field rounds up: < 128 B).
        assert window < t.conn.recv_buffer.free + (1 << t.conn.rcv_wscale)
        feed(t, window, read=False)
    assert t.conn.rcv_wnd == 0, "the window never closed"
    return read, t.conn.readable_bytes


def test_a_reader_that_takes_a_burst_and_pauses_is_offered_what_it_earned() -> None:
    """The interop test ``test_a_slow_reader_closes_the_window_and_loses_nothing``
    in small.  A reader takes a megabyte much faster than the round trips before
    (there: a kernel sender on a link whose round trip is a fraction of our 1 ms
    floor), then sleeps.  Autotuning made the buffer 6 MiB for that burst, but
    the paused reader is offered only what it earned by reading (twice what it
    took, on top of the initial buffer), so the window closes long before the
    buffer is full.  Without the gate it stayed open until 6 MiB were queued."""
    t = autotuned()
    read, taken = paused_after_reading(t, [10 * MSS, 40 * MSS, 500_000, 500_000])
    assert read == 50 * MSS + 1_000_000
    assert taken <= RECV_BUFFER_AUTOTUNE_START + 2 * read
    assert taken < t.conn.recv_buffer.capacity // 2  # the buffer could take far more


def test_a_reader_that_never_reads_is_offered_only_the_initial_buffer() -> None:
    t = autotuned()
    t.conn.recv_buffer.capacity = RECV_BUFFER_AUTOTUNE_MAX  # as if autotuned before
    _, taken = paused_after_reading(t, [])
    assert taken == RECV_BUFFER_AUTOTUNE_START


def test_the_gate_grows_by_twice_what_is_read_and_never_past_the_buffer() -> None:
    """Linux's rcv_ssthresh grows by two segments per in-sequence segment while the
    buffer has room (``tcp_grow_window``); aiotcp's by twice what the application
    takes, which for a reader that keeps up is the same."""
    t = autotuned()
    conn = t.conn
    assert conn._rcv_ssthresh == RECV_BUFFER_AUTOTUNE_START == conn.recv_buffer.capacity
    conn.recv_buffer.capacity = 1 << 20  # autotuning made room ...
    assert conn.rcv_wnd == RECV_BUFFER_AUTOTUNE_START  # ... which is not offered yet
    t.recv("A", payload=bytes(10 * MSS))
    t.output()
    assert conn._rcv_ssthresh == RECV_BUFFER_AUTOTUNE_START  # arriving earns nothing
    assert 0 <= conn.rcv_wnd - (RECV_BUFFER_AUTOTUNE_START - 10 * MSS) < 1 << conn.rcv_wscale
    t.read()
    assert conn._rcv_ssthresh == RECV_BUFFER_AUTOTUNE_START + 2 * 10 * MSS
    t.recv("A", payload=bytes(MSS))
    t.output()
    # The gate, less the byte that waits unread, rounded up to the window scale.
    assert 0 <= conn.rcv_wnd - (conn._rcv_ssthresh - MSS) < 1 << conn.rcv_wscale
    for _ in range(100):
        t.recv("A", payload=bytes(20 * MSS))
        t.read()
        t.output()
    assert conn._rcv_ssthresh == conn.recv_buffer.capacity  # capped by the buffer


def test_the_gate_never_shrinks_the_advertised_window() -> None:
    """RFC 9293 §3.8.6: the right edge stays where it was advertised, even when
    less is offerable now than was offered before."""
    t = autotuned()
    conn = t.conn
    edge = conn.rcv_adv
    conn.recv_buffer.capacity = 1 << 20
    conn._rcv_ssthresh = 16 * MSS  # less than the 128 KiB already advertised
    t.recv("A", payload=bytes(2 * MSS))
    t.output()
    assert 0 <= seq_sub(conn.rcv_adv, edge) < 1 << conn.rcv_wscale  # scaling rounds up
    t.recv("A", payload=bytes(conn.rcv_wnd))  # the rest of the advertised window
    t.output()
    assert conn.rcv_wnd == 0
    assert conn.readable_bytes >= RECV_BUFFER_AUTOTUNE_START  # all of it was taken


def test_a_fixed_buffer_is_offered_whole() -> None:
    """SO_RCVBUF semantics: a buffer the application sets is not gated."""
    t = established(opts(window_scaling=True, recv_buffer=1 << 20), mss=MSS, wscale=7)
    assert t.conn.rcv_wnd == 1 << 20
    t = autotuned()
    t.conn.set_option("recv_buffer", 1 << 20, t.now)
    t.recv("A", payload=bytes(MSS))
    t.output()
    assert 0 <= t.conn.rcv_wnd - ((1 << 20) - MSS) < 1 << t.conn.rcv_wscale


def test_the_window_keeps_ahead_of_a_sender_in_slow_start() -> None:
    """Linux's ``tcp_rcv_space_adjust`` reasoning: a sender doubling its window every
    round trip needs, from the window sent now, four times what arrived in the last
    one.  Here the peer sends twice the last round trip's bytes each round trip, as
    slow start does, and is never held back by the window until the 6 MiB ceiling."""
    t = autotuned()
    burst = 10 * MSS  # the initial window
    limited = []
    while burst < RECV_BUFFER_AUTOTUNE_MAX // 4:
        window = t.conn.rcv_wnd
        limited.append(window < burst)
        feed(t, min(burst, window), read=True)
        burst *= 2
    assert not any(limited), limited
