"""The RST guards against a real kernel: rules, idempotence, cleanup after every kind of exit.

Every test runs inside host A's namespace (``a.entered()``), so the iptables
commands — the guard's and the test's — see A's firewall, not the machine's.
The iptables guard keeps the same rules in iptables and ip6tables: the rule tests
look at both tables, the tests of what the kernel sends run over each family.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aiotcp.io import iptables_guard
from aiotcp.io.guards import make_guard
from aiotcp.io.iptables_guard import IPV4, IPV6, IptablesError, IptablesGuard, Xtables
from aiotcp.io.privileges import MissingPrivilegeError
from aiotcp.io.socket_guard import SocketFilterGuard
from aiotcp.testing.loops import run
from aiotcp.testing.netns import Host, read_line

COMMANDS = {"ipv4": "iptables", "ipv6": "ip6tables"}
NO_RULES = {"ipv4": [], "ipv6": []}
FREE_PORT = 61999
"""A range port nobody claims in these tests."""


def rules(family: str = "ipv4") -> list[str]:
    out = subprocess.run([COMMANDS[family], "-w", "-S"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "AIOTCP" in line]


def all_rules() -> dict[str, list[str]]:
    return {family: rules(family) for family in COMMANDS}


def packets(family: str, chain: str, target: str) -> int:
    """Packets the rules of ``chain`` with ``target`` have matched, summed."""
    out = subprocess.run(
        [COMMANDS[family], "-w", "-L", chain, "-v", "-x", "-n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(f[0]) for f in (line.split() for line in out.splitlines()) if target in f)


def family_of(family: str) -> socket.AddressFamily:
    return socket.AF_INET6 if family == "ipv6" else socket.AF_INET


def any_address(family: str) -> str:
    return "::" if family == "ipv6" else "0.0.0.0"


def test_install_creates_scoped_rules_and_close_removes_them(hosts: tuple[Host, Host]) -> None:
    """The same layout in both tables, also here where IPv6 is off by sysctl
    (``hosts`` sets ``disable_ipv6``): it costs nothing and holds if IPv6 comes on."""
    a, _ = hosts
    with a.entered():
        assert all_rules() == NO_RULES
        guard = IptablesGuard()
        guard.install()
        assert guard.tables == [IPV4, IPV6]
        text = "\n".join(rules())
        assert "-A OUTPUT -p tcp -m tcp --tcp-flags RST RST -j AIOTCP" in text
        assert "-m owner --uid-owner 0 -j RETURN" in text
        assert f"-A {guard.chain} -p tcp -m tcp --sport 61000:65535 -j DROP" in text
        assert rules("ipv6") == rules("ipv4")
        guard.close()
        assert all_rules() == NO_RULES


def test_install_twice_adds_nothing(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered():
        guard = IptablesGuard()
        guard.install()
        before = all_rules()
        guard.install()
        IptablesGuard(pid=guard.pid, instance=guard.instance).install()  # same chain, new object
        assert all_rules() == before
        guard.close()
        assert all_rules() == NO_RULES


def test_listening_port_outside_the_range_gets_its_own_rule(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered(), IptablesGuard() as guard:
        guard.claim(8080)
        for family in COMMANDS:
            assert f"-A {guard.chain} -p tcp -m tcp --sport 8080 -j DROP" in rules(family)
        guard.release(8080)
        assert not [r for rs in all_rules().values() for r in rs if "8080" in r]


def test_claimed_ports_are_reserved_in_the_kernel(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, _ = family_hosts
    with a.entered(), IptablesGuard() as guard:
        port = guard.claim()
        assert 61000 <= port <= 65535
        with socket.socket(family_of(family)) as s, pytest.raises(OSError) as info:
            s.bind((any_address(family), port))
        assert info.value.errno == errno.EADDRINUSE
        listener = socket.create_server((any_address(family), 0), family=family_of(family))
        with listener, pytest.raises(OSError) as info2:
            guard.claim(listener.getsockname()[1])
        assert info2.value.errno == errno.EADDRINUSE


def test_other_traffic_still_gets_the_kernels_rst(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    """A closed port that aiotcp does not own is refused as usual, in both directions."""
    a, b = family_hosts
    with a.entered(), IptablesGuard() as guard:
        guard.claim()
        guard.claim(8080)
        with pytest.raises(ConnectionRefusedError):
            b.connect(a.address_of(family), 5555)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((b.address_of(family), 5555), timeout=5)


def test_the_kernel_sends_no_rst_from_a_free_range_port(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    """The chain's own job: for a range port nobody holds (a closed connection's,
    say) the kernel's RST is dropped, so a kernel client's SYN goes unanswered.
    Refused before install and after close: the rules were the difference."""
    a, b = family_hosts
    address = a.address_of(family)
    with a.entered():
        with pytest.raises(ConnectionRefusedError):
            b.connect(address, FREE_PORT)
        with IptablesGuard() as guard:
            with pytest.raises((TimeoutError, socket.timeout)):
                b.call(socket.create_connection, (address, FREE_PORT), 1.0)
            assert packets(family, guard.chain, "DROP") >= 1
        with pytest.raises(ConnectionRefusedError):
            b.connect(address, FREE_PORT)


def test_aiotcps_own_rsts_pass_the_chain(family_hosts: tuple[Host, Host], family: str) -> None:
    """A stack answers a SYN to a free range port with its own RST (the kernel's is
    dropped); the owner rule lets it out, so the kernel client is refused at once."""
    a, b = family_hosts
    address = a.address_of(family)

    def connect() -> str:
        try:
            socket.create_connection((address, FREE_PORT), 2.0).close()
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timed out"
        return "connected"

    async def main() -> tuple[str, int]:
        outcome = await asyncio.to_thread(b.call, connect)
        return outcome, packets(family, iptables_guard.TOP_CHAIN, "RETURN")

    with a.entered():
        outcome, passed = run(main, guard="iptables")
        assert outcome == "refused"
        assert passed >= 1  # by the owner rule, in this family's table
        assert all_rules() == NO_RULES


CHILD = textwrap.dedent(
    """
    import sys, time
    from aiotcp.io.guards import make_guard
    guard = make_guard(sys.argv[1])
    guard.install()
    print(guard.claim(), flush=True)
    if sys.argv[2] == "raise":
        raise RuntimeError("boom")
    time.sleep(60)
    """
)


def start_child(host: Host, kind: str, mode: str = "sleep") -> tuple[subprocess.Popen[str], int]:
    proc = host.python(
        ["-c", CHILD, kind, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, int(read_line(proc.stdout, 20.0))


def test_sigkill_leaves_rules_that_cleanup_removes(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    proc, _ = start_child(a, "iptables")
    with a.entered():
        assert [c.pid for c in iptables_guard.status()] == [proc.pid]
        proc.kill()
        proc.wait(10)
        chains = iptables_guard.status()
        assert chains and not any(c.alive for c in chains)
        (dead,) = chains
        assert {rule.split(" -A ")[0] for rule in dead.rules} == {"iptables", "ip6tables"}
        removed = iptables_guard.cleanup()
        assert removed == [c.chain for c in chains]
        assert all_rules() == NO_RULES


def test_cleanup_finds_leftovers_in_either_table(hosts: tuple[Host, Host]) -> None:
    """A process killed between the two families leaves a chain in one table only."""
    a, _ = hosts
    dead = subprocess.Popen(["true"])
    dead.wait()
    chain = f"AIOTCP-{dead.pid}"
    with a.entered():
        IPV6.install_chain(chain, (61000, 65535))
        (st,) = iptables_guard.status()
        assert (st.chain, st.alive) == (chain, False)
        assert all(rule.startswith("ip6tables ") for rule in st.rules)
        assert iptables_guard.cleanup() == [chain]
        assert all_rules() == NO_RULES


@pytest.mark.parametrize("how", ["sigterm", "sigint", "exception"])
def test_rules_are_removed_on_sigterm_sigint_and_exceptions(
    hosts: tuple[Host, Host], how: str
) -> None:
    a, _ = hosts
    if how != "exception":
        proc, _ = start_child(a, "iptables")
        with a.entered():
            for family in COMMANDS:
                assert any(f"AIOTCP-{proc.pid}" in r for r in rules(family))
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    else:
        proc, _ = start_child(a, "iptables", "raise")
    proc.wait(10)
    with a.entered():
        assert all_rules() == NO_RULES


def test_a_second_process_does_not_remove_the_first_ones_rules(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    proc, _ = start_child(a, "iptables")
    with a.entered():
        child_chain = f"AIOTCP-{proc.pid}"
        with IptablesGuard():
            pass
        for family in COMMANDS:
            assert any(child_chain in r for r in rules(family))
        assert iptables_guard.cleanup() == []  # the child lives: nothing to clean
        proc.terminate()
        proc.wait(10)
        assert all_rules() == NO_RULES


def test_socket_guard_leaves_nothing_after_sigkill(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, _ = family_hosts
    proc, port = start_child(a, "socket")
    with a.entered():
        with socket.socket(family_of(family)) as s, pytest.raises(OSError):
            s.bind((any_address(family), port))  # reserved while the process lives
        proc.kill()
        proc.wait(10)
        with socket.socket(family_of(family)) as s:
            s.bind((any_address(family), port))  # the kernel released it
        assert all_rules() == NO_RULES


def test_socket_guard_listener_answers_nothing(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    """A kernel client's SYN to a guarded port gets no SYN-ACK and no RST: it times out
    (the listener is dual-stack, so this holds over IPv6 too).  Refused once the
    guard is gone: the listener was the difference."""
    a, b = family_hosts
    address = a.address_of(family)
    with a.entered():
        with SocketFilterGuard() as guard:
            port = guard.claim(9000)
            with pytest.raises((TimeoutError, socket.timeout)):
                b.call(socket.create_connection, (address, port), 1.0)
        with pytest.raises(ConnectionRefusedError):
            b.connect(address, port)


UNPRIVILEGED = textwrap.dedent(
    """
    import sys
    from aiotcp.io.privileges import MissingPrivilegeError
    try:
        if sys.argv[1] == "raw":
            from aiotcp.io.rawsock import RawSocket
            RawSocket()
        else:
            from aiotcp.io.guards import make_guard
            make_guard("iptables").install()
    except MissingPrivilegeError as exc:
        print(exc)
        sys.exit(3)
    """
)


@pytest.mark.parametrize(
    ("what", "capability"), [("raw", "CAP_NET_RAW"), ("iptables", "CAP_NET_ADMIN")]
)
def test_missing_privileges_give_one_clear_error(
    hosts: tuple[Host, Host], what: str, capability: str
) -> None:
    """Root without CAP_NET_RAW/CAP_NET_ADMIN (dropped from the bounding set)."""
    a, _ = hosts
    drop = ["setpriv", "--bounding-set=-net_raw,-net_admin", "--inh-caps=-net_raw,-net_admin"]
    proc = a.run([*drop, sys.executable, "-c", UNPRIVILEGED, what], check=False)
    assert proc.returncode == 3, proc.stderr
    assert capability in proc.stdout
    assert len(proc.stdout.splitlines()) == 1 and not proc.stderr
    assert issubclass(MissingPrivilegeError, PermissionError)


def test_make_guard_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown guard"):
        make_guard("nft")  # type: ignore[arg-type]


def test_two_stacks_in_one_process_keep_separate_chains(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered():
        first, second = IptablesGuard(), IptablesGuard()
        first.install()
        second.install()
        assert first.chain != second.chain
        second.claim(8081)
        second.close()
        for family in COMMANDS:
            text = "\n".join(rules(family))
            assert f"-A {first.chain} -p tcp -m tcp --sport 61000:65535 -j DROP" in text
            assert "8081" not in text
        first.close()
        assert all_rules() == NO_RULES


def test_iptables_guard_leaves_the_kernel_nothing_to_answer(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    """An owned port's reservation socket is a filtered listener, so the kernel drops a
    segment to it before TCP and never builds the RST the chain would drop: the
    chain's counters stay at zero (a RST per received segment cost ~15 % of bulk
    receive on veth). The chain is still there for ports no one holds."""
    a, b = family_hosts
    with a.entered(), IptablesGuard() as guard:
        port = guard.claim()
        with pytest.raises((TimeoutError, socket.timeout)):
            b.call(socket.create_connection, (a.address_of(family), port), 1.0)
        assert any("DROP" in r for r in rules(family))
        assert packets(family, guard.chain, "DROP") == 0


def test_without_ip6tables_ipv4_is_guarded_and_one_warning_says_ipv6_is_not(
    hosts: tuple[Host, Host], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = hosts
    monkeypatch.setattr(iptables_guard, "IPV6", Xtables("aiotcp-test-no-ip6tables"))
    monkeypatch.setattr(iptables_guard, "_said", set())
    with a.entered(), caplog.at_level(logging.INFO, logger="aiotcp"):
        first, second = IptablesGuard(), IptablesGuard()
        first.install()
        second.install()  # a second stack in the process: no second warning
        assert first.tables == second.tables == [IPV4]
        assert any(first.chain in r for r in rules("ipv4")) and rules("ipv6") == []
        assert {c.chain for c in iptables_guard.status()} == {first.chain, second.chain}
        first.close()
        second.close()
        assert all_rules() == NO_RULES
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "IPv6 is not guarded" in record.getMessage()
    assert "aiotcp-test-no-ip6tables is not installed" in record.getMessage()


def test_a_family_that_fails_to_install_takes_the_other_with_it(
    hosts: tuple[Host, Host], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An ip6tables that answers the probe but fails to commit the chain: the IPv4
    chain, there when it failed, is removed again, so no half-installed guard is
    left behind."""
    a, _ = hosts
    seen = tmp_path / "ipv4-rules-at-failure"
    scripts = {
        "ip6tables": "exit 0\n",
        "ip6tables-restore": f'iptables -w -S > {seen}\necho "no room" >&2\nexit 2\n',
    }
    for name, body in scripts.items():
        (tmp_path / name).write_text("#!/bin/sh\n" + body)
        (tmp_path / name).chmod(0o755)
    monkeypatch.setattr(iptables_guard, "IPV6", Xtables(str(tmp_path / "ip6tables")))
    with a.entered():
        guard = IptablesGuard()
        with pytest.raises(IptablesError, match="no room"):
            guard.install()
        assert f"-N {guard.chain}" in seen.read_text().splitlines()
        assert all_rules() == NO_RULES
