"""One coroutine per connection: inbox → core → events → wire, plus the one timer.

aioquic's three steps on every input, as a task: feed the core what arrived
(segments from the stack's demultiplexer, timer expiry, application calls), hand
its events to the transport, transmit what it produced, and re-arm a single
``loop.call_at`` from ``next_deadline()``.  Segments that arrive while the task is
busy wait in the inbox and are processed as one batch, so a burst costs one task
wake-up, and the ACKs it triggers coalesce.
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
#: States in which the connection's task has one more thing to do and then ends.
_TASK_ENDS: Final = frozenset({State.CLOSED, State.TIME_WAIT})


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
        self.inbox: list[Segment] = []
        self.sink: EventSink | None = None
        self.established: asyncio.Future[None] = self.loop.create_future()
        self._wakeup: asyncio.Future[None] | None = None
        self._dirty = True
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._fired_at: float | None = None
        self._last_now = 0.0
        self._stepping = False
        self.parked = False
        """TIME-WAIT without a task: see ``_run``; the stack's one timer keeps 2MSL."""
        self._step_scheduled = False
        self.task: asyncio.Task[None] | None = self.loop.create_task(
            self._run(), name=f"aiotcp {self.describe()}"
        )

    def describe(self) -> str:
        (lip, lport), (rip, rport) = self.conn.local, self.conn.remote
        return f"{format_endpoint(lip, lport)} -> {format_endpoint(rip, rport)}"

    # -- inputs ----------------------------------------------------------------
    def deliver(self, seg: Segment) -> None:
        """A segment for this 4-tuple (its payload already copied out of the arena).

        The stack calls ``process_now`` once its whole receive batch is sorted, so a
        burst is still processed as one batch (and its ACKs coalesce).
        """
        self.inbox.append(seg)

    def process_now(self) -> None:
        """Run a step right here instead of one loop iteration later in the task.

        Latency: a received segment or an application write reaches the wire (or
        the application) without waiting for the task to be scheduled.  A call from
        inside a step (a protocol callback writing during event dispatch) needs
        nothing: that step transmits after dispatching.  The task still owns the
        timer and the connection's end of life.
        """
        if self._stepping:
            return  # inside a step's event dispatch: its flush, which follows, sends it
        self.step()
        if self.parked:
            self.after_parked_step()
        elif self._dirty or self.conn.state in _TASK_ENDS:
            # The task unregisters a closed connection, parks one in TIME-WAIT (or
            # it would wait for its next timer to do so), or runs again.
            self.poke()

    def abort(self) -> None:
        """RST and CLOSED (RFC 9293 ABORT), from outside a step: the task sends the
        RST and unregisters the connection on its next run."""
        self.conn.abort()
        self.poke()

    def poke(self) -> None:
        """Something changed (application call, timer): run a step soon."""
        self._dirty = True
        if self.parked:
            if not self._step_scheduled:
                self._step_scheduled = True
                self.loop.call_soon(self._parked_step)
            return
        w = self._wakeup
        if w is not None and not w.done():
            w.set_result(None)

    # -- TIME-WAIT, parked -------------------------------------------------------
    def _parked_step(self) -> None:
        self._step_scheduled = False
        if self.parked:
            self.step()
            self.after_parked_step()

    def on_parked_deadline(self, deadline: float) -> None:
        """The stack's TIME-WAIT timer reached this parked connection's deadline."""
        self._fired_at = deadline
        self.step()
        self.after_parked_step()

    def after_parked_step(self) -> None:
        """A parked connection that closed leaves the stack; one with more to do runs
        again (its timer was re-filed by the step's ``_rearm``)."""
        if self.conn.state is State.CLOSED:
            self.end()
            self.host.forget(self)
        elif self._dirty:
            self.poke()

    def end(self) -> None:
        """Stop driving the connection (the stack forgets it): cancel the task; a
        parked connection has none (the stack's TIME-WAIT table lets go of it)."""
        if self.parked:
            self.parked = False
        elif self.task is not None:
            self.task.cancel()

    def _on_timer(self) -> None:
        # asyncio may fire a timer up to one clock resolution early: remember the
        # deadline so the step treats it as reached (aioquic does the same).
        self._fired_at = self._timer_at
        self._timer = None
        self._timer_at = None
        self.poke()

    # -- the task ----------------------------------------------------------------
    async def _run(self) -> None:
        loop = self.loop
        try:
            while True:
                if not self._dirty and not self.inbox:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                self.step()
                if self.inbox or self._dirty:
                    continue
                if self.conn.state is State.CLOSED:
                    break
                if self.conn.state is State.TIME_WAIT:
                    # Like Linux's timewait sockets: 2MSL needs no task of its own.
                    # The connection stays in the table, segments still reach it
                    # (``process_now``), and one stack-wide timer ends it.
                    self._cancel_timer()
                    self.parked = True
                    self.task = None
                    self._rearm()
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("aiotcp: connection %s crashed; aborting it", self.describe())
            self.conn.abort()
            self.step()
        finally:
            if not self.parked:
                self._cancel_timer()
                self.host.forget(self)

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
            inbox, self.inbox = self.inbox, []
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

        A bulk sender pushes its retransmission deadline later with every ACK.
        Cancelling and re-creating the handle each time cost a ``TimerHandle`` and
        a heap entry per ACK; instead a handle that fires early only runs a step,
        which finds nothing due and arms the real deadline (Linux's timers are
        lazy the same way).  Only an earlier deadline, or none, replaces it.
        """
        deadline = self.conn.next_deadline()
        if self.parked:
            if deadline is not None:
                self.host.park(self, deadline)
            return
        armed = self._timer_at
        if deadline is not None and armed is not None and armed <= deadline:
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
