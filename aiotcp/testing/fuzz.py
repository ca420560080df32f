"""Hostile TCP traffic for tests: malformed and fuzzed segments, SYN floods, and
forged ICMP errors.

Runs as its own process in the attacker's namespace, so it competes with the
stack under test only for CPU, not for the GIL::

    python -m aiotcp.testing.fuzz malformed --dst 198.18.0.1 --listen-port 8080 \\
        --conn 7000:61234:SEQ:ACK --count 100000 --rate 20000 --seed 1
    python -m aiotcp.testing.fuzz synflood --dst 198.18.0.1 --listen-port 8080 \\
        --src-net 198.19.0.0/16 --seconds 10
    python -m aiotcp.testing.fuzz icmp --dst 198.18.0.1 --src 198.18.0.2 \
        --listen-port 8080 --conn 7000:61234:SEQ:ACK --count 20000

With IPv6 addresses (inside fd00::/8; ``--src-net fd00:198:19::/48`` for the
flood) every mode sends IPv6, ``icmp`` ICMPv6 errors.  Packets go out on an
``IPPROTO_RAW`` socket (the kernel completes an IPv4 header; an IPv6 one is ours).
Malformations are TCP-level: a receiving kernel drops broken IP headers before
any raw socket could see them.  Segments aimed at the established connection
get sequence and acknowledgment numbers far outside its windows (``--conn`` gives
the current ones), so they exercise every acceptability check without being a
(legitimate) blind injection that a TCP must accept.  Prints JSON statistics.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable

from aiotcp.core.checksum import internet_checksum, tcp_checksum
from aiotcp.core.segment import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG

_IP = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_PSEUDO6 = struct.Struct("!16s16sI3xB")
IPPROTO_ICMPV6 = 58
_TCP = struct.Struct("!HHIIBBHHH")
EXCLUDE = 1 << 26  # keep fuzzed seq/ack this far from the connection's real ones


def ip_header(src: bytes, dst: bytes, proto: int = socket.IPPROTO_TCP) -> bytes:
    """IPv4 header for IPPROTO_RAW: length, id and checksum are filled by the kernel."""
    return _IP.pack(0x45, 0, 0, 0, 0x4000, 64, proto, 0, src, dst)


def ip6_header(src: bytes, dst: bytes, payload: int, next_header: int) -> bytes:
    """IPv6 header for an IPv6 IPPROTO_RAW socket, which sends it as it is."""
    return _IP6.pack(6 << 28, payload, next_header, 64, src, dst)


def tcp_bytes(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int = 65535,
    options: bytes = b"",
    payload: bytes = b"",
    *,
    offset_words: int | None = None,
    urgent: int = 0,
    checksum: bool = True,
) -> bytes:
    words = (20 + len(options)) // 4 if offset_words is None else offset_words
    hdr = bytearray(_TCP.pack(sport, dport, seq, ack, (words & 0xF) << 4, flags, window, 0, urgent))
    seg = hdr + options + payload
    if checksum:
        csum = tcp_checksum(src, dst, seg)
        seg[16], seg[17] = csum >> 8, csum & 0xFF
    return bytes(seg)


class Malformer:
    """Generates one malformed or fuzzed segment per call, by class, seeded."""

    def __init__(
        self,
        rng: random.Random,
        src: bytes,
        dst: bytes,
        listen_port: int,
        conn: tuple[int, int, int, int] | None,
    ) -> None:
        self.rng = rng
        self.src, self.dst = src, dst
        self.listen_port = listen_port
        self.conn = conn
        self.classes: dict[str, Callable[[], bytes]] = {
            "bad_checksum": self.bad_checksum,
            "truncated": self.truncated,
            "bad_offset": self.bad_offset,
            "option_length": self.option_length,
            "conflicting_flags": self.conflicting_flags,
            "urgent": self.urgent,
            "absurd_options": self.absurd_options,
            "random_header": self.random_header,
            "random_bytes": self.random_bytes,
            "scapy_fuzz": self.scapy_fuzz,
        }
        self._templates = scapy_templates(rng, listen_port, 300)

    # -- targets ---------------------------------------------------------------
    def _far(self, value: int) -> int:
        return (value + EXCLUDE + self.rng.randrange(2**32 - 2 * EXCLUDE)) & 0xFFFFFFFF

    def _target(self) -> tuple[int, int, int, int]:
        """(sport, dport, seq, ack): the listener, or the connection far outside its windows."""
        rng = self.rng
        if self.conn is not None and rng.random() < 0.5:
            sport, dport, seq, ack = self.conn
            return sport, dport, self._far(seq), self._far(ack)
        return (
            rng.randrange(1024, 65536),
            self.listen_port,
            rng.getrandbits(32),
            rng.getrandbits(32),
        )

    def _seg(self, flags: int, **kw: object) -> bytes:
        sport, dport, seq, ack = self._target()
        return tcp_bytes(self.src, self.dst, sport, dport, seq, ack, flags, **kw)  # type: ignore[arg-type]

    # -- classes -----------------------------------------------------------------
    def bad_checksum(self) -> bytes:
        seg = bytearray(self._seg(self.rng.choice((SYN, ACK, PSH | ACK)), payload=b"x" * 10))
        seg[16] ^= 1 + self.rng.randrange(255)
        return bytes(seg)

    def truncated(self) -> bytes:
        return self._seg(SYN)[: self.rng.randrange(1, 20)]

    def bad_offset(self) -> bytes:
        words = self.rng.choice((0, 1, 2, 3, 4, 11, 15))
        return self._seg(ACK, payload=b"y" * self.rng.randrange(0, 8), offset_words=words)

    def option_length(self) -> bytes:
        kind = self.rng.choice((2, 3, 4, 5, 8, 30, 254))
        length = self.rng.choice((0, 1, 41, 255))
        opts = bytes((kind, length, 0, 0))
        return self._seg(self.rng.choice((SYN, ACK)), options=opts)

    def conflicting_flags(self) -> bytes:
        flags = self.rng.choice(
            (
                SYN | FIN,
                SYN | RST,
                SYN | FIN | RST | PSH | ACK | URG | ECE | CWR,
                0,
                FIN,
                FIN | URG | PSH,
            )
        )
        return self._seg(flags, payload=b"z" * self.rng.randrange(0, 4))

    def urgent(self) -> bytes:
        return self._seg(URG | ACK | PSH, payload=b"u" * 8, urgent=self.rng.getrandbits(16))

    def absurd_options(self) -> bytes:
        rng = self.rng
        opts = rng.choice(
            (
                bytes((3, 3, 255, 1)),  # window scale 255
                bytes((2, 4, 0, 0)),  # MSS 0
                bytes((2, 4, 255, 255)),  # MSS 65535
                bytes((4, 2, 4, 2)),  # SACK-permitted twice
                bytes((5, 10)) + struct.pack("!II", 7, 3) + bytes((1, 1)),  # SACK left > right
                bytes((8, 10))
                + struct.pack("!II", 0xFFFFFFFF, 0)
                + bytes((1, 1)),  # TS at the edge
                bytes((1,) * 40),  # 40 NOPs
                bytes((0,) * 40),  # 40 EOLs
            )
        )
        return self._seg(rng.choice((SYN, ACK, SYN | ACK)), options=opts)

    def random_header(self) -> bytes:
        """A random 20-byte header with a valid checksum: reaches the state machine."""
        sport, dport, _, _ = self._target()
        hdr = bytearray(self.rng.randbytes(20))
        hdr[0:4] = struct.pack("!HH", sport, dport)
        if self.conn is not None and dport == self.conn[1]:
            struct.pack_into("!II", hdr, 4, self._far(self.conn[2]), self._far(self.conn[3]))
        hdr[12] = 0x50 | (hdr[12] & 0x0F)
        hdr[16:18] = b"\0\0"
        csum = tcp_checksum(self.src, self.dst, hdr)
        hdr[16], hdr[17] = csum >> 8, csum & 0xFF
        return bytes(hdr)

    def random_bytes(self) -> bytes:
        """Garbage after the IP header, checksum made valid when long enough."""
        data = bytearray(self.rng.randbytes(self.rng.randrange(0, 80)))
        if len(data) >= 20:
            struct.pack_into("!H", data, 2, self.listen_port)
            data[16:18] = b"\0\0"
            csum = tcp_checksum(self.src, self.dst, data)
            data[16], data[17] = csum >> 8, csum & 0xFF
        return bytes(data)

    def scapy_fuzz(self) -> bytes:
        """One of scapy's ``fuzz(TCP())`` segments; half get a valid checksum to go deeper."""
        seg = bytearray(self.rng.choice(self._templates))
        if len(seg) >= 20 and self.rng.random() < 0.5:
            seg[16:18] = b"\0\0"
            csum = tcp_checksum(self.src, self.dst, seg)
            seg[16], seg[17] = csum >> 8, csum & 0xFF
        return bytes(seg)

    def next(self) -> tuple[str, bytes]:
        return _pick(self.rng, self.classes)


