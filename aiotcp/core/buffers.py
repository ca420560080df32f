"""Send and receive buffers (RFC 9293 §3.3.2, §3.8.6; RFC 2018 SACK blocks).

Both buffers count in *stream offsets* (unbounded Python ints) rather than sequence
numbers: the connection converts with ``seq_sub`` once per segment, and nothing in
here ever has to think about wrap-around.  ``bytearray`` deletion from the front is
amortised O(1) in CPython, so the acked/read prefix is simply deleted.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from heapq import nlargest
from typing import Final

from aiotcp.core.seq import seq_add

Bytes = bytes | bytearray | memoryview


#: Writes shorter than this go into a growing ``bytearray`` tail chunk, so a stream
#: of tiny writes costs neither a chunk each nor a copy of the chunk per write.
SMALL_WRITE: Final = 4096

# An idle connection keeps no lists of its own: a buffer holds these shared empty
# ones until something is put in, and again once it is empty (four lists, 224
# bytes per connection).  Only the methods that add an element replace them
# first; nothing ever adds to these.
_NO_CHUNKS: Final[list[Bytes]] = []
_NO_STARTS: Final[list[int]] = []
_NO_READY: Final[list[bytes]] = []
_NO_RANGES: Final[list[_Range]] = []


class SendBuffer:
    """Bytes written by the application and not yet acknowledged by the peer.

    Offset 0 is the oldest unacknowledged byte (SND.UNA, once the SYN is acked).
    Bulk writes are kept as the ``bytes`` objects they came in, by reference, and
    a segment that lies within one of them is a memoryview of it, so bulk data
    reaches ``sendmsg`` without a copy in Python.  (A single ``bytearray`` that grows
    at the back and shrinks at the front copied every byte twice, plus a move of
    the whole buffer whenever it reallocated.)  Small writes collect in a
    ``bytearray`` tail chunk, which ``peek`` copies from: it is still growing.
    """

    __slots__ = ("_base", "_chunks", "_len", "_starts", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._chunks: list[bytes | bytearray | memoryview] = _NO_CHUNKS
        # Where each chunk starts, in bytes written since the buffer began, and where
        # offset 0 (the oldest unacknowledged byte) is on that count.  A segment's
        # chunk is then found by bisection: while SND.UNA waits behind a loss, a
        # window of small writes is thousands of chunks, and walking them from the
        # front for every segment built cost the window's square.
        self._starts: list[int] = _NO_STARTS
        self._base = 0
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def space(self) -> int:
        return max(self.capacity - self._len, 0)

    def write(self, data: Bytes) -> int:
        """Queue as much of ``data`` as fits; return how many bytes were taken."""
        n = min(len(data), self.space)
        if not n:
            return 0
        chunks = self._chunks
        if chunks is _NO_CHUNKS:
            chunks = self._chunks = []
            self._starts = []
        at = self._base + self._len
        if n < SMALL_WRITE:
            tail = chunks[-1] if chunks else None
            if type(tail) is bytearray and len(tail) < SMALL_WRITE:
                tail += data[:n]
            else:
                chunks.append(bytearray(data[:n]))
                self._starts.append(at)
        else:
            if type(data) is bytes:
                chunks.append(data if n == len(data) else memoryview(data)[:n])  # immutable
            elif (
                type(data) is memoryview
                and data.readonly
                and data.itemsize == 1
                and data.contiguous
                and type(data.obj) is bytes
            ):
                chunks.append(data[:n])  # a view of immutable bytes (the transport's queue)
            else:
                chunks.append(bytes(data[:n]))  # the caller may change it after write()
            self._starts.append(at)
        self._len += n
        return n

    def peek(self, offset: int, n: int) -> Bytes:
        """``n`` bytes at ``offset`` (fewer at the end): a view into one ``bytes``
        chunk, else a copy.  A view stays valid: ``bytes`` chunks never change."""
        parts = self.peek_parts(offset, n)
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def peek_parts(self, offset: int, n: int) -> tuple[Bytes, ...]:
        """The same bytes as the pieces of the chunks they lie in, uncopied (the
        growing ``bytearray`` tail excepted): a frame that spans two 64 KiB writes
        goes to ``sendmsg`` as two iovecs instead of a 64 KB join first."""
        chunks = self._chunks
        if offset < 0 or offset >= self._len or n <= 0:
            return ()
        at = self._base + offset
        i = bisect_right(self._starts, at) - 1
        off = at - self._starts[i]
        parts: list[Bytes] = []
        while i < len(chunks) and n > 0:
            chunk = chunks[i]
            take = min(len(chunk) - off, n)
            if type(chunk) is bytearray:
                with memoryview(chunk) as view:
                    parts.append(bytes(view[off : off + take]))
            elif off == 0 and take == len(chunk):
                parts.append(chunk)
            else:
                parts.append(memoryview(chunk)[off : off + take])
            n -= take
            off = 0
            i += 1
        return tuple(parts)

    def clear(self) -> None:
        self._chunks, self._starts = _NO_CHUNKS, _NO_STARTS
        self._base += self._len
        self._len = 0

    def consume(self, n: int) -> None:
        """Drop ``n`` acknowledged bytes from the front."""
        if n <= 0:
            return
        n = min(n, self._len)
        self._len -= n
        self._base += n
        if not self._len:
            self._chunks, self._starts = _NO_CHUNKS, _NO_STARTS
            return
        # Chunks wholly below the new offset 0 go; the first kept one may start below it.
        i = bisect_right(self._starts, self._base) - 1
        if i > 0:
            del self._chunks[:i]
            del self._starts[:i]


class _Range:
    """One out-of-order run of bytes ``[start, end)`` in stream offsets."""

    __slots__ = ("data", "end", "stamp", "start")

    def __init__(self, start: int, data: bytearray, stamp: int) -> None:
        self.start = start
        self.end = start + len(data)
        self.data = data
        self.stamp = stamp


class ReceiveBuffer:
    """In-order bytes for the application plus a bounded out-of-order queue.

    ``nxt`` is the stream offset of RCV.NXT.  Out-of-order ranges are kept sorted,
    merged and non-adjacent; each carries the insertion ``stamp`` of the segment
    that last touched it, because RFC 2018 §4 wants the block holding the most
    recently received segment reported first.
    """

    __slots__ = (
        "_ooo",
        "_ready",
        "_ready_len",
        "_reported",
        "_stamp",
        "capacity",
        "duplicate",
        "max_ranges",
        "nxt",
        "ooo_dropped",
    )

    def __init__(self, capacity: int, max_ranges: int = 64) -> None:
        self.capacity = capacity
        self.max_ranges = max_ranges
        self.nxt = 0
        self.ooo_dropped = 0
        # In-order bytes as the chunks they arrived in: a segment's payload is copied
        # once, out of the receive arena, and a read of everything that is one
        # chunk hands that chunk over as it is (the kernel's socket path copies no more).
        self._ready: list[bytes] = _NO_READY  # few chunks at a time (a deque: 600 B idle)
        self._ready_len = 0
        self._ooo: list[_Range] = _NO_RANGES
        self._stamp = 0
        self._reported = 0  # ``_stamp`` when SACK blocks were last handed out
        #: Stream offsets of bytes the last insert found already held out of order
        #: (RFC 2883 §4: a D-SACK reports them), or None.
        self.duplicate: tuple[int, int] | None = None

    @property
    def readable(self) -> int:
        return self._ready_len

    @property
    def free(self) -> int:
        """Room for in-order data: what RCV.WND may at most advertise."""
        return max(self.capacity - self._ready_len, 0)

    @property
    def has_out_of_order(self) -> bool:
        return bool(self._ooo)

    @property
    def out_of_order_bytes(self) -> int:
        return sum(r.end - r.start for r in self._ooo)

    def insert(self, rel: int, data: Bytes, limit: int) -> int:
        """Store ``data`` that starts ``rel`` bytes after RCV.NXT.

        Bytes before RCV.NXT (duplicates) and at or beyond ``limit`` (outside the
        window, RFC 9293 §3.10.7.4 trimming) are cut off.  Returns how far RCV.NXT
        advanced, 0 for an out-of-order or duplicate segment.
        """
        if rel < 0:
            data = data[-rel:]
            rel = 0
        if rel + len(data) > limit:
            data = data[: max(limit - rel, 0)]
        self.duplicate = None
        if not data:
            return 0
        self._stamp += 1
        if rel == 0:
            before = self.nxt
            if self._ready is _NO_READY:
                self._ready = []
            self._ready.append(bytes(data))
            self._ready_len += len(data)
            self.nxt += len(data)
            self._pull_in_order()
            return self.nxt - before
        self._insert_out_of_order(self.nxt + rel, data)
        return 0

    def _pull_in_order(self) -> None:
        ooo = self._ooo
        while ooo and ooo[0].start <= self.nxt:
            r = ooo.pop(0)
            if r.end > self.nxt:
                chunk = bytes(memoryview(r.data)[self.nxt - r.start :])  # one copy
                if self._ready is _NO_READY:
                    self._ready = []
                self._ready.append(chunk)
                self._ready_len += len(chunk)
                self.nxt = r.end

    def _insert_out_of_order(self, start: int, data: Bytes) -> None:
        end = start + len(data)
        ooo = self._ooo
        i = bisect_left(ooo, start, key=_range_end)  # the first range reaching start
        j = i
        while j < len(ooo) and ooo[j].start <= end:
            j += 1
        if i == j:
            if len(ooo) >= self.max_ranges:
                # Bounded memory: refuse a new range rather than grow without limit;
                # the sender retransmits it after the hole is filled.
                self.ooo_dropped += 1
                return
            if ooo is _NO_RANGES:
                ooo = self._ooo = []
            ooo.insert(i, _Range(start, bytearray(data), self._stamp))
            return
        first = ooo[i]
        if first.start < end and start < first.end:  # bytes already held: D-SACK them
            self.duplicate = (max(start, first.start), min(end, first.end))
        # Grow the first touched range in place: behind a hole, every segment of a
        # window extends the same range, and rebuilding it per segment made a
        # window's worth of them cost its square in copies (2,000 segments: 0.7 s).
        view = memoryview(data)
        if start < first.start:  # rare: data reaching below the range (a refill)
            grown = bytearray(view[: first.start - start])
            grown += first.data
            first.data, first.start = grown, start
        merged = first.data
        for r in ooo[i + 1 : j]:
            merged += view[first.end - start : r.start - start]  # the gap before r
            merged += r.data
            first.end = r.end
        if end > first.end:
            merged += view[first.end - start :]
            first.end = end
        merged[start - first.start : end - first.start] = view  # the newest bytes win
        first.stamp = self._stamp
        del ooo[i + 1 : j]

    def read(self, max_bytes: int = -1) -> bytes:
        ready = self._ready
        total = self._ready_len
        n = total if max_bytes < 0 else min(max_bytes, total)
        if n == total:
            out = ready[0] if len(ready) == 1 else b"".join(ready)
            self._ready = _NO_READY
            self._ready_len = 0
            return out
        parts = []
        need = n
        i = 0
        while need:
            chunk = ready[i]
            if len(chunk) > need:
                parts.append(chunk[:need])
                ready[i] = chunk[need:]
                break
            parts.append(chunk)
            need -= len(chunk)
            i += 1
        del ready[:i]
        self._ready_len -= n
        return b"".join(parts)

    def read_into(self, buf: memoryview) -> int:
        """Copy in-order bytes into ``buf``, as many as fit; returns how many.

        For a reader with memory of its own (``asyncio.BufferedProtocol``, TLS):
        one copy, however many chunks the bytes arrived in.
        """
        ready = self._ready
        size = len(buf)
        n = 0
        i = 0
        while i < len(ready) and n < size:
            chunk = ready[i]
            take = min(len(chunk), size - n)
            buf[n : n + take] = memoryview(chunk)[:take]
            n += take
            if take < len(chunk):
                ready[i] = chunk[take:]
                break
            i += 1
        del ready[:i]
        self._ready_len -= n
        return n

    def read_chunks(self, limit: int) -> bytes:
        """Whole in-order chunks, oldest first, as many as fit in ``limit`` bytes
        (always at least one).

        A chunk is never split, and one chunk is handed over as it is: a GRO-sized
        segment then reaches the application without a copy, while small segments
        are still joined into one call's worth.
        """
        ready = self._ready
        if not ready:
            return b""
        total = len(ready[0])
        n = 1
        while n < len(ready) and total + len(ready[n]) <= limit:
            total += len(ready[n])
            n += 1
        out = ready[0] if n == 1 else b"".join(ready[:n])
        del ready[:n]
        self._ready_len -= total
        return out

    def sack_blocks(self, rcv_nxt: int, max_blocks: int) -> tuple[tuple[int, int], ...]:
        """RFC 2018 §4 SACK blocks as sequence numbers, most recently updated first."""
        self._reported = self._stamp
        if not self._ooo or max_blocks <= 0:
            return ()
        return self._as_blocks(rcv_nxt, nlargest(max_blocks, self._ooo, key=_by_stamp))

    def unreported_blocks(
        self, rcv_nxt: int, max_blocks: int, acks: int
    ) -> list[tuple[tuple[int, int], ...]]:
        """SACK blocks for ``acks`` ACKs that leave ahead of the next ``sack_blocks``
        one, oldest first: the ranges that changed since blocks were last handed out
        but will not fit in that ACK.

        A receiver that acknowledges each segment as it arrives reports every range a
        segment touched, first in the ACK that segment triggered (RFC 2018 §4).  A
        batch of segments is acknowledged at its end, when the newest ranges fill the
        ACK: without these, a range extended early in the batch is never reported,
        and the sender's RACK (RFC 8985) calls it lost once it sees the newer ones.
        Older ranges go first so they arrive before the ACK that shows newer data.
        """
        reported = self._reported
        changed = [r for r in self._ooo if r.stamp > reported]
        if len(changed) <= max_blocks or max_blocks <= 0 or acks <= 0:
            return []
        changed.sort(key=_by_stamp, reverse=True)
        older = changed[max_blocks:]
        groups = [older[k : k + max_blocks] for k in range(0, len(older), max_blocks)]
        return [self._as_blocks(rcv_nxt, g) for g in reversed(groups[:acks])]

    def _as_blocks(self, rcv_nxt: int, ranges: list[_Range]) -> tuple[tuple[int, int], ...]:
        nxt = self.nxt
        return tuple(
            (seq_add(rcv_nxt, r.start - nxt), seq_add(rcv_nxt, r.end - nxt)) for r in ranges
        )

    def drop_out_of_order(self) -> None:
        """Forget the ranges beyond a hole: nothing will fill it any more."""
        self._ooo = _NO_RANGES


def _by_stamp(r: _Range) -> int:
    return r.stamp


def _range_end(r: _Range) -> int:
    return r.end
