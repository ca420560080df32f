"""RFC 9293 MUSTs that no other core test pinned down (see ``aiotcp.conformance.musts``).

The MUST table in ``docs/conformance.md`` names a test for every requirement aiotcp
implements; these are the ones a scripted peer cannot reach (the stack's own window
must be zero, or several segments must arrive in one batch) and that had no
dedicated core test yet.
"""

from __future__ import annotations

import struct

from aiotcp.core import checksum
from aiotcp.core.events import CloseReason, ConnectionReset, UrgentDataReceived
from aiotcp.core.segment import (
    OPT_EOL,
    OPT_MSS,
    OPT_NOP,
    OPT_WSCALE,
    SYN,
    Segment,
    decode,
    encode,
)
from aiotcp.core.state import State
from aiotcp.testing.corekit import LOCAL_IP, REMOTE_IP, R, established, opts


def test_rst_is_processed_with_a_zero_receive_window() -> None:
    """MUST-66: with RCV.WND = 0 a RST at RCV.NXT still resets the connection."""
    t = established(opts(recv_buffer=10))
    t.recv("PA", payload=b"0123456789")
    t.expect("A", ack=R(11), window=0)
    t.recv("R")
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.RESET
    assert ConnectionReset in t.event_types()


def test_urgent_pointer_is_processed_with_a_zero_receive_window() -> None:
    """MUST-66: with RCV.WND = 0 the urgent pointer of an acceptable segment is still
    taken (the application hears where the urgent data ends)."""
    t = established(opts(recv_buffer=10))
    t.recv("PA", payload=b"0123456789")
    t.expect("A", ack=R(11), window=0)
    t.recv("AU", urgent=5)
    assert UrgentDataReceived(15) in t.events
    assert t.state is State.ESTABLISHED


def test_a_batch_of_segments_is_acknowledged_once() -> None:
    """MUST-58/59: segments that arrive together are all processed before the ACK,
    so one ACK covers the batch (with delayed ACKs off each alone gets one)."""
    t = established()
    for i in range(3):
        t.recv("PA", payload=bytes([48 + i]) * 10)
    t.expect("A", ack=R(31))
    t.expect_nothing()
    assert t.read() == b"0" * 10 + b"1" * 10 + b"2" * 10


def test_mss_option_only_on_syn_segments() -> None:
    """MUST-65: the MSS option goes in the SYN (and SYN-ACK), never on later segments."""
    t = established(opts(nodelay=True))
    t.send(b"x" * 3000)
    for seg in (t.expect("A"), t.expect("A"), t.expect("PA")):
        assert seg.mss is None
        assert encode(seg, LOCAL_IP, REMOTE_IP)[12] >> 4 == 5  # a bare 20-byte header


def test_options_not_on_a_word_boundary_are_parsed() -> None:
    """MUST-64 (and MUST-4: EOL, NOP, MSS): MSS at offset 1 and window scale at offset
    6, then EOL and zero padding (MUST-69), parse like aligned ones."""
    options = bytes((OPT_NOP, OPT_MSS, 4, 0x05, 0xB4, OPT_NOP, OPT_WSCALE, 3, 7, OPT_EOL, 0, 0))
    offset = (20 + len(options)) // 4 << 4
    raw = bytearray(struct.pack("!HHIIBBHHH", 80, 49152, 1, 0, offset, SYN, 65535, 0, 0))
    raw += options
    csum = checksum.tcp_checksum(REMOTE_IP, LOCAL_IP, raw)
    raw[16:18] = csum.to_bytes(2, "big")
    parsed = decode(bytes(raw), REMOTE_IP, LOCAL_IP)
    assert isinstance(parsed, Segment)
    assert (parsed.mss, parsed.wscale, parsed.unknown_options) == (1460, 7, 0)
