"""``loop.sendfile`` for aiotcp transports: a file into a connection, a chunk at a time.

The kernel's ``sendfile(2)`` moves page-cache pages to the socket without a copy
through user space; a user-space stack has to read the bytes, but it need not
hold the whole file: one chunk is being sent while the next is read (``pread`` in
the loop's executor, so a slow disk never stalls the loop), and the write buffer's
low-water mark paces the reads.  Each chunk is a ``bytes`` object the send buffer
keeps by reference, so it is copied once, from the file.
"""

from __future__ import annotations

import asyncio
import os
import stat
from typing import Any

from aiotcp.transport import TcpTransport

CHUNK = 256 * 1024
"""Bytes per read: large enough that the executor hop is noise next to the copy
(docs/performance.md), small enough that two in memory cost nothing."""


def _check(file: Any, offset: int, count: int | None) -> None:
    """asyncio's checks (``BaseEventLoop._check_sendfile_params``), same messages."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")


def _reader(file: Any) -> Any:
    """``pread`` on a regular file (the file position stays put while we read);
    any other binary file object is read from where it is."""
    try:
        fd = file.fileno()
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except (AttributeError, OSError, ValueError):
        regular = False
    if regular:
        return lambda position, size: os.pread(fd, size, position)
    return lambda position, size: file.read(size)


async def sendfile(
    transport: TcpTransport, file: Any, offset: int = 0, count: int | None = None
) -> int:
    """Send ``count`` bytes of ``file`` (to its end if None) from ``offset``; returns
    how many were sent, and leaves the file position after them (asyncio's
    contract, also when an error ends it early)."""
    _check(file, offset, count)
    if transport.is_closing():
        raise RuntimeError("Transport is closing")
    loop = asyncio.get_running_loop()
    read = _reader(file)
    seekable = hasattr(file, "seek")
    if seekable and offset:
        file.seek(offset)
    sent = 0

    def next_read() -> asyncio.Future[bytes]:
        size = CHUNK if count is None else min(CHUNK, count - sent)
        return loop.run_in_executor(None, read, offset + sent, size)

    pending: asyncio.Future[bytes] | None = None
    try:
        if count is None or count > 0:
            pending = next_read()
        while pending is not None:
            chunk = await pending
            pending = None
            if not chunk:
                break
            await transport._write_space()
            transport.write(chunk)
            sent += len(chunk)
            if count is None or sent < count:
                pending = next_read()
    finally:
        if pending is not None:
            pending.cancel()
        if seekable:
            file.seek(offset + sent)
    return sent
