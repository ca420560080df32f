"""A scripted TCP endpoint on the raw socket: send exact segments, wait for exact replies.

This is packetdrill's idea in a few lines: no state machine, the script decides
every sequence number.  The handshake demo uses it to show a connection segment by
segment, and packet-level tests use it as the peer that misbehaves on purpose.

Two vocabularies:

- ``send(Segment)`` / ``expect(match, timeout) -> Segment | None``: the raw one.
- packetdrill's: ``send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"x")``,
  ``expect_segment(".", ack=ep.snd(2), win=4096, sack=[...], within=(0, 0.5))``,
  ``expect_silence(0.3)``.  A failed expectation raises ``AssertionError`` with
  expected vs got, field by field, and the endpoint's whole transcript.

``snd(n)`` / ``rcv(n)`` are packetdrill's relative sequence numbers: ``snd(0)`` is
the ISN of the script's own SYN, ``rcv(0)`` the ISN of the SYN it received.
``start_peer`` runs a script on a namespace's raw socket in a worker thread while
the stack under test runs on the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import select
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar

from aiotcp.core.flow import FlowKey, flow_key
from aiotcp.core.segment import SYN, Segment, describe_options, flags_str, parse_flags
from aiotcp.core.seq import seq_add, seq_sub
from aiotcp.io.guards import GuardKind, make_guard
from aiotcp.io.packet import Packet, format_ip
from aiotcp.io.rawsock import RawSocket

if TYPE_CHECKING:
    from aiotcp.testing.netns import Host

T = TypeVar("T")
U = TypeVar("U")


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
    if seg.urgent:
        line += f", urg {seg.urgent}"
    opts = describe_options(seg)
    if opts:
        line += f", options [{opts}]"
    return line + f", length {len(seg.payload)}"


class _Mailboxes:
    """Sorts what one raw socket receives into per-4-tuple queues.

    Several endpoints may share a raw socket (a scripted SYN flood from many
    ports); whichever endpoint is waiting pumps the socket for all of them.  Each
    packet is stamped with ``time.monotonic()`` when it is pumped, so timing checks
    are exact while the script waits and late by however long it did not.
    """

    def __init__(self) -> None:
        self.queues: dict[FlowKey, collections.deque[tuple[float, Packet]]] = (
            collections.defaultdict(collections.deque)
        )

    def pump(self, raw: RawSocket, timeout: float) -> None:
        """Queue what ``raw`` has, waiting up to ``timeout`` for it.  The socket is
        an argument, not an attribute: a value that held its key would keep the
        ``WeakKeyDictionary`` entry, and the socket's buffers, alive for ever."""
        readable, _, _ = select.select(raw.filenos(), [], [], max(timeout, 0.0))
        if not readable:
            return
        now = time.monotonic()
        for pkt in raw.recv_batch():
            seg = pkt.segment
            seg.payload = bytes(seg.payload)  # the arena is reused by the next batch
            self.queues[pkt.flow()].append((now, pkt))


_mailboxes: weakref.WeakKeyDictionary[RawSocket, _Mailboxes] = weakref.WeakKeyDictionary()

#: ``...`` in ``expect_segment`` means "any value"; ``None`` for an option means "absent".
Check = EllipsisType