class IcmpForger:
    """ICMP errors quoting the connection ``conn`` (SPORT:DPORT:SEQ:ACK as the peer
    sees it: the quoted segment goes the other way), each with a sequence number
    far from any in flight (RFC 5927: the stack must ignore them), or broken.
    With 16-byte addresses, ICMPv6 errors: Packet Too Big among them, some under
    IPv6's minimum MTU (RFC 8201 §4: discarded whatever they quote)."""

    def __init__(
        self, rng: random.Random, src: bytes, dst: bytes, conn: tuple[int, int, int, int]
    ) -> None:
        self.rng = rng
        self.src, self.dst = src, dst  # the forger's address, the stack's
        self.ipv6 = len(src) == 16
        self.peer_port, self.our_port, _, self.our_seq = conn
        error = self.error
        self.classes: dict[str, Callable[[], bytes]] = (
            {
                "packet_too_big": lambda: error(
                    2, 0, rng.choice((rng.randrange(1280, 1500), rng.randrange(1280)))
                ),
                "unreachable": lambda: error(1, rng.choice((0, 1, 3, 4, 5, 6))),
                "time_exceeded": lambda: error(3, rng.randrange(2)),
                "parameter_problem": lambda: error(4, rng.randrange(3)),
                "unknown_type": lambda: error(100, 0),  # an error type nobody defined
                "bad_checksum": lambda: error(1, 3, corrupt=True),
                "truncated": lambda: error(1, 3, quote=44),
                "unknown_code": lambda: error(1, 200),
            }
            if self.ipv6
            else {
                "frag_needed": lambda: error(3, 4, rng.randrange(1500)),
                "unreachable": lambda: error(3, rng.choice((0, 1, 2, 3, 9, 10, 13))),
                "time_exceeded": lambda: error(11, rng.randrange(2)),
                "parameter_problem": lambda: error(12, 0),
                "source_quench": lambda: error(4, 0),
                "bad_checksum": lambda: error(3, 1, corrupt=True),
                "truncated": lambda: error(3, 1, quote=24),
                "unknown_code": lambda: error(3, 200),
            }
        )

    def error(
        self, icmp_type: int, code: int, mtu: int = 0, *, quote: int = 0, corrupt: bool = False
    ) -> bytes:
        """The message (IPv4's quoting 28 bytes, IPv6's 48 unless ``quote`` says)."""
        seq = (self.our_seq + EXCLUDE + self.rng.randrange(2**32 - 2 * EXCLUDE)) & 0xFFFFFFFF
        tcp = struct.pack("!HHII", self.our_port, self.peer_port, seq, 0)
        if self.ipv6:
            quoted = ip6_header(self.dst, self.src, 20, socket.IPPROTO_TCP) + tcp
            body = bytearray(struct.pack("!BBHI", icmp_type, code, 0, mtu) + quoted[: quote or 48])
            pseudo = _PSEUDO6.pack(self.src, self.dst, len(body), IPPROTO_ICMPV6)
            csum = internet_checksum(pseudo + body)
        else:
            quoted = _IP.pack(0x45, 0, 40, 0, 0x4000, 64, 6, 0, self.dst, self.src) + tcp
            body = bytearray(
                struct.pack("!BBHHH", icmp_type, code, 0, 0, mtu) + quoted[: quote or 28]
            )
            csum = internet_checksum(body)
        body[2], body[3] = csum >> 8, csum & 0xFF
        if corrupt:
            body[-1] ^= 0xFF
        return bytes(body)

    def packet(self, message: bytes) -> bytes:
        """``message`` behind the IP header an IPPROTO_RAW socket of its family takes."""
        if self.ipv6:
            return ip6_header(self.src, self.dst, len(message), IPPROTO_ICMPV6) + message
        return ip_header(self.src, self.dst, socket.IPPROTO_ICMP) + message

    def next(self) -> tuple[str, bytes]:
        return _pick(self.rng, self.classes)


