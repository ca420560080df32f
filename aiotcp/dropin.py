"""aiotcp as a drop-in: event loops whose TCP goes over aiotcp, for unchanged programs.

``install(loop)`` replaces, on that one loop object, the methods through which
asyncio software makes TCP connections: ``create_connection`` and
``create_server`` (so also ``asyncio.open_connection``/``start_server`` and every
library built on them), and ``start_tls``/``sendfile`` for the transports they
return.  Nothing else changes, and no class is patched: the loop is still an
asyncio (or uvloop) loop, and another loop in the process is untouched.

What stays on the kernel, and why (docs/dropin.md says the same to users):

- a caller's own kernel socket (``sock=``): it is already the kernel's (but an
  aiotcp connection handed over as ``sock=``, ``aiotcp.handoff``, is adopted:
  that is how aiohttp's client stays on aiotcp);
- IPv6 link-local destinations (``fe80::…%eth0``): their scope id names the
  interface, and aiotcp's route lookups and connection keys carry none;
- Unix sockets, UDP, pipes and blocking ``socket`` calls: not TCP over the loop.

``run`` is ``asyncio.run`` with such a loop, and ``EventLoopPolicy`` hands out such
loops to code that makes its own (``asyncio.run`` inside a script,
``asyncio.new_event_loop``, aiohttp's ``web.run_app``): ``python -m aiotcp run``
installs it before running the program.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from aiotcp import streams
from aiotcp.addressing import is_link_local
from aiotcp.core.options import TcpOptions
from aiotcp.handoff import HandedOffConnection, bridge_aiohappyeyeballs
from aiotcp.sendfile import sendfile as aiotcp_sendfile
from aiotcp.stack import Stack, configure_loop
from aiotcp.tls import client_tls
from aiotcp.tls import start_tls as aiotcp_start_tls
from aiotcp.transport import TcpTransport

T = TypeVar("T")
Connected = tuple[asyncio.Transport, asyncio.BaseProtocol]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_STACK_PARAMETERS = frozenset(inspect.signature(Stack).parameters) - {"loop", "default_tcp_options"}


def check_stack_options(options: dict[str, Any]) -> None:
    """Reject a misspelt option now, not at the program's first connection."""
    tcp = {k: v for k, v in options.items() if k not in _STACK_PARAMETERS}
    if "loop" in options:
        raise TypeError("the loop is the one being created: do not pass loop=")
    TcpOptions().replace(**tcp)  # TypeError naming the option


