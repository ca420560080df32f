"""``asyncio.Transport`` over an aiotcp connection, with real flow control both ways.

Semantics follow asyncio's socket transports, so stdlib ``StreamReader`` /
``StreamWriter`` and any ``Protocol`` work unchanged:

- ``write`` never blocks: bytes go into the core's send buffer (the "kernel
  socket buffer" here) and whatever does not fit waits in ``_pending``.  Only
  ``_pending`` counts as the write buffer, as with kernel sockets, and crossing the
  high-water mark calls ``pause_writing`` — so ``drain()`` really waits.
- ``pause_reading`` stops taking bytes out of the core; its receive buffer fills
  and the advertised window closes, which is TCP's own back-pressure on the peer.
- ``close`` sends FIN once everything queued is in the core; ``connection_lost``
  follows then, while the connection finishes its close in the stack (like a
  kernel orphan socket).  ``abort`` sends RST at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from aiotcp.core.buffers import SendBuffer
from aiotcp.core.events import CloseReason
from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver
from aiotcp.socketlike import (
    TcpSocket,
    connection_option,
    endpoint_address,
    set_connection_option,
)
from aiotcp.stream_reader import unread_bytes

log = logging.getLogger("aiotcp")

DEFAULT_HIGH_WATER = 64 * 1024
_NOTHING_PENDING = SendBuffer(0)
_NO_EXTRA: dict[str, Any] = {}
"""Every transport's ``_extra`` until ``get_extra_info`` caches a value (never
written: each transport then gets a dict of its own)."""
"""Every transport's write buffer until it first needs one (only ever read)."""
MAX_DELIVERY = 64 * 1024  # bytes per data_received call, unless one chunk is larger


def _is_buffered(protocol: asyncio.BaseProtocol) -> bool:
    """Does ``protocol`` take bytes into its own buffer?  By its methods, as uvloop
    decides: uvloop's TLS layer is a Cython class, not an ``asyncio.BufferedProtocol``."""
    return isinstance(protocol, asyncio.BufferedProtocol) or (
        hasattr(protocol, "get_buffer") and hasattr(protocol, "buffer_updated")
    )


