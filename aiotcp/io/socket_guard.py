"""The guard that touches no firewall: a filtered kernel listener on each owned port.

Checked on Linux 6.x: with a TCP socket listening on the port and a socket filter
that is a single ``ret #0``, the kernel finds that socket for every segment to
the port (SYNs and stray segments alike), the filter drops the segment before any
TCP processing, and so no RST is ever generated.  The raw socket still receives a
copy of every segment (raw delivery happens before TCP's).  The port is reserved
by the bind, and when the process dies the kernel closes the socket — nothing
can outlive us.  Needs CAP_NET_RAW only (for the raw socket itself).
"""

from __future__ import annotations

import socket

from aiotcp.io import bpf
from aiotcp.io.guard import Guard


def listen_filtered(sock: socket.socket) -> None:
    """Make a bound reservation socket the kernel's sink for the port's segments.

    Both guards do this: with no socket for the port the kernel would run TCP on
    every segment only to build a RST (``tcp_v4_send_reset``), which the iptables
    guard then has to drop.  On veth that RST costs a good part of a bulk receive,
    because it runs on the sender's CPU, the one that limits the transfer
    (docs/performance.md).
    """
    bpf.attach_drop_all(sock)
    sock.listen(1)


class SocketFilterGuard(Guard):
    kind = "socket"

    def _prepare_socket(self, sock: socket.socket) -> None:
        listen_filtered(sock)
