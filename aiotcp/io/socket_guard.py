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


class SocketFilterGuard(Guard):
    kind = "socket"

    def _prepare_socket(self, sock: socket.socket) -> None:
        bpf.attach(sock, bpf.drop_all())
        sock.listen(1)
