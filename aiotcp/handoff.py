"""Connections made in one call and handed to ``create_connection(sock=...)`` in another.

Some libraries connect first and ask the loop for a transport afterwards: aiohttp's
client resolves names and connects through ``aiohappyeyeballs.start_connection``,
which returns a connected kernel socket, then calls
``loop.create_connection(..., sock=that_socket)``.  On a drop-in loop such a client
would bypass aiotcp entirely.  ``bridge_aiohappyeyeballs`` replaces
``start_connection`` (process-wide, but only for loops aiotcp is installed on;
every other loop gets the original): it connects over aiotcp and returns a
``HandedOffConnection``, which has the socket calls such libraries make before the
hand-off, and which the drop-in loop's ``create_connection(sock=...)`` turns into a
transport.

A ``socket_factory`` (aiohttp's way to make the kernel socket yourself, to set
options on it) keeps the connection on the kernel: that socket is the caller's.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Sequence
from typing import Any

from aiotcp import addressing
from aiotcp.driver import ConnectionDriver
from aiotcp.resolve import AddrInfo
from aiotcp.socketlike import (
    TcpSocket,
    connection_option,
    endpoint_address,
    set_connection_option,
)
from aiotcp.stack import get_stack

IsAiotcpLoop = Callable[[asyncio.AbstractEventLoop], bool]


class HandedOffConnection(TcpSocket):
    """An established aiotcp connection waiting for its transport: a ``TcpSocket``
    over the connection itself until ``adopt`` takes it.  If nothing adopts it
    (the caller gave up between connecting and ``create_connection``), ``close``
    or garbage collection resets it, as closing an unused kernel socket would."""

    __slots__ = ("_driver",)

    def __init__(self, driver: ConnectionDriver) -> None:
        conn = driver.conn
        super().__init__(
            _DriverOptions(driver), endpoint_address(conn.local), endpoint_address(conn.remote)
        )
        self._driver: ConnectionDriver | None = driver

    def adopt(self) -> tuple[ConnectionDriver, float | None]:
        """The connection and the ``SO_LINGER`` set on it, once: a second
        ``create_connection`` with the same object fails as a closed socket would."""
        driver, self._driver = self._driver, None
        if driver is None:
            raise OSError(errno.EBADF, "this aiotcp connection was already handed over or closed")
        options: _DriverOptions = self._target  # type: ignore[assignment]
        return driver, options.linger

    def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.abort()

    def __del__(self) -> None:
        self.close()


class _DriverOptions:
    """``getsockopt``/``setsockopt`` before there is a transport: on the connection,
    and ``SO_LINGER`` (a close-time setting) kept for the transport."""

    __slots__ = ("_driver", "linger")

    def __init__(self, driver: ConnectionDriver) -> None:
        self._driver = driver
        self.linger: float | None = None

    def _get_option(self, name: str) -> Any:
        if name == "linger":
            return self.linger
        return connection_option(self._driver.conn, name)

    def _fileno(self) -> int:
        return -1  # nothing polls a connection before it has a transport

    def _set_option(self, name: str, value: Any) -> None:
        if name == "linger":
            self.linger = value
            return
        set_connection_option(self._driver.conn, name, value, self._driver.loop.time())
        self._driver.poke()


def bridge_aiohappyeyeballs(is_aiotcp_loop: IsAiotcpLoop) -> None:
    """Route ``aiohappyeyeballs.start_connection`` over aiotcp on aiotcp's loops.

    Only if aiohappyeyeballs is installed; idempotent.  The module attribute is
    replaced, and aiohttp looks it up at each call, so this works whether aiohttp
    was imported before or after."""
    try:
        import aiohappyeyeballs
    except ImportError:
        return
    module: Any = aiohappyeyeballs
    if getattr(module, "_aiotcp_bridged", False):
        return
    original = module.start_connection

    async def start_connection(
        addr_infos: Sequence[AddrInfo],
        *,
        local_addr_infos: Sequence[AddrInfo] | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        socket_factory: Callable[[AddrInfo], socket.socket] | None = None,
    ) -> socket.socket | HandedOffConnection:
        current = loop or asyncio.get_running_loop()
        ours = [info for info in addr_infos if not addressing.is_link_local(info[4][0])]
        kernel = (
            not is_aiotcp_loop(current)
            or socket_factory is not None  # the caller makes the kernel socket itself
            or not ours  # link-local destinations only (or none): the kernel's
        )
        if kernel:
            return await original(  # type: ignore[no-any-return]
                addr_infos,
                local_addr_infos=local_addr_infos,
                happy_eyeballs_delay=happy_eyeballs_delay,
                interleave=interleave,
                loop=loop,
                socket_factory=socket_factory,
            )
        driver = await addressing.connect_resolved(
            get_stack(),
            ours,
            local_addr_infos or None,
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave_count=interleave,
            tcp_options={},
        )
        return HandedOffConnection(driver)

    module.start_connection = start_connection
    module._aiotcp_bridged = True
