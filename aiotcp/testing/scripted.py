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


@dataclass
class ScriptedEndpoint:
    """One side of a 4-tuple driven by hand over a ``RawSocket``."""

    raw: RawSocket
    local: tuple[str, int]
    remote: tuple[str, int]
    log: Callable[[str], None] | None = None
    received: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pending: collections.deque[Segment] = collections.deque()
        self._src = socket.inet_aton(self.local[0])
        self._dst = socket.inet_aton(self.remote[0])

    def send(self, seg: Segment) -> None:
        seg.src_port, seg.dst_port = self.local[1], self.remote[1]
        if self.log:
            self.log(tcpdump_line(self._src, seg.src_port, self._dst, seg.dst_port, seg))
        self.raw.send_segment(seg, self._src, self._dst)

    def _ours(self, pkt: Packet) -> bool:
        s = pkt.segment
        return (
            pkt.src == self._dst
            and pkt.dst == self._src
            and s.src_port == self.remote[1]
            and s.dst_port == self.local[1]
        )

    def expect(
        self, match: Callable[[Segment], bool] = lambda s: True, timeout: float = 2.0
    ) -> Segment | None:
        """Wait for the next segment of this 4-tuple that satisfies ``match``.

        Returns ``None`` on timeout: tests assert on silence that way.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:
                seg = self._pending.popleft()
                if match(seg):
                    return seg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self.raw], [], [], remaining)
            if readable:
                self._receive()

    def _receive(self) -> None:
        for pkt in self.raw.recv_batch():
            if not self._ours(pkt):
                continue
            seg = pkt.segment
            seg.payload = bytes(seg.payload)  # the arena is reused by the next batch
            self.received.append(seg)
            self._pending.append(seg)
            if self.log:
                self.log(tcpdump_line(pkt.src, seg.src_port, pkt.dst, seg.dst_port, seg))
