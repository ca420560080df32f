"""The public API: asyncio's streams and protocols over aiotcp, with asyncio's semantics.

``open_connection`` / ``start_server`` return a ``StreamReader`` (asyncio's, without
its copies of every byte on ``read``: ``aiotcp.stream_reader``), asyncio's
``StreamWriter`` and an ``asyncio.Server``-compatible ``Server``;
``create_connection`` / ``create_server`` run any ``Protocol``.  ``**tcp_options``
are ``aiotcp.core.options.TcpOptions`` fields (``nodelay=True``, ``keepalive=True``,
``msl=1.0`` ...); a misspelt name raises ``TypeError``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiotcp import addressing
from aiotcp.driver import ConnectionDriver
from aiotcp.io import route
from aiotcp.socketlike import TcpSocket
from aiotcp.stack import Stack, _stacks, get_stack
from aiotcp.stream_reader import STREAM_LIMIT, StreamReader
from aiotcp.tls import (
    SSLOption,
    app_transport,
    client_tls,
    retrieve,
    server_tls,
    start_tls,
    tls_protocol,
)
from aiotcp.transport import TcpTransport

ProtocolFactory = Callable[[], asyncio.BaseProtocol]
ClientConnectedCb = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


def _stack(stack: Stack | None) -> Stack:
    return stack if stack is not None else get_stack()


def _attach(
    driver: ConnectionDriver, protocol: asyncio.BaseProtocol, linger: float | None
) -> TcpTransport:
    """Create the transport (with the ``SO_LINGER`` it inherits or was given), tell
    the protocol, then replay what arrived meanwhile."""
    transport = TcpTransport(driver, protocol)
    transport._linger = linger
    protocol.connection_made(transport)
    conn = driver.conn
    if conn.readable_bytes:
        transport._on_data()
    if conn.eof_received:
        transport._on_eof()
    if conn.close_reason is not None:
        transport._on_closed(conn.close_reason)
    return transport


async def create_connection(
    protocol_factory: ProtocolFactory,
    host: str | None = None,
    port: int | str | None = None,
    *,
    ssl: SSLOption = None,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    local_addr: tuple[str | None, int] | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    happy_eyeballs_delay: float | None = None,
    interleave: int | None = None,
    stack: Stack | None = None,
    **tcp_options: Any,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    """Like ``loop.create_connection``, over aiotcp, with its arguments and their
    meaning (``aiotcp.addressing``): names resolved without blocking the loop,
    every address tried, Happy Eyeballs when ``happy_eyeballs_delay`` is given.
    With ``ssl`` (a context, or True for the default client one) the transport
    returned is TLS's, after the handshake (``aiotcp.tls``).  ``sock=`` has no
    meaning here (the drop-in loop gives it to the kernel); ``**tcp_options`` are
    ``TcpOptions`` fields."""
    tls = client_tls(ssl, host or "", server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
    driver = await addressing.connect(
        _stack(stack),
        host,
        port,
        family=family,
        proto=proto,
        flags=flags,
        local_addr=local_addr,
        happy_eyeballs_delay=happy_eyeballs_delay,
        interleave_count=interleave,
        tcp_options=tcp_options,
    )
    return await over_connection(
        driver, protocol_factory, tls, ssl_handshake_timeout, ssl_shutdown_timeout
    )


async def over_connection(
    driver: ConnectionDriver,
    protocol_factory: ProtocolFactory,
    tls: tuple[ssl_module.SSLContext | None, str | None],
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    linger: float | None = None,
) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
    """A protocol on an established connection, through TLS when ``tls`` (from
    ``client_tls``) has a context: ``create_connection``'s second half, also how
    the drop-in loop adopts a connection made for ``sock=`` (with the ``SO_LINGER``
    set on it meanwhile)."""
    context, hostname = tls
    protocol = protocol_factory()
    if context is None:
        return _attach(driver, protocol, linger), protocol
    layer, handshake = tls_protocol(
        protocol,
        context,
        server_side=False,
        server_hostname=hostname,
        handshake_timeout=ssl_handshake_timeout,
        shutdown_timeout=ssl_shutdown_timeout,
    )
    transport = _attach(driver, layer, linger)
    try:
        await handshake
    except BaseException:
        transport.close()
        raise
    return app_transport(layer), protocol


async def open_connection(
    host: str | None = None,
    port: int | str | None = None,
    *,
    limit: int = STREAM_LIMIT,
    **kwds: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like ``asyncio.open_connection``, over aiotcp: ``kwds`` are
    ``create_connection``'s (TLS, addressing, ``stack``, ``TcpOptions`` fields)."""
    loop = asyncio.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(lambda: protocol, host, port, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop)
    _share_done_future(writer)
    return reader, writer


