"""Socket-like objects for aiotcp connections and listeners.

asyncio hands out ``TransportSocket`` (``get_extra_info("socket")``,
``Server.sockets``) so that libraries can read addresses and tune the socket:
aiohttp and redis-py set ``TCP_NODELAY`` and keepalive, anyio reads the family and
addresses, websockets and aiohttp print ``sockets[0].getsockname()``.  aiotcp has
no kernel socket, so ``TcpSocket`` answers the same calls from the connection:
``setsockopt`` changes its ``TcpOptions`` on the spot (``Connection.set_option``,
with the kernel's side effects), ``getsockopt`` reads them back in the kernel's
units.  An option aiotcp does not have fails as the kernel fails an unknown one:
``OSError(ENOPROTOOPT)``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable
from typing import Any, Protocol

from aiotcp.core.connection import Connection
from aiotcp.egress import DS_MASK
from aiotcp.io import route
from aiotcp.io.packet import format_ip

_INT = struct.Struct("i")
_LINGER = struct.Struct("ii")
_CONGESTION_NAME_MAX = 16  # TCP_CA_NAME_MAX
_SOCK_MIN_BUFFER = 2304  # Linux's SOCK_MIN_RCVBUF; SO_*BUF never goes below it


def endpoint_address(endpoint: tuple[bytes, int]) -> tuple[Any, ...]:
    """A connection's ``local``/``remote`` as a socket's ``getsockname``/``getpeername``:
    ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6."""
    if len(endpoint[0]) == 16:
        return format_ip(endpoint[0]), endpoint[1], 0, 0
    return format_ip(endpoint[0]), endpoint[1]


def connection_option(conn: Connection, name: str) -> Any:
    """An option as ``getsockopt`` reports it on a connected socket: what was
    negotiated (the MSS) or sized (the receive buffer), not only what was asked."""
    if name == "mss":
        return conn.mss
    if name == "recv_buffer":
        return conn.recv_buffer.capacity
    if name in ("reuse_address", "reuse_port"):
        return False
    return getattr(conn.options, name)


def set_connection_option(conn: Connection, name: str, value: Any, now: float) -> None:
    """``setsockopt`` on a connected socket; the core applies it with the kernel's
    side effects.  Binding options are over once connected: no effect, as there."""
    if name not in ("reuse_address", "reuse_port"):
        conn.set_option(name, value, now)


class OptionTarget(Protocol):
    """What a socket-like object tunes: a connection's transport or a server."""

    def _get_option(self, name: str) -> Any: ...

    def _set_option(self, name: str, value: Any) -> None: ...

    def _fileno(self) -> int: ...


def _seconds_to_ms(v: Any) -> int:
    return round(float(v) * 1000)


def _ttl_to_kernel(ttl: int | None) -> int:
    return route.default_ttl() if ttl is None else ttl


def _ttl_from_kernel(value: int) -> int | None:
    """Linux's ``IP_TTL``: 1-255, or -1 for the default; anything else is EINVAL."""
    if value == -1:
        return None
    if not 1 <= value <= 255:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    return value


def _hops_to_kernel(ttl: int | None) -> int:
    # Without the connection's interface: the namespace's ("all"), as Linux falls
    # back to when a socket has no route.
    return route.default_hop_limit("all") if ttl is None else ttl


def _tclass_from_kernel(value: int) -> int:
    """Linux's ``IPV6_TCLASS``: 0-255, or -1 for the default (0); TCP keeps the ECN
    bits its own, as for ``IP_TOS``."""
    if not -1 <= value <= 255:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    return max(value, 0) & DS_MASK


# (level, optname) → (TcpOptions field or pseudo-option, to the kernel's unit, from it).
# SO_SNDBUF/SO_RCVBUF: the kernel doubles what is set (room for its bookkeeping) and
# reports the doubled value; aiotcp counts payload bytes, so it keeps the doubled
# value as the buffer size and reports it back unchanged, as Linux does.
_Option = tuple[str, Callable[[Any], int], Callable[[int], Any]]
_OPTIONS: dict[tuple[int, int], _Option] = {
    (socket.IPPROTO_TCP, socket.TCP_NODELAY): ("nodelay", int, bool),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE): ("keepalive", int, bool),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE): ("keepalive_idle", int, float),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL): ("keepalive_interval", int, float),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT): ("keepalive_count", int, int),
    (socket.IPPROTO_TCP, socket.TCP_SYNCNT): ("syn_retries", int, int),
    (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT): (
        "user_timeout",
        _seconds_to_ms,
        lambda ms: ms / 1000,
    ),
    (socket.IPPROTO_TCP, socket.TCP_MAXSEG): ("mss", int, int),
    (socket.IPPROTO_TCP, socket.TCP_LINGER2): ("fin_wait_2_timeout", int, float),
    (socket.SOL_SOCKET, socket.SO_SNDBUF): (
        "send_buffer",
        int,
        lambda v: max(2 * v, _SOCK_MIN_BUFFER),
    ),
    (socket.SOL_SOCKET, socket.SO_RCVBUF): (
        "recv_buffer",
        int,
        lambda v: max(2 * v, _SOCK_MIN_BUFFER),
    ),
    (socket.IPPROTO_IP, socket.IP_TOS): ("tos", int, lambda v: v & DS_MASK),
    (socket.IPPROTO_IP, socket.IP_TTL): ("ttl", _ttl_to_kernel, _ttl_from_kernel),
    (socket.SOL_SOCKET, socket.SO_REUSEADDR): ("reuse_address", int, bool),
    (socket.SOL_SOCKET, socket.SO_REUSEPORT): ("reuse_port", int, bool),
}
_OPTIONS6: dict[tuple[int, int], _Option] = {
    **_OPTIONS,
    # IPv6's names for the same two fields; Linux refuses them on an IPv4 socket.
    # A hop limit of 0, which Linux takes, is refused as IP_TTL's 0 is.
    (socket.IPPROTO_IPV6, socket.IPV6_TCLASS): ("tos", int, _tclass_from_kernel),
    (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS): ("ttl", _hops_to_kernel, _ttl_from_kernel),
}
_READ_ONLY: dict[tuple[int, int], str] = {
    (socket.SOL_SOCKET, socket.SO_TYPE): "type",
    (socket.SOL_SOCKET, socket.SO_DOMAIN): "family",
    (socket.SOL_SOCKET, socket.SO_PROTOCOL): "proto",
    (socket.SOL_SOCKET, socket.SO_ERROR): "error",
    (socket.SOL_SOCKET, socket.SO_ACCEPTCONN): "listening",
}


