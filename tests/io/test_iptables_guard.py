"""Which families the iptables guard covers, decided without touching a firewall.

``tables()`` asks each command one question (``-S OUTPUT``), so fake scripts stand
for iptables and ip6tables and for the ways they can fail.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aiotcp.io import iptables_guard
from aiotcp.io.iptables_guard import IptablesError, Xtables
from aiotcp.io.privileges import MissingPrivilegeError

TABLE_MISSING = "can't initialize ip6tables table `filter': Table does not exist"
DENIED = "Could not fetch rule set generation id: Permission denied (you must be root)"


def fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family: str, status: int, stderr: str = ""
) -> Xtables:
    """A stand-in for ``family``'s command that fails with ``status`` and ``stderr``."""
    script = tmp_path / ("ip6tables" if family == "IPV6" else "iptables")
    script.write_text(f"#!/bin/sh\ncat >&2 <<'END'\n{stderr}\nEND\nexit {status}\n")
    script.chmod(0o755)
    table = Xtables(str(script))
    monkeypatch.setattr(iptables_guard, family, table)
    return table


@pytest.fixture
def ipv4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Xtables:
    """A working iptables; each test starts as a new process would, nothing said
    yet, on a kernel with IPv6 (whatever this machine's is)."""
    monkeypatch.setattr(iptables_guard, "_said", set())
    monkeypatch.setattr(iptables_guard, "kernel_has_ipv6", lambda: True)
    return fake(tmp_path, monkeypatch, "IPV4", 0)


@pytest.fixture
def six(tmp_path: Path) -> Path:
    (tmp_path / "6").mkdir()
    return tmp_path / "6"


def test_a_working_ip6tables_adds_ipv6(
    ipv4: Xtables, six: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip6tables = fake(six, monkeypatch, "IPV6", 0)
    assert iptables_guard.tables() == [ipv4, ip6tables]


def test_an_unusable_ip6tables_leaves_ipv4_and_one_warning(
    ipv4: Xtables, six: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake(six, monkeypatch, "IPV6", 3, TABLE_MISSING)
    with caplog.at_level(logging.INFO, logger="aiotcp"):
        assert iptables_guard.tables() == [ipv4]
        assert iptables_guard.tables() == [ipv4]  # another stack: said once
        assert iptables_guard.tables(quiet=True) == [ipv4]  # status and cleanup: not said
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "IPv6 is not guarded" in record.getMessage()
    assert "Table does not exist" in record.getMessage()


def test_a_missing_ip6tables_says_what_to_install(
    ipv4: Xtables, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(iptables_guard, "IPV6", Xtables("aiotcp-test-no-ip6tables"))
    with caplog.at_level(logging.INFO, logger="aiotcp"):
        assert iptables_guard.tables() == [ipv4]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "apt-get install iptables" in record.getMessage()
    assert "guard='socket'" not in record.getMessage()  # no help for IPv6 there


def test_a_kernel_without_ipv6_needs_no_ip6tables(
    ipv4: Xtables, six: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing can arrive over IPv6 there: an INFO line, not a warning, and ip6tables
    (here one that would fail) is not asked."""
    fake(six, monkeypatch, "IPV6", 3, "should not run")
    monkeypatch.setattr(iptables_guard, "kernel_has_ipv6", lambda: False)
    with caplog.at_level(logging.INFO, logger="aiotcp"):
        assert iptables_guard.tables() == [ipv4]
    (record,) = caplog.records
    assert record.levelno == logging.INFO and "no IPv6" in record.getMessage()


def test_missing_privileges_for_ip6tables_are_the_one_clear_error(
    ipv4: Xtables, six: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a warning that IPv6 is unguarded: the same error the IPv4 rules give."""
    fake(six, monkeypatch, "IPV6", 4, DENIED)
    with pytest.raises(MissingPrivilegeError, match=r"ip6tables rules: .*CAP_NET_ADMIN"):
        iptables_guard.tables()


def test_missing_privileges_are_told_for_iptables_first(
    tmp_path: Path, six: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(tmp_path, monkeypatch, "IPV4", 4, DENIED)
    fake(six, monkeypatch, "IPV6", 4, DENIED)
    with pytest.raises(MissingPrivilegeError, match=r"cannot change iptables rules: "):
        iptables_guard.tables(quiet=True)  # guard status and cleanup too


def test_without_iptables_there_is_no_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iptables_guard, "IPV4", Xtables("aiotcp-test-no-iptables"))
    with pytest.raises(IptablesError, match=r"not installed .*guard='socket'"):
        iptables_guard.tables()
