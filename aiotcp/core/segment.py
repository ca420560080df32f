"""TCP segment codec: header, options and validation (RFC 9293 §3.1, RFC 7323, RFC 2018).

``decode`` never raises on wire input: every malformed segment comes back as a
``DropReason`` so the caller can count it: bad input is dropped and counted, never
fatal.  ``encode`` builds a header with options and the checksum in one buffer.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

from aiotcp.core import checksum

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80

# The two ECN bits of the IP header (RFC 3168 §5).
NOT_ECT: Final = 0
ECT1: Final = 1
ECT0: Final = 2
CE: Final = 3

# tcpdump's order and letters (print-tcp.c), ACK printed as ".".
_FLAG_LETTERS: Final = (
    (FIN, "F"),
    (SYN, "S"),
    (RST, "R"),
    (PSH, "P"),
    (ACK, "."),
    (URG, "U"),
    (ECE, "E"),
    (CWR, "W"),
)

OPT_EOL: Final = 0
OPT_NOP: Final = 1
OPT_MSS: Final = 2
OPT_WSCALE: Final = 3
OPT_SACK_PERMITTED: Final = 4
OPT_SACK: Final = 5
OPT_TIMESTAMPS: Final = 8

MAX_WSCALE: Final = 14  # RFC 7323 §2.3: larger shifts are treated as 14
HEADER: Final = struct.Struct("!HHIIBBHHH")  # ports, seq, ack, offset, flags, window, csum, urp
_MSS: Final = struct.Struct("!BBH")
_TS: Final = struct.Struct("!BBII")
_SACK_EDGE: Final = struct.Struct("!II")
_TS_VALUES: Final = _SACK_EDGE  # TSval, TSecr: two 32-bit numbers as well
#: The layout Linux and aiotcp put on every non-SYN segment (RFC 7323 Appendix A).
_NOP_NOP_TIMESTAMPS: Final = bytes((OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10))


class DropReason(enum.StrEnum):
    """Why a received packet was not handed to a connection (counted per stack)."""

    TRUNCATED_IP = "truncated_ip"
    BAD_IP_VERSION = "bad_ip_version"
    BAD_IP_HEADER_LENGTH = "bad_ip_header_length"
    BAD_IP_TOTAL_LENGTH = "bad_ip_total_length"
    IP_FRAGMENT = "ip_fragment"
    NOT_TCP = "not_tcp"
    TRUNCATED_TCP = "truncated_tcp"
    BAD_DATA_OFFSET = "bad_data_offset"
    BAD_OPTION_LENGTH = "bad_option_length"
    BAD_CHECKSUM = "bad_checksum"
    BAD_ADDRESS = "bad_address"
    BAD_PORT = "bad_port"
    BAD_FLAGS = "bad_flags"
    IPV6_EXTENSION_HEADER = "ipv6_extension_header"
    """TCP behind an IPv6 extension header (fragment, routing, options): Linux's
    TCP takes them, aiotcp does not parse them yet."""


def flags_str(flags: int) -> str:
    """Flags as tcpdump prints them: ``S``, ``S.``, ``.``, ``P.``, ``F.``, ``R``."""
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit) or "none"


def parse_flags(text: str) -> int:
    """Inverse of the letters used in tests and scenario scripts (``"SA"``, ``"FA"``)."""
    table = {
        "S": SYN,
        "F": FIN,
        "R": RST,
        "P": PSH,
        "A": ACK,
        ".": ACK,
        "U": URG,
        "E": ECE,
        "W": CWR,
    }
    value = 0
    for ch in text:
        if ch not in table:
            raise ValueError(f"unknown TCP flag letter {ch!r} in {text!r}")
        value |= table[ch]
    return value


def _header_fields(seg: Segment) -> tuple[object, ...]:
    """Everything but the payload, for ``__eq__`` (a compiled class has no
    ``__slots__`` to iterate)."""
    return (
        seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window, seg.urgent,
        seg.mss, seg.wscale, seg.sack_permitted, seg.sack_blocks, seg.ts_val, seg.ts_ecr,
        seg.unknown_options, seg.ecn, seg.gso_size,
    )  # fmt: skip


class Segment:
    """One TCP segment, decoded or to be encoded.

    Option fields are ``None`` when the option is absent.  ``payload`` may be a
    memoryview into a receive buffer: the receiving side copies what it keeps.

    An outgoing segment may instead hold its payload as ``parts``, the pieces of
    the send buffer it lies in: the GSO path hands them to ``sendmsg`` as they
    are, and ``payload`` joins them only for whoever asks (the raw path, tests).
    """

    __slots__ = (
        "_parts",
        "_payload",
        "ack",
        "dst_port",
        "ecn",
        "flags",
        "gso_size",
        "mss",
        "payload_len",
        "sack_blocks",
        "sack_permitted",
        "seq",
        "src_port",
        "ts_ecr",
        "ts_val",
        "unknown_options",
        "urgent",
        "window",
        "wscale",
    )

    def __init__(
        self,
        src_port: int = 0,
        dst_port: int = 0,
        seq: int = 0,
        ack: int = 0,
        flags: int = 0,
        window: int = 0,
        urgent: int = 0,
        payload: bytes | bytearray | memoryview = b"",
        *,
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        sack_blocks: tuple[tuple[int, int], ...] = (),
        ts_val: int | None = None,
        ts_ecr: int | None = None,
        unknown_options: int = 0,
        ecn: int = 0,
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgent = urgent
        self._payload: bytes | bytearray | memoryview | None = payload
        self._parts: tuple[bytes | bytearray | memoryview, ...] = ()
        self.payload_len = len(payload)
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.ts_val = ts_val
        self.ts_ecr = ts_ecr
        self.unknown_options = unknown_options
        #: The IP header's ECN field (RFC 3168 §5): what arrived, or what to send.
        self.ecn = ecn
        #: Payload bytes per wire segment when this is a super-segment (0: it is one
        #: segment).  The core emits these so a bulk run costs one object, not 45;
        #: the GSO path hands it to the kernel whole, the raw path calls ``split``.
        self.gso_size = 0

    @property
    def payload(self) -> bytes | bytearray | memoryview:
        p = self._payload
        if p is None:  # held as parts: joined once, for whoever needs one buffer
            p = self._payload = b"".join(self._parts)
        return p

    @payload.setter
    def payload(self, value: bytes | bytearray | memoryview) -> None:
        self._payload = value
        self._parts = ()
        self.payload_len = len(value)

    @property
    def parts(self) -> tuple[bytes | bytearray | memoryview, ...]:
        """The payload in the pieces it lies in (one piece unless ``set_parts``)."""
        return self._parts or (self.payload,)

    def set_parts(self, parts: tuple[bytes | bytearray | memoryview, ...]) -> None:
        """Make the payload the concatenation of ``parts``, without joining them."""
        if len(parts) == 1:
            self.payload = parts[0]
            return
        self._parts = parts
        self._payload = None
        self.payload_len = sum(len(p) for p in parts)

    @property
    def seq_len(self) -> int:
        """Sequence space consumed: payload plus one each for SYN and FIN."""
        return self.payload_len + (self.flags & SYN and 1) + (self.flags & FIN and 1)

    @property
    def wire_segments(self) -> int:
        """How many segments this puts on the wire."""
        g = self.gso_size
        return -(-self.payload_len // g) if g and self.payload_len > g else 1

    def split(self) -> list[Segment]:
        """The wire segments of a super-segment, as the kernel's GSO would cut them:
        the same header, seq advanced, PSH and FIN only on the last."""
        g = self.gso_size
        payload = self.payload
        if not g or len(payload) <= g:
            return [self]
        out = []
        last = len(payload) - 1
        for off in range(0, len(payload), g):
            seg = Segment(
                self.src_port,
                self.dst_port,
                (self.seq + off) & 0xFFFFFFFF,
                self.ack,
                self.flags if off + g > last else self.flags & ~(FIN | PSH),
                self.window,
                self.urgent,
                payload[off : off + g],
                sack_blocks=self.sack_blocks,
                ts_val=self.ts_val,
                ts_ecr=self.ts_ecr,
                ecn=self.ecn,
            )
            out.append(seg)
        return out

    def __repr__(self) -> str:
        parts = [
            f"{self.src_port}>{self.dst_port}",
            f"[{flags_str(self.flags)}]",
            f"seq={self.seq}",
        ]
        if self.flags & ACK:
            parts.append(f"ack={self.ack}")
        parts.append(f"win={self.window}")
        if self.payload_len:
            parts.append(f"len={self.payload_len}")
        if self.gso_size and self.payload_len > self.gso_size:
            parts.append(f"gso={self.gso_size}x{self.wire_segments}")
        opts = describe_options(self)
        if opts:
            parts.append(f"opts=[{opts}]")
        return f"Segment({' '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segment):
            return NotImplemented
        return bytes(self.payload) == bytes(other.payload) and _header_fields(
            self
        ) == _header_fields(other)

    __hash__ = None  # type: ignore[assignment]


def describe_options(seg: Segment) -> str:
    """Options in tcpdump's words, for logs and the demo."""
    out = []
    if seg.mss is not None:
        out.append(f"mss {seg.mss}")
    if seg.sack_permitted:
        out.append("sackOK")
    if seg.ts_val is not None:
        out.append(f"TS val {seg.ts_val} ecr {seg.ts_ecr or 0}")
    if seg.wscale is not None:
        out.append(f"wscale {seg.wscale}")
    if seg.sack_blocks:
        out.append("sack " + " ".join(f"{{{a}:{b}}}" for a, b in seg.sack_blocks))
    return ",".join(out)


