"""Next hop for the AF_PACKET send path: outgoing interface and the neighbour's MAC.

AF_PACKET frames bypass routing and the neighbour table, so aiotcp must fill in
the Ethernet header itself.  The kernel already knows the answer:
``/proc/net/route`` gives the interface and gateway for a destination (main
table, longest prefix, lowest metric) and ``/proc/net/arp`` the resolved MAC.
The first segments of a connection go through the raw IP socket, which makes
the kernel resolve the neighbour; after that the entry is there to read.  A
destination with no complete entry (or on an interface without a link layer)
simply keeps using the raw IP socket.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

ARP_COMPLETE = 0x2
ARPHRD_ETHER = 1
SIOCGIFHWADDR = 0x8927
SIOCGIFMTU = 0x8921
RTF_UP = 0x1
RTF_GATEWAY = 0x2


@dataclass(frozen=True, slots=True)
class NextHop:
    ifname: str
    ifindex: int
    src_mac: bytes
    dst_mac: bytes
    mtu: int


def _route(dst: str, proc: Path) -> tuple[str, str] | None:
    """(interface, next-hop address) from the main routing table."""
    target = struct.unpack("<I", socket.inet_aton(dst))[0]  # /proc/net/route is little-endian
    best: tuple[int, int, str, str] | None = None
    for line in proc.read_text().splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        iface, dest, gw, flags = f[0], int(f[1], 16), int(f[2], 16), int(f[3], 16)
        metric, mask = int(f[6]), int(f[7], 16)
        if not flags & RTF_UP or target & mask != dest:
            continue
        prefix = bin(mask).count("1")
        if best is None or (prefix, -metric) > (best[0], -best[1]):
            hop = socket.inet_ntoa(struct.pack("<I", gw)) if flags & RTF_GATEWAY else dst
            best = (prefix, metric, iface, hop)
    return None if best is None else (best[2], best[3])


def _arp(ip: str, iface: str, proc: Path) -> bytes | None:
    for line in proc.read_text().splitlines()[1:]:
        f = line.split()
        if len(f) >= 6 and f[0] == ip and f[5] == iface and int(f[2], 16) & ARP_COMPLETE:
            return bytes.fromhex(f[3].replace(":", ""))
    return None


def _interface(iface: str) -> tuple[int, bytes, int]:
    """(link type, MAC, MTU) by ioctl: answers for the calling thread's namespace,
    which ``/sys/class/net`` does not (it shows the namespace sysfs was mounted in)."""
    req = struct.pack("16s24x", iface.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        hw = fcntl.ioctl(s, SIOCGIFHWADDR, req)
        mtu = fcntl.ioctl(s, SIOCGIFMTU, req)
    family = struct.unpack_from("H", hw, 16)[0]
    return family, hw[18:24], struct.unpack_from("i", mtu, 16)[0]


def lookup(dst: str, *, proc_net: Path = Path("/proc/thread-self/net")) -> NextHop | None:
    """The next hop for ``dst``, or None when the AF_PACKET path cannot be used.

    Reads the calling thread's network namespace: call it from the stack's thread.
    """
    try:
        route = _route(dst, proc_net / "route")
        if route is None:
            return None
        iface, hop = route
        family, src_mac, mtu = _interface(iface)
        if family != ARPHRD_ETHER:
            return None
        dst_mac = _arp(hop, iface, proc_net / "arp")
        if dst_mac is None:
            return None
        return NextHop(iface, socket.if_nametoindex(iface), src_mac, dst_mac, mtu)
    except (OSError, ValueError):
        return None
