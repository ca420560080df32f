"""Segments merged by GRO/LRO before the raw socket sees them (veth, many NICs)."""

from __future__ import annotations

from aiotcp.testing.corekit import R, established, opts, quick_acks_spent


def test_a_gro_merged_segment_is_acked_at_once_not_delayed() -> None:
    """A 64 KB merge of 45 wire segments must not raise the receive-MSS estimate
    to 64 KB: with "ACK every second full-sized segment" the sender would then
    wait for two merges or the 40 ms delayed-ACK timer (Linux measures rcv_mss
    from gso_size for the same reason, tcp_measure_rcv_mss)."""
    t = established(opts(delayed_ack=True, recv_buffer=1 << 20, window_scaling=True))
    quick_acks_spent(t)
    t.output()
    t.recv("A", payload=bytes(45 * 1448))
    t.expect("A", ack=R(1 + 45 * 1448))
    t.recv("A", payload=bytes(1448))  # one more ordinary segment: delayed as usual
    t.expect_nothing()
