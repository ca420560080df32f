"""ICMP errors about our own segments: a raw ICMP socket, a BPF filter, a parser.

The kernel hands an ICMP error to the socket of the connection it quotes; aiotcp's
connections have no kernel socket, so without this module a real host's
"unreachable" and "fragmentation needed" never reach them (a connect to an
unreachable network would wait out every SYN retry).  A raw IPPROTO_ICMP socket
gets a copy of every ICMP packet; its BPF filter (``bpf.icmp_error_filter``)
admits only errors that quote a TCP segment from one of the stack's ports, so
pings and the kernel's own connections' errors never wake Python.

What an error means is Linux's: ``tcp_v4_err`` and the ``icmp_err_convert``
table give each Destination Unreachable code an errno and say whether it is hard
(fatal).  The parser turns a datagram into an ``IcmpError`` that names the
connection (the quoted 4-tuple, from our side) and carries the errno, so the
core never sees ICMP types and ICMPv6 can map onto the same record.
"""

from __future__ import annotations

import collections
import errno
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from aiotcp.core.checksum import ones_sum
from aiotcp.io import bpf
from aiotcp.io.privileges import raw_socket

_IPV4_HEADER: Final = struct.Struct("!BBHHHBBH4s4s")
_QUOTED_TCP: Final = struct.Struct("!HHI")  # source port, destination port, sequence

DEST_UNREACHABLE: Final = 3
SOURCE_QUENCH: Final = 4
TIME_EXCEEDED: Final = 11
PARAMETER_PROBLEM: Final = 12
FRAGMENTATION_NEEDED: Final = 4
"""The Destination Unreachable code that carries the next hop's MTU (RFC 1191)."""

MIN_PMTU_V4: Final = 552
"""Linux's ``net.ipv4.route.min_pmtu``: a smaller (or zero, pre-RFC 1191) MTU in a
"fragmentation needed" is raised to this, so forged ICMP cannot shrink segments
to nothing."""

UNREACHABLE_ERRNO: Final[dict[int, tuple[int, bool]]] = {
    # code: (errno, hard) — Linux's icmp_err_convert (net/ipv4/icmp.c)
    0: (errno.ENETUNREACH, False),  # network unreachable
    1: (errno.EHOSTUNREACH, False),  # host unreachable
    2: (errno.ENOPROTOOPT, True),  # protocol unreachable
    3: (errno.ECONNREFUSED, True),  # port unreachable
    4: (errno.EMSGSIZE, False),  # fragmentation needed (handled as path MTU)
    5: (errno.EOPNOTSUPP, False),  # source route failed
    6: (errno.ENETUNREACH, True),  # destination network unknown
    7: (errno.EHOSTDOWN, True),  # destination host unknown
    8: (errno.ENONET, True),  # source host isolated
    9: (errno.ENETUNREACH, True),  # network administratively prohibited
    10: (errno.EHOSTUNREACH, True),  # host administratively prohibited
    11: (errno.ENETUNREACH, False),  # network unreachable for TOS
    12: (errno.EHOSTUNREACH, False),  # host unreachable for TOS
    13: (errno.EHOSTUNREACH, True),  # communication administratively prohibited
    14: (errno.EHOSTUNREACH, True),  # host precedence violation
    15: (errno.EHOSTUNREACH, True),  # precedence cutoff in effect
}


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error about one of our segments, in terms a connection understands."""

    local: tuple[bytes, int]
    """The quoted segment's source: our address and port."""
    remote: tuple[bytes, int]
    """The quoted segment's destination: the peer."""
    seq: int
    """The quoted sequence number (RFC 5927: checked against what we have in flight)."""
    errno: int
    hard: bool
    """Fatal for a connection attempt by Linux's table (``icmp_err_convert``)."""
    mtu: int | None
    """For "fragmentation needed": the path MTU to use (already clamped)."""
    reporter: bytes
    """Who sent the error (a router, or the peer)."""