class StreamReaderProtocol(asyncio.StreamReaderProtocol):
    """asyncio's, with its drain waiters in a list.

    asyncio keeps them in a ``deque``, 760 bytes even when empty: a quarter of
    what an idle connection costs over the kernel, for the one waiter a
    ``drain()`` ever adds.  A list does the same job (append, remove, iterate).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drain_waiters: Any = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        writer = getattr(self, "_stream_writer", None)
        if writer is not None:  # a server's: asyncio made it
            _share_done_future(writer)


_done_futures: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
    weakref.WeakKeyDictionary()
)


def _share_done_future(writer: asyncio.StreamWriter) -> None:
    """asyncio's ``StreamWriter`` makes a future and resolves it at once
    (``_complete_fut``, which nothing in 3.11 reads again): 144 bytes that every idle
    connection would keep.  One done future per loop stands in for all of them."""
    loop: asyncio.AbstractEventLoop = writer._loop  # type: ignore[attr-defined]
    if getattr(writer, "_complete_fut", None) is None:
        return
    done = _done_futures.get(loop)
    if done is None:
        done = _done_futures[loop] = loop.create_future()
        done.set_result(None)
    writer._complete_fut = done  # type: ignore[attr-defined]


class StreamWriter(asyncio.StreamWriter):
    """asyncio's ``StreamWriter``, whose ``start_tls`` works on any loop.

    asyncio's calls ``loop.start_tls``, which uvloop refuses for a transport not its
    own; this one upgrades through ``aiotcp.tls.start_tls`` (asyncio's TLS layer).
    """

    async def start_tls(
        self,
        sslcontext: Any,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        protocol: Any = self._protocol  # type: ignore[attr-defined]
        server_side = protocol._client_connected_cb is not None
        await self.drain()
        new_transport = await start_tls(
            self.transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        self._transport = new_transport
        protocol._replace_writer(self)


class Server(asyncio.AbstractServer):
    """``asyncio.Server``'s interface for one listening aiotcp port."""

    def __init__(
        self,
        stack: Stack,
        protocol_factory: ProtocolFactory,
        host: str | None,
        port: int,
        backlog: int,
        tcp_options: dict[str, Any],
        reuse_address: bool = True,
        tls: ssl_module.SSLContext | None = None,
        reuse_port: bool = False,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        self._stack = stack
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port
        self._tls = tls
        self._tls_timeouts = (ssl_handshake_timeout, ssl_shutdown_timeout)
        self._loop = stack.loop
        self._factory = protocol_factory
        self._host = host
        self._requested_port = port
        self._backlog = backlog
        self._tcp_options = tcp_options
        self._port: int | None = None
        self._serving = False
        self._transports: weakref.WeakSet[TcpTransport] = weakref.WeakSet()
        self._serving_forever: asyncio.Future[None] | None = None
        self._closed = asyncio.Event()
        self._linger: float | None = None

    @property
    def port(self) -> int | None:
        return self._port

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[TcpSocket, ...]:
        """Socket-like objects, as asyncio's ``TransportSocket``: what aiohttp's and
        websockets' servers read their address from, and where ``setsockopt``
        sets options every connection accepted afterwards starts with."""
        if self._port is None:
            return ()
        if self._host is None:  # both families: asyncio's two sockets, IPv4 first
            return (
                TcpSocket(self, ("0.0.0.0", self._port), None),
                TcpSocket(self, ("::", self._port, 0, 0), None),
            )
        if route.family_of(self._host) == socket.AF_INET6:
            return (TcpSocket(self, (self._host, self._port, 0, 0), None),)
        return (TcpSocket(self, (self._host, self._port), None),)

    def _get_option(self, name: str) -> Any:
        if name == "linger":
            return self._linger
        if name == "reuse_address":
            return self._reuse_address
        if name == "reuse_port":
            return self._reuse_port
        if name == "recv_buffer":
            return self._options().recv_buffer_start
        return getattr(self._options(), name)

    def _set_option(self, name: str, value: Any) -> None:
        """Like a listening socket's options, they are the accepted connections'."""
        if name == "linger":
            self._linger = value
        elif name in ("reuse_address", "reuse_port"):
            pass  # the port is bound already: no effect, as on a kernel listener
        elif self._port is not None:
            self._tcp_options = {**self._tcp_options, name: value}
            entry = self._stack.listeners[self._port]
            entry.options = entry.options.replace(**{name: value})

    def _fileno(self) -> int:
        return -1  # no descriptor says "a connection is waiting": accept is ours

    def _options(self) -> Any:
        if self._port is None:
            return self._stack.options(None, **self._tcp_options)
        return self._stack.listeners[self._port].options

    def _listen(self) -> None:
        """Open the listening port; connections queue until ``start_serving``."""
        if self._port is not None:
            return
        self._closed.clear()
        entry = self._stack.listen(
            self._requested_port,
            self._accept_ready,
            host=self._host,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            **self._tcp_options,
        )
        self._port = entry.listener.local[1]

    async def start_serving(self) -> None:
        self._listen()
        self._serving = True
        self._accept_ready()

    def _accept_ready(self) -> None:
        while self._serving and self._port is not None:
            driver = self._stack.accept(self._port)
            if driver is None:
                return
            protocol = self._factory()
            if self._tls is not None:
                handshake_timeout, shutdown_timeout = self._tls_timeouts
                protocol, handshake = tls_protocol(
                    protocol,
                    self._tls,
                    server_side=True,
                    handshake_timeout=handshake_timeout,
                    shutdown_timeout=shutdown_timeout,
                )
                handshake.add_done_callback(retrieve)
            transport = _attach(driver, protocol, self._linger)
            self._transports.add(transport)

    def close(self) -> None:
        """Stop listening; established connections are left alone, as in asyncio."""
        if self._port is None:
            return
        self._stack.unlisten(self._port)
        self._port = None
        self._serving = False
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        self._closed.set()

    def close_clients(self) -> None:
        for t in list(self._transports):
            t.close()

    def abort_clients(self) -> None:
        for t in list(self._transports):
            t.abort()

    async def wait_closed(self) -> None:
        if self._port is None:
            return
        await self._closed.wait()

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        await self.start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<aiotcp.Server {self._host or '0.0.0.0'}:{self._port}>"


async def create_server(
    protocol_factory: ProtocolFactory,
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    family: int = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    backlog: int = 100,
    ssl: SSLOption = None,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    start_serving: bool = True,
    stack: Stack | None = None,
    **tcp_options: Any,
) -> Server:
    """Like ``loop.create_server``, over aiotcp.

    ``reuse_address`` defaults to True as in asyncio (``SO_REUSEADDR``): a server
    restarts on a port the kernel still has in TIME-WAIT.  ``reuse_port``
    (``SO_REUSEPORT``): processes of the same user listening on the port with it
    share it, each serving its part of the new flows, as the kernel splits them
    among its listeners (``aiotcp.port_group``; docs/reuseport.md).
    ``host`` (a name, an address, a list of them, or None for all addresses of
    ``family``'s families) must come down to one address or to a wildcard
    (``aiotcp.addressing``); ``0.0.0.0`` and ``::`` are one family's, as in asyncio.  ``ssl`` (a
    context with the server's certificate) serves TLS (``aiotcp.tls``).
    """
    st = _stack(stack)
    tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    st.options(None, **tcp_options)  # a misspelt option fails before any lookup
    address, number = await addressing.listen_address(
        st.loop, host, port, family=family, flags=flags
    )
    server = Server(
        st,
        protocol_factory,
        address,
        number,
        backlog,
        tcp_options,
        reuse_address=reuse_address is not False or bool(reuse_port),
        tls=tls,
        reuse_port=bool(reuse_port),
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    server._listen()
    if start_serving:
        await server.start_serving()
    return server


async def start_server(
    client_connected_cb: ClientConnectedCb,
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    limit: int = STREAM_LIMIT,
    **kwds: Any,
) -> Server:
    """Like ``asyncio.start_server``, over aiotcp: ``kwds`` are ``create_server``'s."""
    loop = asyncio.get_running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(factory, host, port, **kwds)


def connections(
    stack: Stack | None = None, *, state: str | None = None, port: int | None = None
) -> list[dict[str, Any]]:
    """Snapshot of the running loop's listeners and connections, like ``ss -tan``.

    Each row is a dict: ``state``, ``local``/``remote`` as ``(ip, port)``, queues,
    sequence numbers, windows, ``srtt``, ``rto``, ``cwnd``, ``timers`` (seconds
    left), ``counters``.  ``aiotcp.sstable.format_rows`` prints them as a table.
    ``state`` (``"ESTABLISHED"``, ``"time-wait"`` ...) and ``port`` (either end)
    select rows before they are built, which is what makes a narrow query cheap
    on a busy stack.
    """
    st = stack if stack is not None else _stacks.get(asyncio.get_running_loop())
    return st.table(state=state, port=port) if st is not None else []


__all__ = [
    "Server",
    "connections",
    "create_connection",
    "create_server",
    "open_connection",
    "start_server",
]
