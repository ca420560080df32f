"""Property tests (hypothesis): arbitrary input never breaks the core's invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiotcp.core import buffers
from aiotcp.core import connection as connection_module
from aiotcp.core.buffers import ReceiveBuffer, SendBuffer
from aiotcp.core.segment import ACK, FIN, PSH, RST, SYN, Segment
from aiotcp.core.seq import seq_add, seq_sub
from aiotcp.core.state import State
from aiotcp.testing.corekit import (
    LOCAL,
    REMOTE,
    STATE_FIXTURES,
    L,
    R,
    established,
    opts,
)

STREAM = bytes((i * 7 + 3) % 251 for i in range(1 << 16))
FLAG_CHOICES = [ACK, ACK | PSH, ACK | FIN, RST, RST | ACK, SYN, SYN | ACK, FIN, 0, ACK | SYN | FIN]

segment_spec = st.tuples(
    st.sampled_from(FLAG_CHOICES),
    st.integers(min_value=-3000, max_value=70000),  # seq offset from the peer's ISS+1
    st.integers(min_value=0, max_value=1500),  # payload length
    st.integers(min_value=-70000, max_value=3000),  # ack offset from our ISS+1
    st.integers(min_value=0, max_value=0xFFFF),  # window
    st.sampled_from([0.0, 0.0, 0.01, 0.3, 5.0]),  # time passing before it arrives
)


def _byte_stream(first_seq: int, n: int) -> bytes:
    """The peer's bytes are a fixed function of their sequence number."""
    return bytes(((first_seq + i) & 0xFFFFFFFF) * 7 % 251 for i in range(n))


