"""The eleven connection states of RFC 9293 and the transitions between them.

A module of its own because both the connection and the events it reports name
states; with ``State`` inside ``connection.py`` the events module could only refer
to it under ``TYPE_CHECKING``, an import cycle that compiled builds (mypyc) cannot
initialise.
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    """RFC 9293 §3.3.2 connection states (values as ``ss``/``netstat`` print them)."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSING = "CLOSING"
    TIME_WAIT = "TIME-WAIT"
    CLOSE_WAIT = "CLOSE-WAIT"
    LAST_ACK = "LAST-ACK"

    # Members are singletons, so identity hashing is exact; Enum's own __hash__ is
    # Python code (hash of the name) that ran on every ``state in {...}`` test of
    # the per-segment path.
    __hash__ = object.__hash__


S: Final = State
#: Every transition RFC 9293 §3.3.2 figure 5 allows (plus the two it leaves
#: implicit: any state to CLOSED on RST / ABORT / timeout, and passive SYN-RECEIVED
#: back to LISTEN, which here is CLOSED because the listener forgets it).
TRANSITIONS: Final[frozenset[tuple[State, State]]] = frozenset(
    {
        (S.CLOSED, S.LISTEN),  # passive OPEN
        (S.CLOSED, S.SYN_SENT),  # active OPEN, send SYN
        (S.LISTEN, S.SYN_RECEIVED),  # rcv SYN, send SYN,ACK
        (S.SYN_SENT, S.SYN_RECEIVED),  # rcv SYN (simultaneous open)
        (S.SYN_SENT, S.ESTABLISHED),  # rcv SYN,ACK, send ACK
        (S.SYN_RECEIVED, S.ESTABLISHED),  # rcv ACK of SYN
        (S.ESTABLISHED, S.FIN_WAIT_1),  # CLOSE, send FIN
        (S.ESTABLISHED, S.CLOSE_WAIT),  # rcv FIN, send ACK
        (S.FIN_WAIT_1, S.FIN_WAIT_2),  # rcv ACK of FIN
        (S.FIN_WAIT_1, S.CLOSING),  # rcv FIN, send ACK
        (S.FIN_WAIT_1, S.TIME_WAIT),  # rcv FIN with ACK of our FIN
        (S.FIN_WAIT_2, S.TIME_WAIT),  # rcv FIN, send ACK
        (S.CLOSING, S.TIME_WAIT),  # rcv ACK of FIN
        (S.CLOSE_WAIT, S.LAST_ACK),  # CLOSE, send FIN
    }
    | {(s, S.CLOSED) for s in State if s is not S.CLOSED}
)
del S
