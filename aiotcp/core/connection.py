"""The TCP state machine: one ``Connection`` class, all 11 RFC 9293 states.

Every decision of the state machine is made in this file, against the table of
allowed transitions in ``aiotcp.core.state`` (h11's rule, with the table apart so
tests and docs can read it).  Input is processed in RFC 9293 §3.10.7 order —
sequence check, RST, SYN, ACK, text, FIN — with RFC 5961 challenge ACKs, RFC 7323
PAWS and RFC 1337 folded in at the step where those RFCs put them.  Output is
pulled with ``segments_to_send(now)``; time only ever arrives as an argument
(aioquic's ``QuicConnection`` shape).

Sequence variables use RFC 9293 names.  One addition: ``snd_max`` is the highest
sequence number ever sent (equal to ``snd_nxt`` once established: retransmissions
are chosen by the scoreboard, ``aiotcp.core.scoreboard``, not by rewinding
``snd_nxt``; only the handshake rewinds it to resend a SYN).

Loss recovery (RACK-TLP, PRR, NewReno's rules, ECN's reduction) is a part of its
own, ``aiotcp.core.recovery``: the connection tells it what was sent and what the
ACKs say, and asks it how much may go out and what to resend.  The congestion
controller (``aiotcp.core.congestion``) only sets the windows.

Drivers feed a whole batch of segments to ``receive`` and only then call
``segments_to_send``: one ACK then covers the batch, as RFC 9293 requires
(MUST-58/59: aggregate ACKs, process queued segments before acknowledging).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, fields
from typing import Any, Final, Protocol

from aiotcp.core import congestion
from aiotcp.core.buffers import Bytes, ReceiveBuffer, SendBuffer
from aiotcp.core.congestion.base import CongestionControl
from aiotcp.core.counters import Counters
from aiotcp.core.events import (
    CloseReason,
    Connected,
    ConnectionClosed,
    ConnectionReset,
    DataReceived,
    DeliveryProblem,
    EofReceived,
    Event,
    SendSpaceAvailable,
    StateChanged,
    UrgentDataReceived,
)
from aiotcp.core.flow import Address, flow_key
from aiotcp.core.isn import initial_sequence_number, timestamp_offset
from aiotcp.core.options import DEFAULT_PEER_MSS, DEFAULT_PEER_MSS6, TcpOptions
from aiotcp.core.plpmtud import PROBE_FLOOR_MSS, PROBE_MIN_CWND, MtuSearch
from aiotcp.core.recovery import LossRecovery
from aiotcp.core.rto import RttEstimator
from aiotcp.core.segment import (
    ACK,
    CE,
    CWR,
    ECE,
    ECT0,
    FIN,
    MAX_WSCALE,
    PSH,
    RST,
    SYN,
    URG,
    Segment,
)
from aiotcp.core.seq import MASK, in_window, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from aiotcp.core.state import TRANSITIONS, State
from aiotcp.core.timers import TimerName, Timers


class AcceptQueue(Protocol):
    """The listener a passive connection came from, as the connection sees it: the
    accept queue it joins once established (the SYN queue it leaves)."""

    def has_room(self) -> bool:
        """May one more connection become ESTABLISHED (the accept queue is not full)?"""

    def child_established(self, conn: Connection) -> None:
        """``conn`` completed its handshake: from the SYN queue to the accept queue."""

    def child_closed(self, conn: Connection) -> None:
        """``conn`` closed before it was accepted."""


#: The 16-bit window field; RFC 7323 §2.2: never scaled in SYN segments.
MAX_UNSCALED_WINDOW: Final = 0xFFFF
_NO_EVENTS: Final[list[Event]] = []
_NO_SEGMENTS: Final[list[Segment]] = []
"""What an idle connection's event and RST queues are: shared empty lists, never
added to (``_event``, ``_rst``), so it keeps no list of its own (56 bytes each)."""
#: Bytes the timestamp option (with its 2 NOPs) takes from every segment's payload
#: (RFC 9293 §3.7.1: the effective send MSS excludes TCP options).
_TS_OPTION_SPACE: Final = 12
#: RFC 7323 §5.5: TS.Recent is invalid after this much idle time (24 days).
PAWS_IDLE_LIMIT: Final = 24 * 24 * 3600.0
#: Most segments acknowledged one by one in quick-ACK mode (Linux's TCP_MAX_QUICKACKS).
MAX_QUICK_ACKS: Final = 16
#: Data sent this soon after data arrived makes the connection interactive
#: (Linux's TCP_ATO_MIN, the delayed-ACK timeout it starts from).
INTERACTIVE_GAP: Final = 0.040
#: How far ahead of its pacing clock a frame may leave: the event loop's timers
#: wake at millisecond granularity, so waiting for less would overshoot.
PACING_SLACK: Final = 0.001
#: The first segments go at once, as Linux's (and fq's) pacing leaves them.
UNPACED_SEGMENTS: Final = 10
#: A short frame waits for the next ACK only if something was sent this recently
#: (Linux's ``tcp_tso_should_defer``: only within the jiffy of the last send).
DEFER_WINDOW: Final = 0.001


_FLUSHING_STATES: Final = frozenset(
    {State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING}
    | {State.LAST_ACK}
)
_SYNCHRONIZED: Final = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)
#: States in which received segment text is delivered (RFC 9293 §3.10.7.4 step 7).
_RECEIVES_TEXT: Final = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
#: States in which the application may still queue data.
_CAN_SEND: Final = frozenset(
    {State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT}
)
#: States in which our FIN is queued or sent.
_FIN_STATES: Final = frozenset({State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})
#: RFC 9293 §3.10.5 ABORT: states in which an abort sends a RST.
_ABORT_SENDS_RST: Final = frozenset(
    {
        State.SYN_RECEIVED,
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
    }
)
_KEEPALIVE_STATES: Final = frozenset(
    {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.FIN_WAIT_2}
)


def reset_for(seg: Segment) -> Segment | None:
    """The RST that answers ``seg`` when no connection exists (RFC 9293 §3.10.7.1).

    "An incoming segment containing a RST is discarded" (same section), never
    answered; otherwise the RST takes its sequence number from the offending ACK
    field, or acknowledges the segment when it carried no ACK.
    """
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return Segment(seg.dst_port, seg.src_port, seg.ack, 0, RST)
    return Segment(seg.dst_port, seg.src_port, 0, seq_add(seg.seq, seg.seq_len), RST | ACK)


def window_scale_for(buffer: int) -> int:
    """Smallest shift that lets ``buffer`` fit the 16-bit window (RFC 7323 §2.3)."""
    shift = 0
    while shift < MAX_WSCALE and (buffer >> shift) > MAX_UNSCALED_WINDOW:
        shift += 1
    return shift


@dataclass(slots=True)
class ConnectionInfo:
    """Snapshot for ``aiotcp.connections()`` and ``get_extra_info('aiotcp')``."""

    state: str
    local: Address
    remote: Address
    iss: int
    irs: int
    snd_una: int
    snd_nxt: int
    snd_wnd: int
    rcv_nxt: int
    rcv_wnd: int
    mss: int
    srtt: float | None
    rttvar: float | None
    rto: float
    cwnd: int
    ssthresh: int
    congestion: str
    send_queue: int
    recv_queue: int
    ooo_bytes: int
    timers: dict[str, float]
    options: dict[str, Any]
    counters: dict[str, int] = field(default_factory=dict)
    reordering: int = 3
    """The path's reordering degree in segments (``ss``: ``reordering``; Linux's
    ``tcpi_reordering``): the loss detection's DupThresh."""
    pacing_rate: float | None = None
    """Bytes/s the congestion controller paces at (or would: see ``paced``)."""
    paced: bool = False
    """The connection paces its sending (``TcpOptions.pacing``)."""
    delivery_rate: float | None = None
    """Bytes/s of the last delivery-rate sample (``ss``: ``delivery_rate``)."""
    congestion_info: dict[str, Any] = field(default_factory=dict)
    """The algorithm's own state (BBR: ``bbr_state``, ``bbr_bw``, ``bbr_min_rtt`` …)."""
    soft_error: int | None = None
    """The errno of the last ICMP error about the connection (``ss``: ``soft_err``)."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict.  Shallow: ``info()`` builds its dicts fresh, so
        ``dataclasses.asdict``'s deep copy of every value would only cost time."""
        return {name: getattr(self, name) for name in INFO_FIELDS}


INFO_FIELDS: Final = tuple(f.name for f in fields(ConnectionInfo))


