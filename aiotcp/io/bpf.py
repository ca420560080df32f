"""Classic BPF programs for the raw socket and the socket-filter guard.

A raw IPPROTO_TCP socket receives *every* TCP packet of the network namespace
(docs/architecture.md), so the kernel must filter before Python sees anything.  The
filter admits packets whose TCP destination port lies in one of the stack's port
ranges.  Each range compiles to three instructions whose jumps are all local, so
the program never needs a jump longer than classic BPF's 8-bit offsets.  When
there are more ranges than fit in ``BPF_MAXINSNS``, the closest ranges are merged:
the filter may then admit a little more than needed (the demultiplexer ignores
ports it does not own), never less.

A port shared by a ``reuse_port`` group admits only this worker's flows: its
segments jump (``ja``, whose offset is 32 bits) to a block at the end of the
program that hashes the 4-tuple into a bucket and admits the worker's buckets
(``share_block``; ``aiotcp.io.flow_share`` is the same hash in Python).
"""

from __future__ import annotations

import ctypes
import functools
import platform
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence

from aiotcp.io.flow_share import BUCKETS, FlowShare, Ranges

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SO_ATTACH_BPF = 50
BPF_MAXINSNS = 4096

# opcodes (linux/filter.h)
BPF_LD_W_ABS = 0x20  # A = u32 at [k]; with k = SKF_AD_OFF + n, an ancillary value
BPF_LD_H_ABS = 0x28  # A = u16 at [k]
BPF_LD_B_ABS = 0x30
BPF_LD_W_IND = 0x40  # A = u32 at [X + k]
BPF_LDX_B_MSH = 0xB1  # X = 4 * ([k] & 0xf)   (IP header length)
BPF_LD_H_IND = 0x48  # A = u16 at [X + k]
BPF_LD_B_IND = 0x50  # A = u8 at [X + k]
BPF_ALU_AND_K = 0x54
BPF_ALU_LSH_K = 0x64
BPF_ALU_ADD_X = 0x0C
BPF_ALU_XOR_X = 0xAC
BPF_ALU_MUL_K = 0x24
BPF_ALU_RSH_K = 0x74
BPF_MISC_TAX = 0x07  # X = A
BPF_MISC_TXA = 0x87  # A = X
BPF_ST = 0x02  # M[k] = A  (scratch memory, 16 words)
BPF_LD_MEM = 0x60  # A = M[k]
BPF_JMP_JA = 0x05  # pc += k (32 bits: the one long jump)
BPF_JMP_JEQ_K = 0x15
BPF_JMP_JGT_K = 0x25
BPF_JMP_JGE_K = 0x35
BPF_JMP_JSET_K = 0x45
BPF_RET_K = 0x06

SKF_NET_OFF = -0x100000 & 0xFFFFFFFF
"""Loads at ``SKF_NET_OFF + n`` read the network header's byte n: how an IPv6 raw
socket's program, whose data starts at the TCP header, reads the addresses."""
SKF_AD_OFF = -0x1000 & 0xFFFFFFFF
SKF_AD_IFINDEX = (-0x1000 + 8) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_IFINDEX: ingress device
SKF_AD_PKTTYPE = (-0x1000 + 4) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_PKTTYPE: skb->pkt_type
PACKET_HOST = 0
"""``pkt_type`` of a frame addressed to this host; broadcast and multicast differ."""

ACCEPT = 0x40000  # bytes to keep: more than any IPv4 packet
DROP = 0

Insn = tuple[int, int, int, int]  # code, jt, jf, k
_INSN = struct.Struct("HBBI")
_MAX_RANGES = (BPF_MAXINSNS - 8 - 1) // 3  # after the address-type and port preamble


