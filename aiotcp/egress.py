"""Where a connection's segments leave: GSO super-segments or the raw IP socket.

Once a connection is established and its next hop is known, every one of its
segments takes the AF_PACKET path (ACKs and FIN too), so nothing overtakes
anything on the way out; runs of consecutive data segments go as one frame the
kernel splits and checksums.  Handshakes, RSTs and interfaces without a link
layer use the raw IP socket.
"""

from __future__ import annotations

import collections
from typing import Final

from aiotcp.core.segment import Segment
from aiotcp.io import neighbour
from aiotcp.io.gso import IP_LEN, MAX_IP_PACKET, GsoSender, runs
from aiotcp.io.lookup_cache import LookupCache
from aiotcp.io.neighbour import NextHop
from aiotcp.io.pcap import PcapWriter
from aiotcp.io.rawsock import RawSocket

GSO_RECHECK: Final = 1.0  # seconds between next-hop lookups for a path without one
NEXT_HOP_TTL: Final = 2.0  # seconds a resolved next hop is reused by new connections
GSO_MAX_PAYLOAD: Final = MAX_IP_PACKET - IP_LEN - 60  # minus the largest TCP header
DS_MASK: Final = 0xFC
MAX_PATHS: Final = 4096
"""The TOS byte's Differentiated Services bits; the other two are ECN (RFC 3168)."""


class Egress:
    """The send side of a stack: one raw socket, one AF_PACKET sender per next hop."""

    def __init__(
        self,
        raw: RawSocket,
        counters: collections.Counter[str],
        *,
        gso: bool,
        pcap: PcapWriter | None,
    ) -> None:
        self.raw = raw
        self.counters = counters
        self.gso = gso
        self.pcap = pcap
        self._senders: dict[NextHop, GsoSender] = {}
        self._next_hops: LookupCache[bytes, NextHop] = LookupCache(NEXT_HOP_TTL)
        self._paths: dict[bytes, SendPath] = {}

    def send_segment(
        self, seg: Segment, src: bytes, dst: bytes, tos: int = 0, ttl: int | None = None
    ) -> None:
        """One segment through the raw IP socket (RSTs, listener replies)."""
        self.raw.send_segment(seg, src, dst, tos, ttl)

    def path(self, src: bytes, dst: bytes) -> SendPath:
        """The way out from ``src`` to ``dst``, shared by every connection between
        them: nothing in it is a connection's own, and a server's thousands of idle
        connections from a few clients need not keep one each.  Bounded: past
        ``MAX_PATHS`` pairs the table starts again (connections keep theirs)."""
        key = src + dst
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= MAX_PATHS:
                self._paths.clear()
            path = self._paths[key] = SendPath(self, src, dst)
        return path

    def _send_raw(
        self, segments: list[Segment], src: bytes, dst: bytes, tos: int, ttl: int | None
    ) -> None:
        """The raw IP socket has no GSO: super-segments go as their wire segments."""
        send = self.raw.send_segment
        for seg in segments:
            if seg.gso_size:
                for piece in seg.split():
                    send(piece, src, dst, tos, ttl)
            else:
                send(seg, src, dst, tos, ttl)

    def _sender_for(self, dst: bytes, now: float) -> GsoSender | None:
        # Cached: reading /proc/net/{route,arp} was a good part of a short
        # connection's cost (docs/performance.md).
        hop = self._next_hops.get(dst, now)
        if hop is None:
            hop = neighbour.lookup(dst)
            if hop is None:
                return None
            self._next_hops.put(dst, hop, now)
        sender = self._senders.get(hop)
        if sender is None:
            try:
                sender = GsoSender(hop)
            except OSError:
                self.gso = False  # no AF_PACKET here (capabilities, kernel): raw IP only
                return None
            sender.pcap = self.pcap
            self._senders[hop] = sender
        return sender

    def close(self) -> None:
        for sender in self._senders.values():
            sender.close()
        self._senders.clear()
        self._paths.clear()


class SendPath:
    """The way out between two addresses: the raw IP socket until the next hop is
    known (a handshake resolves it) and for handshakes, then the AF_PACKET sender of
    that hop, for every segment."""

    __slots__ = ("_checked", "_egress", "_sender", "dst", "src")

    def __init__(self, egress: Egress, src: bytes, dst: bytes) -> None:
        self._egress = egress
        self.src = src
        self.dst = dst
        self._sender: GsoSender | None = None
        self._checked = -1.0  # when the next hop was last looked for

    @property
    def gso_max(self) -> int:
        """Largest super-segment payload this path takes (0: MSS-sized segments only)."""
        return GSO_MAX_PAYLOAD if self._sender is not None else 0

    def transmit(
        self,
        segments: list[Segment],
        now: float,
        handshaking: bool,
        tos: int = 0,
        ttl: int | None = None,
    ) -> None:
        """The segments, as GSO runs once the next hop is known; ``tos`` (the DS
        bits) and ``ttl`` (None: the host's default) go in their IP headers."""
        egress = self._egress
        src, dst = self.src, self.dst
        sender = self._sender
        if (
            not handshaking
            and egress.gso
            and now - self._checked >= (GSO_RECHECK if sender is None else NEXT_HOP_TTL)
        ):
            # The handshake resolved the neighbour by now.  A path is shared by the
            # connections between two addresses: its next hop is looked up again as
            # often as a new connection's would be (a peer's new MAC is found).
            self._checked = now
            sender = self._sender = egress._sender_for(dst, now)
        if sender is None or handshaking:
            egress._send_raw(segments, src, dst, tos, ttl)
            return
        counters = egress.counters
        for run in runs(segments, GSO_MAX_PAYLOAD):
            sent = sender.send_run(run, src, dst, tos, ttl)
            if sent:
                counters["gso_frames"] += 1
                counters["gso_segments"] += sent
            else:
                counters["gso_fallback"] += len(run)
                egress._send_raw(run, src, dst, tos, ttl)
