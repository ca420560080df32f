"""One driver per connection: inbox → core → events → wire, plus the one timer.

aioquic's three steps on every input: feed the core what arrived (segments from
the stack's demultiplexer, timer expiry, application calls), hand its events to
the transport, transmit what it produced, and re-arm a single ``loop.call_at``
from ``next_deadline()``.  A driver has no task of its own: a receive batch or
an application call steps it at once (``process_now``), anything else schedules
one step with ``call_soon`` (``poke``), and its timer handle steps it directly.
A task per connection cost a ``Task``, a coroutine frame and a wake-up future
each time something changed, which a connections-per-second load paid on every
connection (docs/performance.md).  Segments that arrive while a step runs wait
in the inbox and are processed as one batch, so a burst costs one step, and the
ACKs it triggers coalesce.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
from collections.abc import Mapping
from typing import Final, Protocol

from aiotcp.core.connection import Connection
from aiotcp.core.events import (
    CloseReason,
    Connected,
    ConnectionClosed,
    DataReceived,
    DeliveryProblem,
    EofReceived,
    SendSpaceAvailable,
    StateChanged,
    UrgentDataReceived,
)
from aiotcp.core.flow import FlowKey
from aiotcp.core.segment import Segment
from aiotcp.core.state import State
from aiotcp.egress import DS_MASK, SendPath
from aiotcp.io.packet import Packet, format_endpoint

log: Final = logging.getLogger("aiotcp")
LAZY_HORIZON: Final = 0.25
"""Seconds within which an unneeded timer handle is left to fire (``_rearm``)."""
_EMPTY_INBOX: Final[list[Segment]] = []
"""Every empty inbox (``deliver`` replaces it before adding): a step no longer makes
a new list, and an idle connection keeps none."""


class EventSink(Protocol):
    """What the driver tells the transport (kept small so tests can drive it)."""

    def _on_data(self) -> None: ...
    def _on_eof(self) -> None: ...
    def _on_send_space(self) -> None: ...
    def _on_closed(self, reason: CloseReason) -> None: ...
    def _on_urgent(self, end_offset: int) -> None: ...
    def _on_state_changed(self) -> None: ...
    def _on_delivery_problem(self, retransmissions: int, soft_error: int | None) -> None: ...


class DriverHost(Protocol):
    """What a driver tells the stack that owns it: events go up, never sideways."""

    loop: asyncio.AbstractEventLoop
    counters: collections.Counter[str]
    resolved: asyncio.Future[None]
    """A future already done: a driver's ``established`` once it has served."""

    def forget(self, driver: ConnectionDriver) -> None:
        """The connection is CLOSED and its driver stopped: take it out of the table."""

    def state_changed(self, driver: ConnectionDriver, old: State, new: State) -> None:
        """A transition, for observers and the TIME-WAIT table."""

    def park(self, driver: ConnectionDriver, deadline: float) -> None:
        """A parked (TIME-WAIT) driver's next deadline: wake it then
        (``on_parked_deadline``)."""


