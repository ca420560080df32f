"""The RST guard: keep the kernel from answering segments meant for aiotcp.

The kernel sees every segment the raw socket sees.  It has no socket for
aiotcp's connections, so it would answer each with a RST (RFC 9293 §3.10.7.1)
and kill them.  A guard stops that for exactly the ports aiotcp owns, and also
reserves those ports so no one else can use them.  Two implementations:

- ``IptablesGuard`` (default): a firewall chain drops the kernel's own RSTs from
  our ports.  Ports come from a fixed range covered by one rule, so a new
  connection costs a ``bind``, not an ``iptables`` process.  Needs CAP_NET_ADMIN.
  Its reservation sockets are filtered listeners too (below), so for a held port
  the kernel has no RST to build; the chain covers the range's free ports.
- ``SocketFilterGuard``: a kernel socket listening on each owned port with a BPF
  filter that drops everything; the kernel then finds a socket for every segment
  and stays quiet.  No firewall, CAP_NET_RAW only, and nothing can leak: the
  kernel closes the sockets when the process dies.
"""

from __future__ import annotations

import socket

from aiotcp.io import exit_hooks
from aiotcp.io.ports import DEFAULT_EPHEMERAL_RANGE, PortReservations


class Guard:
    """Common part: port reservation, the port set the raw socket filter admits, exit hooks.

    Subclasses add the mechanism that silences the kernel (``_guard_port``).
    """

    kind: str = "none"

    def __init__(self, ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE) -> None:
        self.reservations = PortReservations(ephemeral_range, prepare=self._prepare_socket)
        self._installed = False
        self._hook_key: int | None = None

    # -- overridable mechanism -------------------------------------------------
    def _prepare_socket(self, sock: socket.socket) -> None:
        """Turn a freshly bound reservation socket into whatever the guard needs."""

    def _install(self) -> None:
        """Host-wide setup (firewall chain)."""

    def _uninstall(self) -> None:
        """Undo ``_install``; must be safe to call twice."""

    def _guard_port(self, port: int) -> None:
        """Extra per-port work beyond the reservation socket."""

    def _unguard_port(self, port: int) -> None:
        """Undo ``_guard_port``."""

    # -- public ----------------------------------------------------------------
    def install(self) -> None:
        """Idempotent; registers removal at exit and on SIGTERM."""
        if self._installed:
            return
        self._install()
        self._installed = True
        self._hook_key = exit_hooks.register(self.close)

    def claim(self, port: int = 0, *, reuse_address: bool = False, reuse_port: bool = False) -> int:
        """Own ``port`` (0: an ephemeral one); raises OSError(EADDRINUSE) if taken.

        ``reuse_address`` (``SO_REUSEADDR``): a kernel socket in TIME-WAIT on the
        port does not count as taking it.  ``reuse_port`` (``SO_REUSEPORT``): other
        processes of this user that ask for it may hold the port too.
        """
        self.install()
        port = self.reservations.reserve(port, reuse_address=reuse_address, reuse_port=reuse_port)
        try:
            self._guard_port(port)
        except BaseException:
            self.reservations.release(port)
            raise
        return port

    def release(self, port: int) -> None:
        if port in self.reservations:
            self._unguard_port(port)
            self.reservations.release(port)

    def owns(self, port: int) -> bool:
        return port in self.reservations

    def silences_free_port(self, port: int) -> bool:
        """Does this guard keep the kernel from answering ``port`` although nobody
        holds it?  Then the stack must send the RST itself (RFC 9293 §3.10.7.1)."""
        return False

    def port_ranges(self) -> list[tuple[int, int]]:
        """Destination ports the raw socket must admit: the ephemeral range, plus claimed
        ports outside it (listeners) — the range already covers the rest, and listing
        every connection's port would grow the filter with the connection count."""
        lo, hi = self.reservations.ephemeral_range
        outside = ((p, p) for p in self.reservations.ports() if not lo <= p <= hi)
        return [(lo, hi), *outside]

    def close(self) -> None:
        """Release every port and remove host changes. Safe to call more than once."""
        for port in self.reservations.ports():
            self.release(port)
        if self._installed:
            self._installed = False
            self._uninstall()
        if self._hook_key is not None:
            exit_hooks.unregister(self._hook_key)
            self._hook_key = None

    def __enter__(self) -> Guard:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoGuard(Guard):
    """Reservation only: the kernel's RSTs go out (for experiments and tests)."""

    kind = "none"