def _pick(rng: random.Random, classes: dict[str, Callable[[], bytes]]) -> tuple[str, bytes]:
    """One packet of a class chosen at random: (class name, packet)."""
    name = rng.choice(tuple(classes))
    return name, classes[name]()


def scapy_templates(rng: random.Random, dport: int, n: int) -> list[bytes]:
    """Segments from scapy's ``fuzz()`` (random fields and options), made up front:
    scapy needs ~100 µs a packet, too slow for the send loop itself."""
    from scapy.layers.inet import TCP
    from scapy.packet import fuzz

    random.seed(rng.getrandbits(32))  # scapy's random values come from the global RNG
    out = []
    for _ in range(n):
        try:
            out.append(bytes(fuzz(TCP(dport=dport))))
        except Exception:  # scapy cannot build every random combination
            continue
    return out or [bytes(20)]


def _send_paced(
    sock: socket.socket,
    make: Callable[[], tuple[str, bytes]],
    dst: str,
    *,
    count: int,
    rate: float,
    seconds: float,
) -> dict[str, object]:
    """Send ``count`` packets at ``rate`` per second (0: flat out), stopping at ``seconds``."""
    stats: Counter[str] = Counter()
    t0 = time.monotonic()
    sent = 0
    while sent < count:
        if time.monotonic() - t0 > seconds:
            break
        for _ in range(min(256, count - sent)):
            name, packet = make()
            try:
                sock.sendto(packet, (dst, 0))
                stats[name] += 1
            except OSError:
                stats["send_error"] += 1
            sent += 1
        if rate:
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    elapsed = time.monotonic() - t0
    return {"sent": sent, "seconds": elapsed, "rate": sent / elapsed, "by_class": dict(stats)}


