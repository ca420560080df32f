"""Internet checksum (RFC 1071) for TCP over IPv4 and IPv6.

Turning the buffer into one big ``int`` and reducing it modulo 0xffff is the
fastest pure-Python method measured (docs/performance.md), and correct because
2**16 ≡ 1 (mod 0xffff) makes the remainder equal to the end-around-carry sum of the
16-bit words.  The one wrinkle: one's-complement arithmetic has two zeros, and a
non-zero sum that is a multiple of 0xffff must fold to 0xffff, not 0.
"""

from __future__ import annotations

import struct
from typing import Final

IPPROTO_TCP: Final = 6
_PSEUDO: Final = struct.Struct("!4s4sBBH")
_PSEUDO6: Final = struct.Struct("!16s16sI3xB")  # RFC 8200 §8.1


def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """One's-complement sum of ``data`` as 16-bit big-endian words, folded to 16 bits."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    x = int.from_bytes(data, "big")
    if x == 0:
        return 0
    r = x % 0xFFFF
    return r or 0xFFFF


def fold_add(a: int, b: int) -> int:
    """One's-complement addition of two folded 16-bit sums."""
    s = a + b
    s = (s & 0xFFFF) + (s >> 16)
    return s


def pseudo_header_sum(src: bytes, dst: bytes, tcp_length: int) -> int:
    """Folded sum of the pseudo-header: IPv4's (RFC 9293 §3.1) for 4-byte
    addresses, IPv6's (RFC 8200 §8.1: 32-bit length, next header last) for 16.

    Kernels that offload the checksum (veth, GSO/GRO) leave exactly this value,
    not inverted, in the TCP checksum field (CHECKSUM_PARTIAL); see ``verify``.
    """
    if len(src) == 16:
        return ones_sum(_PSEUDO6.pack(src, dst, tcp_length, IPPROTO_TCP))
    return ones_sum(_PSEUDO.pack(src, dst, 0, IPPROTO_TCP, tcp_length))


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """The checksum of ``data`` alone (ICMP's: no pseudo-header), to store in a
    field that is zero in ``data``."""
    return ~ones_sum(data) & 0xFFFF


def tcp_checksum(src: bytes, dst: bytes, segment: bytes | bytearray | memoryview) -> int:
    """Checksum to store in a TCP header whose checksum field is currently zero."""
    s = fold_add(pseudo_header_sum(src, dst, len(segment)), ones_sum(segment))
    return ~s & 0xFFFF


def verify(
    src: bytes,
    dst: bytes,
    segment: bytes | bytearray | memoryview,
    field: int = -1,
    partial_ok: bool = True,
) -> int:
    """Check a received TCP segment's checksum.

    Returns ``CSUM_OK`` for a complete, correct checksum, ``CSUM_PARTIAL`` when the
    field holds only the pseudo-header seed (the sender's kernel offloaded the
    checksum and the packet never left the host: veth, docker bridges, GRO), and
    ``CSUM_BAD`` otherwise.  The partial case is checked first because it costs only
    the 12-byte pseudo-header, not a pass over the payload.  ``partial_ok=False``
    (a packet from a wire, ``aiotcp.io.wires``) verifies a seed-valued field in
    full: a real checksum that happens to equal the seed still passes.  ``field``
    is the checksum field when the caller has unpacked the header already
    (indexing a memoryview costs a generic item lookup per byte, even compiled).
    """
    if field < 0 and len(segment) >= 18:
        field = (segment[16] << 8) | segment[17]
    seed = pseudo_header_sum(src, dst, len(segment))
    if field == seed and partial_ok:
        return CSUM_PARTIAL
    total = fold_add(seed, ones_sum(segment))
    return CSUM_OK if total == 0xFFFF else CSUM_BAD


CSUM_OK: Final = 0
CSUM_PARTIAL: Final = 1
CSUM_BAD: Final = 2