def encode_options(seg: Segment) -> bytes:
    """Options laid out the way Linux does (MSS, SACK-permitted+TS, NOP+wscale).

    Every block is padded to 32 bits with NOPs so the header length is exact.
    """
    out = bytearray()
    if seg.mss is not None:
        out += _MSS.pack(OPT_MSS, 4, seg.mss)
    if seg.ts_val is not None:
        if seg.sack_permitted:
            out += bytes((OPT_SACK_PERMITTED, 2))
        else:
            out += bytes((OPT_NOP, OPT_NOP))
        out += _TS.pack(OPT_TIMESTAMPS, 10, seg.ts_val, seg.ts_ecr or 0)
    elif seg.sack_permitted:
        out += bytes((OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2))
    if seg.wscale is not None:
        out += bytes((OPT_NOP, OPT_WSCALE, 3, seg.wscale))
    if seg.sack_blocks:
        blocks = seg.sack_blocks[: (40 - len(out) - 2) // 8]
        out += bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(blocks)))
        for left, right in blocks:
            out += _SACK_EDGE.pack(left, right)
    return bytes(out)


def encode(seg: Segment, src: bytes, dst: bytes) -> bytes:
    """Serialise ``seg`` with a correct checksum for ``src``/``dst`` (IPv4 or IPv6)."""
    opts = encode_options(seg)
    if len(opts) > 40:
        raise ValueError(f"TCP options too long ({len(opts)} bytes > 40)")
    offset = (20 + len(opts)) // 4
    buf = bytearray(20 + len(opts) + len(seg.payload))
    HEADER.pack_into(
        buf,
        0,
        seg.src_port,
        seg.dst_port,
        seg.seq,
        seg.ack,
        offset << 4,
        seg.flags,
        seg.window,
        0,
        seg.urgent,
    )
    buf[20 : 20 + len(opts)] = opts
    buf[20 + len(opts) :] = seg.payload
    csum = checksum.tcp_checksum(src, dst, buf)
    buf[16] = csum >> 8
    buf[17] = csum & 0xFF
    return bytes(buf)


