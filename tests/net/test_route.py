"""Route lookup gives the source address and path MTU the kernel would use."""

from __future__ import annotations

import pytest

from aiotcp.io import route
from aiotcp.testing.netns import Host

LOOPBACK = {"ipv4": "127.0.0.1", "ipv6": "::1"}
UNROUTED = {"ipv4": "198.19.99.1", "ipv6": "fd00:198:19::1"}  # outside the test link


def test_source_address_and_mtu_follow_the_interface(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    a.run(["ip", "link", "set", a.ifname, "mtu", "1400"])
    r = a.call(route.lookup, b.address_of(family))
    assert r.source == a.address_of(family)
    assert r.mtu == 1400
    assert r.mss == (1360 if family == "ipv4" else 1340)  # IPv6's header is 40 bytes


def test_loopback_route(family_hosts: tuple[Host, Host], family: str) -> None:
    a, _ = family_hosts
    r = a.call(route.lookup, LOOPBACK[family])
    assert r.source == LOOPBACK[family]
    assert r.mtu >= 65535  # the kernel caps IPv4's IP_MTU at the largest datagram


def test_no_route_raises_like_connect(family_hosts: tuple[Host, Host], family: str) -> None:
    a, _ = family_hosts
    with pytest.raises(OSError):
        a.call(route.lookup, UNROUTED[family])  # no route off the test link here


def test_resolve_passes_addresses_through() -> None:
    assert route.resolve("198.18.0.2") == "198.18.0.2"
    assert route.resolve("localhost") == "127.0.0.1"
    assert route.resolve("fd00:198:18:0:0::2") == "fd00:198:18::2"  # RFC 5952's form
