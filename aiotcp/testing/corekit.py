"""Test vocabulary for the sans-IO core (smoltcp's ``send!``/``recv!`` style).

A ``Harness`` wraps one ``Connection`` and plays the remote peer on virtual time:

    t = established()
    t.recv("A", payload=b"hello")          # the peer sends; defaults fill seq/ack
    t.expect("A", ack=t.peer_nxt)          # exactly one segment came out, checked
    t.advance(0.2)                         # move the clock, fire due timers
    t.expect_nothing()

ISNs sit just below 2**32 so every test crosses the wrap (docs/testing.md).  Fixture
functions build a connection directly in each state by driving it there.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

from aiotcp.core.connection import Connection
from aiotcp.core.events import Event
from aiotcp.core.listener import Listener
from aiotcp.core.options import TcpOptions
from aiotcp.core.segment import ACK, SYN, Segment, decode, encode, flags_str, parse_flags
from aiotcp.core.seq import seq_add
from aiotcp.core.state import State

LOCAL_IP = bytes((198, 18, 0, 1))
REMOTE_IP = bytes((198, 18, 0, 2))
LOCAL = (LOCAL_IP, 49152)
REMOTE = (REMOTE_IP, 80)
#: Our ISS: the first data byte is 2**32 - 9, so 10 bytes of data wrap.
LOCAL_ISS = 0xFFFF_FFF6
#: The peer's ISS, also near the wrap.
REMOTE_ISS = 0xFFFF_FFEC
SECRET = b"aiotcp-core-tests-secret"


def L(n: int) -> int:
    """Our sequence number ``ISS + n`` (on the ring)."""
    return seq_add(LOCAL_ISS, n)


def R(n: int) -> int:
    """The peer's sequence number ``IRS + n``."""
    return seq_add(REMOTE_ISS, n)


PEER_WINDOW = 64240

#: Simple default options for scenario tests: no delayed ACK, no timestamps or
#: window scaling (each has its own tests), SACK on.
BASE = TcpOptions(delayed_ack=False, timestamps=False, window_scaling=False)


def opts(**changes: Any) -> TcpOptions:
    """``BASE`` with changes, e.g. ``opts(nodelay=True)``."""
    return BASE.replace(**changes)


class Harness:
    """One connection under test plus the remote peer's bookkeeping."""

    def __init__(self, conn: Connection, now: float = 0.0) -> None:
        self.conn = conn
        self.now = now
        self.peer_nxt = REMOTE_ISS
        self.pending: list[Segment] = []
        self.events: list[Event] = []

    # -- the peer sends -------------------------------------------------------

    def recv(
        self,
        flags: str = "A",
        *,
        seq: int | None = None,
        ack: int | None = None,
        payload: bytes = b"",
        window: int = PEER_WINDOW,
        urgent: int = 0,
        advance_peer: bool = True,
        **options: Any,
    ) -> None:
        """Deliver a segment from the peer (defaults: seq = peer's next, ack = SND.NXT)."""
        f = parse_flags(flags)
        if seq is None:
            seq = self.peer_nxt
        if ack is None:
            ack = self.conn.snd_nxt if f & ACK else 0
        seg = Segment(REMOTE[1], LOCAL[1], seq, ack, f, window, urgent, payload, **options)
        if advance_peer and seq == self.peer_nxt:
            self.peer_nxt = seq_add(seq, seg.seq_len)
        self.conn.receive(seg, self.now)
        self._collect_events()

    def deliver(self, seg: Segment) -> None:
        self.conn.receive(seg, self.now)
        self._collect_events()

    # -- what the connection sent --------------------------------------------

    def output(self) -> list[Segment]:
        """Every segment sent so far and not yet checked."""
        self.pending.extend(self.conn.segments_to_send(self.now))
        out, self.pending = self.pending, []
        return out

    def expect(
        self,
        flags: str | None = None,
        *,
        seq: int | None = None,
        ack: int | None = None,
        payload: bytes | None = None,
        window: int | None = None,
        **fields: Any,
    ) -> Segment:
        """Pop the next segment sent and check the given fields."""
        self.pending.extend(self.conn.segments_to_send(self.now))
        assert self.pending, f"expected a segment, nothing was sent ({self.conn!r})"
        seg = self.pending.pop(0)
        if flags is not None:
            assert flags_str(seg.flags) == flags_str(parse_flags(flags)), (
                f"flags {flags_str(seg.flags)} != {flags_str(parse_flags(flags))}: {seg!r}"
            )
        if seq is not None:
            assert seg.seq == seq, f"seq {seg.seq} != {seq}: {seg!r}"
        if ack is not None:
            assert seg.ack == ack, f"ack {seg.ack} != {ack}: {seg!r}"
        if payload is not None:
            assert bytes(seg.payload) == payload, f"payload {bytes(seg.payload)!r} != {payload!r}"
        if window is not None:
            assert seg.window == window, f"window {seg.window} != {window}: {seg!r}"
        for name, value in fields.items():
            assert getattr(seg, name) == value, f"{name} {getattr(seg, name)!r} != {value!r}"
        return seg

    def expect_nothing(self) -> None:
        self.pending.extend(self.conn.segments_to_send(self.now))
        assert not self.pending, f"expected nothing, got {self.pending!r}"

    # -- time -----------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer that falls due on the way."""
        end = self.now + seconds
        self.pending.extend(self.conn.segments_to_send(self.now))  # as a driver would
        while True:
            deadline = self.conn.next_deadline()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self.conn.handle_timer(self.now)
            self.pending.extend(self.conn.segments_to_send(self.now))
            self._collect_events()
        self.now = end

    # -- the application ------------------------------------------------------

    def send(self, data: bytes) -> int:
        return self.conn.send(data)

    def read(self, n: int = -1) -> bytes:
        return self.conn.read(n)

    @property
    def state(self) -> State:
        return self.conn.state

    def _collect_events(self) -> None:
        while (ev := self.conn.next_event()) is not None:
            self.events.append(ev)

    def event_types(self) -> list[type]:
        self._collect_events()
        return [type(e) for e in self.events]

    def clear_events(self) -> None:
        self._collect_events()
        self.events.clear()