def _send_raw(
    args: argparse.Namespace, make: Callable[[], tuple[str, bytes]], family: int = socket.AF_INET
) -> dict[str, object]:
    """``make``'s packets on an IPPROTO_RAW socket, paced as the arguments say."""
    with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        return _send_paced(
            sock, make, args.dst, count=args.count, rate=args.rate, seconds=args.seconds
        )


_UNIQUE_LOCAL = ipaddress.IPv6Network("fd00::/8")


def _family(*addresses: str) -> int:
    """The family of the addresses (or networks): IPv6 ones must stay in fd00::/8."""
    if ":" not in addresses[0]:
        return socket.AF_INET
    for address in addresses:
        net = ipaddress.ip_network(address)
        if not isinstance(net, ipaddress.IPv6Network) or not net.subnet_of(_UNIQUE_LOCAL):
            raise SystemExit("IPv6 addresses must stay inside fd00::/8")
    return socket.AF_INET6


def _tcp_packet(src: bytes, dst: bytes, segment: bytes) -> bytes:
    """``segment`` behind the IP header of its family, for an IPPROTO_RAW socket."""
    if len(src) == 16:
        return ip6_header(src, dst, len(segment), socket.IPPROTO_TCP) + segment
    return ip_header(src, dst) + segment


def malformed(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    family = _family(args.src, args.dst)
    src, dst = socket.inet_pton(family, args.src), socket.inet_pton(family, args.dst)
    conn = tuple(int(x) for x in args.conn.split(":")) if args.conn else None
    gen = Malformer(rng, src, dst, args.listen_port, conn)  # type: ignore[arg-type]

    def make() -> tuple[str, bytes]:
        name, seg = gen.next()
        return name, _tcp_packet(src, dst, seg)

    return _send_raw(args, make, family)


def synflood(args: argparse.Namespace) -> dict[str, object]:
    """Spoofed SYNs from random addresses of ``--src-net`` (keep it inside 198.18.0.0/15,
    or fd00::/8 for IPv6)."""
    rng = random.Random(args.seed)
    family = _family(args.dst, args.src_net)
    net = ipaddress.ip_network(args.src_net)
    if isinstance(net, ipaddress.IPv4Network) and not net.subnet_of(
        ipaddress.IPv4Network("198.18.0.0/15")
    ):
        raise SystemExit("spoofed sources must stay inside 198.18.0.0/15")
    base, size = int(net.network_address), net.num_addresses
    width = 16 if family == socket.AF_INET6 else 4
    dst = socket.inet_pton(family, args.dst)
    mss = bytes((2, 4, 0x05, 0xB4))

    def make() -> tuple[str, bytes]:
        src = (base + 1 + rng.randrange(size - 2)).to_bytes(width, "big")
        seg = tcp_bytes(
            src,
            dst,
            rng.randrange(1024, 65536),
            args.listen_port,
            rng.getrandbits(32),
            0,
            SYN,
            64240,
            mss,
        )
        return "syn", _tcp_packet(src, dst, seg)

    return _send_raw(args, make, family)


def icmp(args: argparse.Namespace) -> dict[str, object]:
    """ICMP errors, or ICMPv6 ones when the addresses are IPv6 (fd00::/8 only)."""
    rng = random.Random(args.seed)
    family = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
    if family == socket.AF_INET6 and not all(
        ipaddress.IPv6Address(a) in ipaddress.IPv6Network("fd00::/8") for a in (args.src, args.dst)
    ):
        raise SystemExit("IPv6 addresses must stay inside fd00::/8")
    src, dst = socket.inet_pton(family, args.src), socket.inet_pton(family, args.dst)
    gen = IcmpForger(rng, src, dst, tuple(int(x) for x in args.conn.split(":")))  # type: ignore[arg-type]

    def make() -> tuple[str, bytes]:
        name, message = gen.next()
        return name, gen.packet(message)

    return _send_raw(args, make, family)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiotcp.testing.fuzz")
    parser.add_argument("mode", choices=["malformed", "synflood", "icmp"])
    parser.add_argument("--dst", required=True)
    parser.add_argument("--src", help="our address (malformed mode)")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--conn", help="SPORT:DPORT:SEQ:ACK of an established connection to aim at")
    parser.add_argument("--src-net", default="198.19.0.0/16", help="spoofed sources (synflood)")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="packets/s, 0 = as fast as possible"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="hard time limit")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = {"malformed": malformed, "synflood": synflood, "icmp": icmp}[args.mode](args)
    json.dump(result, sys.stdout)
    print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
