"""asyncio's ``StreamReader`` without its copies of every byte on ``read()``.

asyncio's reader copies each received byte three times: ``feed_data`` extends its
``bytearray``, and ``read(n)`` slices that (a copy) and turns the slice into
``bytes`` (another): a good part of a bulk receiver's CPU (docs/performance.md).
aiotcp's transport hands over ``bytes`` chunks that
nothing else holds (``Connection.read_chunks``), so this reader keeps them as they
are: ``read(n)`` returns the oldest chunk itself when it fits in ``n``.  That may be
fewer bytes than are buffered, which ``read``'s contract allows ("at most n bytes,
as soon as at least one is available") and which a socket's ``recv`` also does;
joining the chunks instead would be another copy.  It also pauses its transport
later than asyncio's (``READ_AHEAD``).

Only ``read`` has a fast path.  ``readline``, ``readuntil``, ``readexactly`` and
iteration first move the kept chunks into asyncio's own buffer and then run
asyncio's code, so they behave exactly as asyncio's do (limits, errors, partial
reads).  The reader depends on ``asyncio.StreamReader``'s private attributes
(``_buffer``, ``_eof``, ``_paused``, ...), which have kept their names and meaning
since Python 3.8; ``tests/test_stream_reader.py`` runs asyncio's behaviour against
it so that a change there fails loudly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, SupportsIndex

if TYPE_CHECKING:
    from asyncio.streams import _ReaduntilBuffer  # typeshed's name for a separator

STREAM_LIMIT = 2**16  # asyncio.streams._DEFAULT_LIMIT
READ_AHEAD = 2**20
"""What this reader may hold before it pauses its transport, if ``limit`` allows less.

asyncio pauses at twice ``limit``: 128 KiB by default, less than one batch of
aiotcp's receive path (about 1 MB of 64 KiB chunks per wake-up under bulk load).
The transport then paused and resumed several times per MiB, each resume a loop
pass, a delivery and an ACK (docs/performance.md).  The chunks held here are the bytes
the connection would otherwise keep in its receive buffer, so holding them costs
no copy; a connection whose receive buffer is smaller (``recv_buffer=``) caps this
at that size, so a reader that asks for little buffering still gets it.
"""


def unread_bytes(reader: asyncio.StreamReader) -> int:
    """Bytes ``reader`` holds that no read has taken yet (asyncio's or this one)."""
    held = len(reader._buffer)  # type: ignore[attr-defined]
    return held + reader._chunk_bytes if isinstance(reader, StreamReader) else held


class StreamReader(asyncio.StreamReader):
    # asyncio.StreamReader's private state, used as its own methods use it.
    _buffer: bytearray
    _eof: bool
    _exception: BaseException | None
    _limit: int
    _paused: bool
    _transport: asyncio.ReadTransport | None

    def __init__(self, limit: int = STREAM_LIMIT, loop: asyncio.AbstractEventLoop | None = None):
        super().__init__(limit, loop)
        # The stream is ``_buffer`` followed by ``_chunks``: chunks wait here until a
        # read takes them whole or a method with asyncio's code needs ``_buffer``.
        # No deque while none wait: an empty one is 760 bytes, and an idle
        # connection's whole cost is about 7 KB.
        self._chunks: deque[bytes] | None = None
        self._chunk_bytes = 0
        self._pause_at = self._pause_point(READ_AHEAD)

    def set_transport(self, transport: asyncio.BaseTransport) -> None:
        super().set_transport(transport)
        # aiotcp's transport says how much its connection may buffer (READ_AHEAD).
        self._pause_at = self._pause_point(getattr(transport, "receive_buffer_max", READ_AHEAD))

    def _pause_point(self, receive_buffer_max: int) -> int:
        """Held bytes beyond which ``feed_data`` pauses the transport."""
        return max(2 * self._limit, min(READ_AHEAD, receive_buffer_max))

    def _size(self) -> int:
        return len(self._buffer) + self._chunk_bytes

    def _coalesce(self) -> None:
        """Move the kept chunks into asyncio's buffer, for asyncio's own methods."""
        chunks = self._chunks
        if chunks:
            buf = self._buffer
            for chunk in chunks:
                buf += chunk
            self._chunks = None
            self._chunk_bytes = 0

    def __repr__(self) -> str:
        self._coalesce()
        return super().__repr__()

    def at_eof(self) -> bool:
        return self._eof and not self._buffer and not self._chunks

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        assert not self._eof, "feed_data after feed_eof"
        if not data:
            return
        # A chunk of another type is copied: the caller may reuse a mutable buffer.
        chunk = data if type(data) is bytes else bytes(data)
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(chunk)
        self._chunk_bytes += len(chunk)
        self._wakeup_waiter()  # type: ignore[attr-defined]
        transport = self._transport
        if transport is not None and not self._paused and self._size() > self._pause_at:
            try:
                transport.pause_reading()
            except NotImplementedError:
                self._transport = None  # as asyncio: a transport that cannot pause
            else:
                self._paused = True

    def _maybe_resume_transport(self) -> None:
        if self._paused and self._size() <= self._limit:
            self._paused = False
            assert self._transport is not None
            self._transport.resume_reading()

    async def _wait_for_data(self, func_name: str) -> None:
        """asyncio's wait, then the new chunks into ``_buffer`` for asyncio's code."""
        await super()._wait_for_data(func_name)  # type: ignore[misc]
        self._coalesce()

    # asyncio's code for everything but read(): it looks at ``_buffer`` before
    # waiting, so the chunks go there first (and after each wait, above).
    async def readline(self) -> bytes:
        self._coalesce()
        return await super().readline()

    async def readuntil(self, separator: _ReaduntilBuffer = b"\n") -> bytes:
        self._coalesce()
        if self._exception is not None and self._buffer and isinstance(separator, bytes):
            end = self._buffer.find(separator)
            if 0 <= end <= self._limit:
                return self._take(end + len(separator))
        return await super().readuntil(separator)

    async def readexactly(self, n: int) -> bytes:
        self._coalesce()
        if self._exception is not None and 0 < n <= len(self._buffer):
            return self._take(n)
        return await super().readexactly(n)

    def _take(self, n: int) -> bytes:
        """The first ``n`` bytes of ``_buffer`` (all of it, if it holds fewer).

        Bytes that arrived before the connection failed are read before its error
        is raised, as a kernel socket returns them before ECONNRESET; asyncio's
        methods raise the error first and the bytes are lost (``read``,
        ``readexactly`` and ``readuntil`` here serve them when they can be served
        whole).
        """
        data = bytes(memoryview(self._buffer)[:n])
        del self._buffer[:n]
        return data

    async def read(self, n: int = -1) -> bytes:
        """``asyncio.StreamReader.read``: at most ``n`` bytes, as soon as any are here.

        The oldest chunk, uncopied, when it fits in ``n``; a chunk longer than ``n``
        moves to ``_buffer`` and is served from there, as asyncio would (a
        bytearray gives up its front without copying the rest).
        """
        if self._exception is not None and (n <= 0 or not self._size()):
            raise self._exception  # only once what came before the error is read
        if n <= 0:
            return await super().read(n)  # b"" or everything to EOF, via this read()
        if not self._buffer and not self._chunks and not self._eof:
            await super()._wait_for_data("read")  # type: ignore[misc]
        chunks = self._chunks
        if self._buffer or not chunks or len(chunks[0]) > n:
            self._coalesce()
            data = self._take(n)
        else:
            data = chunks.popleft()
            self._chunk_bytes -= len(data)
            if not chunks:
                self._chunks = None
        self._maybe_resume_transport()
        return data