def _segment(spec: tuple[int, int, int, int, int, float]) -> Segment:
    flags, seq_off, length, ack_off, window, _ = spec
    seq = R(1 + seq_off)
    data = _byte_stream(seq_add(seq, 1 if flags & SYN else 0), length)
    return Segment(REMOTE[1], LOCAL[1], seq, L(1 + ack_off), flags, window, 0, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    state=st.sampled_from(list(STATE_FIXTURES)),
    specs=st.lists(segment_spec, max_size=25),
    app_reads=st.booleans(),
)
def test_random_segments_never_raise_or_corrupt_the_stream(
    state: State, specs: list[tuple[int, int, int, int, int, float]], app_reads: bool
) -> None:
    """Whatever arrives: no exception, one of the 11 states, bytes delivered exactly once
    and in order (the peer's stream is a fixed function of the sequence number)."""
    t = STATE_FIXTURES[state]()
    delivered = bytearray()
    for spec in specs:
        t.advance(spec[5])
        t.deliver(_segment(spec))
        t.output()
        assert isinstance(t.conn.state, State)
        if app_reads:
            delivered += t.read()
    delivered += t.read()
    t.advance(500.0)
    t.output()
    assert isinstance(t.conn.state, State)
    if delivered:
        # In-order delivery starts right after the peer's SYN (the fixtures send none).
        assert bytes(delivered) == _byte_stream(seq_add(t.conn.irs, 1), len(delivered))


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(1, 5000)),
            st.tuples(st.just("ack"), st.integers(-100, 20000)),
            st.tuples(st.just("wait"), st.sampled_from([0.001, 0.05, 0.3, 2.0, 30.0])),
            st.tuples(st.just("window"), st.integers(0, 0xFFFF)),
            st.tuples(st.just("close"), st.just(0)),
        ),
        max_size=30,
    )
)
def test_sender_never_sends_outside_window_or_beyond_written(ops: list[tuple[str, int]]) -> None:
    """What we send is always a prefix of what the application wrote, at the right offset."""
    t = established(opts(nodelay=False))
    written = bytearray()
    window = 64240
    for op, arg in ops:
        if op == "send" and t.conn.send_space:
            chunk = bytes((len(written) + i) % 256 for i in range(arg))
            written += chunk[: t.send(chunk)]
        elif op == "ack":
            t.recv(
                "A",
                ack=seq_add(t.conn.snd_una, min(arg, seq_sub(t.conn.snd_max, t.conn.snd_una))),
                window=window,
            )
        elif op == "window":
            window = arg
            t.recv("A", ack=t.conn.snd_una, window=window)
        elif op == "wait":
            t.advance(float(arg))
        elif op == "close":
            t.conn.close(t.now)
        for seg in t.output():
            if seg.payload:
                offset = seq_sub(seg.seq, L(1))
                assert offset >= 0 and bytes(seg.payload) == bytes(
                    written[offset : offset + len(seg.payload)]
                )
        assert isinstance(t.conn.state, State)


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 400)), max_size=40),
    limit=st.integers(1, 4000),
)
def test_reassembly_delivers_exact_prefix(chunks: list[tuple[int, int]], limit: int) -> None:
    buf = ReceiveBuffer(1 << 20, max_ranges=8)
    data = STREAM[:5000]
    out = bytearray()
    for start, length in chunks:
        rel = start - buf.nxt
        buf.insert(rel, data[start : start + length], limit)
        out += buf.read()
        assert len(buf.sack_blocks(0, 4)) <= 4
    assert bytes(out) == data[: len(out)]
    assert buf.nxt == len(out)
    _shared_empties_untouched()


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.integers(1, 9000), st.sampled_from(["b", "ba", "mv"])),
            st.tuples(st.just("consume"), st.integers(0, 12000)),
            st.tuples(st.just("peek"), st.integers(0, 20000), st.integers(1, 9000)),
        ),
        max_size=60,
    )
)
def test_send_buffer_peeks_what_was_written_and_not_consumed(ops: list[tuple]) -> None:
    """Whatever the mix of small and bulk writes and acknowledgements, a peek at an
    offset returns exactly the unacknowledged bytes there (the chunk found by
    bisection over the chunks' stream offsets)."""
    buf = SendBuffer(1 << 16)
    model = bytearray()
    written = 0
    for op in ops:
        if op[0] == "write":
            data = bytes((written + k) % 253 for k in range(op[1]))
            as_type = {"b": data, "ba": bytearray(data), "mv": memoryview(data)}[op[2]]
            n = buf.write(as_type)
            model += data[:n]
            written += n
        elif op[0] == "consume":
            buf.consume(op[1])
            del model[: op[1]]
        else:
            assert buf.peek(op[1], op[2]) == bytes(model[op[1] : op[1] + op[2]])
        assert len(buf) == len(model)
        _shared_empties_untouched()
    assert buf.peek(0, len(model)) == bytes(model)
    buf.consume(len(model))
    assert buf._chunks is buffers._NO_CHUNKS  # an emptied buffer keeps no list of its own


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.tuples(st.integers(1, 3000), st.integers(1, 400)), max_size=60))
def test_out_of_order_ranges_are_the_union_of_what_arrived(
    chunks: list[tuple[int, int]],
) -> None:
    """Behind a hole at offset 0 the queue holds exactly the union of the segments,
    as sorted, merged, non-adjacent ranges (in place or rebuilt alike), and filling
    the hole hands over every byte of the first range's run."""
    buf = ReceiveBuffer(1 << 20, max_ranges=1000)
    covered: set[int] = set()
    for start, length in chunks:
        buf.insert(start, STREAM[start : start + length], 1 << 20)
        covered.update(range(start, start + length))
        blocks = sorted(buf.sack_blocks(0, 1000))
        expected: list[tuple[int, int]] = []
        for b in sorted(covered):
            if expected and expected[-1][1] == b:
                expected[-1] = (expected[-1][0], b + 1)
            else:
                expected.append((b, b + 1))
        assert blocks == expected
        assert buf.out_of_order_bytes == len(covered)
    buf.insert(0, STREAM[:1], 1 << 20)
    run = 1
    while run in covered:
        run += 1
    assert buf.read() == STREAM[:run]
    buf.drop_out_of_order()
    assert buf._ready is buffers._NO_READY and buf._ooo is buffers._NO_RANGES
    _shared_empties_untouched()