def _parse_options(seg: Segment, opts: bytes) -> DropReason | None:
    """Parse the option bytes into ``seg``; unknown kinds are skipped by length.

    RFC 9293 MUST-6/7: unknown options must be ignored, and an illegal length
    must not crash the receiver — we drop such a segment (as Linux does when the
    length runs past the header).
    """
    i = 0
    n = len(opts)
    while i < n:
        kind = opts[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            return DropReason.BAD_OPTION_LENGTH
        length = opts[i + 1]
        if length < 2 or i + length > n:
            return DropReason.BAD_OPTION_LENGTH
        if kind == OPT_MSS:
            if length != 4:
                return DropReason.BAD_OPTION_LENGTH
            seg.mss = (opts[i + 2] << 8) | opts[i + 3]
        elif kind == OPT_WSCALE:
            if length != 3:
                return DropReason.BAD_OPTION_LENGTH
            seg.wscale = min(opts[i + 2], MAX_WSCALE)
        elif kind == OPT_SACK_PERMITTED:
            if length != 2:
                return DropReason.BAD_OPTION_LENGTH
            seg.sack_permitted = True
        elif kind == OPT_TIMESTAMPS:
            if length != 10:
                return DropReason.BAD_OPTION_LENGTH
            seg.ts_val, seg.ts_ecr = _TS_VALUES.unpack_from(opts, i + 2)
        elif kind == OPT_SACK:
            if (length - 2) % 8 or length == 2:
                return DropReason.BAD_OPTION_LENGTH
            seg.sack_blocks = tuple(
                _SACK_EDGE.unpack_from(opts, j) for j in range(i + 2, i + length, 8)
            )
        else:
            seg.unknown_options += 1
        i += length
    return None


def decode(
    data: bytes | bytearray | memoryview,
    src: bytes,
    dst: bytes,
    *,
    verify_checksum: bool = True,
    trust_partial: bool = True,
) -> Segment | DropReason:
    """Decode a TCP segment (header onwards) that arrived from ``src`` to ``dst``.

    Returns the ``Segment`` or the reason it must be dropped; never raises.
    The payload is a memoryview into ``data`` (no copy).  ``trust_partial``: a
    checksum field holding only the pseudo-header sum is accepted unverified
    (``checksum.verify``'s ``partial_ok``).
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    if len(view) < 20:
        return DropReason.TRUNCATED_TCP
    sport, dport, seq, ack, off, flags, window, csum, urgent = HEADER.unpack_from(view)
    hlen = (off >> 4) * 4
    if hlen < 20 or hlen > len(view):
        return DropReason.BAD_DATA_OFFSET
    if (
        verify_checksum
        and checksum.verify(src, dst, view, csum, trust_partial) == checksum.CSUM_BAD
    ):
        return DropReason.BAD_CHECKSUM
    seg = Segment(sport, dport, seq, ack, flags, window, urgent, view[hlen:])
    if hlen > 20:
        # At most 40 bytes, copied once: bytes index natively, a memoryview does not.
        opts = bytes(view[20:hlen])
        if hlen == 32 and opts.startswith(_NOP_NOP_TIMESTAMPS):  # every segment but SYNs
            seg.ts_val, seg.ts_ecr = _TS_VALUES.unpack_from(opts, 4)
            return seg
        reason = _parse_options(seg, opts)
        if reason is not None:
            return reason
    return seg
