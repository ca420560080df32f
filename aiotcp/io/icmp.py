"""ICMP and ICMPv6 errors about our own segments: raw sockets, BPF filters, parsers.

The kernel hands an ICMP error to the socket of the connection it quotes; aiotcp's
connections have no kernel socket, so without this module a real host's
"unreachable" and "fragmentation needed" never reach them (a connect to an
unreachable network would wait out every SYN retry).  A raw IPPROTO_ICMP socket
gets a copy of every ICMP packet; its BPF filter (``bpf.icmp_error_filter``)
admits only errors that quote a TCP segment from one of the stack's ports, so
pings and the kernel's own connections' errors never wake Python.  IPv6 has a
raw IPPROTO_ICMPV6 socket of its own (``Icmp6Socket``), filtered twice: by
type with ``ICMP6_FILTER`` and by the quoted port with ``bpf.icmp6_error_filter``
(neighbour discovery, the busiest ICMPv6 there is, never wakes Python either).

What an error means is Linux's: ``tcp_v4_err`` and the ``icmp_err_convert``
table give each Destination Unreachable code an errno and say whether it is hard
(fatal); for IPv6, ``tcp_v6_err`` and ``icmpv6_err_convert``.  The parsers turn
a message into one ``IcmpError`` for both families that names the connection
(the quoted 4-tuple, from our side) and carries the errno, so the core never
sees ICMP types.
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
_MTU6: Final = struct.Struct("!I")  # Packet Too Big's MTU: 32 bits (RFC 4443 §3.2)

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
    """Fatal for a half-open connection by Linux's tables (``icmp_err_convert``,
    ``icmpv6_err_convert``)."""
    mtu: int | None
    """For "fragmentation needed" and "packet too big": the path MTU to use (already
    clamped, or checked against IPv6's minimum)."""
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


ICMP6_DEST_UNREACHABLE: Final = 1
ICMP6_PACKET_TOO_BIG: Final = 2
ICMP6_TIME_EXCEEDED: Final = 3
ICMP6_PARAMETER_PROBLEM: Final = 4
ICMP6_ERRORS: Final = (1, 2, 3, 4)
"""The ICMPv6 errors that concern a connection (RFC 4443 §3).  Linux hands TCP an
error of a type nobody defined (5-127) too, as a soft EPROTO that ends only a
connection attempt; aiotcp leaves those to the kernel, since none says anything
about a path."""
ICMP6_FILTER: Final = 1
"""The socket option (level ``IPPROTO_ICMPV6``) that sets a raw ICMPv6 socket's
type filter (RFC 3542 §3.2; the socket module lacks the name)."""

MIN_MTU_V6: Final = 1280
"""IPv6's minimum link MTU (RFC 8200 §5): a Packet Too Big reporting less is
discarded (RFC 8201 §4, and ``tcp_v6_err``), so no forged one can push the path
MTU under it."""

UNREACHABLE6_ERRNO: Final[dict[int, tuple[int, bool]]] = {
    # code: (errno, hard) — Linux's tab_unreach (net/ipv6/icmp.c, icmpv6_err_convert)
    0: (errno.ENETUNREACH, False),  # no route to destination
    1: (errno.EACCES, True),  # communication administratively prohibited
    2: (errno.EHOSTUNREACH, False),  # beyond the scope of the source address
    3: (errno.EHOSTUNREACH, False),  # address unreachable
    4: (errno.ECONNREFUSED, True),  # port unreachable
    5: (errno.EACCES, True),  # source address failed ingress/egress policy
    6: (errno.EACCES, True),  # reject route to destination
}
UNKNOWN_UNREACHABLE6: Final = (errno.EPROTO, True)
"""A code the table lacks: ``icmpv6_err_convert`` makes it a hard EPROTO (where
IPv4's ``tcp_v4_err`` ignores an unknown code)."""

_IPV6_HEADER_LEN: Final = 40


def parse_icmp6_error(message: bytes | bytearray | memoryview, reporter: bytes) -> IcmpError | str:
    """An ICMPv6 message as a raw ICMPv6 socket delivers it (from the ICMPv6
    header; the kernel has checked its checksum) sent by ``reporter``, or the
    reason to drop it, a counter name.

    The quoted packet must be IPv6 carrying TCP directly: aiotcp sends no
    extension headers, so a quote with one is not about our segments (and
    nothing in it needs walking).  Errnos and hard/soft are ``icmpv6_err_convert``'s.
    """
    icmp = memoryview(message)
    if len(icmp) < 8 + _IPV6_HEADER_LEN + 8:
        return "icmp6_malformed"
    icmp_type, code = icmp[0], icmp[1]
    quoted = icmp[8:]
    if quoted[0] >> 4 != 6 or quoted[6] != socket.IPPROTO_TCP:
        return "icmp6_malformed"
    q_src, q_dst = bytes(quoted[8:24]), bytes(quoted[24:40])
    sport, dport, seq = _QUOTED_TCP.unpack_from(quoted, _IPV6_HEADER_LEN)
    mtu: int | None = None
    if icmp_type == ICMP6_DEST_UNREACHABLE:
        err, hard = UNREACHABLE6_ERRNO.get(code, UNKNOWN_UNREACHABLE6)
    elif icmp_type == ICMP6_PACKET_TOO_BIG:
        mtu = _MTU6.unpack_from(icmp, 4)[0]
        if mtu < MIN_MTU_V6:
            return "icmp6_mtu_below_minimum"
        err, hard = errno.EMSGSIZE, False
    elif icmp_type == ICMP6_TIME_EXCEEDED:
        err, hard = errno.EHOSTUNREACH, False
    elif icmp_type == ICMP6_PARAMETER_PROBLEM:
        err, hard = errno.EPROTO, True
    else:
        return "icmp6_ignored_type"
    return IcmpError((q_src, sport), (q_dst, dport), seq, err, hard, mtu, reporter)


class IcmpSocket:
    """The stack's raw ICMP socket: errors quoting our ports, nothing else."""

    prefix = "icmp"
    """Of its counters' names: ``icmp_received``, and the stack's ``icmp_acted_on``..."""

    def __init__(
        self, port_ranges: Iterable[tuple[int, int]], counters: collections.Counter[str]
    ) -> None:
        sock = self._open()
        try:
            bpf.attach_fresh(sock, self._filter(port_ranges))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._buf = bytearray(1500)
        self.counters = counters

    def _open(self) -> socket.socket:
        return raw_socket(socket.AF_INET, socket.IPPROTO_ICMP, "a raw ICMP socket")

    def _filter(self, ranges: Iterable[tuple[int, int]]) -> list[bpf.Insn]:
        return bpf.icmp_error_filter(ranges)

    def _parse(self, message: memoryview, sender: str) -> IcmpError | str:
        return parse_icmp_error(message)  # the IP header names the sender

    def fileno(self) -> int:
        return self._sock.fileno()

    def set_port_ranges(self, ranges: Iterable[tuple[int, int]]) -> None:
        bpf.attach(self._sock, self._filter(ranges))

    def recv_errors(self, max_errors: int = 64) -> list[IcmpError]:
        """What is queued, parsed; bad datagrams are counted by reason.  Bounded, so
        a flood of forged errors cannot hold the loop (the rest waits its turn)."""
        errors: list[IcmpError] = []
        view = memoryview(self._buf)
        received = self.prefix + "_received"
        for _ in range(max_errors):
            try:
                n, sender = self._sock.recvfrom_into(view)
            except (BlockingIOError, InterruptedError):
                break
            self.counters[received] += 1
            parsed = self._parse(view[:n], sender[0])
            if isinstance(parsed, str):
                self.counters["drop_" + parsed] += 1
            else:
                errors.append(parsed)
        return errors

    def close(self) -> None:
        self._sock.close()


class Icmp6Socket(IcmpSocket):
    """The stack's raw ICMPv6 socket: errors quoting our ports, nothing else.

    A raw ICMPv6 socket hands over the message alone, from its ICMPv6 header (the
    IPv6 header is gone; the sender comes with ``recvfrom``), and the kernel has
    verified its checksum (over the pseudo-header we could not see): one with a
    bad checksum is dropped inside ``recvmsg``.  ``ICMP6_FILTER`` keeps every
    type but the four errors out before the BPF program runs.
    """

    prefix = "icmp6"

    def _open(self) -> socket.socket:
        sock = raw_socket(socket.AF_INET6, socket.IPPROTO_ICMPV6, "a raw ICMPv6 socket")
        try:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_type_filter(ICMP6_ERRORS))
        except BaseException:
            sock.close()
            raise
        return sock

    def _filter(self, ranges: Iterable[tuple[int, int]]) -> list[bpf.Insn]:
        return bpf.icmp6_error_filter(ranges)

    def _parse(self, message: memoryview, sender: str) -> IcmpError | str:
        # A link-local sender comes as "fe80::1%eth0"; the scope is not an address.
        return parse_icmp6_error(message, socket.inet_pton(socket.AF_INET6, sender.split("%")[0]))


def open_icmp6_socket(
    port_ranges: Iterable[tuple[int, int]], counters: collections.Counter[str]
) -> Icmp6Socket | None:
    """An ``Icmp6Socket``, or None where the kernel has no IPv6 (then there is no
    IPv6 traffic to have errors about; the IPv4 stack works on)."""
    try:
        return Icmp6Socket(port_ranges, counters)
    except OSError as exc:
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return None
        raise


def icmp6_type_filter(admitted: Iterable[int]) -> bytes:
    """``struct icmp6_filter`` (RFC 3542 §3.2) blocking every type but ``admitted``:
    256 bits, a set bit blocks its type (Linux's ``icmpv6_filter``)."""
    words = [0xFFFFFFFF] * 8
    for icmp_type in admitted:
        words[icmp_type >> 5] &= ~(1 << (icmp_type & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)
