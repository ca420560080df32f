"""The AF_PACKET path's next hop, over both families: the kernel's route and
neighbour answers (rtnetlink), read from the stack's network namespace."""

from __future__ import annotations

import socket
import time

from aiotcp.io import neighbour
from aiotcp.io.neighbour import NextHop
from aiotcp.testing.netns import Host


def _packed(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


def _mac(host: Host) -> bytes:
    text = host.run(["cat", f"/sys/class/net/{host.ifname}/address"]).stdout.strip()
    return bytes.fromhex(text.replace(":", ""))


def _resolved(host: Host, address: str, via: str | None = None) -> NextHop:
    """Make ``host``'s kernel resolve the neighbour for ``address`` (a UDP datagram
    to it: ARP or neighbour discovery), then look its next hop up."""

    def send_and_look() -> NextHop | None:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                           socket.SOCK_DGRAM) as s:  # fmt: skip
            s.sendto(b"x", (via or address, 9))
        deadline = time.monotonic() + 3
        while (hop := neighbour.lookup(_packed(address))) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)
        return hop

    hop = host.call(send_and_look)
    assert hop is not None, f"{address}: no next hop after resolving"
    return hop


def test_a_resolved_neighbour_gives_its_mac(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    peer = b.address_of(family)
    assert a.call(neighbour.lookup, _packed(peer)) is None  # not resolved yet: raw IP
    hop = _resolved(a, peer)
    assert (hop.ifname, hop.dst_mac, hop.src_mac) == (a.ifname, _mac(b), _mac(a))
    assert hop.mtu == 1500


def test_a_gateway_route_gives_the_gateways_mac(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    far = "198.19.7.1" if family == "ipv4" else "fd00:198:19:7::1"
    a.run(["ip", "route", "add", far, "via", b.address_of(family)])
    hop = _resolved(a, far, via=b.address_of(family))
    assert hop.dst_mac == _mac(b)


def test_no_route_and_loopback_take_the_raw_socket(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, _ = family_hosts
    nowhere = "198.19.9.9" if family == "ipv4" else "fd00:198:19:9::9"
    assert a.call(neighbour.lookup, _packed(nowhere)) is None
    local = "127.0.0.1" if family == "ipv4" else "::1"
    assert a.call(neighbour.lookup, _packed(local)) is None  # lo has no link layer