# -- fixtures: a connection in each state ----------------------------------------


def new_connection(options: TcpOptions | None = None, iss: int = LOCAL_ISS) -> Connection:
    return Connection(LOCAL, REMOTE, options or BASE, SECRET, 0.0, iss=iss)


def closed(options: TcpOptions | None = None) -> Harness:
    return Harness(new_connection(options))


def syn_sent(options: TcpOptions | None = None) -> Harness:
    t = closed(options)
    t.conn.connect(t.now)
    t.expect("S", seq=LOCAL_ISS)
    t.clear_events()
    return t


def established(options: TcpOptions | None = None, **synack_options: Any) -> Harness:
    """Active open completed; the peer's SYN-ACK carries ``synack_options``."""
    t = syn_sent(options)
    synack_options.setdefault("mss", 1460)
    t.recv("SA", ack=seq_add(LOCAL_ISS, 1), **synack_options)
    t.expect("A", seq=seq_add(LOCAL_ISS, 1), ack=seq_add(REMOTE_ISS, 1))
    t.clear_events()
    return t


def quick_acks_spent(t: Harness) -> Harness:
    """The connection as after its first segments: a receiver acknowledges those at
    once (quick-ACK mode, Linux's ``tcp_incr_quickack``) and applies the delayed-ACK
    rules only afterwards.  For tests of those rules, which would otherwise have to
    send sixteen segments first and shift every sequence number they name."""
    t.conn._quick_acks = 0
    t.conn._last_data_in = t.now
    return t


def ecn_client(
    ecn: bool = True, peer_agrees: bool = True, mss: int = 1000, **changes: Any
) -> Harness:
    """Active open with ECN asked for (RFC 3168 §6.1.1) and, if ``peer_agrees``, granted."""
    t = closed(opts(ecn=ecn, nodelay=True, **changes))
    t.conn.connect(t.now)
    t.expect("SEW" if ecn else "S")
    t.recv("SAE" if peer_agrees else "SA", ack=L(1), mss=mss)
    t.expect("A")
    return t


def listen(options: TcpOptions | None = None) -> Harness:
    t = closed(options)
    t.conn.listen()
    t.clear_events()
    return t


def syn_received(options: TcpOptions | None = None, **syn_options: Any) -> Harness:
    """Passive open: SYN received, SYN-ACK sent."""
    t = listen(options)
    syn_options.setdefault("mss", 1460)
    t.recv("S", **syn_options)
    t.expect("SA", seq=LOCAL_ISS, ack=seq_add(REMOTE_ISS, 1))
    t.clear_events()
    return t


