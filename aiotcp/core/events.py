"""Events a ``Connection`` reports to the layer above (aioquic's ``events.py`` style).

The asyncio layer drains them with ``Connection.next_event()`` after every call into
the core.  They are plain frozen dataclasses: one per state change the application
can observe, nothing per segment.
"""

from __future__ import annotations

import enum
import errno
import os
from dataclasses import dataclass
from typing import Final

from aiotcp.core.state import State


class CloseReason(enum.StrEnum):
    """Why a connection reached CLOSED; maps onto the kernel's errors."""

    NORMAL = "normal"
    """Orderly close completed (FIN exchanged, TIME_WAIT or LAST_ACK done)."""
    REFUSED = "refused"
    """RST in answer to our SYN (``ECONNREFUSED``)."""
    RESET = "reset"
    """The peer reset an open connection (``ECONNRESET``)."""
    TIMEOUT = "timeout"
    """Retransmissions, SYN retries, keepalive or user timeout gave up (``ETIMEDOUT``)."""
    ABORTED = "aborted"
    """The local application aborted the connection (``abort()``)."""
    UNREACHABLE = "unreachable"
    """An ICMP error ended the connection attempt; ``Connection.close_errno`` says
    which (``EHOSTUNREACH``, ``ENETUNREACH`` ...), as the kernel's ``connect`` would."""

    def exception(self, code: int | None = None) -> OSError | None:
        """The ``OSError`` a socket user would see, or ``None`` for a clean close.

        Built as ``OSError(errno, strerror)``, so it is the errno's subclass
        (``ConnectionResetError`` for ECONNRESET ...) and carries ``errno`` and the
        message the kernel's socket would give: code that tests ``exc.errno``
        works on aiotcp as on the kernel.  ``code`` replaces the reason's own errno
        (``Connection.close_errno``: an ICMP error's, or a timeout's soft error).
        """
        if self is CloseReason.NORMAL:
            return None
        code = code or _ERRNO.get(self)
        return None if code is None else OSError(code, os.strerror(code))


_ERRNO: Final = {
    CloseReason.REFUSED: errno.ECONNREFUSED,
    CloseReason.RESET: errno.ECONNRESET,
    CloseReason.TIMEOUT: errno.ETIMEDOUT,
    CloseReason.ABORTED: errno.ECONNABORTED,
    CloseReason.UNREACHABLE: errno.EHOSTUNREACH,
}


class Event:
    """Base class of all connection events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """The three-way handshake completed: the connection is ESTABLISHED."""


@dataclass(frozen=True, slots=True)
class DataReceived(Event):
    """New in-order bytes are readable with ``Connection.read()``."""

    nbytes: int
    """How many bytes this event added (``readable_bytes`` has the running total)."""


@dataclass(frozen=True, slots=True)
class EofReceived(Event):
    """The peer's FIN arrived in order: no more data will be received."""


@dataclass(frozen=True, slots=True)
class SendSpaceAvailable(Event):
    """The send buffer had filled up and now has room again (``send_space`` > 0)."""

    space: int
    """Free send buffer bytes when the event was raised."""


@dataclass(frozen=True, slots=True)
class UrgentDataReceived(Event):
    """The peer's urgent pointer advanced (RFC 9293 §3.8.5, MUST-32).

    Urgent bytes are delivered in line with the rest of the stream (RFC 6093 §5
    recommends exactly this); only the position is reported.  The asyncio layer
    passes it to a protocol that defines ``urgent_data_received(end_offset)``.
    """

    end_offset: int
    """Stream offset (bytes since the connection began) just past the urgent data."""


@dataclass(frozen=True, slots=True)
class DeliveryProblem(Event):
    """Retransmissions reached the R1 threshold (RFC 9293 §3.8.3, MUST-20, SHLD-9).

    The connection is still open (it gives up at R2).  The asyncio layer logs a
    warning and passes it to a protocol that defines ``delivery_problem``.
    """

    retransmissions: int
    """Consecutive retransmissions of the same segment so far."""
    soft_error: int | None
    """The errno of the last ICMP error that concerned the connection, if any
    (MUST-47; Linux's ``sk_err_soft``)."""


@dataclass(frozen=True, slots=True)
class ConnectionReset(Event):
    """The peer sent an acceptable RST (RFC 9293 §3.10.7.4); ``ConnectionClosed`` follows.

    Core only: the asyncio layer learns of a reset from ``ConnectionClosed``'s
    reason; this event is for direct users of the core (tests, simulators)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The connection reached CLOSED; it will produce nothing more."""

    reason: CloseReason
    """Why; ``reason.exception()`` gives the matching ``OSError``."""


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """A state transition, for logs and the state table (DEBUG level)."""

    old: State
    """State before the transition."""
    new: State
    """State after the transition."""