def parse_icmp_error(datagram: bytes | bytearray | memoryview) -> IcmpError | str:
    """An IPv4 datagram as a raw ICMP socket delivers it (IP header first), or the
    reason to drop it, a counter name.

    Checked: lengths, the ICMP checksum, an error type, a quoted IPv4 TCP header
    with the source port and sequence number present.  Not checked here: whether
    the quoted segment is ours (the stack's table) and in flight (the core).
    """
    n = len(datagram)
    if n < 20:
        return "icmp_malformed"
    ver_ihl, _, total, _, frag, _, proto, _, reporter, _ = _IPV4_HEADER.unpack_from(datagram)
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20 or proto != socket.IPPROTO_ICMP or frag & 0x1FFF:
        return "icmp_malformed"
    end = min(total, n)
    icmp = memoryview(datagram)[ihl:end]
    if len(icmp) < 8 + 20 + 8:
        return "icmp_malformed"
    if ones_sum(icmp) != 0xFFFF:
        return "icmp_bad_checksum"
    icmp_type, code = icmp[0], icmp[1]
    quoted = icmp[8:]
    q_ver_ihl, q_proto = quoted[0], quoted[9]
    q_ihl = (q_ver_ihl & 0x0F) * 4
    if q_ver_ihl >> 4 != 4 or q_ihl < 20 or q_proto != socket.IPPROTO_TCP:
        return "icmp_malformed"
    if len(quoted) < q_ihl + 8:
        return "icmp_malformed"
    q_src, q_dst = bytes(quoted[12:16]), bytes(quoted[16:20])
    sport, dport, seq = _QUOTED_TCP.unpack_from(quoted, q_ihl)
    mtu: int | None = None
    if icmp_type == DEST_UNREACHABLE:
        if code not in UNREACHABLE_ERRNO:
            return "icmp_unknown_code"
        err, hard = UNREACHABLE_ERRNO[code]
        if code == FRAGMENTATION_NEEDED:
            mtu = max((icmp[6] << 8) | icmp[7], MIN_PMTU_V4)
    elif icmp_type == TIME_EXCEEDED:
        err, hard = errno.EHOSTUNREACH, False
    elif icmp_type == PARAMETER_PROBLEM:
        err, hard = errno.EPROTO, False
    else:
        return "icmp_ignored_type"  # Source Quench (RFC 9293 MUST-55), Redirect, ...
    return IcmpError((q_src, sport), (q_dst, dport), seq, err, hard, mtu, reporter)


class IcmpSocket:
    """The stack's raw ICMP socket: errors quoting our ports, nothing else."""

    def __init__(
        self, port_ranges: Iterable[tuple[int, int]], counters: collections.Counter[str]
    ) -> None:
        sock = raw_socket(socket.AF_INET, socket.IPPROTO_ICMP, "a raw ICMP socket")
        try:
            bpf.attach_fresh(sock, bpf.icmp_error_filter(port_ranges))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._buf = bytearray(1500)
        self.counters = counters

    def fileno(self) -> int:
        return self._sock.fileno()

    def set_port_ranges(self, ranges: Iterable[tuple[int, int]]) -> None:
        bpf.attach(self._sock, bpf.icmp_error_filter(ranges))

    def recv_errors(self, max_errors: int = 64) -> list[IcmpError]:
        """What is queued, parsed; bad datagrams are counted by reason.  Bounded, so
        a flood of forged errors cannot hold the loop (the rest waits its turn)."""
        errors: list[IcmpError] = []
        view = memoryview(self._buf)
        for _ in range(max_errors):
            try:
                n = self._sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                break
            self.counters["icmp_received"] += 1
            parsed = parse_icmp_error(view[:n])
            if isinstance(parsed, str):
                self.counters["drop_" + parsed] += 1
            else:
                errors.append(parsed)
        return errors

    def close(self) -> None:
        self._sock.close()