class ConnectionDriver:
    """Drives one ``Connection`` from the event loop; owned by the ``Stack``."""

    def __init__(self, host: DriverHost, conn: Connection, path: SendPath) -> None:
        self.host = host
        self.conn = conn
        self.path = path
        """Where the connection's segments leave (``aiotcp.egress``)."""
        self.key = conn.key
        self.loop = host.loop
        self.inbox: list[Segment] = _EMPTY_INBOX
        self.sink: EventSink | None = None
        self.established: asyncio.Future[None] = self.loop.create_future()
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._fired_at: float | None = None
        self._last_now = 0.0
        self._stepping = False
        self._step_scheduled = False
        self.ended = False
        """The stack forgot it: nothing steps it again."""
        self.parked = False
        """TIME-WAIT: its deadline is filed with the stack's TIME-WAIT table, whose one
        timer keeps 2MSL for all of them, instead of a handle of its own."""

    def describe(self) -> str:
        (lip, lport), (rip, rport) = self.conn.local, self.conn.remote
        return f"{format_endpoint(lip, lport)} -> {format_endpoint(rip, rport)}"

    # -- inputs ----------------------------------------------------------------
    def deliver(self, seg: Segment) -> None:
        """A segment for this 4-tuple (its payload already copied out of the arena).

        The stack calls ``process_now`` once its whole receive batch is sorted, so a
        burst is still processed as one batch (and its ACKs coalesce).
        """
        if self.inbox is _EMPTY_INBOX:
            self.inbox = [seg]
        else:
            self.inbox.append(seg)

    def process_now(self) -> None:
        """Run a step right here instead of one loop iteration later.

        Latency: a received segment or an application write reaches the wire (or
        the application) without waiting for a scheduled step.  A call from inside
        a step (a protocol callback writing during event dispatch) needs nothing:
        that step transmits after dispatching.
        """
        if self._stepping or self.ended:
            return  # inside a step's event dispatch: its flush, which follows, sends it
        self._guarded_step()

    def abort(self) -> None:
        """RST and CLOSED (RFC 9293 ABORT), from outside a step: the next step sends
        the RST and unregisters the connection."""
        self.conn.abort()
        self.poke()

    def poke(self) -> None:
        """Something changed (application call, option): run a step soon, once."""
        self._dirty = True
        if not self._step_scheduled and not self.ended:
            self._step_scheduled = True
            self.loop.call_soon(self._scheduled_step)

    def _scheduled_step(self) -> None:
        self._step_scheduled = False
        if not self.ended and not self._stepping:
            self._guarded_step()

    def _on_timer(self) -> None:
        # asyncio may fire a timer up to one clock resolution early: remember the
        # deadline so the step treats it as reached (aioquic does the same).
        self._fired_at = self._timer_at
        self._timer = None
        self._timer_at = None
        if not self.ended:
            self._guarded_step()

    def on_parked_deadline(self, deadline: float) -> None:
        """The stack's TIME-WAIT timer reached this parked connection's deadline."""
        self._fired_at = deadline
        if not self.ended:
            self._guarded_step()

    def _guarded_step(self) -> None:
        """A step, then what its outcome asks for: another step, TIME-WAIT's parking
        or the end.  A bug in a step costs its connection (aborted), not the loop
        or the other connections."""
        try:
            self.step()
        except Exception:
            log.exception("aiotcp: connection %s crashed; aborting it", self.describe())
            self.conn.abort()
            self.inbox = _EMPTY_INBOX
            try:
                self.step()
            except Exception:
                log.exception("aiotcp: connection %s could not be reset", self.describe())
                self.end()
                self.host.forget(self)
                return
        state = self.conn.state
        if state is State.CLOSED:
            self.end()
            self.host.forget(self)
        elif self.inbox or self._dirty:
            self.poke()
        elif state is State.TIME_WAIT and not self.parked:
            # Like Linux's timewait sockets: 2MSL needs no timer handle of its own.
            # The connection stays in the table, segments still reach it
            # (``process_now``), and one stack-wide timer ends it.
            self._cancel_timer()
            self.parked = True
            self._rearm()

    def end(self) -> None:
        """Stop driving the connection (the stack forgets it)."""
        self.ended = True
        self.parked = False
        self._cancel_timer()

    def step(self) -> None:
        """Process the inbox and due timers, dispatch events, transmit, re-arm."""
        self._stepping = True
        try:
            self._step()
        finally:
            self._stepping = False

    def _step(self) -> None:
        self._dirty = False
        conn = self.conn
        now = max(self.loop.time(), self._last_now)
        if self._fired_at is not None:
            now = max(now, self._fired_at)
            self._fired_at = None
        self._last_now = now  # the core never sees time go backwards
        if self.inbox:
            inbox, self.inbox = self.inbox, _EMPTY_INBOX
            last = len(inbox) - 1
            for i, seg in enumerate(inbox):
                if i < last and conn.ack_superseded(seg, inbox[i + 1]):
                    continue  # a newer cumulative ACK follows in this batch
                conn.receive(seg, now)  # the batch's ACKs (and dup ACKs) go out below
        deadline = conn.next_deadline()
        if deadline is not None and deadline <= now:
            conn.handle_timer(now)
        self._dispatch_events()
        self.flush(now)
        self._rearm()

    def flush(self, now: float) -> None:
        conn = self.conn
        segments = conn.segments_to_send(now)
        if segments:
            path = self.path
            opts = conn.options
            handshaking = conn.state in (State.SYN_SENT, State.SYN_RECEIVED)
            path.transmit(segments, now, handshaking, opts.tos & DS_MASK, opts.ttl)
            # Once the path has an AF_PACKET sender, the core may build super-segments.
            conn.gso_max = path.gso_max

    def _dispatch_events(self) -> None:
        conn = self.conn
        sink = self.sink
        while (ev := conn.next_event()) is not None:
            if isinstance(ev, StateChanged):
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s -> %s", self.describe(), ev.old.name, ev.new.name)
                self.host.state_changed(self, ev.old, ev.new)
                if sink is not None:
                    sink._on_state_changed()
            elif isinstance(ev, Connected):
                if not self.established.done():
                    self.established.set_result(None)
                    # Its awaiter and callbacks hold it: an idle connection need not.
                    self.established = self.host.resolved
            elif isinstance(ev, DataReceived):
                if sink is not None:
                    sink._on_data()
            elif isinstance(ev, EofReceived):
                if sink is not None:
                    sink._on_eof()
            elif isinstance(ev, SendSpaceAvailable):
                if sink is not None:
                    sink._on_send_space()
            elif isinstance(ev, ConnectionClosed):
                if not self.established.done():
                    exc = self.conn.close_exception() or ConnectionResetError("connection closed")
                    self.established.set_exception(exc)
                if sink is not None:
                    sink._on_closed(ev.reason)
            elif isinstance(ev, UrgentDataReceived):
                if sink is not None:
                    sink._on_urgent(ev.end_offset)
            elif isinstance(ev, DeliveryProblem):
                # RFC 9293 §3.8.3 R1 (MUST-20): the layers above hear of it.
                log.warning(
                    "aiotcp: %s: %d retransmissions unanswered (last ICMP error: %s)",
                    self.describe(),
                    ev.retransmissions,
                    "none" if ev.soft_error is None else errno.errorcode.get(ev.soft_error),
                )
                if sink is not None:
                    sink._on_delivery_problem(ev.retransmissions, ev.soft_error)

    def _rearm(self) -> None:
        """Keep one ``call_at`` no later than the core's next deadline.

        A bulk sender pushes its retransmission deadline later with every ACK, and
        a request/response connection stops and restarts it with every exchange.
        Cancelling and re-creating the handle each time cost a ``TimerHandle``, a
        heap entry and a cancellation per ACK; instead a handle that fires early,
        or with nothing left to time, only runs a step, which finds nothing due and
        arms the real deadline if there is one.  Linux's retransmission timer is
        lazy the same way (``inet_csk_clear_xmit_timer`` leaves it running).  Only
        an earlier deadline replaces it.  With nothing left to time, a handle due
        within ``LAZY_HORIZON`` stays (a request/response connection arms again
        sooner); a later one (the handshake's 1 s RTO, a persist or keepalive
        timer) goes, so an idle connection holds no handle.
        """
        deadline = self.conn.next_deadline()
        if self.parked:
            if deadline is not None:
                self.host.park(self, deadline)
            return
        armed = self._timer_at
        if armed is not None and (
            armed <= deadline if deadline is not None else armed - self._last_now <= LAZY_HORIZON
        ):
            return
        self._cancel_timer()
        if deadline is not None:
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self.host.counters["timers_armed"] += 1

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None


def demultiplex(
    packets: list[Packet],
    connections: Mapping[FlowKey, ConnectionDriver],
    listening: Mapping[int, object],
) -> tuple[list[ConnectionDriver], list[Packet]]:
    """Sort a receive batch into the connections it belongs to.

    Returns the connections that got segments (each once, in arrival order) and
    the packets that need the stack: no connection, or a SYN that may reopen a
    TIME-WAIT 4-tuple for a listener (RFC 6191).  The common case runs compiled.
    """
    touched: dict[ConnectionDriver, None] = {}
    rest: list[Packet] = []
    for pkt in packets:
        seg = pkt.segment
        driver = connections.get(pkt.flow())
        if driver is None or (seg.dst_port in listening and driver.conn.accepts_new_syn(seg)):
            rest.append(pkt)
            continue
        driver.deliver(seg)
        touched[driver] = None
    return list(touched), rest
