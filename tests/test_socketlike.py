"""``TcpSocket``'s IP-level options by family: IPv6's names (``IPV6_TCLASS``,
``IPV6_UNICAST_HOPS``) tune the same fields as ``IP_TOS``/``IP_TTL`` on an IPv6
socket and are refused on an IPv4 one, as Linux does."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

from aiotcp.socketlike import TcpSocket


class Options:
    """An ``OptionTarget`` that keeps options in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {"tos": 0, "ttl": None}

    def _get_option(self, name: str) -> Any:
        return self.values[name]

    def _set_option(self, name: str, value: Any) -> None:
        self.values[name] = value

    def _fileno(self) -> int:
        return -1


def sock(address: tuple[Any, ...]) -> tuple[TcpSocket, Options]:
    target = Options()
    return TcpSocket(target, address, None), target


def test_ipv6_names_tune_the_traffic_class_and_hop_limit() -> None:
    s, target = sock(("fd00::1", 7000, 0, 0))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0xB8 | 0x03)  # ECN bits: TCP's
    assert target.values["tos"] == 0xB8
    assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS) == 0xB8
    assert s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0xB8  # the same field
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, -1)  # the default
    assert target.values["tos"] == 0

    default = s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
    assert isinstance(default, int) and 1 <= default <= 255
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 9)
    assert target.values["ttl"] == 9
    assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) == 9
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, -1)
    assert target.values["ttl"] is None
    assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) == default


@pytest.mark.parametrize(
    ("option", "value"),
    [(socket.IPV6_TCLASS, 256), (socket.IPV6_TCLASS, -2), (socket.IPV6_UNICAST_HOPS, 256)],
)
def test_ipv6_values_out_of_range_are_einval(option: int, value: int) -> None:
    s, target = sock(("fd00::1", 7000, 0, 0))
    with pytest.raises(OSError) as raised:
        s.setsockopt(socket.IPPROTO_IPV6, option, value)
    assert raised.value.errno == errno.EINVAL
    assert target.values == {"tos": 0, "ttl": None}


def test_an_ipv4_socket_has_no_ipv6_options() -> None:
    s, _ = sock(("198.18.0.1", 7000))
    for option in (socket.IPV6_TCLASS, socket.IPV6_UNICAST_HOPS):
        with pytest.raises(OSError) as raised:
            s.setsockopt(socket.IPPROTO_IPV6, option, 1)
        assert raised.value.errno == errno.ENOPROTOOPT
        with pytest.raises(OSError):
            s.getsockopt(socket.IPPROTO_IPV6, option)
