"""Port reservation: a kernel socket bound to every port aiotcp uses.

The kernel knows nothing about aiotcp's connections.  Binding a kernel TCP socket
to each port we use is the one mechanism every process on the host respects: the
kernel will not hand the port to its own clients (ephemeral allocation skips bound
ports), another program's ``bind`` gets EADDRINUSE, and a second aiotcp process
cannot pick the same port.  When the process dies the kernel closes the sockets,
so nothing leaks.  Cost: one ``socket`` + ``bind`` and one file descriptor per
port.
"""

from __future__ import annotations

import errno
import os
import random
import resource
import socket
from collections.abc import Callable

DEFAULT_EPHEMERAL_RANGE = (61000, 65535)
"""Outside Linux's default ``ip_local_port_range`` (32768–60999), so the kernel's
own clients are not competing for these ports in the first place, and one
firewall rule can cover them all."""


def raise_nofile_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit: each owned port holds an fd."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def dual_stack_socket() -> socket.socket:
    """A TCP socket for both families (IPv6 with ``IPV6_V6ONLY`` off), or IPv4's
    where the kernel has no IPv6: bound to a port, it holds the port for IPv4 and
    IPv6 at once, and as a filtered listener it swallows both families' segments."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as exc:
        if exc.errno not in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            raise
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s


def any_address(sock: socket.socket) -> str:
    return "::" if sock.family == socket.AF_INET6 else "0.0.0.0"


class PortReservations:
    """The kernel sockets that hold aiotcp's ports, one per port.

    ``prepare`` lets a guard turn the bound socket into something more (the
    socket-filter guard attaches a drop-all filter and listens).
    """

    def __init__(
        self,
        ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE,
        *,
        prepare: Callable[[socket.socket], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        lo, hi = ephemeral_range
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"bad ephemeral port range {lo}-{hi}")
        self.ephemeral_range = (lo, hi)
        self._prepare = prepare
        self._rng = rng or random.Random()
        # Port -> the file descriptor of its socket: a socket object (88 bytes) for
        # every client connection's port only waited to be closed.
        self._fds: dict[int, int] = {}
        raise_nofile_limit()

    def __contains__(self, port: int) -> bool:
        return port in self._fds

    def __len__(self) -> int:
        return len(self._fds)

    def ports(self) -> list[int]:
        return sorted(self._fds)

    def reserve(self, port: int, *, reuse_address: bool = False, reuse_port: bool = False) -> int:
        """Hold ``port``, or an ephemeral port from the range when ``port`` is 0.

        Raises ``OSError(EADDRINUSE)`` when the port is taken (by anyone, aiotcp
        included) and ``OSError(EADDRNOTAVAIL)`` when the range is exhausted — the
        errors a kernel ``bind``/``connect`` would give.  ``reuse_address`` binds
        with ``SO_REUSEADDR``, as a server does: the kernel's TIME-WAIT sockets on
        the port are no obstacle, a listening socket still is (both guards make the
        reservation a listener, so two stacks cannot hold the port at once).
        ``reuse_port`` binds with ``SO_REUSEPORT``: processes of the same user that
        all ask for it hold the port together (a ``reuse_port`` group,
        ``aiotcp.port_group``), and the kernel still refuses anyone who does not.
        """
        if port:
            if port in self._fds:
                raise OSError(errno.EADDRINUSE, f"port {port} is already used by this stack")
            self._fds[port] = self._bind(port, reuse_address, reuse_port)
            return port
        lo, hi = self.ephemeral_range
        size = hi - lo + 1
        start = self._rng.randrange(size)
        for i in range(size):
            candidate = lo + (start + i) % size
            if candidate in self._fds:
                continue
            try:
                self._fds[candidate] = self._bind(candidate, reuse_address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return candidate
        raise OSError(errno.EADDRNOTAVAIL, f"no free port in aiotcp's range {lo}-{hi}")

    def _bind(self, port: int, reuse_address: bool = False, reuse_port: bool = False) -> int:
        s = dual_stack_socket()
        try:
            if reuse_address:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((any_address(s), port))
            if self._prepare is not None:
                self._prepare(s)
        except BaseException:
            s.close()
            raise
        return s.detach()

    def is_free(self, port: int) -> bool:
        """Could anyone bind ``port`` right now (nobody, aiotcp or not, holds it)?"""
        with dual_stack_socket() as s:
            try:
                s.bind((any_address(s), port))
            except OSError:
                return False
        return True

    def release(self, port: int) -> None:
        fd = self._fds.pop(port, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