class Connection:
    """One TCP endpoint (RFC 9293 Transmission Control Block plus its behaviour)."""

    # One per connection and many connections per process: no per-instance dict.
    __slots__ = (
        "_accept_queue",
        "_ack_now",
        "_acked_since_flush",
        "_adv_mss",
        "_challenge_count",
        "_challenge_window",
        "_drs_bytes",
        "_drs_space",
        "_drs_start",
        "_dsack",
        "_dupacks_owed",
        "_early_out",
        "_ece_echo",
        "_events",
        "_fin_queued",
        "_fin_received",
        "_force_push",
        "_handshake_retransmitted",
        "_iss_override",
        "_keepalive_probes",
        "_last_ack_sent",
        "_last_data_in",
        "_last_heard",
        "_last_oow_ack",
        "_last_progress",
        "_last_send",
        "_mss_negotiated",
        "_orphaned",
        "_pace_at",
        "_pace_rate",
        "_persist_backoff",
        "_persist_probes",
        "_pingpong",
        "_pmtu",
        "_probe_pending",
        "_quick_acks",
        "_rcv_fin_seq",
        "_rcv_mss",
        "_rcv_ssthresh",
        "_rcv_unacked",
        "_read_closed",
        "_retries",
        "_rst_out",
        "_rtt_seq",
        "_rtt_time",
        "_secret",
        "_send_space_wanted",
        "_snd_buf_seq",
        "_syn_window",
        "_ts_floor",
        "_ts_offset",
        "_ts_recent_at",
        "_wnd_cache",
        "_wscale_ok",
        "cc",
        "close_errno",
        "close_reason",
        "cork",
        "counters",
        "created",
        "ecn_ok",
        "gso_max",
        "irs",
        "iss",
        "key",
        "local",
        "max_snd_wnd",
        "mss",
        "mtu_search",
        "options",
        "passive",
        "peer_mss",
        "rcv_adv",
        "rcv_nxt",
        "rcv_up",
        "rcv_wscale",
        "recovery",
        "recv_buffer",
        "remote",
        "rtt",
        "sack_ok",
        "send_buffer",
        "snd_max",
        "snd_nxt",
        "snd_una",
        "snd_up",
        "snd_wl1",
        "snd_wl2",
        "snd_wnd",
        "snd_wscale",
        "soft_error",
        "state",
        "timers",
        "ts_ok",
        "ts_recent",
    )

    def __init__(
        self,
        local: Address,
        remote: Address,
        options: TcpOptions | None = None,
        isn_secret: bytes = b"",
        now: float = 0.0,
        *,
        iss: int | None = None,
        accept_queue: AcceptQueue | None = None,
    ) -> None:
        """``iss``: a fixed initial sequence number instead of RFC 6528's (tests use
        ISNs near 2**32); ``accept_queue``: the listener of a passive connection."""
        self.local = local
        self.remote = remote
        self.key = flow_key(local[0], local[1], remote[0], remote[1])
        """The 4-tuple every table finds this connection by (``aiotcp.core.flow``)."""
        self.options = opts = options if options is not None else TcpOptions()
        self._secret = isn_secret
        self._iss_override = iss
        self.created = now
        self.state = State.CLOSED
        self.close_reason: CloseReason | None = None
        self.close_errno: int | None = None
        """The errno that ended the connection when it is not ``close_reason``'s own
        (``close_exception``)."""
        self.mtu_search: MtuSearch | None = None
        """Packetization-layer path MTU discovery, once it started (``plpmtud``)."""
        self.soft_error: int | None = None
        """The errno of the last ICMP error about this connection (RFC 1122 §4.2.3.9,
        Linux's ``sk_err_soft``): reported instead of ETIMEDOUT if it then times out."""
        self.counters = Counters()
        self.timers = Timers()
        # A list, not a deque: a step makes a few events, and an empty deque is 760
        # bytes that every idle connection would keep.  Empty, it is the shared
        # ``_NO_EVENTS`` (``_event`` replaces it before adding one).
        self._events: list[Event] = _NO_EVENTS
        self._accept_queue = accept_queue
        self.passive = False

        # RFC 9293 §3.3.1 send sequence variables.
        self.iss = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_max = 0
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        # Receive sequence variables; ``rcv_adv`` is the right edge we advertised.
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.rcv_up: int | None = None  # RCV.UP, the urgent pointer (RFC 9293 §3.8.5)
        self.snd_up: int | None = None  # SND.UP
        self._last_ack_sent = 0

        # Negotiated options (RFC 9293 §3.7.1, RFC 7323, RFC 2018).
        self.peer_mss = DEFAULT_PEER_MSS
        self.mss = min(DEFAULT_PEER_MSS, opts.advertised_mss(self._over_ipv6()))
        self.snd_wscale = 0
        self.rcv_wscale = window_scale_for(opts.recv_buffer_max) if opts.window_scaling else 0
        self._wscale_ok = False
        self.sack_ok = False
        self.ts_ok = False
        self.ecn_ok = False  # RFC 3168 negotiated
        self._ece_echo = False  # CE seen: set ECE on ACKs until the peer's CWR
        self.ts_recent = 0
        self._ts_offset = timestamp_offset(isn_secret, local, remote) if isn_secret else 0
        self._adv_mss = opts.advertised_mss(self._over_ipv6())  # fixed per connection
        self._rcv_mss = min(self._adv_mss, DEFAULT_PEER_MSS)
        self._syn_window = 0

        self.send_buffer = SendBuffer(opts.send_buffer)
        self.recv_buffer = ReceiveBuffer(opts.recv_buffer_start, opts.ooo_max_segments)
        self._drs_start = 0.0  # receive-buffer autotuning: this round trip's start
        self._drs_bytes = 0  # ... and what the application read in it
        # ... and in the last round trip that grew it (Linux's rcvq_space.space,
        # which starts at the initial window's ten segments).
        self._drs_space = min(opts.recv_buffer_start, 10 * self._adv_mss)
        # The buffer the peer may fill (Linux's rcv_ssthresh, see _rcv_space): it
        # starts at the initial buffer and grows by twice what the application
        # takes, never beyond the buffer.  A fixed buffer is never gated by it.
        self._rcv_ssthresh = opts.recv_buffer_start
        self._snd_buf_seq = 0  # sequence number of send_buffer offset 0
        self._fin_queued = False  # application asked for FIN (shutdown_write / close)
        self._rcv_fin_seq: int | None = None  # peer FIN seen beyond a hole
        self._fin_received = False
        self._read_closed = False  # close(): the application reads no more
        self._orphaned = False
        self._send_space_wanted = False

        # Transmission control.
        self._ack_now = False
        # Out-of-order segments received since the last output: RFC 5681 §4.2 wants
        # one duplicate ACK each, so a sender without SACK can count to three. They
        # are sent with the batch's output, and only if a hole is still open then:
        # a batch that also fills the hole gets one cumulative ACK (see
        # ``_collect_segments``).
        self._dupacks_owed = 0
        self._rcv_unacked = 0
        # Linux's receiver ACK policy (tcp_input.c): quick-ACK mode acknowledges the
        # next ``_quick_acks`` segments at once (at the start, after a long gap, after
        # out-of-window or duplicate data, on a CE mark) so a sender in slow start or
        # recovery never waits for the delayed-ACK timer; an interactive connection
        # (``_pingpong``: it answers what it receives) leaves ACKs to ride on replies.
        self._quick_acks = 0
        self._pingpong = False
        self._last_data_in = -1.0  # when in-order data last arrived (-1: never)
        # Output owed in the middle of a receive batch, built before the next segment
        # is taken in where Linux's per-segment processing would have sent it
        # (``_ack_before_next``, ``_send_before``), and sent after the batch.
        self._early_out: list[Segment] | None = None
        self._dsack: tuple[int, int] | None = None  # RFC 2883 block for the next ACK
        self._force_push = False
        # Pacing (Linux's internal TCP pacing, its earliest-departure-time model):
        # the rate this flush paces at (0: not pacing) and when the next frame may
        # leave.
        self._pace_rate = 0.0
        self._pace_at = 0.0
        self.cork = False
        """Hold back a sub-MSS tail of new data while set (a FIN still goes): Linux's
        autocorking.  The transport sets it for the rest of a loop iteration after a
        large write, so a write loop of 64 KiB blocks sends whole super-segments
        instead of one frame and one runt per write; clearing it lets the tail go."""
        self.gso_max = 0
        """Largest super-segment payload the wire below accepts (0: MSS-sized only).
        The runtime sets it once a GSO path exists; see ``Segment.gso_size``."""
        self._probe_pending = False
        self._rst_out: list[Segment] = _NO_SEGMENTS  # shared while empty, as _events
        self._retries = 0
        self._handshake_retransmitted = False
        self._rtt_seq: int | None = None
        self._rtt_time = 0.0
        self._persist_probes = 0  # unanswered probes (reset by any ACK)
        self._persist_backoff = 0  # probe interval exponent (reset when the window opens)
        self._keepalive_probes = 0
        self._last_heard = now
        self._last_progress = now
        self._last_send = now
        self._challenge_window = -1.0
        self._last_oow_ack = -1.0
        self._wnd_cache = -1
        self._acked_since_flush = False  # SND.UNA moved since the last flush
        self._ts_floor: int | None = None
        self._ts_recent_at = now
        self._challenge_count = 0

        self.rtt = RttEstimator(opts.rto_initial, opts.rto_min, opts.rto_max)
        self.cc = congestion.create(opts.congestion, self.mss, opts.initial_window, opts.slow_start)
        self.cc.rtt = self.rtt
        self.recovery = LossRecovery(self.cc, self.rtt, self.timers, self.counters, self.mss)
        """What is in flight and lost, and the window's response (``aiotcp.core.recovery``)."""

    @classmethod
    def from_cookie(
        cls,
        local: Address,
        remote: Address,
        options: TcpOptions,
        isn_secret: bytes,
        now: float,
        *,
        syn: Segment,
        iss: int,
        accept_queue: AcceptQueue,
    ) -> Connection:
        """A passive connection whose SYN-ACK its listener sent without keeping state
        (a SYN cookie): rebuilt from ``syn``, the SYN the cookie stands for, with the
        SYN-ACK at ``iss`` already sent.  The ACK that carried the cookie is the next
        segment it receives."""
        conn = cls(local, remote, options, isn_secret, now, iss=iss, accept_queue=accept_queue)
        conn.listen()
        conn.receive(syn, now)
        conn.snd_nxt = conn.snd_max = seq_add(iss, 1)
        conn.rcv_adv = seq_add(conn.rcv_nxt, min(options.recv_buffer_start, MAX_UNSCALED_WINDOW))
        conn.timers.cancel_all()
        return conn

    # ------------------------------------------------------------------ user calls

    def connect(self, now: float) -> None:
        """Active OPEN (RFC 9293 §3.10.1): choose the ISN, send SYN, enter SYN-SENT."""
        if self.state is not State.CLOSED:
            raise ConnectionError(f"connect() in state {self.state.name}")
        self._init_send_sequence(now)
        self._last_heard = now
        self._set_state(State.SYN_SENT)

    def listen(self) -> None:
        """Passive OPEN (RFC 9293 §3.10.1): wait in LISTEN for a SYN."""
        if self.state is not State.CLOSED:
            raise ConnectionError(f"listen() in state {self.state.name}")
        self.passive = True
        self._set_state(State.LISTEN)

    def send(self, data: Bytes) -> int:
        """SEND (RFC 9293 §3.10.2): queue bytes; return how many fit in the send buffer.

        Queuing before the handshake completes is allowed (RFC 9293 §3.10.2,
        SYN-SENT / SYN-RECEIVED: "queue the data for transmission after entering
        ESTABLISHED").
        """
        if self.state not in _CAN_SEND or self._fin_queued:
            if self.close_reason is not None and self.close_reason is not CloseReason.NORMAL:
                raise self.close_exception() or BrokenPipeError()
            raise BrokenPipeError(f"cannot send in state {self.state.name} (connection closing)")
        n = self.send_buffer.write(data)
        if n < len(data) or not self.send_buffer.space:
            self._send_space_wanted = True  # report SendSpaceAvailable once room returns
        return n

    def send_urgent(self, data: Bytes) -> int:
        """SEND with the URGENT flag (RFC 9293 §3.8.5): like ``send``, and every segment
        until the end of ``data`` carries URG pointing just past it (MUST-30/31)."""
        n = self.send(data)
        if n:
            self.mark_urgent()
        return n

    def mark_urgent(self, queued_beyond: int = 0) -> None:
        """Urgent data ends where the application's writes end (SND.UP): at the end of
        the send buffer plus ``queued_beyond`` bytes written but still waiting
        outside it (a transport's own queue), as Linux's ``send(MSG_OOB)`` points
        at the end of everything written.  Segments carry URG until they pass it."""
        self.snd_up = seq_add(self._snd_buf_seq, len(self.send_buffer) + queued_beyond)

    def read(self, max_bytes: int = -1) -> bytes:
        """RECEIVE (RFC 9293 §3.10.3): take in-order bytes; may queue a window update."""
        return self._taken(self.recv_buffer.read(max_bytes))

    def read_chunks(self, limit: int) -> bytes:
        """RECEIVE in the pieces the bytes arrived in: whole chunks up to ``limit``
        (``ReceiveBuffer.read_chunks``), without a copy for a chunk that fills it."""
        return self._taken(self.recv_buffer.read_chunks(limit))

    def read_into(self, buf: memoryview) -> int:
        """RECEIVE into the caller's memory (``ReceiveBuffer.read_into``)."""
        n = self.recv_buffer.read_into(buf)
        self._consumed(n)
        return n

    def _taken(self, data: bytes) -> bytes:
        self._consumed(len(data))
        return data

    def _consumed(self, n: int) -> None:
        """The application took ``n`` bytes: autotune, and open the window."""
        if not n:
            return
        buf = self.recv_buffer
        if buf.capacity < self.options.recv_buffer_max:
            self._autotune_receive_buffer(n)
        if self._rcv_ssthresh < buf.capacity:
            # Linux grows rcv_ssthresh by two segments per in-sequence segment that
            # arrives; here by twice what the application took (see _rcv_space).
            self._rcv_ssthresh = min(self._rcv_ssthresh + 2 * n, buf.capacity)
        if self.state in _RECEIVES_TEXT and self._window_update_due():
            # RFC 9293 §3.8.6.2.2: tell the peer once the window grew enough.
            self._ack_now = True

    def _autotune_receive_buffer(self, copied: int) -> None:
        """Grow the receive buffer when the window, not the reader, limits the peer.

        Linux's ``tcp_rcv_space_adjust``: per round trip (our SRTT, the clock being
        the last segment's arrival), count what the application read.  When that
        grew, the window becomes twice it plus 16 segments (losses, jitter), plus
        twice the growth again: a sender in slow start doubles every round trip,
        and the window sent now is for the round trip after next.  Only doubling
        what was read (as before) kept the window a step behind such a sender: at
        80 ms a kernel sender took 1.0 s for 5 MB to aiotcp, 0.8 to the kernel.
        """
        self._drs_bytes += copied
        now = self._last_heard
        if now - self._drs_start < max(self.rtt.srtt or 0.0, 0.001):
            return
        copied, space = self._drs_bytes, self._drs_space
        self._drs_start = now
        self._drs_bytes = 0
        if copied <= space:
            return
        window = 2 * copied + 16 * self._adv_mss
        window += 2 * (window * (copied - space) // space)
        buf = self.recv_buffer
        if window > buf.capacity:
            buf.capacity = min(window, self.options.recv_buffer_max)
        self._drs_space = copied

    def shutdown_write(self) -> None:
        """Half-close: FIN after the queued data (RFC 9293 §3.10.4 CLOSE, "half-close")."""
        st = self.state
        if self._fin_queued or st in (State.CLOSED, State.LISTEN):
            return
        self._fin_queued = True
        if st is State.ESTABLISHED:
            self._set_state(State.FIN_WAIT_1)
        elif st is State.CLOSE_WAIT:
            self._set_state(State.LAST_ACK)
        # SYN-SENT / SYN-RECEIVED: the FIN goes out after ESTABLISHED (RFC 9293 §3.10.4).

    def close(self, now: float) -> None:
        """CLOSE like close(2): no more reads, FIN after queued data.

        Unread received data turns the close into a RST, as Linux does (RFC 2525
        §2.17; RFC 9293 §3.10.4 leaves this to the implementation), so the peer
        learns that data was lost.  An orphaned FIN-WAIT-2 is bounded by
        ``fin_wait_2_timeout``.
        """
        st = self.state
        if st is State.CLOSED:
            return
        if st in (State.LISTEN, State.SYN_SENT):
            self._enter_closed(CloseReason.NORMAL)
            return
        self._read_closed = True
        self._orphaned = True
        if self.recv_buffer.readable:
            self.abort()
            return
        self.shutdown_write()
        if self.state is State.FIN_WAIT_2:
            self.timers.set(TimerName.FIN_WAIT_2, now + self.options.fin_wait_2_timeout)

    def abort(self) -> None:
        """ABORT (RFC 9293 §3.10.5): RST in synchronized states, then CLOSED."""
        if self.state is State.CLOSED:
            return
        if self.state in _ABORT_SENDS_RST:
            self._queue_active_reset()
        self._enter_closed(CloseReason.ABORTED)

    def set_option(self, name: str, value: object, now: float) -> None:
        """``setsockopt`` on this connection: one ``TcpOptions`` field, with the side
        effects Linux's ``setsockopt`` has on a live socket.

        Assigning ``conn.options`` changes a value but not what was already derived
        from it (a timer armed, a buffer sized, a controller built), so a socket
        API needs this instead.  The value is checked as every user-given option
        is (``TcpOptions.replace``: ``TypeError`` naming the option); an unknown
        congestion control is a ``ValueError`` (Linux: ``ENOENT``); either way
        nothing has changed.  Only this connection's options are replaced.

        - ``nodelay`` on: what Nagle held back goes with the next output, the
          autocork's tail too: Linux pushes the pending frames (``TCP_NAGLE_PUSH``).
        - ``keepalive`` on (it was off): the first probe after a whole idle period
          from now (Linux ``tcp_set_keepalive``: ``keepalive_time`` from the call,
          not from the last segment heard); off: no timer, and the probe count
          starts afresh.  Before ESTABLISHED, establishing arms it.
        - ``keepalive_idle``, while keepalive is on: the idle period counts from
          the last segment heard, so an idle time already exceeded probes now
          (Linux ``tcp_sock_set_keepidle_locked``).
        - ``keepalive_interval``, ``keepalive_count``: from the next probe on
          (they are read only then).
        - ``user_timeout``: re-armed from the last progress while data is in
          flight or the window is probed (an expired one fires at once); 0
          cancels it.
        - ``congestion``: the named controller takes over with the current cwnd
          and ssthresh, its own state fresh (Linux
          ``tcp_reinit_congestion_control``); the loss recovery's state (PRR, what
          is lost) is the connection's and carries on.  The same algorithm again
          changes nothing.
        - ``send_buffer``: the new capacity.  Queued data is never dropped; a
          buffer holding more than it just stops taking writes until ACKs drain
          it.  If writes were refused and there is room now, ``SendSpaceAvailable``.
        - ``recv_buffer``: a fixed size from now on, as ``SO_RCVBUF`` (autotuning
          stops; ``None`` resumes it).  The right edge already advertised stays
          (RFC 9293 §3.8.6, RFC 7323 §2.4): a smaller buffer closes the window
          only as data arrives; a larger one may open it (a window update is
          sent if worth one).  It cannot exceed what the window scale agreed in
          the handshake can carry.
        - ``rto_min``, ``rto_max``, ``ooo_max_segments``: bounds for the next RTO
          and the next out-of-order range.
        - Everything else (``mss``, ``mtu``, ``window_scaling``, ``sack``,
          ``timestamps``, ``ecn``, ``syn_retries``, ``initial_window``,
          ``rto_initial``, ``retries``, ``msl`` ...) is stored and matters only for
          what has not happened yet: what the handshake negotiated stays
          negotiated, as on Linux, and a timeout already running keeps its
          deadline.  A connection not yet opened (CLOSED and never connected, or
          LISTEN) has done nothing yet, so everything it derived from its options
          is derived again and its handshake uses the new values.
        """
        old = self.options
        new = old.replace(**{name: value})
        cc: CongestionControl | None = None
        if name == "congestion":
            # Before anything changes: an unknown name leaves the connection as it was.
            cc = congestion.create(new.congestion, self.mss, self.cc.initial_window, new.slow_start)
        self.options = new
        if self.state is State.LISTEN or (self.state is State.CLOSED and self.close_reason is None):
            self._derive_from_options()
            return
        if name == "slow_start":
            self.cc.set_slow_start(new.slow_start)
        elif name == "nodelay":
            if new.nodelay:
                self.cork = False
        elif name == "keepalive":
            if not new.keepalive:
                self.timers.cancel(TimerName.KEEPALIVE)
                self._keepalive_probes = 0
            elif self.state in _KEEPALIVE_STATES and (
                not old.keepalive or TimerName.KEEPALIVE not in self.timers
            ):
                self.timers.set(TimerName.KEEPALIVE, now + new.keepalive_idle)
        elif name == "keepalive_idle":
            if (
                new.keepalive
                and new.keepalive_idle != old.keepalive_idle
                and self.state in _KEEPALIVE_STATES
            ):
                at = max(self._last_heard + new.keepalive_idle, now)
                self.timers.set(TimerName.KEEPALIVE, at)
        elif name == "user_timeout":
            self._rearm_user_timeout()
        elif name == "congestion":
            if cc is not None and type(cc) is not type(self.cc):
                self._switch_congestion_control(cc)
        elif name == "send_buffer":
            self.send_buffer.capacity = new.send_buffer
            if self._send_space_wanted and self.send_space > 0:
                self._send_space_wanted = False
                self._event(SendSpaceAvailable(self.send_space))
        elif name == "recv_buffer":
            if new.recv_buffer is not None:
                self.recv_buffer.capacity = new.recv_buffer
            # SO_RCVBUF's buffer is offered whole; autotuning resumes from it.
            self._rcv_ssthresh = max(self._rcv_ssthresh, self.recv_buffer.capacity)
            if self.state in _RECEIVES_TEXT and self._window_update_due():
                self._ack_now = True
        elif name == "rto_min" or name == "rto_max":
            self.rtt.rto_min = new.rto_min
            self.rtt.rto_max = new.rto_max
        elif name == "ooo_max_segments":
            self.recv_buffer.max_ranges = new.ooo_max_segments

    def _derive_from_options(self) -> None:
        """A connection not yet opened takes its options afresh, as if created with them."""
        opts = self.options
        self._adv_mss = opts.advertised_mss(self._over_ipv6())
        self._rcv_mss = min(self._adv_mss, DEFAULT_PEER_MSS)
        self.rcv_wscale = window_scale_for(opts.recv_buffer_max) if opts.window_scaling else 0
        self.send_buffer.capacity = opts.send_buffer
        self.recv_buffer.capacity = opts.recv_buffer_start
        self._rcv_ssthresh = opts.recv_buffer_start
        self.recv_buffer.max_ranges = opts.ooo_max_segments
        self.rtt = RttEstimator(opts.rto_initial, opts.rto_min, opts.rto_max)
        self.cc = congestion.create(opts.congestion, self.mss, opts.initial_window, opts.slow_start)
        self.cc.rtt = self.rtt
        self.recovery.rtt = self.rtt
        self.recovery.cc = self.cc
        self.mtu_search = None
        self._negotiated_mss(min(DEFAULT_PEER_MSS, self._adv_mss))

    def _switch_congestion_control(self, cc: CongestionControl) -> None:
        """Hand the windows to ``cc``: Linux keeps ``snd_cwnd`` and ``snd_ssthresh``
        (they are the socket's, not the algorithm's) and starts the algorithm's own
        state afresh.  Recovery keeps its state and now asks ``cc``."""
        old = self.cc
        cc.cwnd = old.cwnd
        cc.ssthresh = old.ssthresh
        cc.rtt = self.rtt
        self.cc = cc
        self.recovery.cc = cc

    @property
    def flushing(self) -> bool:
        """Closed by the application with data or FIN not yet acknowledged: what a
        kernel keeps sending after close(2) returns (an orphan, in Linux's words)."""
        return self._orphaned and self.state in _FLUSHING_STATES

    @property
    def readable_bytes(self) -> int:
        return self.recv_buffer.readable

    @property
    def send_space(self) -> int:
        if self.state not in _CAN_SEND or self._fin_queued:
            return 0
        return self.send_buffer.space

    @property
    def eof_received(self) -> bool:
        return self._fin_received

    def next_event(self) -> Event | None:
        events = self._events
        if not events:
            return None
        ev = events.pop(0)
        if not events:
            self._events = _NO_EVENTS  # an idle connection keeps no list of its own
        return ev

    def _event(self, ev: Event) -> None:
        if self._events is _NO_EVENTS:
            self._events = [ev]
        else:
            self._events.append(ev)

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    # ------------------------------------------------------------------ input

    def receive(self, seg: Segment, now: float) -> None:
        """SEGMENT ARRIVES (RFC 9293 §3.10.7), in the RFC's order of checks."""
        self.counters.segments_in += 1
        if seg.flags & RST:
            self.counters.rst_in += 1
        st = self.state
        if st is State.CLOSED:
            self._reply_reset(seg)
        elif st is State.LISTEN:
            self._receive_listen(seg, now)
        elif st is State.SYN_SENT:
            self._receive_syn_sent(seg, now)
        else:
            if self._acked_since_flush and self._sends_before(seg):
                self._send_before(now)
            if (
                self._rcv_unacked > self._rcv_mss
                and seg.payload
                and st in _RECEIVES_TEXT
                and self._offerable_window() >= seq_sub(self.rcv_adv, self._last_ack_sent)
            ):
                self._ack_before_next(now)
            self._receive_synchronized(seg, now)

    def _ack_before_next(self, now: float) -> None:
        """More than a full segment arrived unacknowledged before this one, and the
        window would move right by at least as much: build that ACK before taking
        this one in, as Linux's ``__tcp_ack_snd_check`` decides for each segment.

        Linux's second condition matters: a receiver whose application has not read
        yet cannot advance the window, and Linux then leaves the ACK to the read
        (``tcp_cleanup_rbuf``) — on veth its kernel receiver sends one ACK per
        ~250 KB, not one per 64 KB GRO segment.  Within one of aiotcp's batches the
        application reads nothing, so the rule acts where the buffer has room the
        window field cannot show (no window scaling), or after the receive buffer
        grew.  RFC 9293 still holds: the ACKs are sent after the whole batch is
        processed (MUST-59), and aggregated as far as "at least every second
        full-sized segment" (RFC 5681 §4.2) allows (MUST-58).  Not while
        a hole is open: on veth a burst reaches the raw socket from two CPUs, and a
        segment that arrives a moment after its successor, in the same batch, would
        be SACKed above a hole that the batch itself fills (a Linux sender then
        retransmits at once, spuriously); those duplicate ACKs wait for the end of
        the batch (``_collect_segments``).
        """
        if self.recv_buffer.has_out_of_order:
            return
        acks = self._early_out
        if acks is None:
            acks = self._early_out = []
        self._wnd_cache = -1  # the window as it is now, and again for the next one
        acks.append(self._make_segment(self._snd_seq_for_ack(), ACK, b"", now))
        self._wnd_cache = -1

    def _sends_before(self, seg: Segment) -> bool:
        """Should what earlier segments of this batch allowed be sent before ``seg``
        is taken in?  Yes for the first SACK of a loss after ACKs that moved
        SND.UNA (``receive`` checks ``_acked_since_flush`` first).

        A sender that handles one ACK at a time (Linux) has sent into the room
        the cumulative ACKs of a burst opened by the time the SACKs at its end
        arrive; recovery then begins with that data in flight and its end as the
        recovery point (RFC 6582 ``recover``).  Taken in as one batch, the burst
        would begin recovery with that room unsent, and what is sent into it
        afterwards lies beyond the recovery point: a loss among it reduces the
        window a second time, where Linux reduces once (docs/congestion.md,
        NewReno at 20 and 80 ms).
        """
        return (
            bool(seg.sack_blocks)
            and seg.ack == self.snd_una
            and not seg.payload
            and not self.recovery.in_recovery
        )

    def _send_before(self, now: float) -> None:
        """Build now what the batch so far allows; it leaves first, with the rest of
        the batch's output (``_collect_segments`` starts with ``_early_out``)."""
        out = self.segments_to_send(now)
        self.counters.segments_out -= len(out)  # counted when they leave
        if out:
            early = self._early_out
            if early is None:
                early = self._early_out = []
            early.extend(out)

    def ack_superseded(self, seg: Segment, later: Segment) -> bool:
        """Can ``seg`` be skipped because ``later``, from the same batch, says all it
        says?  Then count it as received and do not process it.

        A bulk sender's ACKs arrive in batches (four to seven at a time under load
        on the bench path); like ACK coalescing in GRO, only the newest of consecutive
        pure cumulative ACKs needs processing — one stretch ACK, which slow start
        and congestion avoidance count in bytes.  Anything that carries more than
        the cumulative point is never skipped: data, SYN/FIN/RST/URG, ECN flags,
        SACK blocks, or an ACK that does not advance SND.UNA (a duplicate ACK,
        which loss detection counts one by one).
        """
        if (
            seg.flags != ACK
            or later.flags != ACK
            or seg.payload
            or later.payload
            or seg.sack_blocks
            or later.sack_blocks
            or seg.seq != later.seq
            or self.state is not State.ESTABLISHED
            or not seq_lt(self.snd_una, seg.ack)
            or not seq_lt(seg.ack, later.ack)
            or seq_gt(later.ack, self.snd_max)
            or (seg.ts_val is None) != (later.ts_val is None)
            or (later.ts_val is not None and seq_lt(later.ts_val, seg.ts_val or 0))
        ):
            return False
        self.counters.segments_in += 1
        self.counters.acks_coalesced += 1
        return True

    def _receive_listen(self, seg: Segment, now: float) -> None:
        """RFC 9293 §3.10.7.2."""
        flags = seg.flags
        if flags & RST:
            return  # an incoming RST is ignored
        if flags & ACK:
            self._reply_reset(seg)  # no ACK can be acceptable: nothing was sent
            return
        if not flags & SYN:
            return
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        self._negotiate(seg)
        self._init_send_sequence(now)
        # RFC 9293: SND.WND is set from the SYN; RFC 7323 §2.2: never scaled in a SYN.
        self.snd_wnd = seg.window
        self.max_snd_wnd = seg.window
        self.snd_wl1 = seg.seq
        self.snd_wl2 = self.iss
        self._last_heard = now
        # Data in the SYN is not kept (no TFO): it is not acknowledged, so it is resent.
        self._set_state(State.SYN_RECEIVED)

    def _receive_syn_sent(self, seg: Segment, now: float) -> None:
        """RFC 9293 §3.10.7.3."""
        flags = seg.flags
        # First: an ACK must cover our SYN and nothing we did not send.
        if flags & ACK and not (seq_gt(seg.ack, self.iss) and seq_le(seg.ack, self.snd_max)):
            if not flags & RST:
                self._queue_rst(seg.ack)
            return
        if flags & RST:
            # Second: a RST is acceptable only with an acceptable ACK (RFC 5961 §3.2
            # does not apply before synchronisation).
            if flags & ACK:
                self._enter_closed(CloseReason.REFUSED)
            return
        if not flags & SYN:
            return  # fifth: neither SYN nor RST
        # Fourth: SYN.
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        # The window in our SYN was unscaled; it now starts at RCV.NXT.
        self.rcv_adv = seq_add(self.rcv_nxt, self._syn_window)
        self._last_ack_sent = self.rcv_nxt
        self._negotiate(seg)
        self._last_heard = now
        if flags & ACK:
            self._ack_our_syn(seg, now)
            self.snd_wnd = seg.window  # RFC 7323 §2.2: SYN windows are unscaled
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self.snd_wl1 = seg.seq
            self.snd_wl2 = seg.ack
            self._ack_now = True
            self._establish(now)
            if seg.payload or flags & FIN:
                self._process_text_and_fin(seg, seq_add(seg.seq, 1), now)
        else:
            # Simultaneous open (RFC 9293 §3.5 figure 8): answer SYN,ACK from SYN-RECEIVED.
            self.snd_nxt = self.iss
            self.snd_wnd = seg.window
            self.max_snd_wnd = seg.window
            self.snd_wl1 = seg.seq
            self._set_state(State.SYN_RECEIVED)

    def _receive_synchronized(self, seg: Segment, now: float) -> None:
        """RFC 9293 §3.10.7.4: SYN-RECEIVED and every synchronized state."""
        st = self.state
        flags = seg.flags
        seq = seg.seq
        if st is State.SYN_RECEIVED and flags & SYN and seq == self.irs:
            if not flags & ACK and self.passive:
                # A retransmitted SYN: our SYN-ACK was lost; resend it (as Linux does).
                self.snd_nxt = self.iss
                return
            if flags & ACK and seq_gt(seg.ack, self.iss) and seq_le(seg.ack, self.snd_max):
                # Simultaneous open: the peer's SYN,ACK acknowledges our SYN; its SYN
                # was already counted, so treat it as the handshake's final ACK.
                seg = Segment(
                    seg.src_port,
                    seg.dst_port,
                    seq_add(seq, 1),
                    seg.ack,
                    flags & ~SYN,
                    seg.window,
                    0,
                    seg.payload,
                    ts_val=seg.ts_val,
                    ts_ecr=seg.ts_ecr,
                )
                flags = seg.flags
                seq = seg.seq

        payload_len = len(seg.payload)
        seg_len = payload_len + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        rcv_wnd = self.rcv_wnd

        # First: sequence number (RFC 9293 §3.10.7.4, the four acceptability cases).
        if seg_len == 0:
            acceptable = (
                seq == self.rcv_nxt if rcv_wnd == 0 else in_window(seq, self.rcv_nxt, rcv_wnd)
            )
        elif rcv_wnd == 0:
            acceptable = False
        else:
            acceptable = in_window(seq, self.rcv_nxt, rcv_wnd) or in_window(
                seq_add(seq, seg_len - 1), self.rcv_nxt, rcv_wnd
            )
        zero_window_probe = not acceptable and rcv_wnd == 0 and seq == self.rcv_nxt
        # RFC 7323 §5.5: after 24 days idle TS.Recent may have wrapped; it is invalid.
        ts_stale = now - self._ts_recent_at > PAWS_IDLE_LIMIT
        # RFC 7323 §5.3 R1 (PAWS): an old timestamp marks an old duplicate.
        if (acceptable or zero_window_probe) and (
            self.ts_ok
            and seg.ts_val is not None
            and not flags & RST
            and not ts_stale
            and seq_lt(seg.ts_val, self.ts_recent)
            and not self._disordered_ack(seg, seg_len)
        ):
            self.counters.paws_rejected += 1
            acceptable = zero_window_probe = False
        if not (acceptable or zero_window_probe):
            self.counters.unacceptable_segments += 1
            if flags & SYN and not flags & RST:
                # RFC 5961 §4.2: a SYN, whatever its sequence number, gets a challenge
                # ACK, a plain ACK of RCV.NXT: an old SYN is not duplicate data, so
                # no D-SACK (RFC 2883 §4).
                self._challenge_ack(now)
                return
            if not flags & RST:
                if self.sack_ok and seg_len and seq_le(seq_add(seq, seg_len), self.rcv_nxt):
                    # RFC 2883: tell the sender this was a duplicate (its retransmission
                    # was spurious), as the first SACK block of the ACK.
                    self._note_dsack(seq, seq_add(seq, seg_len))
                # "Send an acknowledgment" and drop; for empty segments at most one
                # per 0.5 s (Linux ``tcp_invalid_ratelimit``) so two desynchronised
                # endpoints cannot ping-pong ACKs forever.
                if seg_len or now - self._last_oow_ack >= 0.5:
                    self._last_oow_ack = now
                    self._ack_now = True
                if seg_len:
                    # Linux's tcp_data_queue: duplicate or out-of-window data means
                    # the sender is retransmitting or probing; answer at once.
                    self._enter_quick_ack(MAX_QUICK_ACKS)
                if st is State.TIME_WAIT and flags & FIN:
                    self._restart_time_wait(now)
            return
        if zero_window_probe:
            # RFC 9293 §3.10.7.4: "special allowance should be made to accept valid
            # ACKs, URGs, and RSTs" with a zero window: keep the controls, drop text.
            # A bare FIN costs no buffer space and is kept too (Linux does the same),
            # so a reader that fell behind still sees EOF without a retransmission.
            keep = flags & ~SYN if payload_len == 0 else flags & ~(FIN | SYN)
            seg = Segment(
                seg.src_port,
                seg.dst_port,
                seq,
                seg.ack,
                keep,
                seg.window,
                ts_val=seg.ts_val,
                ts_ecr=seg.ts_ecr,
            )
            flags = seg.flags
            if seg_len:
                self._ack_now = True
            payload_len = 0

        # Second: RST (RFC 9293 §3.10.7.4 with RFC 5961 §3.2 and RFC 1337).
        if flags & RST:
            self._receive_rst(seq, now)
            return

        # Fourth: SYN.  A passive SYN-RECEIVED returns to LISTEN (RFC 9293 §3.10.7.4:
        # the listener forgets the half-open connection; the peer's next SYN starts
        # afresh); everywhere else -> challenge ACK (RFC 5961 §4.2).
        if flags & SYN:
            if st is State.SYN_RECEIVED and self.passive:
                self._enter_closed(CloseReason.RESET, notify_reset=False)
            else:
                self._challenge_ack(now)
            return

        # Fifth: ACK.
        if not flags & ACK:
            return
        if st is State.SYN_RECEIVED:
            if not (seq_gt(seg.ack, self.snd_una) and seq_le(seg.ack, self.snd_max)):
                self._queue_rst(seg.ack)  # <SEQ=SEG.ACK><CTL=RST>
                return
            if self._accept_queue is not None and not self._accept_queue.has_room():
                # Accept queue full: drop the ACK (SYN-ACK will be resent) or RST,
                # as Linux's tcp_abort_on_overflow.
                if self.options.abort_on_overflow:
                    self._queue_rst(seg.ack)
                    self._enter_closed(CloseReason.RESET, notify_reset=False)
                return
            self._ack_our_syn(seg, now)
            self._update_window(seg)
            self._establish(now)
            st = self.state
        elif not self._process_ack(seg, now):
            return
        # The segment is accepted: only now may it update TS.Recent, the ECN echo
        # and the keepalive clock (RFC 7323 §4.3; Linux's tcp_ack comes before
        # tcp_replace_ts_recent and sets rcv_tstamp).  From a segment whose ACK is
        # then refused, a newer TSval would make PAWS drop the peer's next valid
        # segment, and the one after, and stall.
        self._last_heard = now
        self._keepalive_probes = 0
        if self.ts_ok and seg.ts_val is not None:
            self._update_ts_recent(seg.ts_val, seq, ts_stale, now)
        if self.ecn_ok:
            self._receive_ecn(seg)
        st = self.state
        if st is State.FIN_WAIT_1 and self._fin_acked():
            self._set_state(State.FIN_WAIT_2)
            if self._orphaned:
                self.timers.set(TimerName.FIN_WAIT_2, now + self.options.fin_wait_2_timeout)
        elif st is State.CLOSING:
            if self._fin_acked():
                self._enter_time_wait(now)
            return
        elif st is State.LAST_ACK:
            if self._fin_acked():
                self._enter_closed(CloseReason.NORMAL)
            return
        elif st is State.TIME_WAIT:
            # Only a retransmitted FIN can arrive: ACK it and restart 2MSL.
            if flags & FIN:
                self._ack_now = True
                self._restart_time_wait(now)
            return

        # Sixth: URG (RFC 9293 MUST-30..32).  Urgent data stays in line (RFC 6093
        # §5: SO_OOBINLINE semantics); the application only learns where it ends.
        if flags & URG and st in _RECEIVES_TEXT:
            self._receive_urgent(seq, seg.urgent)
        # Seventh and eighth: text and FIN.
        if payload_len or flags & FIN:
            self._process_text_and_fin(seg, seq, now)

    def _update_ts_recent(self, ts_val: int, seq: int, ts_stale: bool, now: float) -> None:
        """RFC 7323 §4.3: TS.Recent tracks the segment at the left window edge."""
        if seq_le(seq, self._last_ack_sent) and (ts_stale or seq_ge(ts_val, self.ts_recent)):
            self.ts_recent = ts_val
            self._ts_recent_at = now

    def _disordered_ack(self, seg: Segment, seg_len: int) -> bool:
        """A pure ACK reordered behind a newer one is not an old duplicate.

        PAWS (RFC 7323 §5.3) would drop it; Linux's ``tcp_disordered_ack`` lets a
        zero-length segment at RCV.NXT through when its timestamp is at most one RTO
        old, which keeps ACK clocking intact under reordering.
        """
        if seg_len or seg.seq != self.rcv_nxt or seg.ts_val is None:
            return False
        return seq_sub(self.ts_recent, seg.ts_val) <= int(self.rtt.rto * 1000)

    def _receive_rst(self, seq: int, now: float) -> None:
        """RST processing (RFC 9293 §3.10.7.4 second check, RFC 5961 §3.2, RFC 1337)."""
        st = self.state
        if st is State.TIME_WAIT and self.options.rfc1337:
            return  # RFC 1337: TIME-WAIT assassination hazard
        if seq != self.rcv_nxt:
            # In window but not exact: a blind reset attempt gets a challenge ACK.
            self._challenge_ack(now)
            return
        if st is State.SYN_RECEIVED:
            # Passive open returns to LISTEN: the listener forgets the half-open
            # connection; active (simultaneous) open is refused.
            self._enter_closed(CloseReason.RESET if self.passive else CloseReason.REFUSED)
        elif st is State.TIME_WAIT:
            self._enter_closed(CloseReason.NORMAL)
        else:
            self._enter_closed(CloseReason.RESET)

    def _process_ack(self, seg: Segment, now: float) -> bool:
        """ACK field processing in synchronized states; False means "drop the segment"."""
        ack = seg.ack
        una = self.snd_una
        if seq_gt(ack, self.snd_max) or seq_lt(ack, seq_add(una, -self.max_snd_wnd)):
            # RFC 5961 §5.2: ACK of unsent data, or far too old: challenge ACK, drop.
            self._challenge_ack(now)
            return False
        self._persist_probes = 0
        if seq_ge(ack, una):
            self._on_ack(seg, now)
        # RFC 9293 §3.10.7.4: if SND.UNA =< SEG.ACK, update the send window, but only
        # from segments newer than the last update (SND.WL1 / SND.WL2).
        if seq_ge(ack, una) and (
            seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq and seq_le(self.snd_wl2, ack))
        ):
            self._update_window(seg)
        return True

    def _update_window(self, seg: Segment) -> None:
        wnd = seg.window << self.snd_wscale
        self.snd_wnd = wnd
        if wnd > self.max_snd_wnd:
            self.max_snd_wnd = wnd
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        if wnd:
            self.timers.cancel(TimerName.PERSIST)
            self._persist_backoff = 0

    def _on_ack(self, seg: Segment, now: float) -> None:
        """An acceptable ACK (SND.UNA =< SEG.ACK =< SND.MAX): the recovery learns what
        arrived, then loss detection and the congestion window follow."""
        ack = seg.ack
        rec = self.recovery
        if not rec.in_flight and ack == self.snd_una:
            self._maybe_dup_ack(seg, 0)  # nothing in flight: the cheap path
            return
        search = self.mtu_search
        probing = search is not None and search.probe_mtu != 0 and not rec.in_recovery
        if self.ecn_ok and seg.flags & ECE:
            rec.on_ecn_echo(self.snd_una, self.snd_max, now)
        advanced = seq_gt(ack, self.snd_una)
        stamp = rec.retrans_stamp
        if advanced and stamp is not None:
            # RFC 3522 §3.2: does the first ACK of the retransmission echo an older TSval?
            # (Before the ACK is applied: with timestamps Eifel decides, not F-RTO.)
            ecr = seg.ts_ecr
            rec.eifel(ack, self.ts_ok and ecr is not None and seq_lt(ecr, stamp))
        delivery = rec.on_ack(ack, seg.sack_blocks if self.sack_ok else (), self.snd_max, now)
        rtt = delivery.rtt(now)
        if rtt is not None:
            self.rtt.sample(rtt)  # from our own send times: exact, no echo needed
            self._rtt_seq = None
        elif advanced:
            self._sample_rtt(seg, now)
        if advanced:
            self.cc.on_ack_sample(ack, self.snd_max, rtt, now)
            self._on_new_ack(seg, now)
        else:
            self._maybe_dup_ack(seg, delivery.sacked)
        if rec.after_ack(
            ack, advanced, delivery, self.snd_una, self.snd_max, self._send_pending(), now
        ):
            self._rtt_seq = None  # Karn: the timed segment may be the one resent
        if (
            probing
            and search is not None
            and search.probe_mtu
            and rec.in_recovery
            and seq_le(self.snd_una, search.probe_start)
        ):
            # A loss found with the probe still unacknowledged is the probe's
            # (Linux's test in tcp_fastretrans_alert): the upper bound comes down.
            search.failed()
            self.counters.mtu_probes_lost += 1

    def _on_new_ack(self, seg: Segment, now: float) -> None:
        """SND.UNA < SEG.ACK =< SND.MAX: new data acknowledged (RFC 9293, RFC 6298 §5)."""
        ack = seg.ack
        acked = seq_sub(ack, self.snd_una)
        flight = seq_sub(self.snd_max, self.snd_una)
        data_acked = min(max(seq_sub(ack, self._snd_buf_seq), 0), len(self.send_buffer))
        if data_acked:
            self.send_buffer.consume(data_acked)
            self._snd_buf_seq = seq_add(self._snd_buf_seq, data_acked)
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if self.snd_up is not None and seq_ge(ack, self.snd_up):
            self.snd_up = None  # the urgent data is delivered: super-segments again
        search = self.mtu_search
        if search is not None:
            if search.probe_mtu and seq_ge(ack, search.probe_end):
                search.succeeded()  # the path carried it: a larger MSS from now on
                self._sync_mss()
            elif not search.low_works and data_acked > self.mss // 2:
                # More than half a segment in one ACK: something sent at the
                # current size arrived (Linux keeps halving; RFC 8899 §4.3
                # wants black-hole detection that loss alone does not trigger).
                search.low_works = True
        self._retries = 0
        self.rtt.reset_backoff()
        self._last_progress = now
        self._acked_since_flush = True
        self.recovery.on_new_ack(ack, acked, flight, now)
        # RFC 6298 §5.2 / §5.3.
        if self.snd_una == self.snd_max:
            self.timers.cancel(TimerName.RETRANSMIT)
            self.timers.cancel(TimerName.USER_TIMEOUT)
            self.timers.cancel(TimerName.REORDER)
        else:
            self.timers.set(TimerName.RETRANSMIT, now + self.rtt.rto)
            self._arm_user_timeout()
        if self._send_space_wanted and data_acked and self.send_space > 0:
            self._send_space_wanted = False
            self._event(SendSpaceAvailable(self.send_space))

    def _maybe_dup_ack(self, seg: Segment, sacked: int) -> None:
        """RFC 5681 §2 duplicate ACK definition (RFC 6675 §2: or one that SACKs new data).

        "Outstanding data": a lone FIN in flight is none, so duplicate ACKs then
        leave its retransmission to the RTO, as Linux does."""
        if not sacked and (
            seg.payload
            or seg.flags & (SYN | FIN)
            or self.snd_max == self.snd_una
            or (seg.window << self.snd_wscale) != self.snd_wnd
            or not seq_lt(self.snd_una, seq_add(self._snd_buf_seq, len(self.send_buffer)))
        ):
            return
        self.recovery.on_duplicate_ack()

    def _receive_ecn(self, seg: Segment) -> None:
        """RFC 3168 §6.1.3: echo congestion (ECE on every ACK) until the sender says
        it reduced (CWR); answer a CE mark at once, as Linux does."""
        if seg.flags & CWR:
            self._ece_echo = False
        if seg.ecn == CE:
            self.counters.ce_received += 1
            if not self._ece_echo:
                self._ece_echo = True
                self._ack_now = True
                self._enter_quick_ack(2)  # Linux: the sender's cwnd may be tiny

    def _sample_rtt(self, seg: Segment, now: float) -> None:
        """RTT samples: timestamp echo (RFC 7323 §4.1) or one timed segment (Karn).

        An echo older than our last timeout cannot time anything sent since: the
        receiver repeats TS.Recent of the segment that last advanced its window
        (RFC 7323 §4.3) when our retransmission reaches it as a duplicate — its
        ACKs having been lost — and that "RTT" spans the whole outage.  Taking it
        would push SRTT to tens of seconds and pin the RTO at its maximum; so, as
        Karn's rule does for sequence timing, such echoes are not sampled.
        """
        if self.ts_ok and seg.ts_ecr:
            floor = self._ts_floor
            if floor is None or seq_ge(seg.ts_ecr, floor):
                rtt_ms = (self._ts_now(now) - seg.ts_ecr) & MASK
                if rtt_ms < 0x7FFFFFFF:
                    self.rtt.sample(rtt_ms / 1000)
            self._rtt_seq = None
            return
        if self._rtt_seq is not None and seq_ge(seg.ack, self._rtt_seq):
            self.rtt.sample(now - self._rtt_time)
            self._rtt_seq = None

    def _ack_our_syn(self, seg: Segment, now: float) -> None:
        """The handshake ACK covers our SYN (SYN-SENT or SYN-RECEIVED)."""
        self._sample_rtt(seg, now)
        self.snd_una = seg.ack
        if seq_lt(self.snd_nxt, seg.ack):
            self.snd_nxt = seg.ack
        self._retries = 0
        self.rtt.reset_backoff()
        if self._handshake_retransmitted:
            self.rtt.fallback()  # RFC 6298 §5.7
        self.timers.cancel(TimerName.RETRANSMIT)
        self._last_progress = now

    def _receive_urgent(self, seq: int, pointer: int) -> None:
        """RFC 9293 §3.10.7.4 sixth step: track RCV.UP, tell the user when it advances."""
        up = seq_add(seq, pointer)
        if self.rcv_up is None or seq_gt(up, self.rcv_up):
            self.rcv_up = up
            self._event(UrgentDataReceived(self.recv_buffer.nxt + seq_sub(up, self.rcv_nxt)))

    def _process_text_and_fin(self, seg: Segment, data_seq: int, now: float) -> None:
        """Steps seven and eight: segment text and FIN (RFC 9293 §3.10.7.4)."""
        st = self.state
        payload = seg.payload
        if payload and st in _RECEIVES_TEXT:
            if self._read_closed:
                # New data for a closed socket: the application will never read it
                # (RFC 9293 §3.10.4 via RFC 1122 §4.2.2.13).  The RST answers this
                # segment, <SEQ=SEG.ACK>, as Linux's does: a peer that has not yet
                # received our FIN expects exactly that sequence number, where
                # SND.NXT (past the FIN) is only "in the window" and an RFC 5961
                # peer would answer it with a challenge ACK.
                self._reply_reset(seg)
                self._enter_closed(CloseReason.ABORTED)
                return
            self._receive_text(data_seq, payload, now)
        if not seg.flags & FIN:
            return
        fin_seq = seq_add(data_seq, len(payload))
        if st in _RECEIVES_TEXT:
            if fin_seq == self.rcv_nxt:
                self._process_fin(now)
            elif seq_gt(fin_seq, self.rcv_nxt) and in_window(
                fin_seq, self.rcv_nxt, self.rcv_wnd + 1
            ):
                self._rcv_fin_seq = fin_seq  # FIN beyond a hole: keep it for later
                self._ack_now = True
        else:
            # CLOSE-WAIT, CLOSING, LAST-ACK: a retransmitted FIN; acknowledge it.
            self._ack_now = True

    def _note_dsack(self, start: int, end: int) -> None:
        """Keep ``[start, end)`` for the next ACK's D-SACK block (RFC 2883).

        A batch acknowledges many segments at once, so a run of spurious
        retransmissions arrives as one: consecutive duplicates extend one block, as
        Linux's ``tcp_dsack_extend`` does, instead of each replacing the last and
        the sender hearing of only one of them.  A duplicate elsewhere replaces it.
        """
        old = self._dsack
        if old is not None and seq_le(old[0], end) and seq_le(start, old[1]):
            start = old[0] if seq_lt(old[0], start) else start
            end = old[1] if seq_gt(old[1], end) else end
        self._dsack = (start, end)

    def _receive_text(self, seq: int, payload: Bytes, now: float) -> None:
        rel = seq_sub(seq, self.rcv_nxt)
        buf = self.recv_buffer
        if rel < 0 and self.sack_ok and payload:
            # RFC 2883 §4.1.2: a partly duplicate segment reports its old part.
            self._note_dsack(seq, seq_add(seq, min(-rel, len(payload))))
        had_holes = buf.has_out_of_order
        dropped_before = buf.ooo_dropped
        advanced = buf.insert(rel, payload, self.rcv_wnd)
        if buf.ooo_dropped != dropped_before:
            self.counters.ooo_dropped += 1
        dup = buf.duplicate
        if dup is not None and self.sack_ok:
            # RFC 2883 §4: bytes already held out of order (Linux's
            # tcp_data_queue_ofo) are as duplicate as bytes below RCV.NXT.
            # (an out-of-order insert leaves RCV.NXT, offset ``buf.nxt``, where it was)
            base = buf.nxt + rel
            self._note_dsack(seq_add(seq, dup[0] - base), seq_add(seq, dup[1] - base))
        n = len(payload)
        self.counters.bytes_in += n
        if n > self._rcv_mss and self._rcv_mss < self._adv_mss:
            # Larger than the MSS we advertised means GRO merged wire segments
            # (veth, LRO): like Linux's tcp_measure_rcv_mss, which reads gso_size,
            # count what the peer really sent, or ACKs would wait for two merges.
            self._rcv_mss = min(n, self._adv_mss)
        if advanced:
            self._data_arrived(now)
            self.rcv_nxt = seq_add(self.rcv_nxt, advanced)
            events = self._events
            last = events[-1] if events else None
            if isinstance(last, DataReceived):
                # A batch of segments makes one event, not one per segment.
                events[-1] = DataReceived(last.nbytes + advanced)
            else:
                self._event(DataReceived(advanced))
            self._rcv_unacked += advanced
            if (
                had_holes
                or not self.options.delayed_ack
                or self._rcv_unacked > self._rcv_mss
                or rel < 0
                or (self._quick_acks and not self._pingpong)
            ):
                # RFC 5681 §4.2: at least every second full-sized segment (Linux: as
                # soon as more than one full segment is unacknowledged), and at once
                # when a segment fills a hole; every segment in quick-ACK mode.
                self._ack_now = True
            else:
                self.timers.set_if_idle(
                    TimerName.DELAYED_ACK, now + self.options.delayed_ack_timeout
                )
            if self._rcv_fin_seq is not None and self._rcv_fin_seq == self.rcv_nxt:
                self._rcv_fin_seq = None
                self._process_fin(now)
        else:
            # Out of order or duplicate: immediate (duplicate) ACK, RFC 5681 §4.2.
            if rel > 0:
                self.counters.ooo_segments += 1
            else:
                self._enter_quick_ack(MAX_QUICK_ACKS)  # Linux: a retransmission
            self._ack_now = True
            self._dupacks_owed += 1

    def _data_arrived(self, now: float) -> None:
        """Linux's ``tcp_event_data_recv``: the first data, or data after a silence
        longer than the RTO (the sender restarts from a small window), is
        acknowledged segment by segment for a while."""
        last = self._last_data_in
        if last < 0 or now - last > self.rtt.rto:
            self._add_quick_acks(MAX_QUICK_ACKS)
        self._last_data_in = now

    def _add_quick_acks(self, most: int) -> None:
        """Linux's ``tcp_incr_quickack``: enough immediate ACKs for half the window
        in full segments (at least two), at most ``most``."""
        n = min(self.rcv_wnd // (2 * self._rcv_mss) or 2, most)
        if n > self._quick_acks:
            self._quick_acks = n

    def _enter_quick_ack(self, most: int) -> None:
        """Linux's ``tcp_enter_quickack_mode``: a sender that needs ACKs now (after
        duplicate or out-of-window data, or a congestion mark) gets them, even on an
        interactive connection."""
        self._add_quick_acks(most)
        self._pingpong = False

    def _process_fin(self, now: float) -> None:
        """Eighth step: an in-order FIN (RFC 9293 §3.10.7.4)."""
        self.rcv_nxt = seq_add(self.rcv_nxt, 1)
        self._fin_received = True
        self._ack_now = True
        self._event(EofReceived())
        st = self.state
        if st is State.ESTABLISHED:
            self._set_state(State.CLOSE_WAIT)
        elif st is State.FIN_WAIT_1:
            if self._fin_acked():
                self._enter_time_wait(now)
            else:
                self._set_state(State.CLOSING)
        elif st is State.FIN_WAIT_2:
            self._enter_time_wait(now)

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now`` (a timer firing early is harmless)."""
        for name in self.timers.expired(now):
            if self.state is State.CLOSED:
                return
            if self.timers.get(name) is None:
                continue  # cancelled by an earlier handler in this loop
            self.timers.cancel(name)
            if name is TimerName.RETRANSMIT:
                self._on_retransmit_timeout(now)
            elif name is TimerName.DELAYED_ACK:
                # Linux's tcp_delack_timer: no answer rode the ACK, so the
                # connection is not interactive after all.
                self._pingpong = False
                self._ack_now = True
            elif name is TimerName.LOSS_PROBE:
                self.recovery.on_probe_timer(
                    self.snd_una, self.snd_max, self.state in _SYNCHRONIZED
                )
            elif name is TimerName.REORDER:
                if self.recovery.on_reorder_timer(self.snd_una, self.snd_max, now):
                    self._rtt_seq = None  # Karn: the timed segment may be the one resent
            elif name is TimerName.PERSIST:
                self._on_persist_timeout(now)
            elif name is TimerName.KEEPALIVE:
                self._on_keepalive_timeout(now)
            elif name is TimerName.TIME_WAIT:
                self._enter_closed(CloseReason.NORMAL)
            elif name is TimerName.FIN_WAIT_2:
                if self.state is State.FIN_WAIT_2:
                    self._enter_closed(CloseReason.TIMEOUT)
            elif name is TimerName.USER_TIMEOUT and (
                self.snd_una != self.snd_max or TimerName.PERSIST in self.timers
            ):
                self._enter_closed(CloseReason.TIMEOUT)

    def _on_retransmit_timeout(self, now: float) -> None:
        """RFC 6298 §5.4-5.6 (and SYN / SYN-ACK retries, RFC 9293 §3.8.1)."""
        st = self.state
        if self.snd_una == self.snd_max and st not in (State.SYN_SENT, State.SYN_RECEIVED):
            return
        if st is State.SYN_SENT:
            limit = self.options.syn_retries
        elif st is State.SYN_RECEIVED:
            limit = self.options.synack_retries if self.passive else self.options.syn_retries
        else:
            limit = self.options.retries
        if self._retries >= limit:
            # RFC 9293 §3.8.3 R2: give up; the user sees a timeout.
            self._enter_closed(CloseReason.TIMEOUT)
            return
        self._retries += 1
        self._ts_floor = self._ts_now(now)  # see _sample_rtt
        if self._retries == self.options.retries_r1:
            # RFC 9293 §3.8.3 (MUST-20 b, SHLD-9): at R1, advise the layers above
            # and below (route re-validation, "connection stalled" for the user).
            self._event(DeliveryProblem(self._retries, self.soft_error))
        self.counters.rto_expirations += 1
        self.rtt.on_timeout()
        self._rtt_seq = None  # Karn
        if st in (State.SYN_SENT, State.SYN_RECEIVED):
            self._handshake_retransmitted = True
            self.counters.retransmits += 1  # the SYN or SYN-ACK goes again (Linux counts it)
            self.snd_nxt = self.iss
        else:
            self._suspect_black_hole(now)
            self.recovery.on_retransmit_timeout(self.snd_una, self.snd_max, self._retries, now)
        self.timers.set(TimerName.RETRANSMIT, now + self.rtt.rto)

    def _suspect_black_hole(self, now: float) -> None:
        """A retransmission timeout: a probe in flight failed; and from R1 on
        (Linux's ``tcp_retries1``), with ``mtu_probing``, the path may be dropping
        full-size segments without an ICMP error: fall back to the base MSS, then
        halve it at each further timeout (Linux's ``tcp_mtu_probing``, RFC 4821
        §7.5).  The retransmission that follows goes in the new size."""
        search = self.mtu_search
        if search is not None and search.probe_mtu:
            search.failed()
        if not self.options.mtu_probing or self._retries < self.options.retries_r1:
            return
        if search is None:
            self.counters.mtu_black_holes += 1
            self._start_mtu_search(now)
            return
        if search.low_works:
            return  # the current size got through since it was set: loss, not MTU
        self.counters.mtu_black_holes += 1
        overhead = self._header_overhead()
        mss = max(min(self.options.base_mss, (search.low - overhead) // 2), PROBE_FLOOR_MSS)
        search.low = mss + overhead
        self._sync_mss()

    def _start_mtu_search(self, now: float) -> None:
        overhead = self._header_overhead()
        low = min(self.options.base_mss, self.mss) + overhead
        self.mtu_search = MtuSearch(low, self._pmtu, now)
        self._sync_mss()

    def _on_persist_timeout(self, now: float) -> None:
        """RFC 9293 §3.8.6.1 zero-window probing (MUST-36), exponential backoff.

        The probe is Linux's: a zero-length segment one below SND.UNA, which any
        receiver must answer with an ACK carrying its current window; when the
        window is open but too small for SWS avoidance this instead forces the
        pending data out (RFC 9293 §3.8.6.2.1 override timeout).
        """
        if not self._send_pending():
            return
        if self.snd_wnd > 0:
            self._force_push = True
            return
        self._persist_probes += 1
        if self._persist_probes > self.options.retries:
            self._enter_closed(CloseReason.TIMEOUT)
            return
        self._probe_pending = True
        self.counters.zero_window_probes += 1
        # Linux backs off while the window stays shut, even if probes are answered.
        self._persist_backoff += 1
        self._arm_persist(now)

    def _on_keepalive_timeout(self, now: float) -> None:
        """RFC 9293 §3.8.4 keepalive with Linux's idle / interval / count semantics."""
        opts = self.options
        if not opts.keepalive or self.state not in _KEEPALIVE_STATES:
            return
        if self.snd_una != self.snd_max or self._send_pending():
            # Data in flight: retransmission (or persist) decides liveness.
            self.timers.set(TimerName.KEEPALIVE, now + opts.keepalive_idle)
            return
        deadline = self._last_heard + opts.keepalive_idle
        if self._keepalive_probes == 0 and deadline > now:
            self.timers.set(TimerName.KEEPALIVE, deadline)
            return
        if self._keepalive_probes >= opts.keepalive_count:
            # Like Linux (tcp_keepalive_timer), tell the peer in case it is only
            # unreachable from here, not gone: a RST, then ETIMEDOUT for the user.
            self._queue_active_reset()
            self._enter_closed(CloseReason.TIMEOUT)
            return
        self._keepalive_probes += 1
        self.counters.keepalive_probes += 1
        self._probe_pending = True
        self.timers.set(TimerName.KEEPALIVE, now + opts.keepalive_interval)

    # ------------------------------------------------------------------ output

    def segments_to_send(self, now: float) -> list[Segment]:
        """Everything that should go out now, as one run: consecutive data segments
        become one GSO frame on the way out."""
        # The advertised window cannot change while one run is built: compute it
        # once, lazily (computing it advertises it), instead of once per segment.
        self._wnd_cache = -1
        self._acked_since_flush = False
        try:
            return self._collect_segments(now)
        finally:
            self._wnd_cache = -1

    def _collect_segments(self, now: float) -> list[Segment]:
        dupacks, self._dupacks_owed = self._dupacks_owed, 0
        older: list[tuple[tuple[int, int], ...]] = []
        if dupacks > 1 and self.sack_ok and self.recv_buffer.has_out_of_order:
            # Before any segment of this run reports the newest blocks (see
            # ReceiveBuffer.unreported_blocks): the batch's older ranges.
            older = self.recv_buffer.unreported_blocks(self.rcv_nxt, self._sack_room(), dupacks - 1)
        out: list[Segment] = []
        early = self._early_out
        if early:
            out.extend(early)  # they were owed before the rest of the batch arrived
            early.clear()
        if self._rst_out:
            out.extend(self._rst_out)
            self.counters.rst_out += len(self._rst_out)
            self._rst_out = _NO_SEGMENTS
        st = self.state
        if st is State.CLOSED or st is State.LISTEN:
            self.counters.segments_out += len(out)
            return out
        if st is State.SYN_SENT or st is State.SYN_RECEIVED:
            if self.snd_nxt == self.iss:
                out.append(self._syn_segment(now, with_ack=st is State.SYN_RECEIVED))
            elif self._ack_now and st is State.SYN_RECEIVED:
                out.append(self._make_segment(self._snd_seq_for_ack(), ACK, b"", now))
            self._ack_now = False
            self.counters.segments_out += len(out)
            return out
        if st is not State.TIME_WAIT:
            sent = len(out)
            rec = self.recovery
            self._pace_rate = self._pacing_rate_now()
            if rec.lost_bytes:
                self._retransmit_lost(out, now)
            snd_max = self.snd_max
            self._transmit_data(out, now)
            if rec.take_probe_due():
                self._send_loss_probe(out, now, new_data=len(out) > sent)
            elif self.snd_max != snd_max or len(out) > sent:
                rec.arm_loss_probe(self.snd_una, self.snd_max, now)
            if self._probe_pending:
                self._probe_pending = False
                out.append(self._make_segment(seq_add(self.snd_una, -1), ACK, b"", now))
        if self._ack_now:
            ack = self._snd_seq_for_ack()
            for blocks in older:  # one duplicate ACK each, ahead of the newest blocks
                out.append(self._make_segment(ack, ACK, b"", now, blocks))
            out.append(self._make_segment(ack, ACK, b"", now))
            if dupacks - len(older) > 1 and self.recv_buffer.has_out_of_order:
                self._duplicate_acks(out, dupacks - 1 - len(older), now)
        self.counters.segments_out += len(out)
        return out

    def _duplicate_acks(self, out: list[Segment], n: int, now: float) -> None:
        """The rest of one batch's duplicate ACKs, one per out-of-order segment.

        Only when the batch left a hole open. On veth a burst reaches the raw socket
        from two CPUs (the sender's softirq, and ours running the sender's
        transmission inside our ACK's ``sendmsg``), so a segment often arrives a
        moment after its successor, in the same batch; a duplicate ACK for that
        SACKs a 64 KB GRO segment above the hole and the sender retransmits at
        once, spuriously (docs/performance.md).
        """
        ack = self._snd_seq_for_ack()
        blocks = (
            self.recv_buffer.sack_blocks(self.rcv_nxt, self._sack_room()) if self.sack_ok else None
        )
        out.extend(self._make_segment(ack, ACK, b"", now, blocks) for _ in range(n))

    def _retransmit_lost(self, out: list[Segment], now: float) -> None:
        """RFC 6675 NextSeg rule 1 / RFC 8985: resend what is marked lost, in
        sequence order, while the window has room (at least one after an RTO)."""
        rec = self.recovery
        mss = self.mss
        first = True
        while True:
            nxt = rec.next_lost()
            if nxt is None:
                return
            if rec.room() < mss and not (first and rec.network_empty()):
                return
            if self._pace_rate and not (first and rec.network_empty()) and self._pacing_holds(now):
                return
            seq, length = nxt
            seg = self._build_data_segment(seq, length, now, retransmit=True)
            if seg is None:
                return
            out.append(seg)
            if rec.in_recovery:
                self.counters.sack_retransmits += self.sack_ok
            first = False

    def _send_loss_probe(self, out: list[Segment], now: float, *, new_data: bool) -> None:
        """RFC 8985 §7.3: new data if any went (or can go) out, else the last segment
        again (in recovery: the first lost range); then the RTO guards the probe."""
        if self.snd_una == self.snd_max:
            return
        rec = self.recovery
        resend = None if new_data else rec.probe_resend(self.snd_una, self.snd_max)
        if resend is None and not new_data and self._send_pending():
            before = len(out)
            self._transmit_data(out, now, probe=True)
            new_data = len(out) > before
        if not new_data:
            if resend is None:
                end = self.snd_max
                start = seq_add(end, -min(self.mss, seq_sub(end, self.snd_una)))
                resend = (start, seq_sub(end, start))
            seg = self._build_data_segment(*resend, now, retransmit=True)
            if seg is None:
                return
            out.append(seg)
        rec.on_probe_sent(self.snd_max, retransmission=not new_data)
        self.timers.set(TimerName.RETRANSMIT, now + self.rtt.rto)

    def _transmit_data(self, out: list[Segment], now: float, *, probe: bool = False) -> None:
        """New data and FIN within min(SND.WND, cwnd), with Nagle and SWS avoidance."""
        opts = self.options
        buf_len = len(self.send_buffer)
        mss = self.mss
        force = self._force_push
        self._force_push = False
        if self.snd_una == self.snd_max and self._send_pending():
            # Linux's CA_EVENT_TX_START, and tcp_slow_start_after_idle (RFC 5681 §4.1).
            self.cc.on_tx_start(now, self.recovery.board.app_limited != 0)
            if now - self._last_send > self.rtt.rto:
                self.cc.on_idle_restart(now)
        # The congestion window limits what is in the network (cwnd − pipe; RFC 6675
        # pipe already subtracts what duplicate ACKs or SACKs say has left, which
        # is RFC 3042 limited transmit); a tail loss probe may send one segment more.
        room = mss if probe else self.recovery.room()
        if self.mtu_search is not None and not probe and self._send_mtu_probe(out, room, now):
            return  # alone in its flush: nothing joins the probe's frame
        # Super-segments: whole MSS multiples; no urgent data (URG is per segment).
        gso_limit = 0 if probe or self.snd_up is not None else self.gso_max // mss * mss
        paced = self._pace_rate != 0.0 and not probe
        if gso_limit:
            gso_limit = self._autosized_frame(gso_limit)
        while True:
            if paced and self._pacing_holds(now):
                break
            off = seq_sub(self.snd_nxt, self._snd_buf_seq)
            avail = buf_len - off
            fin_seq = seq_add(self._snd_buf_seq, buf_len)
            fin_pending = (
                self._fin_queued and self.state in _FIN_STATES and seq_le(self.snd_nxt, fin_seq)
            )
            if avail <= 0 and not fin_pending:
                break
            usable = min(seq_sub(seq_add(self.snd_una, self.snd_wnd), self.snd_nxt), room)
            n = min(mss, avail, max(usable, 0))
            if n == mss and gso_limit and not self.recovery.cwr_due:
                n = self._super_segment_length(min(avail, usable, gso_limit), avail, fin_pending)
            if (
                0 < n < (gso_limit or mss)
                and not (fin_pending or force or probe)
                and self._defers_short_frame(usable, avail, gso_limit or mss, now)
            ):
                self.counters.frames_deferred += 1
                break
            if avail > 0 and n < mss and not force:
                if n < avail:
                    # RFC 9293 §3.8.6.2.1 sender SWS avoidance: a window-limited
                    # segment must be at least half the largest window seen.
                    if n == 0 or n < self.max_snd_wnd // 2:
                        break
                elif self.cork and not fin_pending:
                    break  # the burst's next write may make this tail a full segment
                elif not opts.nodelay and not fin_pending and seq_gt(self.snd_nxt, self.snd_una):
                    # Nagle (RFC 9293 §3.7.4): one small segment in flight at a time.
                    break
            if avail > 0 and n == 0:
                break
            fin = fin_pending and n == avail
            if n == 0 and not fin:
                break
            seg = self._build_data_segment(self.snd_nxt, n, now, fin=fin)
            if seg is None:
                break
            out.append(seg)
            room -= n + fin
            force = False
            if probe:
                break
        if self._send_pending() and self.snd_una == self.snd_max:
            # Nothing in flight will bring an ACK: probe the window (RFC 9293 §3.8.6.1).
            self._arm_persist(now, only_if_idle=True)
        if not probe:
            self.recovery.check_app_limited(buf_len - seq_sub(self.snd_nxt, self._snd_buf_seq))

    # ------------------------------------------------------------------ pacing

    def _pacing_rate_now(self) -> float:
        """The rate to pace this flush at, 0 for none: ``TcpOptions.pacing`` (None:
        as the algorithm asks).  The first segments still leave unpaced: ``_paced``
        starts the clock only after them."""
        if not self._paces():
            return 0.0
        return self.cc.pacing_rate or 0.0

    def _paces(self) -> bool:
        pacing = self.options.pacing
        return self.cc.wants_pacing if pacing is None else pacing

    def _pacing_holds(self, now: float) -> bool:
        """The pacing clock is ahead: wait for it (the PACING timer wakes the flush)."""
        at = self._pace_at
        if at <= now + PACING_SLACK:
            return False
        self.timers.set(TimerName.PACING, at - PACING_SLACK)
        return True

    def _paced(self, length: int, now: float) -> None:
        """A frame of ``length`` bytes left: the next may leave ``length / rate``
        later (Linux ``tcp_update_skb_after_send``).  A frame that left late uses up
        to half its spacing on the delay, so jitter does not lower the rate.  The
        first segments of the connection leave the clock where it is."""
        if self.counters.bytes_out < UNPACED_SEGMENTS * self.mss:
            return
        at = self._pace_at
        late = 0.0
        if at < now:
            late = now - at
            at = now
        spacing = length / self._pace_rate
        self._pace_at = at + spacing - min(spacing / 2, late)
        self.cc.next_departure = self._pace_at

    def _autosized_frame(self, gso_limit: int) -> int:
        """Bytes per frame (Linux ``tcp_tso_autosize``): about a millisecond of the
        pacing rate (rate >> 10), plus a part of the largest frame that halves for
        every 512 µs of minimum RTT — whole frames on a LAN — and at least the
        algorithm's minimum of segments.

        Unpaced flows too, as Linux sizes by ``sk_pacing_rate`` whether or not
        anything enforces it: a frame is also the unit ``_defers_short_frame``
        waits to fill.  With 64 KB frames on a long path, each batch of a burst
        of ACKs sent one frame and held the rest for the next batch, and the
        sender fell behind its cwnd within the burst (a capture of NewReno at
        80 ms, docs/congestion.md).
        """
        rate = self._pace_rate or self.cc.pacing_rate
        if not rate:
            return gso_limit  # no RTT measured yet: nothing to size by
        mss = self.mss
        size = int(rate) >> 10
        min_rtt = self.recovery.board.min_rtt
        if min_rtt == float("inf"):  # no data acknowledged yet: the handshake's RTT
            min_rtt = self.rtt.srtt or min_rtt
        shift = int(min_rtt * 1e6) >> 9 if min_rtt != float("inf") else 32
        if shift < 32:
            size += gso_limit >> shift
        size = min(size, gso_limit)
        return max(size // mss, self.cc.min_frame_segments()) * mss

    def _send_mtu_probe(self, out: list[Segment], room: int, now: float) -> bool:
        """One segment larger than the MSS, to learn whether the path takes it
        (RFC 4821 §7.4, Linux's ``tcp_mtu_probe``, and its conditions: no probe
        during recovery or with a small window, and only with enough data queued
        behind it that a loss of the probe is noticed quickly).  True: nothing
        else goes now (the probe went, or the window is draining to fit it)."""
        search = self.mtu_search
        assert search is not None
        if self.state not in (State.ESTABLISHED, State.CLOSE_WAIT) or self.recovery.in_recovery:
            return False
        mss = self.mss
        if self.cc.cwnd < PROBE_MIN_CWND * mss:
            return False
        target = search.next_probe(now, self._pmtu)
        if target is None:
            return False
        size = target - self._header_overhead()
        if size <= mss:
            return False
        needed = size + 4 * mss  # then DupThresh + 1 segments, as Linux asks
        avail = len(self.send_buffer) - seq_sub(self.snd_nxt, self._snd_buf_seq)
        if avail < needed or self.snd_wnd < needed:
            return False  # not enough to send behind it: an ordinary segment instead
        usable = seq_sub(seq_add(self.snd_una, self.snd_wnd), self.snd_nxt)
        if usable < needed or room < size + mss:
            # Wait, sending nothing, until ACKs make room for it (Linux's
            # tcp_mtu_probe returning 0): otherwise a window kept full never
            # has room for a segment larger than the others.
            return True
        seg = self._build_data_segment(self.snd_nxt, size, now, whole=True)
        if seg is None:
            return False
        out.append(seg)
        search.sent(target, seg.seq, seq_add(seg.seq, seg.payload_len))
        self.counters.mtu_probes += 1
        return True

    def _defers_short_frame(self, usable: int, avail: int, frame: int, now: float) -> bool:
        """Hold back a frame shorter than a full one until the next ACK (Linux's
        autocorking and ``tcp_tso_should_defer``), where waiting costs no throughput.

        Each frame costs a system call and the kernel's per-packet work on both
        ends, however short: a bulk sender that sent whatever was queued at each
        ACK sent frames well short of full (docs/performance.md).  Waiting is free
        only while
        plenty is in flight (two full frames: ACKs keep coming) and more data is
        sure to come with the next ACK — the application has bytes that did not
        fit the send buffer, or the window, not the data, cut the frame short
        and the oldest flight left at least half a round trip ago (Linux's test
        for an ACK due soon).  And, as in Linux's ``tcp_tso_should_defer``, only
        within a millisecond of the last send (its same-jiffy rule: an ACK that
        comes long after the last departure is not part of a burst, and the next
        may be milliseconds away) and never in loss recovery, where PRR meters
        the window out a segment or two per ACK and a held segment is a
        retransmission or the data that keeps the ACKs coming.  A corked
        connection (a burst of large writes, until the next loop iteration)
        sends whole frames only, as it sends whole segments only.  A FIN, a
        forced push or a probe never waits.
        """
        if self.cork and avail <= usable:
            return True  # the burst's next write fills it; the cork lifts next iteration
        if now - self._last_send > DEFER_WINDOW or self.recovery.in_recovery:
            return False
        if seq_sub(self.snd_nxt, self.snd_una) < 2 * frame:
            return False
        if avail <= usable:  # the data ran out: only more of it makes the frame longer
            return self._send_space_wanted
        if usable >= min(self.snd_wnd, self.cc.cwnd) // 3:
            return False  # a good part of the window is open: use it
        oldest = self.recovery.oldest_sent_at()
        srtt = self.rtt.srtt
        if oldest is None or srtt is None:
            return False
        return now - oldest >= srtt / 2

    def _super_segment_length(self, n: int, avail: int, fin_pending: bool) -> int:
        """Bytes for one super-segment: full MSS-sized pieces, plus the short last
        piece only where the MSS-at-a-time loop would have sent it too (the end of
        the data with Nagle off or a FIN behind it, RFC 9293 §3.7.4)."""
        tail = n % self.mss
        if tail and not (n == avail and ((self.options.nodelay and not self.cork) or fin_pending)):
            n -= tail
        return n

    def _build_data_segment(
        self,
        seq: int,
        max_len: int,
        now: float,
        *,
        fin: bool | None = None,
        retransmit: bool = False,
        whole: bool = False,
    ) -> Segment | None:
        """A data (and/or FIN) segment starting at ``seq``; advances SND.NXT/SND.MAX.
        Longer than the MSS, a super-segment, unless ``whole`` (an MTU probe)."""
        buf_len = len(self.send_buffer)
        off = seq_sub(seq, self._snd_buf_seq)
        if off < 0:
            return None
        n = max(min(max_len, buf_len - off), 0)
        if retransmit:
            n = min(n, max(seq_sub(self.snd_max, seq), 0))
            fin_seq = seq_add(self._snd_buf_seq, buf_len)
            fin = self._fin_queued and off + n == buf_len and seq_gt(self.snd_max, fin_seq)
        elif fin is None:
            fin = False
        if n == 0 and not fin:
            return None
        flags = ACK
        if fin:
            flags |= FIN
        if n and off + n == buf_len:
            flags |= PSH
        if not retransmit and 0 <= now - self._last_data_in < INTERACTIVE_GAP:
            # Linux's tcp_event_data_sent: an answer to what just arrived; from now
            # on its ACKs ride on the answers instead of going out on their own.
            self._pingpong = True
        seg = self._make_segment(seq, flags, b"", now)
        if n:
            seg.set_parts(self.send_buffer.peek_parts(off, n))
        if n > self.mss and not whole:
            seg.gso_size = self.mss
            self.counters.segments_out += (n - 1) // self.mss  # the caller counts one
        if self.snd_up is not None and seq_lt(seq, self.snd_up):
            # RFC 9293 §3.8.5 (MUST-31): the pointer names the octet after the urgent data.
            seg.flags |= URG
            seg.urgent = min(seq_sub(self.snd_up, seq), 0xFFFF)
        length = n + (1 if fin else 0)
        end = seq_add(seq, length)
        if retransmit or seq_lt(seq, self.snd_max):
            self.counters.retransmits += 1
            self.recovery.on_retransmitted(seq, length, now)
            if seg.ts_val is not None:
                self.recovery.note_retransmit_ts(seq, seg.ts_val)
            if self._rtt_seq is not None and seq_lt(seq, self._rtt_seq):
                self._rtt_seq = None  # Karn: never time a retransmitted segment
        else:
            self.recovery.on_sent(seq, length, self.snd_una, now)
            if self.ecn_ok and n:
                # RFC 3168 §6.1.5: only new data is ECN-capable (never retransmissions,
                # pure ACKs or probes); the first after a reduction carries CWR.
                seg.ecn = ECT0
                if self.recovery.take_cwr():
                    seg.flags |= CWR
            if self._rtt_seq is None and not self.ts_ok:
                self._rtt_seq = end
                self._rtt_time = now
        if not retransmit:
            self.snd_nxt = end
        if seq_gt(end, self.snd_max):
            if self.snd_una == self.snd_max:
                self._last_progress = now
            self.snd_max = end
        self.counters.bytes_out += n
        self._last_send = now
        if self._pace_rate:
            self._paced(length, now)
        # RFC 6298 §5.1: start the timer if it is not running.
        self.timers.set_if_idle(TimerName.RETRANSMIT, now + self.rtt.rto)
        self.timers.cancel(TimerName.PERSIST)
        self._arm_user_timeout()
        return seg

    def _syn_segment(self, now: float, *, with_ack: bool) -> Segment:
        """SYN or SYN,ACK with our options (RFC 9293 §3.7.1, RFC 7323, RFC 2018)."""
        opts = self.options
        seg = Segment(
            self.local[1],
            self.remote[1],
            self.iss,
            self.rcv_nxt if with_ack else 0,
            SYN | ACK if with_ack else SYN,
            min(self.recv_buffer.free, MAX_UNSCALED_WINDOW),
        )
        if with_ack and self.ecn_ok:
            seg.flags |= ECE
        elif not with_ack and opts.ecn:
            seg.flags |= ECE | CWR
        seg.mss = opts.advertised_mss(self._over_ipv6())
        self._syn_window = seg.window
        if with_ack:
            # A SYN,ACK carries only the options the peer offered (RFC 7323 §1.3).
            if self._wscale_ok:
                seg.wscale = self.rcv_wscale
            seg.sack_permitted = self.sack_ok
            if self.ts_ok:
                seg.ts_val = self._ts_now(now)
                seg.ts_ecr = self.ts_recent
            self._on_ack_sent()
            self.rcv_adv = seq_add(self.rcv_nxt, seg.window)
        else:
            if opts.window_scaling:
                seg.wscale = self.rcv_wscale
            seg.sack_permitted = opts.sack
            if opts.timestamps:
                seg.ts_val = self._ts_now(now)
                seg.ts_ecr = 0
        self.snd_nxt = seq_add(self.iss, 1)
        if seq_gt(self.snd_nxt, self.snd_max):
            self.snd_max = self.snd_nxt
        if not self._handshake_retransmitted and self._retries == 0:
            self._rtt_seq = self.snd_nxt
            self._rtt_time = now
        self.timers.set_if_idle(TimerName.RETRANSMIT, now + self.rtt.rto)
        return seg

    def _sack_room(self) -> int:
        """SACK blocks an ACK has room for: 3 beside timestamps, else 4 (RFC 2018 §3)."""
        return 3 if self.ts_ok else 4

    def _make_segment(
        self,
        seq: int,
        flags: int,
        payload: Bytes,
        now: float,
        sack: tuple[tuple[int, int], ...] | None = None,
    ) -> Segment:
        """A segment of ours; ``sack``: these SACK blocks rather than the newest ones
        (and the pending D-SACK block waits for an ACK that carries the newest)."""
        seg = Segment(
            self.local[1],
            self.remote[1],
            seq,
            self.rcv_nxt,
            flags,
            self._cached_window(),
            0,
            payload,
        )
        if self.ts_ok:
            seg.ts_val = self._ts_now(now)
            seg.ts_ecr = self.ts_recent
        if sack is not None:
            seg.sack_blocks = sack
        elif self.sack_ok and (self.recv_buffer.has_out_of_order or self._dsack is not None):
            room = self._sack_room()
            blocks = self.recv_buffer.sack_blocks(self.rcv_nxt, room)
            if self._dsack is not None and flags & ACK:
                # RFC 2883 §4: the D-SACK block first, once.
                blocks = (self._dsack, *blocks[: room - 1])
                self._dsack = None
            seg.sack_blocks = blocks
        if flags & ACK:
            if self._ece_echo:
                seg.flags |= ECE
            self._on_ack_sent()
        return seg

    def _on_ack_sent(self) -> None:
        if self._quick_acks:
            self._quick_acks -= 1
        self._ack_now = False
        self._rcv_unacked = 0
        self._last_ack_sent = self.rcv_nxt
        self.timers.cancel(TimerName.DELAYED_ACK)

    def _snd_seq_for_ack(self) -> int:
        """Sequence number for a pure ACK or RST: SND.NXT, clipped to the peer's window
        (Linux's ``tcp_acceptable_seq``) so it is acceptable to the receiver."""
        edge = seq_add(self.snd_una, self.snd_wnd)
        return self.snd_max if seq_le(self.snd_max, edge) else edge

    def _cached_window(self) -> int:
        wnd = self._wnd_cache
        if wnd < 0:
            wnd = self._wnd_cache = self._window_field()
        return wnd

    def _window_field(self) -> int:
        """Window to advertise, with receiver SWS avoidance (RFC 9293 §3.8.6.2.2).

        RCV.WND stays fixed until the free buffer exceeds it by min(RCV.BUFF/2, MSS),
        then opens to all free space the field can carry; the right edge never moves
        left (RFC 9293 §3.8.6: shrinking the window is strongly discouraged), and the
        scaled value is rounded up so scaling cannot shrink it either.
        """
        edge = self.rcv_adv
        if seq_lt(edge, self.rcv_nxt):
            edge = self.rcv_nxt
        if self._rcv_space() - seq_sub(edge, self.rcv_nxt) >= self._sws_threshold():
            avail_edge = seq_add(self.rcv_nxt, self._offerable_window())
            if seq_gt(avail_edge, edge):
                edge = avail_edge
        wnd = seq_sub(edge, self.rcv_nxt)
        shift = self.rcv_wscale
        fieldv = min((wnd + (1 << shift) - 1) >> shift, MAX_UNSCALED_WINDOW)
        adv = seq_add(self.rcv_nxt, fieldv << shift)
        if seq_gt(adv, self.rcv_adv):
            self.rcv_adv = adv
        return fieldv

    def _offerable_window(self) -> int:
        """Free buffer space (``_rcv_space``), but no more than the window field can
        carry (65535 << RCV.WIND.SHIFT): space beyond it cannot be advertised anyway."""
        return min(self._rcv_space(), MAX_UNSCALED_WINDOW << self.rcv_wscale)

    def _rcv_space(self) -> int:
        """Room for in-order data: the buffer, or less while the application has not
        yet earned it (``_rcv_ssthresh``), minus what waits to be read.

        Autotuning sizes the buffer once per round trip from what the application
        read (``_autotune_receive_buffer``), a guess that may be generous.  What is
        offered follows what is actually taken: the peer may fill at most
        ``_rcv_ssthresh`` bytes, which grows by twice every byte read (for a
        reader that keeps up, twice what arrived, as Linux's ``rcv_ssthresh``
        grows by two segments per in-sequence segment).  Unlike Linux's, it
        bounds the bytes held plus the window, not only the window beyond
        RCV.NXT, and it grows on reads, not on arrivals: either way a reader that
        paused would be offered the whole buffer as data kept arriving.  So a
        reader that took a burst and then paused is offered what is left of
        twice that burst, not the megabytes the burst earned the buffer.
        """
        buf = self.recv_buffer
        cap = buf.capacity
        if self._rcv_ssthresh < cap:
            cap = self._rcv_ssthresh
        return max(cap - buf.readable, 0)

    def _sws_threshold(self) -> int:
        return max(min(self.recv_buffer.capacity // 2, self._rcv_mss), 1)

    def _window_update_due(self) -> bool:
        """After a read: has the window grown enough to be worth an update?"""
        avail_edge = seq_add(self.rcv_nxt, self._offerable_window())
        return seq_sub(avail_edge, self.rcv_adv) >= max(
            self._sws_threshold(), self.rcv_wnd if self.rcv_wnd else 0
        )

    @property
    def rcv_wnd(self) -> int:
        """RCV.WND: what we last advertised, measured from RCV.NXT."""
        return max(seq_sub(self.rcv_adv, self.rcv_nxt), 0)

    def _send_pending(self) -> bool:
        """Data or FIN queued beyond SND.NXT."""
        off = seq_sub(self.snd_nxt, self._snd_buf_seq)
        if len(self.send_buffer) - off > 0:
            return True
        return (
            self._fin_queued
            and self.state in _FIN_STATES
            and seq_le(self.snd_nxt, seq_add(self._snd_buf_seq, len(self.send_buffer)))
        )

    def _arm_persist(self, now: float, *, only_if_idle: bool = False) -> None:
        if only_if_idle and TimerName.PERSIST in self.timers:
            return
        base = self.rtt.rto
        delay = min(base * (1 << min(self._persist_backoff, 20)), self.options.rto_max)
        self.timers.set(TimerName.PERSIST, now + delay)
        if self.options.user_timeout > 0:
            self.timers.set_if_idle(
                TimerName.USER_TIMEOUT, self._last_progress + self.options.user_timeout
            )

    def _arm_user_timeout(self) -> None:
        ut = self.options.user_timeout
        if ut > 0 and self.snd_una != self.snd_max:
            self.timers.set(TimerName.USER_TIMEOUT, self._last_progress + ut)

    def _rearm_user_timeout(self) -> None:
        """A new user timeout: where the connection would have armed it (data in
        flight, or the window being probed), it now runs with the new value."""
        ut = self.options.user_timeout
        if ut > 0 and (
            self.state in _SYNCHRONIZED
            and (self.snd_una != self.snd_max or TimerName.PERSIST in self.timers)
        ):
            self.timers.set(TimerName.USER_TIMEOUT, self._last_progress + ut)
        else:
            self.timers.cancel(TimerName.USER_TIMEOUT)

    # ------------------------------------------------------------------ helpers

    def _init_send_sequence(self, now: float) -> None:
        if self._iss_override is not None:
            self.iss = self._iss_override & MASK
        else:
            self.iss = initial_sequence_number(self._secret, self.local, self.remote, now)
        self.snd_una = self.snd_nxt = self.snd_max = self.iss
        self._snd_buf_seq = seq_add(self.iss, 1)
        self.recovery.reset(self.iss)

    def _negotiate(self, seg: Segment) -> None:
        """Options from the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §1.3, RFC 2018 §2)."""
        opts = self.options
        default = DEFAULT_PEER_MSS6 if self._over_ipv6() else DEFAULT_PEER_MSS
        self.peer_mss = seg.mss if seg.mss else default
        if opts.window_scaling and seg.wscale is not None:
            self._wscale_ok = True
            self.snd_wscale = min(seg.wscale, MAX_WSCALE)
        else:
            self._wscale_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
        self.sack_ok = opts.sack and seg.sack_permitted
        self.recovery.sack = self.sack_ok
        self.ts_ok = opts.timestamps and seg.ts_val is not None
        # RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR, its SYN-ACK only ECE.
        setup = seg.flags & (ECE | CWR | ACK)
        self.ecn_ok = opts.ecn and setup in (ECE | CWR, ECE | ACK)
        if self.ts_ok and seg.ts_val is not None:
            self.ts_recent = seg.ts_val
        self._negotiated_mss(
            max(
                min(self.peer_mss, opts.advertised_mss(self._over_ipv6()))
                - (_TS_OPTION_SPACE if self.ts_ok else 0),
                64,
            )
        )

    def _negotiated_mss(self, mss: int) -> None:
        """What both ends allow: the most a segment may carry, and the path MTU
        assumed until ICMP or a black hole says less."""
        self._mss_negotiated = mss
        self._pmtu = mss + self._header_overhead()
        self._set_mss(mss)

    def _over_ipv6(self) -> bool:
        return len(self.local[0]) == 16

    def _header_overhead(self) -> int:
        """The bytes of an IP packet that are not payload: IP and TCP headers and
        the timestamp option (what converts an MTU to an MSS)."""
        ip = 40 if self._over_ipv6() else 20
        return ip + 20 + (_TS_OPTION_SPACE if self.ts_ok else 0)

    def _sync_mss(self) -> None:
        """The MSS from what is known of the path: the negotiated one, within the
        path MTU, within what the MTU search has found to work (Linux's
        ``tcp_sync_mss``)."""
        overhead = self._header_overhead()
        mss = min(self._mss_negotiated, self._pmtu - overhead)
        if self.mtu_search is not None:
            mss = min(mss, self.mtu_search.low - overhead)
        mss = max(mss, PROBE_FLOOR_MSS)
        if mss != self.mss:
            self._set_mss(mss)

    def _set_mss(self, mss: int) -> None:
        """The effective send MSS: what counts in segments (cwnd, DupThresh) follows."""
        self.mss = mss
        self.cc.set_mss(mss)
        self.recovery.set_mss(mss)

    def _establish(self, now: float) -> None:
        if self.options.mtu_probing == 2 and self.mtu_search is None:
            self._start_mtu_search(now)  # Linux's tcp_mtu_probing = 2: from the base MSS up
        self._set_state(State.ESTABLISHED)
        self._event(Connected())
        if self._accept_queue is not None:
            self._accept_queue.child_established(self)
        if self.options.keepalive:
            self.timers.set(TimerName.KEEPALIVE, now + self.options.keepalive_idle)
        if self._fin_queued:
            self._set_state(State.FIN_WAIT_1)

    def _fin_acked(self) -> bool:
        fin_seq = seq_add(self._snd_buf_seq, len(self.send_buffer))
        return self._fin_queued and seq_gt(self.snd_una, fin_seq)

    def _enter_time_wait(self, now: float) -> None:
        self.timers.cancel_all()
        self._set_state(State.TIME_WAIT)
        self._restart_time_wait(now)

    def _restart_time_wait(self, now: float) -> None:
        self.timers.set(TimerName.TIME_WAIT, now + 2 * self.options.msl)

    def _enter_closed(self, reason: CloseReason, *, notify_reset: bool = True) -> None:
        if self.state is State.CLOSED:
            return
        self.close_reason = reason
        if reason is CloseReason.TIMEOUT and self.soft_error is not None:
            # Linux's tcp_write_err: a connection that dies after ICMP errors reports
            # the last of them (EHOSTUNREACH ...) instead of ETIMEDOUT.
            self.close_errno = self.soft_error
        self.timers.cancel_all()
        self._set_state(State.CLOSED)
        if reason in (CloseReason.RESET, CloseReason.REFUSED):
            # In-order bytes that arrived before the reset stay readable, as on
            # Linux (a read returns them, the next one fails with ECONNRESET): a
            # server's last words before it resets (an error reply) are the part
            # the application most needs.  What sits beyond a hole can never be.
            self.recv_buffer.drop_out_of_order()
            if notify_reset:
                self._event(ConnectionReset())
        self._event(ConnectionClosed(reason))
        if self._accept_queue is not None:
            self._accept_queue.child_closed(self)

    def _set_state(self, new: State) -> None:
        old = self.state
        if old is not new:
            assert (old, new) in TRANSITIONS, f"{old.name} -> {new.name} is not a TCP transition"
            self.state = new
            self._event(StateChanged(old, new))

    def _rst(self, rst: Segment) -> None:
        if self._rst_out is _NO_SEGMENTS:
            self._rst_out = [rst]
        else:
            self._rst_out.append(rst)

    def _queue_rst(self, seq: int) -> None:
        self._rst(Segment(self.local[1], self.remote[1], seq, 0, RST))

    def _queue_active_reset(self) -> None:
        """Our own reset of a synchronized connection (abort, close with unread data,
        keepalive giving up): <SEQ=SND.NXT><CTL=RST> (RFC 9293 §3.10.5), with the ACK
        of RCV.NXT that Linux's ``tcp_send_active_reset`` adds."""
        seq = self._snd_seq_for_ack()
        self._rst(Segment(self.local[1], self.remote[1], seq, self.rcv_nxt, RST | ACK))

    def _reply_reset(self, seg: Segment) -> None:
        rst = reset_for(seg)
        if rst is not None:
            self._rst(rst)

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: an ACK for suspicious input, rate-limited per second."""
        if now - self._challenge_window >= 1.0:
            self._challenge_window = now
            self._challenge_count = 0
        if self._challenge_count >= self.options.challenge_ack_limit:
            return
        self._challenge_count += 1
        self.counters.challenge_acks += 1
        self._ack_now = True

    def _ts_now(self, now: float) -> int:
        """RFC 7323 §5.4: a 1 ms timestamp clock with a per-connection random offset."""
        return (int(now * 1000) + self._ts_offset) & MASK

    # ------------------------------------------------------------------ ICMP

    def icmp_error(self, err: int, *, hard: bool, seq: int | None) -> bool:
        """An ICMP (or ICMPv6) error quoting one of our segments, as an errno
        (RFC 9293 §3.9.2.2; the mapping from types and codes is ``aiotcp.io.icmp``'s).

        Returns whether it was acted on.  As Linux's ``tcp_v4_err``: the quoted
        sequence number must lie in SND.UNA..SND.NXT (RFC 5927 §4.1: blind attacks
        quote numbers we never sent; ``seq=None`` skips the check, for tests).  A
        connection attempt ends at once with the error's errno, soft or hard
        (RFC 5461 §4.1 allows it, and it is what a kernel ``connect`` reports); a
        half-open passive connection goes only on a hard error (``tcp_req_err``);
        a synchronized one keeps the errno as ``soft_error`` (RFC 1122 §4.2.3.9,
        MUST-56), reported if it then times out.
        """
        if not self._quotes_our_sequence(seq):
            return False
        st = self.state
        if st is State.SYN_SENT or (st is State.SYN_RECEIVED and hard):
            self.close_errno = err
            self._enter_closed(
                CloseReason.REFUSED if err == errno.ECONNREFUSED else CloseReason.UNREACHABLE
            )
            return True
        if st is State.SYN_RECEIVED:
            return True
        self.soft_error = err
        self.counters.icmp_soft_errors += 1
        return True

    def path_mtu_reduced(self, mtu: int, *, seq: int | None) -> bool:
        """ "Fragmentation needed" / "packet too big": the path takes IP packets of at
        most ``mtu`` bytes (RFC 1191, RFC 8201).  Returns whether the MSS went down.

        The MSS follows the path MTU down, never up; what is in flight goes again in
        the new size without a congestion response (Linux's
        ``tcp_simple_retransmit``: nothing was lost to congestion).  The stack
        clamps ``mtu`` to the IP version's minimum before calling.
        """
        if not self._quotes_our_sequence(seq) or self.state in (State.LISTEN, State.CLOSED):
            return False
        if mtu >= self._pmtu:
            return False
        self._pmtu = mtu
        search = self.mtu_search
        if search is not None:
            search.high = min(search.high, mtu)
            search.low = min(search.low, mtu)
        old = self.mss
        self._sync_mss()
        if self.mss >= old:
            return False
        self.counters.pmtu_reductions += 1
        if self.snd_una != self.snd_max and self.state in _SYNCHRONIZED:
            self.recovery.mark_all_lost()  # resend in the smaller size
        return True

    def _quotes_our_sequence(self, seq: int | None) -> bool:
        return seq is None or (seq_ge(seq, self.snd_una) and seq_le(seq, self.snd_max))

    # ------------------------------------------------------------------ RFC 6191

    def accepts_new_syn(self, seg: Segment) -> bool:
        """May a SYN for this 4-tuple reopen it from TIME-WAIT? (RFC 9293 §3.6.1, RFC 6191)

        Only a SYN that is clearly newer — a larger timestamp when both sides use
        them, else a sequence number above RCV.NXT — may; otherwise the 4-tuple stays
        reserved for 2*MSL.  The stack then discards this connection and hands the SYN
        to the listener.
        """
        if self.state is not State.TIME_WAIT or not seg.flags & SYN or seg.flags & (ACK | RST):
            return False
        if self.ts_ok and seg.ts_val is not None:
            return seq_gt(seg.ts_val, self.ts_recent)
        return seq_gt(seg.seq, self.rcv_nxt)

    # ------------------------------------------------------------------ observability

    def info(self, now: float) -> ConnectionInfo:
        return ConnectionInfo(**self.info_dict(now))

    def info_dict(self, now: float) -> dict[str, Any]:
        """``info()``'s fields as a dict, built directly: a state-table row for each
        of thousands of connections should not build and then copy a dataclass."""
        return {
            "state": self.state.value,
            "local": self.local,
            "remote": self.remote,
            "iss": self.iss,
            "irs": self.irs,
            "snd_una": self.snd_una,
            "snd_nxt": self.snd_nxt,
            "snd_wnd": self.snd_wnd,
            "rcv_nxt": self.rcv_nxt,
            "rcv_wnd": self.rcv_wnd,
            "mss": self.mss,
            "srtt": self.rtt.srtt,
            "rttvar": self.rtt.rttvar,
            "rto": self.rtt.rto,
            "cwnd": self.cc.cwnd,
            "ssthresh": self.cc.ssthresh,
            "reordering": self.recovery.board.reordering,
            "congestion": self.cc.name,
            "send_queue": len(self.send_buffer),
            "recv_queue": self.recv_buffer.readable,
            "ooo_bytes": self.recv_buffer.out_of_order_bytes,
            "timers": self.timers.remaining(now),
            "options": {
                "wscale": (self.snd_wscale, self.rcv_wscale) if self._wscale_ok else None,
                "sack": self.sack_ok,
                "timestamps": self.ts_ok,
                "ecn": self.ecn_ok,
                "peer_mss": self.peer_mss,
            },
            "counters": self.counters.as_dict(),
            "pacing_rate": self.cc.pacing_rate,
            "paced": self._paces(),
            "delivery_rate": self.recovery.board.delivery_rate(),
            "congestion_info": self.cc.info(),
            "soft_error": self.soft_error,
        }

    def close_exception(self) -> OSError | None:
        """The ``OSError`` a socket user sees once the connection closed (None: a
        clean close, or not closed)."""
        if self.close_reason is None:
            return None
        return self.close_reason.exception(self.close_errno)

    def __repr__(self) -> str:
        return (
            f"<Connection {self.state.name} snd_una={self.snd_una} snd_nxt={self.snd_nxt} "
            f"rcv_nxt={self.rcv_nxt}>"
        )