@dataclass
class ScriptedEndpoint:
    """One side of a 4-tuple driven by hand over a ``RawSocket``."""

    raw: RawSocket
    local: tuple[str, int]
    remote: tuple[str, int]
    log: Callable[[str], None] | None = None
    received: list[Segment] = field(default_factory=list)
    transcript: list[tuple[float, str, Segment]] = field(default_factory=list)
    """Every segment sent (``">"``) and received (``"<"``), with its ``monotonic()`` time."""
    iss: int | None = None
    """ISN of the script's own SYN (set by the first SYN it sends): ``snd(0)``."""
    irs: int | None = None
    """ISN of the SYN the script received (set on arrival): ``rcv(0)``."""
    mark: float = field(default_factory=time.monotonic)
    """Time of the last script event (send, matched segment, end of silence):
    ``within`` in ``expect_segment`` is measured from here, like packetdrill's ``+t``."""
    last_arrival: float = 0.0
    """Arrival time of the segment ``expect_segment`` returned last."""

    def __post_init__(self) -> None:
        self._src = ipaddress.ip_address(self.local[0]).packed  # 4 or 16 bytes
        self._dst = ipaddress.ip_address(self.remote[0]).packed
        self._t0 = self.mark
        boxes = _mailboxes.get(self.raw)
        if boxes is None:
            boxes = _mailboxes[self.raw] = _Mailboxes()
        self._boxes = boxes
        self._queue = boxes.queues[flow_key(self._src, self.local[1], self._dst, self.remote[1])]

    # -- relative sequence numbers ----------------------------------------------------
    def snd(self, offset: int) -> int:
        """Sequence number ``offset`` past the script's ISN (``snd(1)``: first data byte)."""
        if self.iss is None:
            raise RuntimeError("snd(): the script has not sent a SYN (set ep.iss)")
        return seq_add(self.iss, offset)

    def rcv(self, offset: int) -> int:
        """Sequence number ``offset`` past the received ISN (``rcv(1)``: first data byte)."""
        if self.irs is None:
            raise RuntimeError("rcv(): no SYN received yet (set ep.irs)")
        return seq_add(self.irs, offset)

    # -- sending ------------------------------------------------------------------------
    def send(self, seg: Segment) -> None:
        seg.src_port, seg.dst_port = self.local[1], self.remote[1]
        if seg.flags & SYN and self.iss is None:
            self.iss = seg.seq
        self.mark = time.monotonic()
        self.transcript.append((self.mark, ">", seg))
        if self.log:
            self.log(tcpdump_line(self._src, seg.src_port, self._dst, seg.dst_port, seg))
        self.raw.send_segment(seg, self._src, self._dst)

    def send_segment(
        self,
        flags: str | int,
        *,
        seq: int,
        ack: int = 0,
        win: int = 65535,
        payload: bytes = b"",
        urgent: int = 0,
        **options: Any,
    ) -> Segment:
        """Build and send one segment; ``flags`` as letters (``"S"``, ``"SA"``, ``"PA"``,
        ``"."``), ``options`` as ``Segment`` keywords (``mss=``, ``ts_val=``, ...)."""
        bits = parse_flags(flags) if isinstance(flags, str) else flags
        seg = Segment(0, 0, seq, ack, bits, win, urgent, payload, **options)
        self.send(seg)
        return seg

    # -- receiving ----------------------------------------------------------------------
    def _next(self, deadline: float) -> tuple[float, Segment] | None:
        """The next segment of this 4-tuple, recorded; ``None`` at ``deadline``."""
        while not self._queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._boxes.pump(self.raw, remaining)
        at, pkt = self._queue.popleft()
        seg = pkt.segment
        self.received.append(seg)
        self.transcript.append((at, "<", seg))
        if seg.flags & SYN:
            self.irs = seg.seq
        if self.log:
            self.log(tcpdump_line(pkt.src, seg.src_port, pkt.dst, seg.dst_port, seg))
        return at, seg

    def expect(
        self, match: Callable[[Segment], bool] = lambda s: True, timeout: float = 2.0
    ) -> Segment | None:
        """Wait for the next segment of this 4-tuple that satisfies ``match``.

        Segments before it that do not match are consumed (and logged).  Returns
        ``None`` on timeout: tests assert on silence that way.
        """
        deadline = time.monotonic() + timeout
        while (got := self._next(deadline)) is not None:
            if match(got[1]):
                return got[1]
        return None

    def expect_segment(
        self,
        flags: str | int | Check = ...,
        *,
        seq: int | Check = ...,
        ack: int | Check = ...,
        win: int | Check = ...,
        length: int | Check = ...,
        payload: bytes | Check = ...,
        urgent: int | Check = ...,
        mss: int | Check | None = ...,
        wscale: int | Check | None = ...,
        sack_permitted: bool | Check = ...,
        sack: Sequence[tuple[int, int]] | Check = ...,
        ts_val: int | Check | None = ...,
        ts_ecr: int | Check | None = ...,
        within: tuple[float, float] | None = None,
        timeout: float = 2.0,
        ignore: Callable[[Segment], bool] | None = None,
    ) -> Segment:
        """The next segment must look like this (packetdrill's outbound line).

        Every field defaults to ``...`` (any value); ``flags`` are exact (``"A"`` is a
        bare ACK, ``"PA"`` needs PSH too); ``win`` is the raw 16-bit field; ``sack``
        the exact block list (``[]``: no SACK option); ``None`` for ``mss``,
        ``wscale``, ``ts_val``, ``ts_ecr`` means the option must be absent.
        ``within=(lo, hi)`` bounds its arrival in seconds after ``mark`` (the previous
        script event).  Segments for which ``ignore`` is true are skipped (still
        logged).  Raises ``AssertionError`` with a field-by-field diff and the
        transcript, also when nothing arrives within ``timeout``.
        """
        want: dict[str, object] = {}
        if not isinstance(flags, EllipsisType):
            want["flags"] = parse_flags(flags) if isinstance(flags, str) else flags
        for name, value in (
            ("seq", seq), ("ack", ack), ("win", win), ("length", length),
            ("payload", payload), ("urgent", urgent), ("mss", mss), ("wscale", wscale),
            ("sack_permitted", sack_permitted), ("ts_val", ts_val), ("ts_ecr", ts_ecr),
        ):  # fmt: skip
            if not isinstance(value, EllipsisType):
                want[name] = value
        if not isinstance(sack, EllipsisType):
            want["sack"] = tuple(tuple(block) for block in sack)
        start = self.mark
        deadline = time.monotonic() + timeout
        while True:
            got = self._next(deadline)
            if got is None:
                raise AssertionError(
                    f"expected {self._describe_wanted(want, within)}\n"
                    f"     got nothing within {timeout:g} s\n" + self.format_transcript()
                )
            at, seg = got
            if ignore is not None and ignore(seg):
                continue
            break
        problems = [
            f"  {name}: expected {self._show(name, value)}, got {self._show(name, actual)}"
            for name, value in want.items()
            if (actual := _field(seg, name)) != value
        ]
        if within is not None:
            lo, hi = within
            elapsed = at - start
            if not lo <= elapsed <= hi:
                problems.append(f"  time: expected +{lo:g}..+{hi:g} s, got +{elapsed:.3f} s")
        if problems:
            raise AssertionError(
                f"expected {self._describe_wanted(want, within)}\n"
                f"     got {self._line(seg)} at +{at - start:.3f} s\n"
                + "\n".join(problems)
                + "\n"
                + self.format_transcript()
            )
        self.mark = self.last_arrival = at
        return seg

    def expect_silence(
        self, seconds: float, *, ignore: Callable[[Segment], bool] | None = None
    ) -> None:
        """Nothing (except what ``ignore`` accepts) may arrive for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (got := self._next(deadline)) is not None:
            at, seg = got
            if ignore is None or not ignore(seg):
                raise AssertionError(
                    f"expected silence for {seconds:g} s\n"
                    f"     got {self._line(seg)} at +{at - self.mark:.3f} s\n"
                    + self.format_transcript()
                )
        self.mark = time.monotonic()

    # -- reporting ----------------------------------------------------------------------
    def _line(self, seg: Segment) -> str:
        """``tcpdump`` line of a received segment."""
        return tcpdump_line(self._dst, seg.src_port, self._src, seg.dst_port, seg)

    def _show(self, name: str, value: object) -> str:
        """A value, with its relative sequence number when one is known."""
        if name == "flags" and isinstance(value, int):
            return f"[{flags_str(value)}]"
        if name == "payload" and isinstance(value, bytes) and len(value) > 32:
            return f"{value[:32]!r}... ({len(value)} bytes)"
        if name in ("seq", "ack") and isinstance(value, int):
            # aiotcp's seq is in the received space, its ack in the script's.
            base, label = (self.irs, "rcv") if name == "seq" else (self.iss, "snd")
            if base is not None and abs(rel := seq_sub(value, base)) < 1 << 24:
                return f"{value} ({label}({rel}))"
        return repr(value)

    def _describe_wanted(self, want: dict[str, object], within: tuple[float, float] | None) -> str:
        parts = [f"{name}={self._show(name, value)}" for name, value in want.items()]
        if within is not None:
            parts.append(f"within=+{within[0]:g}..+{within[1]:g} s")
        return " ".join(parts) or "any segment"

    def format_transcript(self) -> str:
        """The exchange so far, one ``tcpdump`` line per segment, times from the start."""
        lines = ["transcript (> sent by the script, < received):"]
        for at, direction, seg in self.transcript:
            if direction == ">":
                text = tcpdump_line(self._src, seg.src_port, self._dst, seg.dst_port, seg)
            else:
                text = self._line(seg)
            lines.append(f"  {at - self._t0:8.3f} {direction} {text}")
        return "\n".join(lines)


def _field(seg: Segment, name: str) -> object:
    if name == "win":
        return seg.window
    if name == "length":
        return len(seg.payload)
    if name == "payload":
        return bytes(seg.payload)
    if name == "sack":
        return tuple(tuple(block) for block in seg.sack_blocks)
    return getattr(seg, name)


# ------------------------------------------------------------------ a peer in a thread


async def start_peer(
    host: Host,
    port: int,
    remote: tuple[str, int],
    script: Callable[[ScriptedEndpoint], T],
    *,
    guard: GuardKind = "socket",
    address: str | None = None,
) -> asyncio.Future[T]:
    """Run ``script`` as ``host:port`` talking to ``remote``, in a worker thread.

    ``address`` is the peer's own: ``host.address`` by default, ``host.address6``
    to talk IPv6.

    Returns once the peer's raw socket is open, so the stack under test can start.
    The peer owns ``port`` through a guard of its own, so ``host``'s kernel sends no
    RSTs for it; the guard goes when the script returns or raises.  The default
    socket guard costs ~2 ms where the iptables one costs ~300 ms (two ``iptables``
    runs each way), which adds up over a suite of short scenarios.
    """
    ready = threading.Event()

    def peer() -> T:
        with host.entered(), make_guard(guard) as peer_guard, RawSocket() as raw:
            peer_guard.claim(port)
            raw.set_port_ranges(peer_guard.port_ranges())
            ready.set()
            local = (address or host.address, port)
            return script(ScriptedEndpoint(raw, local, remote))

    future = asyncio.ensure_future(asyncio.to_thread(peer))
    deadline = time.monotonic() + 10.0
    while not ready.is_set() and not future.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    if future.done():
        future.result()  # the script has already ended: raise its error now
    return future


async def while_peer_runs(peer: asyncio.Future[Any], aw: Awaitable[U], timeout: float = 10.0) -> U:
    """Await ``aw``, but raise the peer's error at once if its script fails first.

    Without this a failed script leaves the stack side waiting (for a handshake,
    for data) until a much longer timeout, and the real error comes last.
    """
    task = asyncio.ensure_future(aw)
    deadline = time.monotonic() + timeout
    waiting: set[asyncio.Future[Any]] = {task, peer}
    try:
        while not task.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"not done within {timeout:g} s")
            done, _ = await asyncio.wait(
                waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if peer in done:
                peer.result()  # the script raised: that is the real failure
                waiting = {task}  # it ended well; keep waiting for our side
        return task.result()
    finally:
        task.cancel()
