"""A LISTEN endpoint: SYN queue, accept queue, overflow policy, SYN cookies.

The listener owns no connection state machine of its own: each SYN it admits
becomes a ``Connection`` that runs RFC 9293 §3.10.7.2 LISTEN processing and lives
in SYN-RECEIVED until its handshake completes.  The stack registers the returned
connection in its demux table and drives it like any other; the connection
reports back through ``AcceptQueue`` (``child_established`` / ``child_closed``)
so both queues stay exact.  Queues follow Linux: the SYN queue holds half-open connections, the
accept queue established ones not yet accepted, both bounded by ``backlog``.

SYN cookies (D. J. Bernstein; Linux ``tcp_syncookies``) let a full SYN queue keep
answering: the SYN-ACK's ISN encodes a coarse clock, the MSS and a keyed hash of
the 4-tuple, so the final ACK can rebuild the connection with no stored state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Final, Literal

from aiotcp.core.connection import Connection, reset_for, window_scale_for
from aiotcp.core.flow import Address, FlowKey, flow_key
from aiotcp.core.isn import keyed_hash24, timestamp_offset
from aiotcp.core.options import DEFAULT_PEER_MSS, DEFAULT_PEER_MSS6, TcpOptions
from aiotcp.core.segment import ACK, FIN, RST, SYN, Segment
from aiotcp.core.seq import MASK, seq_add, seq_sub
from aiotcp.core.state import State

#: MSS values a cookie can encode in its 3 bits (Linux uses a similar table).
COOKIE_MSS_TABLE: Final = (536, 1200, 1300, 1360, 1400, 1440, 1460, 8960)
#: Cookie clock granularity (seconds) and how many periods a cookie stays valid.
COOKIE_PERIOD: Final = 64.0
COOKIE_MAX_AGE: Final = 2
#: Options encoded in the low TSval bits of a cookie SYN-ACK: 4 bits for the peer's
#: window scale (all ones: none), 1 bit SACK-permitted (Linux's layout, minus ECN).
_TS_OPTION_MASK: Final = 0x3F
_TS_NO_WSCALE: Final = 0xF
_TS_SACK: Final = 0x10

Outgoing = tuple[Segment, bytes, bytes]
"""A segment with its IPv4 source and destination, ready for ``encode(seg, src, dst)``."""


@dataclass(slots=True)
class ListenerCounters:
    syns_received: int = 0
    syn_queue_overflows: int = 0
    accept_queue_overflows: int = 0
    cookies_sent: int = 0
    cookies_accepted: int = 0
    cookies_rejected: int = 0
    resets_sent: int = 0


class Listener:
    """LISTEN on ``local`` (an all-zero IP means any local address)."""

    def __init__(
        self,
        local: Address,
        options: TcpOptions | None = None,
        isn_secret: bytes = b"",
        now: float = 0.0,
        *,
        iss: int | None = None,
    ) -> None:
        """``iss``: one fixed initial sequence number for every passive connection,
        instead of RFC 6528's (tests use ISNs near 2**32)."""
        self.local = local
        self.options = options if options is not None else TcpOptions()
        self._secret = isn_secret
        self.created = now
        self.counters = ListenerCounters()
        self._syn_queue: dict[FlowKey, Connection] = {}
        self._accept_queue: deque[Connection] = deque()
        self._out: list[Outgoing] = []
        self.closed = False
        self._iss = iss

    # ------------------------------------------------------------------ queues

    @property
    def backlog(self) -> int:
        return max(self.options.backlog, 1)

    @property
    def syn_queue_length(self) -> int:
        return len(self._syn_queue)

    @property
    def accept_queue_length(self) -> int:
        return len(self._accept_queue)

    def half_open(self) -> list[Connection]:
        """Connections in SYN-RECEIVED (shown in the state table)."""
        return list(self._syn_queue.values())

    def accept(self) -> Connection | None:
        """Pop the oldest established connection (``accept(2)``)."""
        return self._accept_queue.popleft() if self._accept_queue else None

    def close(self) -> list[Connection]:
        """Stop listening; half-open and unaccepted connections are aborted (RST)."""
        self.closed = True
        victims = list(self._syn_queue.values()) + list(self._accept_queue)
        self._syn_queue.clear()
        self._accept_queue.clear()
        for conn in victims:
            conn.abort()
        return victims

    # -- the accept queue its connections see (``connection.AcceptQueue``) ---------
    def has_room(self) -> bool:
        return len(self._accept_queue) < self.backlog

    def child_established(self, conn: Connection) -> None:
        if self._syn_queue.pop(conn.key, None) is not None:
            self._accept_queue.append(conn)

    def child_closed(self, conn: Connection) -> None:
        self._syn_queue.pop(conn.key, None)

    # ------------------------------------------------------------------ input

    def receive(self, seg: Segment, src_ip: bytes, dst_ip: bytes, now: float) -> Connection | None:
        """A segment for the listening port that matched no connection.

        Returns a new connection (SYN-RECEIVED, or ESTABLISHED from a valid cookie)
        that the caller must register and drive; ``None`` otherwise.
        """
        local = (dst_ip, self.local[1])
        remote = (src_ip, seg.src_port)
        key = flow_key(dst_ip, self.local[1], src_ip, seg.src_port)
        child = self._syn_queue.get(key)
        if child is not None:
            child.receive(seg, now)
            return None
        flags = seg.flags
        if flags & RST or self.closed:
            if self.closed:
                self._reply_reset(seg, dst_ip, src_ip)
            return None
        if flags & ACK:
            # RFC 9293 §3.10.7.2: an ACK in LISTEN is answered by RST — unless it
            # completes a SYN-cookie handshake.
            if not flags & SYN and self.options.syn_cookies:
                conn = self._connection_from_cookie(seg, local, remote, now)
                if isinstance(conn, Connection):
                    return conn
                if conn == "overflow":
                    # A valid cookie but no room to accept: Linux drops the ACK (the
                    # client's retransmission may find room) unless abort_on_overflow.
                    if self.options.abort_on_overflow:
                        self._reply_reset(seg, dst_ip, src_ip)
                    return None
            self._reply_reset(seg, dst_ip, src_ip)
            return None
        if not flags & SYN or flags & FIN:
            return None  # RFC 9293 §3.10.7.2: anything else is dropped
        self.counters.syns_received += 1
        if not self.has_room():
            # Linux drops SYNs while the accept queue is full: no point in half-
            # opening what could never be accepted.
            self.counters.accept_queue_overflows += 1
            return None
        if len(self._syn_queue) >= self.backlog:
            self.counters.syn_queue_overflows += 1
            if self.options.syn_cookies:
                self._send_cookie(seg, local, remote, now)
            return None
        conn = Connection(
            local, remote, self.options, self._secret, now, iss=self._iss, accept_queue=self
        )
        conn.listen()
        self._syn_queue[key] = conn
        conn.receive(seg, now)
        if conn.state is not State.SYN_RECEIVED:
            self._syn_queue.pop(key, None)
            return None
        return conn

    def segments_to_send(self, now: float) -> list[Outgoing]:
        """Stateless replies (RSTs, cookie SYN-ACKs) with their addresses.

        Unlike ``Connection.segments_to_send`` these need addresses: the listener
        answers many remotes.  SYN-ACKs of queued connections come from those
        connections.
        """
        out, self._out = self._out, []
        return out

    def _reply_reset(self, seg: Segment, src_ip: bytes, dst_ip: bytes) -> None:
        rst = reset_for(seg)
        if rst is not None:
            self.counters.resets_sent += 1
            self._out.append((rst, src_ip, dst_ip))

    # ------------------------------------------------------------------ SYN cookies

    def _cookie_hash(self, local: Address, remote: Address, counter: int, client_isn: int) -> int:
        return keyed_hash24(
            self._secret,
            bytes(local[0]),
            local[1].to_bytes(2, "big"),
            bytes(remote[0]),
            remote[1].to_bytes(2, "big"),
            counter.to_bytes(1, "big"),
            client_isn.to_bytes(4, "big"),
        )

    def make_cookie(
        self, local: Address, remote: Address, client_isn: int, mss: int, now: float
    ) -> int:
        """ISN = 5-bit clock | 3-bit MSS index | 24-bit keyed hash (Bernstein's layout)."""
        counter = int(now // COOKIE_PERIOD) & 31
        index = max((i for i, value in enumerate(COOKIE_MSS_TABLE) if value <= mss), default=0)
        h = self._cookie_hash(local, remote, counter, client_isn)
        return (counter << 27) | (index << 24) | h

    def check_cookie(
        self, local: Address, remote: Address, client_isn: int, cookie: int, now: float
    ) -> int | None:
        """The MSS encoded in a valid, fresh cookie, else ``None``."""
        counter = cookie >> 27
        age = (int(now // COOKIE_PERIOD) - counter) & 31
        if age > COOKIE_MAX_AGE:
            return None
        if self._cookie_hash(local, remote, counter, client_isn) != cookie & 0xFFFFFF:
            return None
        return COOKIE_MSS_TABLE[(cookie >> 24) & 7]

    def _send_cookie(self, seg: Segment, local: Address, remote: Address, now: float) -> None:
        ipv6 = len(local[0]) == 16
        peer_mss = seg.mss if seg.mss else DEFAULT_PEER_MSS6 if ipv6 else DEFAULT_PEER_MSS
        adv_mss = self.options.advertised_mss(ipv6)
        mss = min(peer_mss, adv_mss)
        cookie = self.make_cookie(local, remote, seg.seq, mss, now)
        reply = Segment(
            self.local[1],
            seg.src_port,
            cookie,
            seq_add(seg.seq, 1),
            SYN | ACK,
            min(self.options.recv_buffer_start, 0xFFFF),
            mss=adv_mss,
        )
        opts = self.options
        if opts.timestamps and seg.ts_val is not None:
            # Linux's trick: the other options live in the low bits of our TSval,
            # which the peer echoes in every ACK (``cookie_init_timestamp``).
            wscale = window_scale_for(opts.recv_buffer_max) if opts.window_scaling else 0
            offer_ws = opts.window_scaling and seg.wscale is not None
            offer_sack = opts.sack and seg.sack_permitted
            peer_ws = min(seg.wscale, 14) if seg.wscale is not None else 0
            bits = (peer_ws if offer_ws else _TS_NO_WSCALE) | (_TS_SACK if offer_sack else 0)
            clock = (int(now * 1000) + timestamp_offset(self._secret, local, remote) - 64) & MASK
            reply.ts_val = (clock & ~_TS_OPTION_MASK) | bits
            reply.ts_ecr = seg.ts_val
            reply.wscale = wscale if offer_ws else None
            reply.sack_permitted = offer_sack
        # Without timestamps only the MSS survives: no window scaling and no SACK.
        self.counters.cookies_sent += 1
        self._out.append((reply, local[0], remote[0]))

    def _connection_from_cookie(
        self, seg: Segment, local: Address, remote: Address, now: float
    ) -> Connection | Literal["invalid", "overflow"]:
        iss = seq_sub(seg.ack, 1) & 0xFFFFFFFF
        irs = seq_sub(seg.seq, 1) & 0xFFFFFFFF
        mss = self.check_cookie(local, remote, irs, iss, now)
        if mss is None:
            self.counters.cookies_rejected += 1
            return "invalid"
        if not self.has_room():
            self.counters.accept_queue_overflows += 1
            return "overflow"
        self.counters.cookies_accepted += 1
        syn = Segment(seg.src_port, seg.dst_port, irs, 0, SYN, seg.window, mss=mss)
        if self.options.timestamps and seg.ts_val is not None and seg.ts_ecr is not None:
            bits = seg.ts_ecr & _TS_OPTION_MASK
            syn.ts_val = seg.ts_val
            syn.wscale = None if bits & _TS_NO_WSCALE == _TS_NO_WSCALE else bits & 0xF
            syn.sack_permitted = bool(bits & _TS_SACK)
        conn = Connection.from_cookie(
            local, remote, self.options, self._secret, now, syn=syn, iss=iss, accept_queue=self
        )
        self._syn_queue[conn.key] = conn
        conn.receive(seg, now)
        if conn.state is State.SYN_RECEIVED:
            self._syn_queue.pop(conn.key, None)
            conn.abort()
            return "invalid"
        return conn

    def info(self) -> dict[str, object]:
        return {
            "state": State.LISTEN.value,
            "local": self.local,
            "syn_queue": len(self._syn_queue),
            "accept_queue": len(self._accept_queue),
            "backlog": self.backlog,
            "counters": asdict(self.counters),
        }
