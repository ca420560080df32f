"""Which worker of a ``reuse_port`` group owns a flow: a hash of its 4-tuple.

The kernel's ``SO_REUSEPORT`` picks a listener per SYN and then finds the
connection's own socket for every later segment.  aiotcp's workers each read every
TCP packet of the namespace on their raw socket, so each one's BPF filter must
admit its own flows and nobody else's (``aiotcp.io.bpf.share_block``).  A flow is
put in one of ``BUCKETS`` buckets by a hash of the addresses and ports of the
segments that arrive (remote and local: the hash need not be symmetric, the
worker never sees its own segments), and each worker of the group owns a
contiguous range of buckets.  This module is the Python twin of that BPF program:
``flow_bucket`` must give the bucket the kernel computes, which the tests check
with ``bpf.run``.

Buckets rather than ``hash % workers``: the number of workers changes as they
come and go, and a worker keeps receiving the flows it has in buckets that moved
to another (``FlowShare.keep``) until they end, the way the kernel keeps an
established connection on its socket while new SYNs go to the new group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BUCKETS = 256
"""Enough that a move on a worker's arrival or departure carries few flows; the
share of a group of n workers is a range of 256/n buckets."""

_MIX = 0x045D9F3B
"""An odd multiplier with good avalanche for the xor-shift-multiply mix (a known
32-bit integer hash); classic BPF has the 32-bit MUL, XOR and RSH it needs."""
_MASK = 0xFFFFFFFF

Ranges = tuple[tuple[int, int], ...]
"""Inclusive bucket ranges, sorted and disjoint."""


def address_words(addr: bytes) -> int:
    """The XOR of an address's 32-bit words (one for IPv4, four for IPv6)."""
    h = 0
    for i in range(0, len(addr), 4):
        h ^= int.from_bytes(addr[i : i + 4], "big")
    return h


def mix(h: int) -> int:
    """Spread the bits of ``h`` into the low byte: two rounds of xor-shift-multiply
    and a last xor-shift (the BPF program does exactly these steps)."""
    h ^= h >> 16
    h = (h * _MIX) & _MASK
    h ^= h >> 16
    h = (h * _MIX) & _MASK
    h ^= h >> 16
    return h


def flow_bucket(remote_ip: bytes, remote_port: int, local_ip: bytes, local_port: int) -> int:
    """The bucket of the flow whose segments arrive from ``remote`` at ``local``."""
    ports = (remote_port << 16) | local_port
    return mix(address_words(remote_ip) ^ address_words(local_ip) ^ ports) % BUCKETS


def share_of(members: Sequence[int], me: int) -> tuple[int, int] | None:
    """The contiguous bucket range of worker ``me`` in a group whose workers are
    ``members`` (their slots, any order): every bucket has exactly one owner when
    all workers agree on ``members``.  None when ``me`` is not a member."""
    ordered = sorted(members)
    if me not in ordered:
        return None
    i, n = ordered.index(me), len(ordered)
    return (i * BUCKETS // n, (i + 1) * BUCKETS // n - 1)


def to_ranges(buckets: Iterable[int]) -> Ranges:
    """Bucket numbers as sorted inclusive ranges."""
    out: list[tuple[int, int]] = []
    for b in sorted(set(buckets)):
        if out and b == out[-1][1] + 1:
            out[-1] = (out[-1][0], b)
        else:
            out.append((b, b))
    return tuple(out)


def in_ranges(bucket: int, ranges: Ranges) -> bool:
    return any(lo <= bucket <= hi for lo, hi in ranges)


@dataclass(frozen=True)
class FlowShare:
    """What one worker's filter admits of a shared port's segments."""

    syn: Ranges
    """Buckets whose new flows are ours: SYNs and everything else."""
    keep: Ranges = ()
    """Further buckets where we still have connections (they moved to another
    worker while we had flows in them): everything but a SYN."""

    def admits(self, bucket: int, syn_only: bool) -> bool:
        """Would the filter pass a segment of ``bucket`` (``syn_only``: SYN, no ACK)?"""
        return in_ranges(bucket, self.syn) or (not syn_only and in_ranges(bucket, self.keep))
