"""Fixtures shared by every test level.

``hosts`` gives each test its own two-namespace network (A 198.18.0.1, B .2), so a
test can break its link (impairment, leftover rules) without affecting another, and
pytest-xdist workers never share one. Setup plus teardown costs about 50 ms.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aiotcp.testing.netns import Host, cleanup_stale, is_root, require_root, two_hosts


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remove namespaces left by killed earlier runs (only those whose pid is gone)."""
    if is_root():
        cleanup_stale(prefix=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that builds namespaces as ``root`` (select with ``-m root``)."""
    for item in items:
        if {"hosts", "hosts6", "family_hosts"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.root)


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    """Two fresh hosts joined by a veth pair; skipped without root (failed in CI)."""
    require_root()
    with two_hosts() as pair:
        yield pair


@pytest.fixture
def hosts6() -> Iterator[tuple[Host, Host]]:
    """``hosts`` with IPv6 addresses as well (``address6``/``peer6``)."""
    require_root()
    with two_hosts(ipv6=True) as pair:
        yield pair


@pytest.fixture(params=["ipv4", "ipv6"])
def family(request: pytest.FixtureRequest) -> str:
    """The address family a test runs over (with ``family_hosts``)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def family_hosts(family: str) -> Iterator[tuple[Host, Host]]:
    """``hosts``, with IPv6 addresses too when ``family`` is IPv6: a test takes its
    addresses with ``Host.address_of(family)``."""
    require_root()
    with two_hosts(ipv6=family == "ipv6") as pair:
        yield pair
