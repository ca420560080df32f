"""Route lookup gives the source address and path MTU the kernel would use."""

from __future__ import annotations

import pytest

from aiotcp.io import route
from aiotcp.testing.netns import Host


def test_source_address_and_mtu_follow_the_interface(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    a.run(["ip", "link", "set", a.ifname, "mtu", "1400"])
    r = a.call(route.lookup, b.address)
    assert r.source == a.address
    assert r.mtu == 1400
    assert r.mss == 1360


def test_loopback_route(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    r = a.call(route.lookup, "127.0.0.1")
    assert r.source == "127.0.0.1"
    assert r.mtu >= 65535  # the kernel caps IP_MTU at the largest IPv4 datagram


def test_no_route_raises_like_connect(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with pytest.raises(OSError):
        a.call(route.lookup, "198.19.99.1")  # no route outside 198.18.0.0/24 here


def test_resolve_passes_addresses_through() -> None:
    assert route.resolve("198.18.0.2") == "198.18.0.2"
    assert route.resolve("localhost") == "127.0.0.1"