def _shared_empties_untouched() -> None:
    """The empty lists every idle buffer shares (``aiotcp.core.buffers``) never get
    an element: a buffer replaces them before it adds one."""
    assert buffers._NO_CHUNKS == [] and buffers._NO_STARTS == []
    assert buffers._NO_READY == [] and buffers._NO_RANGES == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    loss=st.sampled_from([0.0, 0.02, 0.1]),
    duplicate=st.sampled_from([0.0, 0.05]),
    jitter=st.sampled_from([0.0, 0.01]),
    delay=st.sampled_from([0.001, 0.02, 0.1]),
    a_bytes=st.integers(0, 60_000),
    b_bytes=st.integers(0, 60_000),
    order=st.sampled_from(["a_first", "b_first", "together"]),
)
def test_two_endpoints_any_impairment_byte_exact_and_closed(
    seed: int,
    loss: float,
    duplicate: float,
    jitter: float,
    delay: float,
    a_bytes: int,
    b_bytes: int,
    order: str,
) -> None:
    from aiotcp.testing.corekit import LinkProfile, connected_pair

    profile = LinkProfile(delay=delay, jitter=jitter, loss=loss, duplicate=duplicate)
    link = connected_pair(profile=profile, seed=seed)
    data_a, data_b = STREAM[:a_bytes], STREAM[-b_bytes:] if b_bytes else b""
    link.write(False, data_a, then_shutdown=order in ("a_first", "together"))
    link.write(True, data_b, then_shutdown=order in ("b_first", "together"))
    link.run_until(
        lambda: link.a.eof_received or link.b.eof_received or link.a.state is State.CLOSED,
        timeout=600,
    )
    if order == "a_first":
        link.run_until(lambda: link.b.eof_received, timeout=600)
        link.write(True, b"", then_shutdown=True)  # after b's queued data
    elif order == "b_first":
        link.run_until(lambda: link.a.eof_received, timeout=600)
        link.write(False, b"", then_shutdown=True)
    link.run_for(700.0)
    assert bytes(link.received[True]) == data_a
    assert bytes(link.received[False]) == data_b
    assert link.a.state is State.CLOSED and link.b.state is State.CLOSED
    assert link.a.close_reason is link.b.close_reason is CloseReasonNormal()
    # The queues every idle connection shares were never added to.
    assert connection_module._NO_EVENTS == [] and connection_module._NO_SEGMENTS == []


def CloseReasonNormal():  # type: ignore[no-untyped-def]
    from aiotcp.core.events import CloseReason

    return CloseReason.NORMAL


@settings(max_examples=150, deadline=None)
@given(
    state=st.sampled_from(list(STATE_FIXTURES)),
    calls=st.lists(
        st.sampled_from(
            ["send", "send_urgent", "read", "shutdown", "close", "abort", "connect", "listen",
             "timer", "wait"]
        ),
        max_size=12,
    ),
)  # fmt: skip
def test_api_calls_in_any_state_fail_only_with_socket_errors(
    state: State, calls: list[str]
) -> None:
    """Every user call in every state either works or raises the OSError a socket would."""
    t = STATE_FIXTURES[state]()
    for call in calls:
        try:
            if call == "send":
                t.send(b"payload")
            elif call == "send_urgent":
                t.conn.send_urgent(b"!")
            elif call == "read":
                t.read()
            elif call == "shutdown":
                t.conn.shutdown_write()
            elif call == "close":
                t.conn.close(t.now)
            elif call == "abort":
                t.conn.abort()
            elif call == "connect":
                t.conn.connect(t.now)
            elif call == "listen":
                t.conn.listen()
            elif call == "timer":
                t.conn.handle_timer(t.now)
            else:
                t.advance(1.0)
        except OSError:
            pass
        t.output()
        assert isinstance(t.conn.state, State)
        assert t.conn.send_space >= 0 and t.conn.readable_bytes >= 0


@settings(max_examples=100, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from([SYN, ACK, SYN | ACK, RST, FIN, ACK | PSH, 0]),
            st.integers(0, 7),  # which client
            st.integers(0, 2**32 - 1),  # seq
            st.integers(0, 2**32 - 1),  # ack
        ),
        max_size=60,
    ),
    backlog=st.integers(1, 4),
    cookies=st.booleans(),
)
def test_listener_random_input_keeps_queues_bounded(
    specs: list[tuple[int, int, int, int]], backlog: int, cookies: bool
) -> None:
    from aiotcp.core.listener import Listener
    from aiotcp.core.options import TcpOptions

    lst = Listener((bytes(4), 80), TcpOptions(backlog=backlog, syn_cookies=cookies), b"s", 0.0)
    children = []
    for i, (flags, client, seq, ack) in enumerate(specs):
        seg = Segment(40000 + client, 80, seq, ack, flags, 1000)
        conn = lst.receive(seg, bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2)), i * 0.1)
        if conn is not None:
            children.append(conn)
            conn.segments_to_send(i * 0.1)
        lst.segments_to_send(i * 0.1)
        assert lst.syn_queue_length <= backlog and lst.accept_queue_length <= backlog
    while lst.accept() is not None:
        pass