def merge_ranges(
    ranges: Iterable[tuple[int, int]], limit: int = _MAX_RANGES
) -> list[tuple[int, int]]:
    """Sort, coalesce overlapping/adjacent ranges, then merge the closest until ≤ ``limit``."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if not 0 <= lo <= hi <= 0xFFFF:
            raise ValueError(f"bad port range {lo}-{hi}")
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    while len(out) > limit:
        gaps = [out[i + 1][0] - out[i][1] for i in range(len(out) - 1)]
        i = gaps.index(min(gaps))
        out[i : i + 2] = [(out[i][0], out[i + 1][1])]
    return out


def tcp_dst_port_filter(
    ranges: Iterable[tuple[int, int]],
    *,
    only_interface: int | None = None,
    not_interfaces: Iterable[int] = (),
    shares: Mapping[int, FlowShare] | None = None,
) -> list[Insn]:
    """Program for a raw IPv4 socket (data starts at the IP header).

    Only packets addressed to this host pass: a segment that came as a link-layer
    broadcast or multicast is dropped, as Linux's ``tcp_v4_rcv`` drops what is
    not ``PACKET_HOST``, so a SYN to a broadcast or multicast address never reaches
    a listener (RFC 9293 §3.9.2.3, MUST-57).  Non-first fragments are dropped:
    they carry no TCP header to look at.  With
    ``only_interface`` (an ifindex) the socket admits packets from that interface
    alone; ``not_interfaces`` keeps theirs out.  The stack reads each wire's
    packets on a socket of its own that way (``aiotcp.io.wires``).  ``shares``:
    the ports of ``reuse_port`` groups, each with the flows this worker admits.
    """
    prog = _host_frames_from(only_interface, not_interfaces)
    prog += [
        (BPF_LD_H_ABS, 0, 0, 6),  # flags + fragment offset
        (BPF_JMP_JSET_K, 0, 1, 0x1FFF),  # a fragment offset: drop
        (BPF_RET_K, 0, 0, DROP),
        (BPF_LDX_B_MSH, 0, 0, 0),  # X = IP header length
        (BPF_LD_H_IND, 0, 0, 2),  # A = TCP destination port
    ]
    return _accept_ports_in(prog, ranges, shares, ipv6=False)


def _host_frames_from(only_interface: int | None, not_interfaces: Iterable[int]) -> list[Insn]:
    """The start of a program: frames addressed to this host, from
    ``only_interface`` alone or from any interface but ``not_interfaces``."""
    prog: list[Insn] = [
        (BPF_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),
        (BPF_JMP_JEQ_K, 1, 0, PACKET_HOST),
        (BPF_RET_K, 0, 0, DROP),
    ]
    if only_interface is not None:
        prog += [
            (BPF_LD_W_ABS, 0, 0, SKF_AD_IFINDEX),
            (BPF_JMP_JEQ_K, 1, 0, only_interface),  # this interface: go on
            (BPF_RET_K, 0, 0, DROP),
        ]
    excluded = sorted(set(not_interfaces))
    if excluded:
        prog.append((BPF_LD_W_ABS, 0, 0, SKF_AD_IFINDEX))
        for index in excluded:
            prog += [(BPF_JMP_JEQ_K, 0, 1, index), (BPF_RET_K, 0, 0, DROP)]
    return prog


def tcp6_dst_port_filter(
    ranges: Iterable[tuple[int, int]], shares: Mapping[int, FlowShare] | None = None
) -> list[Insn]:
    """Program for a raw IPv6 TCP socket: the kernel hands it the segment without
    the IPv6 header (data starts at the TCP header, after netfilter and extension
    headers, as TCP itself would get it).  Admits segments to a port in ``ranges``
    in frames addressed to this host (MUST-57)."""
    prog = _host_frames_from(None, ())
    prog.append((BPF_LD_H_ABS, 0, 0, 2))  # TCP destination port
    return _accept_ports_in(prog, ranges, shares, ipv6=True)


ICMP_ERROR_TYPES = (3, 11, 12)
"""Destination Unreachable, Time Exceeded, Parameter Problem: the errors that
concern a connection (Source Quench and Redirect are ignored, as Linux does)."""


def icmp_error_filter(ranges: Iterable[tuple[int, int]]) -> list[Insn]:
    """Program for a raw IPPROTO_ICMP socket: the ICMP errors that quote a TCP
    segment sent from one of our ports (RFC 792: the error carries the offending
    IP header and at least 8 bytes of its payload, so the quoted TCP source port
    and sequence number).  Everything else — echo, other protocols' errors, the
    kernel's own connections — stays in the kernel.  Loads past a short packet's
    end drop it, so what passes is long enough to parse.
    """
    prog: list[Insn] = [
        (BPF_LD_H_ABS, 0, 0, 6),
        (BPF_JMP_JSET_K, 0, 1, 0x1FFF),  # a later fragment: no ICMP header to read
        (BPF_RET_K, 0, 0, DROP),
        (BPF_LDX_B_MSH, 0, 0, 0),  # X = outer IP header length
        (BPF_LD_B_IND, 0, 0, 0),  # A = ICMP type
    ]
    for i, icmp_type in enumerate(ICMP_ERROR_TYPES):
        left = len(ICMP_ERROR_TYPES) - 1 - i  # tests still to come before the drop
        prog.append((BPF_JMP_JEQ_K, left + 1, 0, icmp_type))
    prog += [
        (BPF_RET_K, 0, 0, DROP),
        (BPF_LD_B_IND, 0, 0, 8 + 9),  # A = the quoted header's protocol
        (BPF_JMP_JEQ_K, 1, 0, socket.IPPROTO_TCP),
        (BPF_RET_K, 0, 0, DROP),
        (BPF_LD_B_IND, 0, 0, 8),  # A = the quoted header's version and length
        (BPF_ALU_AND_K, 0, 0, 0x0F),
        (BPF_ALU_LSH_K, 0, 0, 2),
        (BPF_ALU_ADD_X, 0, 0, 0),
        (BPF_MISC_TAX, 0, 0, 0),  # X = outer + quoted header lengths
        (BPF_LD_H_IND, 0, 0, 8),  # A = the quoted TCP source port: ours
        (BPF_LD_H_IND, 0, 0, 8 + 6),  # the sequence number quoted whole (or a drop)
        (BPF_LD_H_IND, 0, 0, 8),
    ]
    return _accept_ports_in(prog, ranges)


def icmp6_error_filter(ranges: Iterable[tuple[int, int]]) -> list[Insn]:
    """Program for a raw IPPROTO_ICMPV6 socket, whose data starts at the ICMPv6
    header (the kernel has pulled the IPv6 header off before its raw sockets
    see the packet): the errors (types 1-4) that quote an IPv6 packet carrying
    TCP with no extension header — all aiotcp sends — from one of our ports.
    RFC 4443 §2.4(c) has the error quote as much of the packet as fits, so the
    quoted IPv6 header is at 8 and its TCP header at 48.  Loads past a short
    message's end drop it.
    """
    quoted_tcp = 8 + 40
    prog: list[Insn] = [
        (BPF_LD_B_ABS, 0, 0, 0),  # A = ICMPv6 type
        (BPF_JMP_JGE_K, 0, 1, 1),  # type < 1: drop
        (BPF_JMP_JGT_K, 0, 1, 4),  # type > 4 (informational, or unknown): drop
        (BPF_RET_K, 0, 0, DROP),
        (BPF_LD_B_ABS, 0, 0, 8 + 6),  # A = the quoted header's next header
        (BPF_JMP_JEQ_K, 1, 0, socket.IPPROTO_TCP),
        (BPF_RET_K, 0, 0, DROP),
        (BPF_LD_H_ABS, 0, 0, quoted_tcp + 6),  # the sequence number quoted whole (or a drop)
        (BPF_LD_H_ABS, 0, 0, quoted_tcp),  # A = the quoted TCP source port: ours
    ]
    return _accept_ports_in(prog, ranges)


def _accept_ports_in(
    prog: list[Insn],
    ranges: Iterable[tuple[int, int]],
    shares: Mapping[int, FlowShare] | None = None,
    *,
    ipv6: bool = False,
) -> list[Insn]:
    """Append, to a program that left a port in A, an accept for each range; a
    shared port's segments first jump to its ``share_block``, appended at the end."""
    shares = shares or {}
    blocks = [share_block(shares[port], ipv6=ipv6) for port in sorted(shares)]
    dispatch = 2 * len(blocks)
    room = BPF_MAXINSNS - len(prog) - dispatch - sum(map(len, blocks)) - 1
    merged = merge_ranges(ranges, room // 3)
    start = len(prog) + dispatch + 3 * len(merged) + 1  # the first block
    for port, block in zip(sorted(shares), blocks, strict=True):
        ja_at = len(prog) + 1
        prog += [(BPF_JMP_JEQ_K, 0, 1, port), (BPF_JMP_JA, 0, 0, start - ja_at - 1)]
        start += len(block)
    for lo, hi in merged:
        prog += [
            (BPF_JMP_JGE_K, 0, 2, lo),  # port < lo: next range
            (BPF_JMP_JGT_K, 1, 0, hi),  # port > hi: next range
            (BPF_RET_K, 0, 0, ACCEPT),
        ]
    prog.append((BPF_RET_K, 0, 0, DROP))
    for block in blocks:
        prog += block
    return prog


_SYN_ACK = 0x12
_SYN = 0x02
_FLAGS = 0  # scratch words
_PORTS = 1


def share_block(share: FlowShare, *, ipv6: bool) -> list[Insn]:
    """The end of a program for a segment to a shared port: its flow's bucket,
    ``aiotcp.io.flow_share.flow_bucket``'s hash of the addresses and ports, step for
    step; then accept a bucket of ``share.syn``, or a non-SYN of ``share.keep``.

    IPv4's data starts at the IP header, X holding its length; IPv6's at the TCP
    header, its addresses read through ``SKF_NET_OFF``.
    """
    if ipv6:
        tcp: list[Insn] = [(BPF_LD_B_ABS, 0, 0, 13), (BPF_ALU_AND_K, 0, 0, _SYN_ACK)]
        tcp += [(BPF_ST, 0, 0, _FLAGS), (BPF_LD_W_ABS, 0, 0, 0), (BPF_ST, 0, 0, _PORTS)]
        words = [SKF_NET_OFF + off for off in range(8, 40, 4)]  # source, destination
    else:
        tcp = [(BPF_LD_B_IND, 0, 0, 13), (BPF_ALU_AND_K, 0, 0, _SYN_ACK)]
        tcp += [(BPF_ST, 0, 0, _FLAGS), (BPF_LD_W_IND, 0, 0, 0), (BPF_ST, 0, 0, _PORTS)]
        words = [12, 16]
    prog = [*tcp, (BPF_LD_W_ABS, 0, 0, words[0])]
    for k in words[1:]:
        prog += [(BPF_MISC_TAX, 0, 0, 0), (BPF_LD_W_ABS, 0, 0, k), (BPF_ALU_XOR_X, 0, 0, 0)]
    prog += [(BPF_MISC_TAX, 0, 0, 0), (BPF_LD_MEM, 0, 0, _PORTS), (BPF_ALU_XOR_X, 0, 0, 0)]
    xorshift = [(BPF_MISC_TAX, 0, 0, 0), (BPF_ALU_RSH_K, 0, 0, 16), (BPF_ALU_XOR_X, 0, 0, 0)]
    multiply = [(BPF_ALU_MUL_K, 0, 0, 0x045D9F3B)]
    prog += xorshift + multiply + xorshift + multiply + xorshift
    prog += [(BPF_ALU_AND_K, 0, 0, BUCKETS - 1), (BPF_MISC_TAX, 0, 0, 0)]  # X = bucket
    prog += _accept_in(share.syn)
    prog += [
        (BPF_LD_MEM, 0, 0, _FLAGS),
        (BPF_JMP_JEQ_K, 0, 1, _SYN),  # a SYN outside our share: not ours
        (BPF_RET_K, 0, 0, DROP),
        (BPF_MISC_TXA, 0, 0, 0),
    ]
    prog += _accept_in(share.keep)
    prog.append((BPF_RET_K, 0, 0, DROP))
    return prog


def _accept_in(ranges: Ranges) -> list[Insn]:
    """Accept when A lies in one of ``ranges``; fall through otherwise."""
    prog: list[Insn] = []
    for lo, hi in ranges:
        prog += [(BPF_JMP_JGE_K, 0, 2, lo), (BPF_JMP_JGT_K, 1, 0, hi), (BPF_RET_K, 0, 0, ACCEPT)]
    return prog


def drop_all() -> list[Insn]:
    """The socket-filter guard's program: a single ``ret #0``."""
    return [(BPF_RET_K, 0, 0, DROP)]


#: bpf(2) by machine; elsewhere ``attach_drop_all`` uses the classic program.
_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SOCKET_FILTER = 1
_EBPF_INSN = struct.Struct("<BBhi")  # code, dst/src registers, offset, immediate
_BPF_ATTR_SIZE = 128


@functools.cache
def _shared_drop_all() -> int | None:
    """One loaded eBPF socket filter that returns 0 (``r0 = 0; exit``), as an fd.

    Every reservation socket of both guards carries a drop-all filter.  A classic
    program is translated and JIT-compiled anew by each ``SO_ATTACH_FILTER``
    (dearer than the ``bind`` itself); a loaded program is attached by fd to any
    number of sockets, at a quarter of that (docs/performance.md).  None where
    bpf(2) is refused (an
    unprivileged process with ``unprivileged_bpf_disabled``) or unknown.
    """
    nr = _BPF_SYSCALL.get(platform.machine())
    if nr is None:
        return None
    code = _EBPF_INSN.pack(0xB7, 0, 0, 0) + _EBPF_INSN.pack(0x95, 0, 0, 0)  # mov64 r0, 0; exit
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack(
        "<IIQQ",
        _BPF_PROG_TYPE_SOCKET_FILTER,
        len(code) // _EBPF_INSN.size,
        ctypes.addressof(insns),
        ctypes.addressof(license_),
    )
    buf = ctypes.create_string_buffer(attr, _BPF_ATTR_SIZE)  # the rest zero
    fd = int(ctypes.CDLL(None, use_errno=True).syscall(nr, _BPF_PROG_LOAD, buf, _BPF_ATTR_SIZE))
    return fd if fd >= 0 else None


def attach_drop_all(sock: socket.socket) -> None:
    """Make ``sock`` drop every segment: the shared eBPF program, else ``drop_all()``."""
    fd = _shared_drop_all()
    if fd is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, fd)
            return
        except OSError:
            pass
    attach(sock, drop_all())


