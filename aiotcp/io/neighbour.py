"""Next hop for the AF_PACKET send path: outgoing interface and the neighbour's MAC.

AF_PACKET frames bypass routing and the neighbour table, so aiotcp must fill in
the Ethernet header itself.  The kernel already knows the answer, for both
families: its route lookup gives the interface and gateway for a destination and
its neighbour table the resolved MAC (``aiotcp.io.netlink``).  The first segments
of a connection go through the raw IP socket, which makes the kernel resolve the
neighbour (ARP or IPv6 neighbour discovery); after that the entry is there to
read.  A destination with no valid entry (or on an interface without a link
layer) simply keeps using the raw IP socket.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from dataclasses import dataclass

from aiotcp.io import netlink

ARPHRD_ETHER = 1
SIOCGIFHWADDR = 0x8927
SIOCGIFMTU = 0x8921


@dataclass(frozen=True, slots=True)
class NextHop:
    ifname: str
    ifindex: int
    src_mac: bytes
    dst_mac: bytes
    mtu: int


def _interface(iface: str) -> tuple[int, bytes, int]:
    """(link type, MAC, MTU) by ioctl: answers for the calling thread's namespace,
    which ``/sys/class/net`` does not (it shows the namespace sysfs was mounted in)."""
    req = struct.pack("16s24x", iface.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        hw = fcntl.ioctl(s, SIOCGIFHWADDR, req)
        mtu = fcntl.ioctl(s, SIOCGIFMTU, req)
    family = struct.unpack_from("H", hw, 16)[0]
    return family, hw[18:24], struct.unpack_from("i", mtu, 16)[0]


def lookup(dst: bytes) -> NextHop | None:
    """The next hop for ``dst`` (a packed IPv4 or IPv6 address), or None when the
    AF_PACKET path cannot be used.

    Asks the calling thread's network namespace: call it from the stack's thread.
    """
    try:
        route = netlink.route_get(dst)
        if route is None:
            return None
        ifindex, hop = route
        iface = socket.if_indextoname(ifindex)
        family, src_mac, mtu = _interface(iface)
        if family != ARPHRD_ETHER:
            return None
        dst_mac = netlink.neighbour_get(ifindex, hop)
        if dst_mac is None or len(dst_mac) != 6:
            return None
        return NextHop(iface, ifindex, src_mac, dst_mac, mtu)
    except (OSError, ValueError):
        return None