class _Hooks:
    """The replacement methods of one loop, with the loop's own ones to fall back on."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Typed loosely: typeshed's overloads of these do not take asyncio's own
        # keyword defaults (sock=None with a host) that we pass through unchanged.
        self.kernel_create_connection: Callable[..., Awaitable[Connected]] = loop.create_connection
        self.kernel_create_server: Callable[..., Awaitable[asyncio.AbstractServer]] = (
            loop.create_server
        )
        self.kernel_start_tls: Callable[..., Awaitable[asyncio.Transport | None]] = loop.start_tls
        self.kernel_sendfile: Callable[..., Awaitable[int]] = loop.sendfile

    async def create_connection(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | str | None = None,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: tuple[str | None, int] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
    ) -> Connected:
        if isinstance(sock, HandedOffConnection):
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            driver, linger = sock.adopt()
            return await streams.over_connection(
                driver,
                protocol_factory,
                client_tls(ssl, "", server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout),
                ssl_handshake_timeout,
                ssl_shutdown_timeout,
                linger,
            )
        kernel = sock is not None or is_link_local(host)
        both: dict[str, Any] = {
            "ssl": ssl,
            "family": family,
            "proto": proto,
            "flags": flags,
            "local_addr": local_addr,
            "server_hostname": server_hostname,
            "ssl_handshake_timeout": ssl_handshake_timeout,
            "ssl_shutdown_timeout": ssl_shutdown_timeout,
        }
        if not kernel:
            return await streams.create_connection(
                protocol_factory,
                host,
                port,
                **both,
                happy_eyeballs_delay=happy_eyeballs_delay,
                interleave=interleave,
            )
        return await self.kernel_create_connection(
            protocol_factory,
            host,
            port,
            **both,
            sock=sock,
            # uvloop has no Happy Eyeballs parameters: pass them only when given,
            # so the loop's own method judges them as it would without aiotcp.
            **_given(happy_eyeballs_delay=happy_eyeballs_delay, interleave=interleave),
        )

    async def create_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Sequence[str] | None = None,
        port: int | str | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: ssl_module.SSLContext | None = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> asyncio.AbstractServer:
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        both: dict[str, Any] = {
            "family": family,
            "flags": flags,
            "backlog": backlog,
            "ssl": ssl,
            "reuse_address": reuse_address,
            "reuse_port": reuse_port,
            "ssl_handshake_timeout": ssl_handshake_timeout,
            "ssl_shutdown_timeout": ssl_shutdown_timeout,
            "start_serving": start_serving,
        }
        if sock is not None or any(map(is_link_local, hosts)):
            return await self.kernel_create_server(protocol_factory, host, port, sock=sock, **both)
        return await streams.create_server(protocol_factory, host, port, **both)

    async def start_tls(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl_module.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport | None:
        upgrade = self.kernel_start_tls
        if isinstance(transport, TcpTransport):
            upgrade = aiotcp_start_tls
        return await upgrade(
            transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def sendfile(
        self,
        transport: asyncio.WriteTransport,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        if isinstance(transport, TcpTransport):
            return await aiotcp_sendfile(transport, file, offset, count)
        return await self.kernel_sendfile(transport, file, offset, count, fallback=fallback)


def _given(**kwargs: Any) -> dict[str, Any]:
    return {name: value for name, value in kwargs.items() if value is not None}


def install(loop: asyncio.AbstractEventLoop, **stack_options: Any) -> asyncio.AbstractEventLoop:
    """Make ``loop``'s TCP go over aiotcp; the stack (``stack_options``: ``Stack``'s
    and ``TcpOptions``' keywords) is created at the loop's first connection or server,
    so a program that never uses TCP never touches the firewall."""
    check_stack_options(stack_options)
    if isinstance(getattr(loop, "_aiotcp_hooks", None), _Hooks):
        return loop
    hooks = _Hooks(loop)
    configure_loop(loop, stack_options)
    bridge_aiohappyeyeballs(is_installed)
    # Instance attributes: this loop only; asyncio's and uvloop's classes stay as they are.
    loop._aiotcp_hooks = hooks  # type: ignore[attr-defined]
    loop.create_connection = hooks.create_connection  # type: ignore[method-assign,assignment]
    loop.create_server = hooks.create_server  # type: ignore[method-assign,assignment]
    loop.start_tls = hooks.start_tls  # type: ignore[method-assign]
    loop.sendfile = hooks.sendfile  # type: ignore[method-assign]
    return loop


def is_installed(loop: asyncio.AbstractEventLoop) -> bool:
    return isinstance(getattr(loop, "_aiotcp_hooks", None), _Hooks)


def new_event_loop(
    loop_factory: LoopFactory | None = None, **stack_options: Any
) -> asyncio.AbstractEventLoop:
    """A new loop (``loop_factory()``, or asyncio's) whose TCP goes over aiotcp."""
    return install((loop_factory or asyncio.new_event_loop)(), **stack_options)


def run(
    main: Coroutine[Any, Any, T],
    *,
    loop_factory: LoopFactory | None = None,
    debug: bool | None = None,
    **stack_options: Any,
) -> T:
    """``asyncio.run(main)`` (errors, cancellation, Ctrl-C, shutdown all as there) on
    a loop whose TCP goes over aiotcp: ``loop_factory=uvloop.new_event_loop`` works.
    The stack closes with the loop, after connections the program closed have
    delivered what it wrote (``Stack.aclose``)."""
    check_stack_options(stack_options)
    if not inspect.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")

    def factory() -> asyncio.AbstractEventLoop:
        return new_event_loop(loop_factory, **stack_options)

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        result: T = runner.run(main)
        return result


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Every loop this policy creates goes over aiotcp: what ``python -m aiotcp run``
    sets, so programs that create their own loops need no change."""

    def __init__(self, loop_factory: LoopFactory | None = None, **stack_options: Any) -> None:
        super().__init__()
        check_stack_options(stack_options)
        self._factory = loop_factory
        self._stack_options = stack_options

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        # Not asyncio.new_event_loop: that asks the policy, which is this one.
        return install((self._factory or super().new_event_loop)(), **self._stack_options)


def hook_uvloop(**stack_options: Any) -> None:
    """Send a program's own use of uvloop (``uvloop.run``, ``uvloop.install``,
    ``uvloop.new_event_loop``) through aiotcp too: ``python -m aiotcp run`` runs
    programs that pick uvloop themselves.  A process-wide change, so only for that
    command; no-op without uvloop."""
    try:
        import uvloop
    except ImportError:
        return
    if getattr(uvloop, "_aiotcp_hooked", False):
        return
    plain_new_event_loop = uvloop.new_event_loop

    def uvloop_new_event_loop() -> asyncio.AbstractEventLoop:
        return new_event_loop(plain_new_event_loop, **stack_options)

    def uvloop_install() -> None:
        asyncio.set_event_loop_policy(EventLoopPolicy(plain_new_event_loop, **stack_options))

    def uvloop_run(
        main: Coroutine[Any, Any, T],
        *,
        loop_factory: LoopFactory | None = None,
        debug: bool | None = None,
        **run_kwargs: Any,
    ) -> T:
        if run_kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(run_kwargs)}")
        return run(
            main,
            loop_factory=loop_factory or plain_new_event_loop,
            debug=debug,
            **stack_options,
        )

    module: Any = uvloop
    module.new_event_loop = uvloop_new_event_loop
    module.install = uvloop_install
    module.run = uvloop_run
    module._aiotcp_hooked = True