def established_passive(options: TcpOptions | None = None) -> Harness:
    t = syn_received(options)
    t.recv("A", ack=seq_add(LOCAL_ISS, 1))
    t.clear_events()
    return t


def fin_wait_1(options: TcpOptions | None = None) -> Harness:
    t = established(options)
    t.conn.close(t.now)
    t.expect("FA", seq=seq_add(LOCAL_ISS, 1))
    t.clear_events()
    return t


def fin_wait_2(options: TcpOptions | None = None) -> Harness:
    t = fin_wait_1(options)
    t.recv("A", ack=seq_add(LOCAL_ISS, 2))
    assert t.state is State.FIN_WAIT_2
    t.clear_events()
    return t


def closing(options: TcpOptions | None = None) -> Harness:
    t = fin_wait_1(options)
    t.recv("FA", ack=seq_add(LOCAL_ISS, 1))
    t.expect("A", ack=t.peer_nxt)
    assert t.state is State.CLOSING
    t.clear_events()
    return t


def time_wait(options: TcpOptions | None = None) -> Harness:
    t = fin_wait_2(options)
    t.recv("FA", ack=seq_add(LOCAL_ISS, 2))
    t.expect("A", ack=t.peer_nxt)
    assert t.state is State.TIME_WAIT
    t.clear_events()
    return t


def close_wait(options: TcpOptions | None = None) -> Harness:
    t = established(options)
    t.recv("FA")
    t.expect("A", ack=t.peer_nxt)
    assert t.state is State.CLOSE_WAIT
    t.clear_events()
    return t


def last_ack(options: TcpOptions | None = None) -> Harness:
    t = close_wait(options)
    t.conn.close(t.now)
    t.expect("FA", seq=seq_add(LOCAL_ISS, 1), ack=t.peer_nxt)
    assert t.state is State.LAST_ACK
    t.clear_events()
    return t


STATE_FIXTURES: dict[State, Callable[[], Harness]] = {
    State.CLOSED: closed,
    State.LISTEN: listen,
    State.SYN_SENT: syn_sent,
    State.SYN_RECEIVED: syn_received,
    State.ESTABLISHED: established,
    State.FIN_WAIT_1: fin_wait_1,
    State.FIN_WAIT_2: fin_wait_2,
    State.CLOSING: closing,
    State.TIME_WAIT: time_wait,
    State.CLOSE_WAIT: close_wait,
    State.LAST_ACK: last_ack,
}


# -- two endpoints over a simulated link -----------------------------------------


@dataclass
class LinkProfile:
    """Impairments of the simulated path (per direction, seeded)."""

    delay: float = 0.010
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    bandwidth: float | None = None
    """Bytes per second; ``None`` is infinitely fast."""
    queue_limit: int | None = None
    """Bytes that may wait for the ``bandwidth`` (a drop-tail router queue): a packet
    that would not fit is dropped.  ``None``: the queue never fills."""


@dataclass(order=True)
class _InFlight:
    at: float
    order: int
    to_b: bool = field(compare=False)
    data: bytes = field(compare=False)