def _unavailable(level: int, optname: int) -> OSError:
    return OSError(
        errno.ENOPROTOOPT,
        f"{os.strerror(errno.ENOPROTOOPT)}: aiotcp has no socket option ({level}, {optname})",
    )


def _as_int(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) < _INT.size:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return int(_INT.unpack_from(bytes(value))[0])
    return int(value)


class TcpSocket:
    """Stands in for a TCP socket: ``asyncio.trsock.TransportSocket``'s interface
    (no I/O: the transport owns the connection), over an aiotcp connection or
    listener."""

    __slots__ = ("_listening", "_peername", "_sockname", "_target", "family")

    type = socket.SOCK_STREAM
    proto = socket.IPPROTO_TCP

    def __init__(
        self,
        target: OptionTarget,
        sockname: tuple[Any, ...],
        peername: tuple[Any, ...] | None,
    ) -> None:
        self._target = target
        self._sockname = sockname
        self._peername = peername
        self._listening = peername is None
        self.family = route.family_of(str(sockname[0]))

    def __repr__(self) -> str:
        s = f"<aiotcp.TcpSocket family={self.family!s}, type={self.type!s}, laddr={self._sockname}"
        if self._peername is not None:
            s += f", raddr={self._peername}"
        return s + ">"

    def fileno(self) -> int:
        """A descriptor to poll for readability, for a connection (``TcpTransport``
        says when it is readable); -1 (a closed socket's answer) for a listener and
        for a closed connection.  Not a socket: I/O on it is the transport's."""
        return self._target._fileno()

    def getsockname(self) -> tuple[str, int]:
        return self._sockname

    def getpeername(self) -> tuple[str, int]:
        if self._peername is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return self._peername

    def gettimeout(self) -> float:
        return 0.0

    def settimeout(self, value: float | None) -> None:
        if value == 0:
            return
        raise ValueError("settimeout(): only 0 timeout is allowed on transport sockets")

    def getblocking(self) -> bool:
        return False

    def setblocking(self, flag: bool) -> None:
        if not flag:
            return
        raise ValueError("setblocking(): transport sockets cannot be blocking")

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        key = (level, optname)
        if key == (socket.IPPROTO_TCP, socket.TCP_CONGESTION):
            algorithm = str(self._target._get_option("congestion")).encode()
            raw = algorithm.ljust(_CONGESTION_NAME_MAX, b"\0")
            return raw[: buflen or _CONGESTION_NAME_MAX] if buflen else _INT.unpack(raw[:4])[0]
        if key == (socket.SOL_SOCKET, socket.SO_LINGER):
            linger = self._target._get_option("linger")
            raw = _LINGER.pack(linger is not None, int(linger or 0))
            return raw[:buflen] if buflen else _INT.unpack(raw[:4])[0]
        value: int
        options = self._options()
        if key in options:
            name, to_kernel, _ = options[key]
            value = to_kernel(self._target._get_option(name))
        elif key in _READ_ONLY:
            what = _READ_ONLY[key]
            value = {
                "type": int(self.type),
                "family": int(self.family),
                "proto": int(self.proto),
                "error": 0,
                "listening": int(self._listening),
            }[what]
        else:
            raise _unavailable(level, optname)
        return _INT.pack(value)[:buflen] if buflen else value

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        key = (level, optname)
        if key == (socket.IPPROTO_TCP, socket.TCP_CONGESTION):
            raw = bytes(value) if not isinstance(value, str) else value.encode()
            self._target._set_option("congestion", raw.split(b"\0", 1)[0].decode())
            return
        if key == (socket.SOL_SOCKET, socket.SO_LINGER):
            if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) < _LINGER.size:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            onoff, seconds = _LINGER.unpack_from(bytes(value))
            self._target._set_option("linger", float(max(seconds, 0)) if onoff else None)
            return
        if key in _READ_ONLY:
            raise OSError(errno.ENOPROTOOPT, os.strerror(errno.ENOPROTOOPT))
        options = self._options()
        if key not in options:
            raise _unavailable(level, optname)
        name, _, from_kernel = options[key]
        self._target._set_option(name, from_kernel(_as_int(value)))

    def _options(self) -> dict[tuple[int, int], _Option]:
        """The options of this socket's family: IPv6's names only on an IPv6 socket
        (a listener of both families is one, as a kernel dual-stack socket)."""
        return _OPTIONS6 if self.family == socket.AF_INET6 else _OPTIONS