def attach(sock: socket.socket, prog: Sequence[Insn]) -> None:
    """Attach (or atomically replace) a classic BPF program on ``sock``."""
    if len(prog) > BPF_MAXINSNS:
        raise ValueError(f"BPF program of {len(prog)} instructions exceeds {BPF_MAXINSNS}")
    code = b"".join(_INSN.pack(*insn) for insn in prog)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def attach_fresh(sock: socket.socket, prog: Sequence[Insn]) -> None:
    """Attach ``prog`` to a socket just opened and discard what it queued before the
    filter took effect (a raw socket receives from the moment it exists)."""
    attach(sock, prog)
    sock.setblocking(False)
    try:
        while True:
            sock.recv(0x10000)
    except BlockingIOError:
        pass


_LOAD_SIZES = {
    BPF_LD_W_ABS: 4,
    BPF_LD_W_IND: 4,
    BPF_LD_H_ABS: 2,
    BPF_LD_H_IND: 2,
    BPF_LD_B_ABS: 1,
    BPF_LD_B_IND: 1,
}
_INDIRECT = (BPF_LD_W_IND, BPF_LD_H_IND, BPF_LD_B_IND)


def run(
    prog: Sequence[Insn],
    packet: bytes,
    *,
    ifindex: int = 0,
    pkttype: int = PACKET_HOST,
    network: bytes | None = None,
) -> int:
    """Interpret a program the way the kernel would (tests check the compiler with it),
    for a packet that came in on interface ``ifindex`` as a frame of ``pkttype``;
    ``network`` is what ``SKF_NET_OFF`` loads read (the IPv6 header and what
    follows, for an IPv6 raw socket's ``packet`` that starts at TCP).

    Out-of-bounds loads end the program with 0, as in the kernel.
    """
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        if code == BPF_RET_K:
            return k
        if code == BPF_LD_W_ABS and k == SKF_AD_IFINDEX:
            a = ifindex
        elif code == BPF_LD_W_ABS and k == SKF_AD_PKTTYPE:
            a = pkttype
        elif code in _LOAD_SIZES:
            size, data, off = _LOAD_SIZES[code], packet, k
            if code in _INDIRECT:
                off = (off + x) & 0xFFFFFFFF
            elif SKF_NET_OFF <= off < SKF_AD_OFF:
                data, off = (packet if network is None else network), off - SKF_NET_OFF
            if off + size > len(data):
                return 0
            a = int.from_bytes(data[off : off + size], "big")
        elif code == BPF_ST:
            mem[k] = a
        elif code == BPF_LD_MEM:
            a = mem[k]
        elif code == BPF_ALU_XOR_X:
            a ^= x
        elif code == BPF_ALU_MUL_K:
            a = (a * k) & 0xFFFFFFFF
        elif code == BPF_ALU_RSH_K:
            a >>= k
        elif code == BPF_MISC_TXA:
            a = x
        elif code == BPF_JMP_JA:
            pc += k
        elif code == BPF_ALU_AND_K:
            a &= k
        elif code == BPF_ALU_LSH_K:
            a = (a << k) & 0xFFFFFFFF
        elif code == BPF_ALU_ADD_X:
            a = (a + x) & 0xFFFFFFFF
        elif code == BPF_MISC_TAX:
            x = a
        elif code == BPF_LDX_B_MSH:
            if k >= len(packet):
                return 0
            x = 4 * (packet[k] & 0x0F)
        elif code == BPF_JMP_JEQ_K:
            pc += jt if a == k else jf
        elif code == BPF_JMP_JGT_K:
            pc += jt if a > k else jf
        elif code == BPF_JMP_JGE_K:
            pc += jt if a >= k else jf
        elif code == BPF_JMP_JSET_K:
            pc += jt if a & k else jf
        else:
            raise ValueError(f"opcode {code:#x} not supported by this interpreter")
