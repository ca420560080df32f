"""Choosing a guard by name (``Stack(guard=...)``), and a guarded raw socket for tools.

Here rather than in ``guard.py``, whose base class both guards build on, so that
no module imports one that imports it back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Literal

from aiotcp.io.guard import Guard, NoGuard
from aiotcp.io.iptables_guard import IptablesGuard
from aiotcp.io.ports import DEFAULT_EPHEMERAL_RANGE
from aiotcp.io.rawsock import RawSocket
from aiotcp.io.socket_guard import SocketFilterGuard

GuardKind = Literal["iptables", "socket", "none"]


def make_guard(
    kind: GuardKind = "iptables", ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE
) -> Guard:
    """The guard for a stack's ``guard=`` option."""
    if kind == "iptables":
        return IptablesGuard(ephemeral_range)
    if kind == "socket":
        return SocketFilterGuard(ephemeral_range)
    if kind == "none":
        return NoGuard(ephemeral_range)
    raise ValueError(f"unknown guard {kind!r}: choose 'iptables', 'socket' or 'none'")


@contextlib.contextmanager
def guarded_raw_socket(
    kind: GuardKind = "iptables", ports: Sequence[int] = (0,)
) -> Iterator[tuple[RawSocket, list[int]]]:
    """A raw socket admitting ``ports`` (0: an ephemeral one), guarded and reserved.

    Packet-level tools (the handshake demo, scripted peers, probes) need exactly
    this: the ports claimed, the kernel kept quiet on them, the filter set.
    """
    with make_guard(kind) as guard, RawSocket() as raw:
        claimed = [guard.claim(p) for p in ports]
        raw.set_port_ranges(guard.port_ranges())
        yield raw, claimed
