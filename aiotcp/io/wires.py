"""Which interfaces are wires: where a TCP checksum field that holds only the
pseudo-header sum cannot be taken on trust.

A packet whose sender left the TCP checksum to offload (``CHECKSUM_PARTIAL``)
carries only the pseudo-header sum in its checksum field.  Packets that never
left this machine arrive that way (loopback, veth, bridges, tun/tap, and the
traffic a hypervisor passes to a paravirtual NIC), and so does every GRO
aggregate, which the kernel builds from segments it has verified.  The kernel
knows which packets these are (``skb->ip_summed``) but tells only AF_PACKET
sockets (``PACKET_AUXDATA``); aiotcp's raw IP socket sees just the field.  A
corrupted segment whose field happens to equal that sum would then be accepted
unverified, doubling the rate at which corruption gets through (1 in 65,536 per
corrupted segment, plus the same again).

So aiotcp asks where a packet came in.  On a wire — a NIC on a hardware bus that
is not paravirtual — a single packet always carries a real checksum, which is
verified in full; only a GRO aggregate, which is longer than the NIC's MTU, may
carry the partial sum.  Everywhere else the partial sum is what local senders
leave, and there is no wire to corrupt the packet.  The stack receives each
wire's packets on a socket of its own (a BPF filter on the ingress interface),
so the common case — containers, namespaces, VMs with virtio, where no interface
is a wire — costs nothing per packet.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

SIOCETHTOOL = 0x8946
SIOCGIFMTU = 0x8921
ETHTOOL_GDRVINFO = 0x00000003
#: ``struct ethtool_drvinfo``: cmd, driver, version, fw_version, bus_info,
#: erom_version, reserved2 and five counters.
_DRVINFO = struct.Struct("I32s32s32s32s32s12s5I")
_IFREQ = struct.Struct("16sP16x")  # ifr_name and a pointer, padded to sizeof(ifreq)

PARAVIRTUAL_DRIVERS = frozenset({"virtio_net", "xen_netfront", "vif", "hv_netvsc", "netvsc"})
"""NICs whose host passes its own local traffic with partial checksums."""
NO_BUS = frozenset({"", "N/A", "tun", "tap"})
"""``bus_info`` of software devices (veth, bridge, tun/tap, ...)."""


@dataclass(frozen=True, slots=True)
class Wire:
    """An interface whose single packets always carry a real TCP checksum."""

    name: str
    index: int
    mtu: int
    """Longest packet the wire delivers: anything longer is a GRO aggregate."""


def driver_info(name: str) -> tuple[str, str] | None:
    """``(driver, bus_info)`` as ``ethtool -i`` shows them, for the calling thread's
    network namespace (``/sys/class/net`` shows the one sysfs was mounted in);
    None where the device has none (loopback)."""
    info = ctypes.create_string_buffer(_DRVINFO.size)
    struct.pack_into("I", info, 0, ETHTOOL_GDRVINFO)
    request = _IFREQ.pack(name.encode(), ctypes.addressof(info))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            fcntl.ioctl(s, SIOCETHTOOL, request)
        except OSError:
            return None
    fields = _DRVINFO.unpack(info.raw)
    return _text(fields[1]), _text(fields[4])


def mtu_of(name: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply = fcntl.ioctl(s, SIOCGIFMTU, struct.pack("16s24x", name.encode()))
    return int(struct.unpack_from("i", reply, 16)[0])


def is_wire(name: str) -> bool:
    info = driver_info(name)
    if info is None:
        return False
    driver, bus = info
    return bus not in NO_BUS and driver not in PARAVIRTUAL_DRIVERS


def find_wires(names: Iterable[str] | None = None) -> list[Wire]:
    """The wires of the calling thread's namespace; ``names`` overrides the
    detection (a veth bridged onto a physical segment, or a test)."""
    indexes = dict((name, index) for index, name in socket.if_nameindex())
    chosen = [n for n in indexes if is_wire(n)] if names is None else list(names)
    wires = []
    for name in chosen:
        if name not in indexes:
            raise ValueError(f"no interface {name!r} in this network namespace")
        with contextlib.suppress(OSError):
            wires.append(Wire(name, indexes[name], mtu_of(name)))
    return wires


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")
