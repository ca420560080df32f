"""TLS over aiotcp: asyncio's own TLS layer on an aiotcp transport.

asyncio implements TLS as a protocol between a transport and the application's
protocol (``asyncio.sslproto.SSLProtocol``, a ``BufferedProtocol``): it reads
ciphertext from the transport and gives the application a transport of plaintext.
aiotcp uses that same class (on uvloop, uvloop's Cython port of it), so
certificates, SNI, ALPN, the handshake and shutdown timeouts and the close_notify
exchange behave exactly as on the loop's own sockets.  The only thing a transport
must offer it is buffered delivery (``get_buffer``/``buffer_updated``) and
``_force_close``, which ``aiotcp.transport.TcpTransport`` has.

``loop.start_tls`` does the upgrade on asyncio's loop; uvloop's accepts only its
own transports, so ``start_tls`` here works on any loop.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from asyncio import sslproto
from typing import Any

SSLOption = ssl.SSLContext | bool | None
"""The ``ssl=`` argument: a context, ``True`` for the default client context, or
None/False for plain TCP (asyncio's meaning)."""


def client_tls(
    ssl_: SSLOption,
    host: str,
    server_hostname: str | None,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
) -> tuple[ssl.SSLContext | None, str | None]:
    """The context and the name to verify for a client, with asyncio's rules:
    ``server_hostname`` defaults to ``host`` and means nothing without TLS, nor do
    the timeouts.  (None, None) for plain TCP."""
    if server_hostname is not None and not ssl_:
        raise ValueError("server_hostname is only meaningful with ssl")
    _check_timeouts(ssl_, handshake_timeout, shutdown_timeout)
    if not ssl_:
        return None, None
    if server_hostname is None:
        if not host:
            raise ValueError("You must set server_hostname when using ssl without a host")
        server_hostname = host
    context = ssl_ if isinstance(ssl_, ssl.SSLContext) else ssl.create_default_context()
    return context, server_hostname


def server_tls(
    ssl_: SSLOption, handshake_timeout: float | None, shutdown_timeout: float | None
) -> ssl.SSLContext | None:
    """A server's context (asyncio's rules: a context, not ``True``)."""
    _check_timeouts(ssl_, handshake_timeout, shutdown_timeout)
    if not ssl_:
        return None
    if not isinstance(ssl_, ssl.SSLContext):
        raise TypeError("a TLS server needs an ssl.SSLContext (with its certificate)")
    return ssl_


def _check_timeouts(
    ssl_: SSLOption, handshake_timeout: float | None, shutdown_timeout: float | None
) -> None:
    if handshake_timeout is not None and not ssl_:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None and not ssl_:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def tls_protocol(
    app_protocol: asyncio.BaseProtocol,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    handshake_timeout: float | None = None,
    shutdown_timeout: float | None = None,
    call_connection_made: bool = True,
) -> tuple[Any, asyncio.Future[None]]:
    """The TLS layer for ``app_protocol``, and a future done when its handshake is
    (or failed: then the layer has closed the transport)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    layer = _layer_class(loop)(
        loop,
        app_protocol,
        context,
        waiter,
        server_side,
        server_hostname,
        call_connection_made=call_connection_made,
        ssl_handshake_timeout=handshake_timeout,  # seconds, any number
        ssl_shutdown_timeout=shutdown_timeout,
    )
    return layer, waiter


def _layer_class(loop: asyncio.AbstractEventLoop) -> Any:
    """uvloop's own TLS layer on uvloop (Cython: the same protocol, the same
    semantics, a fraction of the Python per record; it needs a uvloop loop),
    asyncio's elsewhere."""
    uvloop_loop = sys.modules.get("uvloop.loop")
    if uvloop_loop is not None and isinstance(loop, uvloop_loop.Loop):
        return uvloop_loop.SSLProtocol
    return sslproto.SSLProtocol


def app_transport(layer: Any) -> asyncio.Transport:
    """The plaintext transport the application writes to."""
    transport: asyncio.Transport = layer._get_app_transport()
    return transport


async def start_tls(
    transport: asyncio.BaseTransport,
    protocol: asyncio.BaseProtocol,
    sslcontext: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.Transport:
    """Upgrade a connection to TLS (STARTTLS), as ``loop.start_tls`` does: returns
    the transport ``protocol`` writes to from now on."""
    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an ssl.SSLContext, got {sslcontext!r}")
    layer, waiter = tls_protocol(
        protocol,
        sslcontext,
        server_side=server_side,
        server_hostname=server_hostname,
        handshake_timeout=ssl_handshake_timeout,
        shutdown_timeout=ssl_shutdown_timeout,
        call_connection_made=False,
    )
    loop = asyncio.get_running_loop()
    raw: Any = transport
    # Paused first, so no ciphertext reaches the layer before its connection_made.
    raw.pause_reading()
    raw.set_protocol(layer)
    made = loop.call_soon(layer.connection_made, transport)
    resumed = loop.call_soon(raw.resume_reading)
    try:
        await waiter
    except BaseException:
        raw.close()
        made.cancel()
        resumed.cancel()
        raise
    return app_transport(layer)


def retrieve(waiter: asyncio.Future[None]) -> None:
    """Done-callback for a server's handshake: the TLS layer has already closed a
    connection whose handshake failed; fetching the error keeps asyncio from
    logging it as never retrieved."""
    if not waiter.cancelled():
        waiter.exception()