class TcpTransport(asyncio.Transport):
    # Slots, not a __dict__: a server's idle connections each keep one transport.
    __slots__ = (
        "__weakref__",
        "_buffered",
        "_closing",
        "_conn",
        "_driver",
        "_eof_delivered",
        "_eof_pending",
        "_eof_requested",
        "_high",
        "_linger",
        "_lingering",
        "_loop",
        "_lost",
        "_low",
        "_pending",
        "_poll_fd",
        "_poll_readable",
        "_protocol",
        "_reading_paused",
        "_reset",
        "_space_waiters",
        "_writing_paused",
    )
    _extra: dict[str, Any]  # asyncio.BaseTransport's, filled on first request here
    _start_tls_compatible = True
    """asyncio's ``loop.start_tls`` upgrades this transport (uvloop's refuses any
    transport but its own: ``aiotcp.tls.start_tls`` works on both)."""

    def __init__(self, driver: ConnectionDriver, protocol: asyncio.BaseProtocol) -> None:
        super().__init__(_NO_EXTRA)  # a dict of its own once something is cached
        self._driver = driver
        self._conn = driver.conn
        self._loop = driver.loop
        self._protocol = protocol
        self._buffered = _is_buffered(protocol)
        # Bytes the core has no room for yet, kept like the core keeps them: a
        # ``bytes`` write by reference (memoryview), anything mutable copied once.
        # Until the first such write, the shared empty buffer (never written): most
        # connections never fill the core's, and each buffer costs 190 bytes.
        self._pending = _NOTHING_PENDING
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_HIGH_WATER // 4
        self._writing_paused = False
        self._reading_paused = False
        self._closing = False  # close() or abort() called
        self._eof_requested = False  # write_eof() called
        self._eof_pending = False  # peer FIN seen, not yet reported (reading paused)
        self._eof_delivered = False
        self._reset: OSError | None = None  # the peer reset; told once read is drained
        self._lost = False
        self._linger: float | None = None  # SO_LINGER: None off, else seconds
        self._lingering: asyncio.TimerHandle | None = None
        self._space_waiters: list[asyncio.Future[None]] | None = None  # sendfile's, made then
        self._poll_fd: int | None = None  # fileno()'s eventfd, made on first request
        self._poll_readable = False
        driver.sink = self

    # -- asyncio.BaseTransport ----------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "aiotcp":
            return self._conn.info(self._loop.time())
        extra = self._extra
        if name not in extra:
            # Made on first request (most programs never ask): an idle connection
            # does not keep its addresses as strings twice.
            value: Any
            if name == "peername":
                value = endpoint_address(self._conn.remote)
            elif name == "sockname":
                value = endpoint_address(self._conn.local)
            elif name == "socket":
                value = TcpSocket(
                    self, self.get_extra_info("sockname"), self.get_extra_info("peername")
                )
            else:
                return default
            if self._extra is _NO_EXTRA:
                self._extra = {}
            extra = self._extra
            extra[name] = value
        return extra[name]

    # -- socket options (aiotcp.socketlike) -------------------------------------------
    def _get_option(self, name: str) -> Any:
        if name == "linger":
            return self._linger
        return connection_option(self._conn, name)

    def _set_option(self, name: str, value: Any) -> None:
        """``setsockopt`` on the live connection: the core applies it with the
        kernel's side effects (Nagle's held bytes leave, keepalive arms ...)."""
        if name == "linger":
            self._linger = value
            return
        set_connection_option(self._conn, name, value, self._loop.time())
        self._move_pending()  # a larger send buffer takes what waited
        self._driver.process_now()

    @property
    def receive_buffer_max(self) -> int:
        """The most unread bytes the connection keeps (``TcpOptions.recv_buffer_max``):
        aiotcp's ``StreamReader`` holds no more than this before pausing us."""
        return self._conn.options.recv_buffer_max

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        if self._linger == 0:
            self._force_close(None)  # SO_LINGER {on, 0}: a RST, queued bytes dropped
            return
        self._closing = True
        self._reading_paused = True
        self._finish_close_if_flushed()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = _is_buffered(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -- reading ------------------------------------------------------------------
    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._closing or not self._reading_paused:
            return
        self._reading_paused = False
        self._loop.call_soon(self._deliver_readable)

    def _deliver_readable(self) -> None:
        """Hand in-order bytes to the protocol; reading opens the advertised window."""
        conn = self._conn
        proto = self._protocol
        while not self._reading_paused and not self._lost and conn.readable_bytes:
            if self._buffered:
                # asyncio.BufferedProtocol (TLS among them): the bytes go straight
                # from the connection's chunks into the protocol's own buffer.
                buffered: Any = proto
                buf = memoryview(buffered.get_buffer(conn.readable_bytes)).cast("B")
                n = conn.read_into(buf)
                if not n:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buffered.buffer_updated(n)
                continue
            # Whole chunks, about 64 KiB per call: a GRO-sized segment is handed
            # over without the copy a join costs, and the StreamReader pauses us
            # after a few calls instead of taking megabytes at once (large
            # transient buffers cost fresh, page-faulted memory on every read).
            data = conn.read_chunks(MAX_DELIVERY)
            proto.data_received(data)  # type: ignore[attr-defined]
        if self._poll_fd is not None:
            self._poll_update()
        self._driver.process_now()  # a window update may be due
        if self._reading_paused or conn.readable_bytes:
            return
        if self._eof_pending:
            self._eof_pending = False
            self._deliver_eof()
        if self._reset is not None:
            self._connection_lost(self._reset)

    def _deliver_eof(self) -> None:
        if self._eof_delivered or self._lost:
            return
        self._eof_delivered = True
        keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        if not keep_open:
            self.close()

    # -- writing ------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._queue(data):
            self._driver.process_now()  # nodelay data leaves now, not an iteration later
            self._maybe_pause_protocol()

    def write_urgent(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` as urgent data: what ``sock.send(data, MSG_OOB)`` does on a
        kernel socket, which asyncio's transports cannot (RFC 9293 §3.8.5, MUST-30).

        The bytes follow everything written before them in the stream; segments
        carry URG with the urgent pointer just past them until they are
        delivered.  A Linux receiver without ``SO_OOBINLINE`` takes their last
        byte out of band (``recv(MSG_OOB)``), as from a kernel sender; aiotcp's
        receiving side keeps them in line and tells the protocol
        (``urgent_data_received``).  Flow control as ``write``.
        """
        if self._queue(data):
            self._conn.mark_urgent(len(self._pending))
            self._driver.process_now()
            self._maybe_pause_protocol()

    def _queue(self, data: bytes | bytearray | memoryview) -> bool:
        """``write`` without the push: False if there was nothing to queue."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__}")
        if self._eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return False
        if self._closing or self._lost:
            log.debug("aiotcp: write() on a closing transport ignored")
            return False
        if self._conn.state is State.CLOSED:
            return False  # connection_lost has been or is being called with the reason
        conn = self._conn
        n = 0 if self._pending else conn.send(data)
        if n < len(data):
            if self._pending is _NOTHING_PENDING:
                self._pending = SendBuffer(sys.maxsize)
            self._pending.write(memoryview(data)[n:])
        if len(data) >= conn.mss and not conn.cork:
            # Autocorking, as Linux does for such loops: a large write is likely one
            # of a burst that does not yield.  Full segments leave now; a short tail
            # waits for the next write or, at the latest, the next loop iteration,
            # instead of a frame and a runt per write (docs/performance.md).
            conn.cork = True
            self._loop.call_soon(self._uncork)
        return True

    def _uncork(self) -> None:
        """The burst is over (the loop came round): send any held tail."""
        self._conn.cork = False
        if not self._lost:
            self._driver.process_now()

    def writelines(self, list_of_data: Any) -> None:
        """All of it queued, then one push: the pieces leave as one segment where
        they fit in one, as the kernel's ``sendmsg`` of them would."""
        queued = False
        for data in list_of_data:
            queued = self._queue(data) or queued
        if queued:
            self._driver.process_now()
            self._maybe_pause_protocol()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._eof_requested or self._closing:
            return
        self._eof_requested = True
        self._finish_close_if_flushed()

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    def _force_close(self, exc: BaseException | None) -> None:
        """Close at once, reporting ``exc``: what asyncio's transports do on
        ``abort()`` and offer their TLS layer for a fatal error.  What the transport
        still holds is dropped, and the connection closes as ``close(2)`` closes a
        kernel socket: what the core holds (the socket buffer's part) is still
        delivered, then a FIN; a RST if input was left unread or ``SO_LINGER`` is
        ``{1, 0}``."""
        if self._lost:
            return
        self._closing = True
        self._reading_paused = True
        self._pending = _NOTHING_PENDING  # what it held is dropped
        if self._linger == 0 or self._application_left_input_unread():
            self._conn.abort()
        else:
            self._conn.close(self._loop.time())
        self._driver.poke()
        self._connection_lost(exc if isinstance(exc, Exception) else None)

    def abort(self) -> None:
        """asyncio's ``abort`` (``_force_close`` without an error).  anyio, so httpx,
        ends every connection this way right after its last send: the bytes must
        still arrive, as they do over the kernel."""
        self._force_close(None)

    # -- flow control ---------------------------------------------------------------
    def _maybe_pause_protocol(self) -> None:
        if not self._writing_paused and len(self._pending) > self._high:
            self._writing_paused = True
            try:
                self._protocol.pause_writing()
            except Exception:
                log.exception("protocol.pause_writing() failed")

    async def _write_space(self) -> None:
        """Until the write buffer is down to its low-water mark: how ``sendfile``
        paces itself without taking the protocol's pause/resume calls."""
        if self._lost or self._closing:
            raise ConnectionError("Connection closed")
        if len(self._pending) <= self._low:
            return
        waiter = self._loop.create_future()
        if self._space_waiters is None:
            self._space_waiters = []
        self._space_waiters.append(waiter)
        await waiter

    def _wake_space_waiters(self, exc: Exception | None) -> None:
        waiters, self._space_waiters = self._space_waiters or [], None
        for waiter in waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    def _maybe_resume_protocol(self) -> None:
        if self._space_waiters and len(self._pending) <= self._low:
            self._wake_space_waiters(None)
        if self._writing_paused and len(self._pending) <= self._low:
            self._writing_paused = False
            try:
                self._protocol.resume_writing()
            except Exception:
                log.exception("protocol.resume_writing() failed")

    def _move_pending(self) -> None:
        """Push queued bytes into the core's send buffer as space allows."""
        pending = self._pending
        if pending and self._conn.state is not State.CLOSED:
            n = self._conn.send(pending.peek(0, self._conn.send_space))
            if n:
                pending.consume(n)
                self._driver.poke()
        self._maybe_resume_protocol()

    def _finish_close_if_flushed(self) -> None:
        """FIN (or close) once every byte the application wrote is in the core."""
        if self._pending or self._lost or self._lingering is not None:
            return
        now = self._loop.time()
        if self._closing:
            if self._application_left_input_unread():
                self._conn.abort()  # RST, as close() does for the core's own
            else:
                self._conn.close(now)
            self._driver.poke()
            if self._linger and self._conn.flushing:
                # SO_LINGER {on, n}: the close is over when the peer has acknowledged
                # everything, or after n seconds; then the connection goes on alone
                # (Linux, unlike BSD, does not reset it).
                self._lingering = self._loop.call_later(self._linger, self._linger_over)
                return
            self._connection_lost(None)
        elif self._eof_requested:
            self._conn.shutdown_write()
            self._driver.poke()

    def _application_left_input_unread(self) -> bool:
        """Does a stream reader hold received bytes the application never read?

        A kernel socket closed with unread input resets the connection (RFC 2525
        §2.17, RFC 9293 §3.10.4; ``Connection.close`` does the same for the bytes
        it holds), so the peer learns that data was lost.  Over aiotcp those bytes
        may have moved on to the protocol: for a ``StreamReaderProtocol``, its
        reader's buffer is input the application has not read either.
        """
        reader = getattr(self._protocol, "_stream_reader", None)
        return isinstance(reader, asyncio.StreamReader) and unread_bytes(reader) > 0

    # -- fileno(): readiness for code that polls the socket ---------------------------
    def _fileno(self) -> int:
        """An eventfd that polls readable while the connection has something the
        application has not taken (unread bytes, an end of stream, an error), as a
        kernel socket's descriptor does; -1 once closed, as a closed socket's.

        httpcore (httpx) polls an idle pooled connection's descriptor to learn
        whether the server closed it: without one it could keep no connection.
        Made on first request, so connections nobody polls pay nothing."""
        if self._lost:
            return -1
        if self._poll_fd is None:
            self._poll_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._poll_update()
        return self._poll_fd

    def _poll_update(self) -> None:
        fd = self._poll_fd
        if fd is None:
            return
        conn = self._conn
        readable = bool(conn.readable_bytes) or conn.eof_received or conn.close_reason is not None
        if readable != self._poll_readable:
            self._poll_readable = readable
            if readable:
                os.eventfd_write(fd, 1)
            else:
                os.eventfd_read(fd)

    def _linger_over(self) -> None:
        self._lingering = None
        self._connection_lost(None)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        if self._poll_fd is not None:
            os.close(self._poll_fd)
            self._poll_fd = None
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        if self._space_waiters:
            self._wake_space_waiters(exc or ConnectionError("Connection closed"))
        if self._driver.sink is self:
            # Nothing the connection still does (its close, TIME-WAIT) concerns the
            # protocol now: let it, its reader and this transport go with the
            # application's references instead of living as long as the connection.
            self._driver.sink = None
        if self._writing_paused:
            self._writing_paused = False
        self._loop.call_soon(self._protocol.connection_lost, exc)

    # -- events from the driver ---------------------------------------------------------
    def _on_data(self) -> None:
        if not self._reading_paused:
            self._deliver_readable()
        elif self._poll_fd is not None:
            self._poll_update()

    def _on_eof(self) -> None:
        if self._poll_fd is not None:
            self._poll_update()
        if self._reading_paused or self._conn.readable_bytes:
            self._eof_pending = True
            if not self._reading_paused:
                self._deliver_readable()
        else:
            self._deliver_eof()

    def _on_send_space(self) -> None:
        self._move_pending()
        self._finish_close_if_flushed()

    def _on_state_changed(self) -> None:
        """A lingering close ends when the peer has acknowledged our FIN."""
        if self._lingering is not None and not self._conn.flushing:
            self._linger_over()

    def _on_urgent(self, end_offset: int) -> None:
        """RFC 9293 §3.8.5 (MUST-32): the peer's urgent pointer advanced.  The urgent
        bytes stay in the stream (RFC 6093); a protocol that defines
        ``urgent_data_received(end_offset)`` learns where they end, as a stream
        offset (bytes since the connection began).  asyncio has no such call, so
        other protocols are not told."""
        handler = getattr(self._protocol, "urgent_data_received", None)
        if handler is not None:
            handler(end_offset)

    def _on_delivery_problem(self, retransmissions: int, soft_error: int | None) -> None:
        """RFC 9293 §3.8.3 R1 (MUST-20): retransmissions went unanswered this many
        times; the connection goes on until R2.  A protocol that defines
        ``delivery_problem(retransmissions, soft_error)`` is told (``soft_error``:
        the errno of the last ICMP error about the connection, or None)."""
        handler = getattr(self._protocol, "delivery_problem", None)
        if handler is not None:
            handler(retransmissions, soft_error)

    def _on_closed(self, reason: CloseReason) -> None:
        if self._lost:
            return
        if self._poll_fd is not None:
            self._poll_update()
        if reason is CloseReason.NORMAL:
            if not self._closing and not self._eof_delivered:
                self._on_eof()
            self._connection_lost(None)
        elif self._conn.readable_bytes and not self._closing:
            # Data that arrived before a reset is delivered first, as a kernel
            # socket returns it before ECONNRESET: the error comes once it is read.
            self._reset = self._conn.close_exception()
            self._on_data()
        else:
            self._connection_lost(self._conn.close_exception())
