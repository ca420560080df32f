"""Small modules on their own: buffers, options, events, ISN helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiotcp.core.buffers import ReceiveBuffer, SendBuffer
from aiotcp.core.events import CloseReason, ConnectionClosed, DataReceived
from aiotcp.core.isn import timestamp_offset
from aiotcp.core.options import TcpOptions
from aiotcp.testing.corekit import LOCAL, REMOTE, SECRET

# -- SendBuffer --------------------------------------------------------------------


def test_send_buffer_accepts_up_to_capacity() -> None:
    buf = SendBuffer(10)
    assert buf.write(b"abcdefgh") == 8
    assert buf.write(b"xyz") == 2
    assert buf.space == 0 and len(buf) == 10


def test_send_buffer_peek_and_consume() -> None:
    buf = SendBuffer(100)
    buf.write(memoryview(b"0123456789"))
    assert buf.peek(3, 4) == b"3456"
    buf.consume(5)
    assert buf.peek(0, 100) == b"56789"
    assert buf.space == 95


# -- ReceiveBuffer -----------------------------------------------------------------


def test_receive_buffer_in_order() -> None:
    buf = ReceiveBuffer(100)
    assert buf.insert(0, b"hello", 100) == 5
    assert buf.readable == 5 and buf.free == 95
    assert buf.read() == b"hello"


def test_receive_buffer_read_chunks_never_splits_and_keeps_a_lone_chunk() -> None:
    buf = ReceiveBuffer(1 << 20)
    big = bytes(range(256)) * 256  # one GRO-sized segment: 64 KiB
    buf.insert(0, big, 1 << 20)
    for part in (b"ab", b"cd", b"e" * 10):
        buf.insert(0, part, 1 << 20)  # offsets are relative to RCV.NXT
    first = buf.read_chunks(1000)
    assert first == big  # larger than the limit, still whole
    assert buf.read_chunks(5) == b"abcd"  # joined while they fit
    assert buf.read_chunks(5) == b"e" * 10  # the next one alone, not cut
    assert buf.readable == 0 and buf.read_chunks(5) == b""


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=30), st.integers(1, 200))
def test_receive_buffer_read_chunks_returns_the_stream(parts: list[bytes], limit: int) -> None:
    buf = ReceiveBuffer(1 << 20)
    for part in parts:
        buf.insert(0, part, 1 << 20)
    out = b""
    while buf.readable:
        before = buf.readable
        got = buf.read_chunks(limit)
        assert got and buf.readable == before - len(got)
        out += got
    assert out == b"".join(parts)


def test_receive_buffer_trims_duplicate_prefix() -> None:
    buf = ReceiveBuffer(100)
    buf.insert(0, b"abc", 100)
    assert buf.insert(-2, b"bcde", 100) == 2
    assert buf.read() == b"abcde"


def test_receive_buffer_trims_to_limit() -> None:
    buf = ReceiveBuffer(100)
    assert buf.insert(0, b"abcdef", 4) == 4
    assert buf.read() == b"abcd"


def test_receive_buffer_out_of_order_then_fill() -> None:
    buf = ReceiveBuffer(100)
    assert buf.insert(5, b"fghij", 100) == 0
    assert buf.has_out_of_order and buf.out_of_order_bytes == 5
    assert buf.insert(0, b"abcde", 100) == 10
    assert not buf.has_out_of_order
    assert buf.read() == b"abcdefghij"


def test_receive_buffer_overlapping_out_of_order_ranges_merge() -> None:
    buf = ReceiveBuffer(100)
    buf.insert(10, b"KLMNO", 100)
    buf.insert(13, b"NOPQR", 100)
    buf.insert(5, b"FGHIJK", 100)
    assert buf.out_of_order_bytes == 13
    assert buf.sack_blocks(1000, 4) == ((1005, 1018),)
    buf.insert(0, b"ABCDE", 100)
    assert buf.read() == b"ABCDEFGHIJKLMNOPQR"


def test_receive_buffer_range_limit() -> None:
    buf = ReceiveBuffer(100, max_ranges=1)
    buf.insert(10, b"x", 100)
    buf.insert(20, b"y", 100)
    assert buf.ooo_dropped == 1 and buf.out_of_order_bytes == 1


def test_receive_buffer_sack_blocks_wrap_sequence_space() -> None:
    buf = ReceiveBuffer(100)
    buf.insert(10, b"x" * 10, 100)
    assert buf.sack_blocks(2**32 - 5, 4) == ((5, 15),)


def test_receive_buffer_drop_out_of_order_keeps_in_order_bytes() -> None:
    buf = ReceiveBuffer(100)
    buf.insert(0, b"abc", 100)
    buf.insert(10, b"z", 100)
    buf.drop_out_of_order()
    assert buf.readable == 3 and not buf.has_out_of_order
    assert buf.read() == b"abc"


# -- options / events / ISN helpers ------------------------------------------------


def test_options_defaults_are_linux_like() -> None:
    o = TcpOptions()
    assert o.msl * 2 == 60.0
    assert o.fin_wait_2_timeout == 60.0
    assert (o.syn_retries, o.synack_retries) == (6, 5)
    assert o.delayed_ack_timeout == 0.040
    assert (o.rto_min, o.rto_max) == (0.2, 120.0)
    assert o.rfc1337 and not o.keepalive and not o.nodelay


def test_options_reject_unknown_names() -> None:
    with pytest.raises(TypeError):
        TcpOptions(no_such_option=1)  # type: ignore[call-arg]


def test_options_take_0_and_1_for_booleans_like_setsockopt() -> None:
    o = TcpOptions().replace(nodelay=1, keepalive=1, sack=0, keepalive_idle=5)
    assert (o.nodelay, o.keepalive, o.sack) == (True, True, False)
    assert type(o.nodelay) is bool and type(o.keepalive_idle) is float


@pytest.mark.parametrize(
    ("name", "value"),
    [("mss", "1460"), ("nodelay", 2), ("nodelay", "yes"), ("mss", True), ("msl", None)],
)
def test_options_of_the_wrong_type_are_named_in_the_error(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"TCP option {name} must be"):
        TcpOptions().replace(**{name: value})


def test_options_replace_names_an_unknown_option() -> None:
    with pytest.raises(TypeError, match="unknown TCP option 'nodelays'"):
        TcpOptions().replace(nodelays=True)


def test_options_replace_returns_copy() -> None:
    o = TcpOptions()
    p = o.replace(nodelay=True)
    assert p.nodelay and not o.nodelay


def test_set_option_gives_a_connection_new_options_and_leaves_shared_ones_alone() -> None:
    """Connections share one ``TcpOptions`` per distinct set (``Stack.options``): a
    live ``setsockopt`` must replace the connection's own reference, never edit the
    object the others still hold."""
    from aiotcp.core.connection import Connection

    shared = TcpOptions().replace(nodelay=True, mss=1200, congestion="reno")
    a = Connection(LOCAL, REMOTE, shared, SECRET, 0.0)
    b = Connection((LOCAL[0], LOCAL[1] + 1), REMOTE, shared, SECRET, 0.0)
    a.set_option("nodelay", False, 0.0)
    a.set_option("congestion", "cubic", 0.0)
    assert a.options is not shared and not a.options.nodelay
    assert a.options.congestion == "cubic" and a.options.mss == 1200
    assert b.options is shared and shared.nodelay and shared.congestion == "reno"


def test_advertised_mss_follows_mtu() -> None:
    assert TcpOptions(mtu=1500).advertised_mss() == 1460
    assert TcpOptions(mtu=9000, mss=8960).advertised_mss() == 8960
    assert TcpOptions(mtu=576).advertised_mss() == 536
    assert TcpOptions(mtu=1500).advertised_mss(ipv6=True) == 1440  # a 40-byte IPv6 header
    assert TcpOptions(mtu=1280).advertised_mss(ipv6=True) == 1220


def test_close_reasons_map_to_kernel_errors() -> None:
    assert CloseReason.NORMAL.exception() is None
    assert isinstance(CloseReason.RESET.exception(), ConnectionResetError)
    assert CloseReason.TIMEOUT == "timeout"


def test_events_are_small_value_objects() -> None:
    assert DataReceived(3) == DataReceived(3)
    assert ConnectionClosed(CloseReason.RESET).reason is CloseReason.RESET
    with pytest.raises(AttributeError):
        DataReceived(3).nbytes = 4  # type: ignore[misc]


def test_timestamp_offset_is_keyed() -> None:
    assert timestamp_offset(SECRET, LOCAL, REMOTE) != timestamp_offset(b"x", LOCAL, REMOTE)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["write", "peek", "consume"]),
            st.integers(min_value=0, max_value=20_000),
            st.integers(min_value=0, max_value=20_000),
            st.sampled_from([bytes, bytearray, memoryview]),
        ),
        max_size=60,
    )
)
def test_send_buffer_matches_a_plain_byte_string(ops: list[tuple[str, int, int, type]]) -> None:
    """Chunks, views and the small-write tail must read back exactly what was written."""
    buf = SendBuffer(50_000)
    model = bytearray()
    counter = 0
    for op, a, b, kind in ops:
        if op == "write":
            data = bytes((counter + i) & 0xFF for i in range(a))
            counter += a
            n = buf.write(kind(data))
            assert n == min(a, 50_000 - len(model))
            model += data[:n]
        elif op == "peek":
            got = buf.peek(a, b)
            assert bytes(got) == bytes(model[a : a + b])
        else:
            buf.consume(a)
            del model[: min(a, len(model))]
        assert len(buf) == len(model) and buf.space == 50_000 - len(model)


def test_connection_counters_report_every_counter() -> None:
    """``as_dict`` (what ``info()`` shows) lists its names by hand: a compiled class
    keeps no annotations to read them from, so a new counter must be added there."""
    from aiotcp.core.counters import COUNTER_NAMES, Counters

    counters = Counters()
    attributes = {n for n in dir(counters) if not n.startswith("_") and n != "as_dict"}
    assert set(COUNTER_NAMES) == attributes and len(COUNTER_NAMES) == len(attributes)
    counters.rst_in += 2
    assert counters.as_dict()["rst_in"] == 2 and list(counters.as_dict()) == list(COUNTER_NAMES)


def test_send_buffer_peek_parts_are_the_chunks_uncopied() -> None:
    """A frame across two writes goes to sendmsg as two views of the writes' own
    bytes; the growing bytearray tail of small writes is copied (it changes)."""
    a, b = bytes(range(256)) * 40, bytes(reversed(range(256))) * 40  # 10,240 each
    buf = SendBuffer(1 << 20)
    buf.write(a)
    buf.write(b)
    buf.write(b"tail")
    parts = buf.peek_parts(10_000, 10_484)
    assert [len(p) for p in parts] == [240, 10_240, 4]
    assert isinstance(parts[0], memoryview) and parts[0].obj is a
    assert parts[1] is b and type(parts[2]) is bytes
    assert b"".join(parts) == (a + b + b"tail")[10_000:] == buf.peek(10_000, 10_484)
    assert buf.peek_parts(0, len(a)) == (a,)  # a whole chunk is itself
    buf.consume(10_100)
    assert b"".join(buf.peek_parts(0, 200)) == (a + b)[10_100:10_300]


def test_a_segment_held_as_parts_joins_only_when_asked() -> None:
    from aiotcp.core.segment import Segment

    seg = Segment(1, 2, 100, 0, 0x10, 1000)
    pieces = (memoryview(b"abc"), b"defg")
    seg.set_parts(pieces)
    assert seg.payload_len == 7 and seg.seq_len == 7 and seg.parts == pieces
    assert seg.payload == b"abcdefg" and seg.parts == pieces
    assert seg == Segment(1, 2, 100, 0, 0x10, 1000, 0, b"abcdefg")
    seg.payload = b"xy"  # a plain payload replaces the parts
    assert seg.parts == (b"xy",) and seg.payload_len == 2
