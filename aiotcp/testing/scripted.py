"""A scripted TCP endpoint on the raw socket: send exact segments, wait for exact replies.

This is packetdrill's idea in a few lines: no state machine, the script decides
every sequence number.  The handshake demo uses it to show a connection segment by
segment, and packet-level tests use it as the peer that misbehaves on purpose.
"""

from __future__ import annotations

import collections
import select
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from aiotcp.core.segment import Segment, describe_options, flags_str
from aiotcp.io.packet import Packet, format_ip
from aiotcp.io.rawsock import RawSocket


def tcpdump_line(src: bytes, sport: int, dst: bytes, dport: int, seg: Segment) -> str:
    """One segment the way ``tcpdump -n -S`` prints it (absolute sequence numbers)."""
    line = (
        f"{format_ip(src)}.{sport} > {format_ip(dst)}.{dport}: "
        f"Flags [{flags_str(seg.flags)}], seq {seg.seq}"
    )
    if seg.payload:
        line += f":{(seg.seq + len(seg.payload)) & 0xFFFFFFFF}"
    if seg.flags & 0x10:
        line += f", ack {seg.ack}"
    line += f", win {seg.window}"
    opts = describe_options(seg)
    if opts:
        line += f", options [{opts}]"
    return line + f", length {len(seg.payload)}"


Key = tuple[bytes, int, bytes, int]  # (local ip, local port, remote ip, remote port)


class _Mailboxes:
    """Sorts what one raw socket receives into per-4-tuple queues.

    Several endpoints may share a raw socket (a scripted SYN flood from many
    ports); whichever endpoint is waiting pumps the socket for all of them.
    """

    def __init__(self, raw: RawSocket) -> None:
        self.raw = raw
        self.queues: dict[Key, collections.deque[Packet]] = collections.defaultdict(
            collections.deque
        )

    def pump(self, timeout: float) -> None:
        readable, _, _ = select.select([self.raw], [], [], max(timeout, 0.0))
        if not readable:
            return
        for pkt in self.raw.recv_batch():
            seg = pkt.segment
            seg.payload = bytes(seg.payload)  # the arena is reused by the next batch
            self.queues[(pkt.dst, seg.dst_port, pkt.src, seg.src_port)].append(pkt)


_mailboxes: weakref.WeakKeyDictionary[RawSocket, _Mailboxes] = weakref.WeakKeyDictionary()


@dataclass
class ScriptedEndpoint:
    """One side of a 4-tuple driven by hand over a ``RawSocket``."""

    raw: RawSocket
    local: tuple[str, int]
    remote: tuple[str, int]
    log: Callable[[str], None] | None = None
    received: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._src = socket.inet_aton(self.local[0])
        self._dst = socket.inet_aton(self.remote[0])
        boxes = _mailboxes.get(self.raw)
        if boxes is None:
            boxes = _mailboxes[self.raw] = _Mailboxes(self.raw)
        self._boxes = boxes
        self._queue = boxes.queues[(self._src, self.local[1], self._dst, self.remote[1])]

    def send(self, seg: Segment) -> None:
        seg.src_port, seg.dst_port = self.local[1], self.remote[1]
        if self.log:
            self.log(tcpdump_line(self._src, seg.src_port, self._dst, seg.dst_port, seg))
        self.raw.send_segment(seg, self._src, self._dst)

    def expect(
        self, match: Callable[[Segment], bool] = lambda s: True, timeout: float = 2.0
    ) -> Segment | None:
        """Wait for the next segment of this 4-tuple that satisfies ``match``.

        Segments before it that do not match are consumed (and logged).  Returns
        ``None`` on timeout: tests assert on silence that way.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._queue:
                pkt = self._queue.popleft()
                seg = pkt.segment
                self.received.append(seg)
                if self.log:
                    self.log(tcpdump_line(pkt.src, seg.src_port, pkt.dst, seg.dst_port, seg))
                if match(seg):
                    return seg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._boxes.pump(remaining)