class Link:
    """Two connections back to back; segments go through ``encode``/``decode``.

    ``run_until`` advances virtual time event by event (deliveries and timer
    deadlines), so megabytes take milliseconds of real time.
    """

    def __init__(
        self,
        a: Connection,
        b: Connection,
        profile: LinkProfile | None = None,
        seed: int = 0,
        now: float = 0.0,
    ) -> None:
        self.a = a
        self.b = b
        self.profile = profile or LinkProfile()
        self.rng = random.Random(seed)
        self.now = now
        self._queue: list[_InFlight] = []
        self._order = 0
        self._busy_until = {True: now, False: now}
        self.received = {True: bytearray(), False: bytearray()}  # keyed by "is b"
        self.events: dict[bool, list[Event]] = {True: [], False: []}
        self.delivered_segments = 0
        self.queue_drops = 0
        self.auto_read = True
        self.drop_filter: Callable[[bool, Segment], bool] | None = None
        self._outbox: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
        self._eof_after: dict[bool, bool] = {True: False, False: False}

    def write(self, from_b: bool, data: bytes, *, then_shutdown: bool = False) -> None:
        """The application on one side writes ``data`` (fed as send space frees up)."""
        self._outbox[from_b] += data
        self._eof_after[from_b] = then_shutdown
        self._feed()

    def _feed(self) -> None:
        for conn, is_b in ((self.a, False), (self.b, True)):
            box = self._outbox[is_b]
            if box and conn.send_space:
                n = conn.send(box)
                del box[:n]
            if not box and self._eof_after[is_b]:
                self._eof_after[is_b] = False
                conn.shutdown_write()

    def _ip(self, conn: Connection) -> bytes:
        return conn.local[0]

    def _flush(self) -> None:
        for conn, to_b in ((self.a, True), (self.b, False)):
            src_ip = conn.local[0]
            dst_ip = conn.remote[0]
            # Super-segments are cut into wire segments here, as GSO would.
            wire = [piece for out in conn.segments_to_send(self.now) for piece in out.split()]
            for seg in wire:
                if self.drop_filter is not None and self.drop_filter(to_b, seg):
                    continue
                data = encode(seg, src_ip, dst_ip)
                p = self.profile
                if p.loss and self.rng.random() < p.loss:
                    continue
                copies = 2 if p.duplicate and self.rng.random() < p.duplicate else 1
                start = self.now
                if p.bandwidth:
                    waiting = max(self._busy_until[to_b] - self.now, 0.0) * p.bandwidth
                    if p.queue_limit is not None and waiting + len(data) > p.queue_limit:
                        self.queue_drops += 1
                        continue
                    start = max(start, self._busy_until[to_b]) + len(data) / p.bandwidth
                    self._busy_until[to_b] = start
                for _ in range(copies):
                    at = start + p.delay + (self.rng.uniform(0, p.jitter) if p.jitter else 0)
                    self._order += 1
                    heappush(self._queue, _InFlight(at, self._order, to_b, data))

    def _drain(self) -> None:
        for conn, is_b in ((self.a, False), (self.b, True)):
            while (ev := conn.next_event()) is not None:
                self.events[is_b].append(ev)
            if self.auto_read and conn.readable_bytes:
                self.received[is_b] += conn.read()

    def step(self, until: float) -> bool:
        """Process the next delivery or timer no later than ``until``; False if idle."""
        self._feed()
        self._flush()
        self._drain()
        candidates = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d is not None]
        next_timer = min(candidates) if candidates else None
        next_delivery = self._queue[0].at if self._queue else None
        nxt = min(x for x in (next_timer, next_delivery, until + 1) if x is not None)
        if nxt > until:
            return False
        self.now = max(self.now, nxt)
        if next_delivery is not None and next_delivery <= self.now:
            item = heappop(self._queue)
            dst = self.b if item.to_b else self.a
            src = self.a if item.to_b else self.b
            seg = decode(item.data, src.local[0], dst.local[0])
            assert isinstance(seg, Segment), seg
            self.delivered_segments += 1
            dst.receive(seg, self.now)
        else:
            for conn in (self.a, self.b):
                d = conn.next_deadline()
                if d is not None and d <= self.now:
                    conn.handle_timer(self.now)
        self._flush()
        self._drain()
        return True

    def run_until(self, condition: Callable[[], bool], timeout: float = 600.0) -> None:
        end = self.now + timeout
        while not condition():
            if not self.step(end):
                if condition():
                    return
                raise AssertionError(f"link idle at t={self.now:.3f} before condition held")
            if self.now >= end:
                raise AssertionError(f"condition not met within {timeout} s virtual time")

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self.step(end):
            pass
        self.now = end


def connected_pair(
    options_a: TcpOptions | None = None,
    options_b: TcpOptions | None = None,
    profile: LinkProfile | None = None,
    seed: int = 0,
) -> Link:
    """Client ``a`` connects to a listener on ``b``'s side; returns the link, established."""
    opts_a = options_a or TcpOptions()
    opts_b = options_b or TcpOptions()
    a = Connection(LOCAL, REMOTE, opts_a, SECRET, 0.0, iss=LOCAL_ISS)
    a.connect(0.0)
    syn = a.segments_to_send(0.0)
    assert len(syn) == 1 and syn[0].flags == SYN
    listener = Listener(REMOTE, opts_b, SECRET + b"b", 0.0, iss=REMOTE_ISS)
    b = listener.receive(syn[0], LOCAL_IP, REMOTE_IP, 0.0)
    assert b is not None
    link = Link(a, b, profile, seed)
    link.run_until(
        lambda: a.state is State.ESTABLISHED and b.state is State.ESTABLISHED, timeout=300
    )
    assert listener.accept() is b
    return link
