"""The RST guards against a real kernel: rules, idempotence, cleanup after every kind of exit.

Every test runs inside host A's namespace (``a.entered()``), so the iptables
commands — the guard's and the test's — see A's firewall, not the machine's.
"""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from aiotcp.io import iptables_guard
from aiotcp.io.guards import make_guard
from aiotcp.io.iptables_guard import IptablesGuard
from aiotcp.io.privileges import MissingPrivilegeError
from aiotcp.io.socket_guard import SocketFilterGuard
from aiotcp.testing.netns import Host, read_line


def rules() -> list[str]:
    out = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "AIOTCP" in line]


def test_install_creates_scoped_rules_and_close_removes_them(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered():
        assert rules() == []
        guard = IptablesGuard()
        guard.install()
        text = "\n".join(rules())
        assert "-A OUTPUT -p tcp -m tcp --tcp-flags RST RST -j AIOTCP" in text
        assert "-m owner --uid-owner 0 -j RETURN" in text
        assert f"-A {guard.chain} -p tcp -m tcp --sport 61000:65535 -j DROP" in text
        guard.close()
        assert rules() == []


def test_install_twice_adds_nothing(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered():
        guard = IptablesGuard()
        guard.install()
        before = rules()
        guard.install()
        IptablesGuard(pid=guard.pid, instance=guard.instance).install()  # same chain, new object
        assert rules() == before
        guard.close()
        assert rules() == []


def test_listening_port_outside_the_range_gets_its_own_rule(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered(), IptablesGuard() as guard:
        guard.claim(8080)
        assert f"-A {guard.chain} -p tcp -m tcp --sport 8080 -j DROP" in rules()
        guard.release(8080)
        assert not [r for r in rules() if "8080" in r]


def test_claimed_ports_are_reserved_in_the_kernel(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.entered(), IptablesGuard() as guard:
        port = guard.claim()
        assert 61000 <= port <= 65535
        with socket.socket() as s, pytest.raises(OSError) as info:
            s.bind(("0.0.0.0", port))
        assert info.value.errno == errno.EADDRINUSE
        listener = socket.create_server(("0.0.0.0", 0))
        with listener, pytest.raises(OSError) as info2:
            guard.claim(listener.getsockname()[1])
        assert info2.value.errno == errno.EADDRINUSE


def test_other_traffic_still_gets_the_kernels_rst(hosts: tuple[Host, Host]) -> None:
    """A closed port that aiotcp does not own is refused as usual, in both directions."""
    a, b = hosts
    with a.entered(), IptablesGuard() as guard:
        guard.claim()
        guard.claim(8080)
        with pytest.raises(ConnectionRefusedError):
            b.connect(a.address, 5555)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((b.address, 5555), timeout=5)


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
        removed = iptables_guard.cleanup()
        assert removed == [c.chain for c in chains]
        assert rules() == []


@pytest.mark.parametrize("how", ["sigterm", "sigint", "exception"])
def test_rules_are_removed_on_sigterm_sigint_and_exceptions(
    hosts: tuple[Host, Host], how: str
) -> None:
    a, _ = hosts
    proc, _ = start_child(a, "iptables", "raise" if how == "exception" else "sleep")
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif how == "sigint":
        proc.send_signal(signal.SIGINT)
    proc.wait(10)
    with a.entered():
        assert rules() == []


def test_a_second_process_does_not_remove_the_first_ones_rules(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    proc, _ = start_child(a, "iptables")
    with a.entered():
        child_chain = f"AIOTCP-{proc.pid}"
        with IptablesGuard():
            pass
        assert any(child_chain in r for r in rules())
        assert iptables_guard.cleanup() == []  # the child lives: nothing to clean
        proc.terminate()
        proc.wait(10)
        assert rules() == []


def test_socket_guard_leaves_nothing_after_sigkill(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    proc, port = start_child(a, "socket")
    with a.entered():
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("0.0.0.0", port))  # reserved while the process lives
        proc.kill()
        proc.wait(10)
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))  # the kernel released it
        assert rules() == []


def test_socket_guard_listener_answers_nothing(hosts: tuple[Host, Host]) -> None:
    """A kernel client's SYN to a guarded port gets no SYN-ACK and no RST: it times out."""
    a, b = hosts
    with a.entered(), SocketFilterGuard() as guard:
        port = guard.claim(9000)
        with pytest.raises((TimeoutError, socket.timeout)):
            b.call(socket.create_connection, (a.address, port), 1.0)


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
        text = "\n".join(rules())
        assert f"-A {first.chain} -p tcp -m tcp --sport 61000:65535 -j DROP" in text
        assert "8081" not in text
        first.close()
        assert rules() == []


def test_iptables_guard_leaves_the_kernel_nothing_to_answer(hosts: tuple[Host, Host]) -> None:
    """An owned port's reservation socket is a filtered listener, so the kernel drops a
    segment to it before TCP and never builds the RST the chain would drop: the
    chain's counters stay at zero (a RST per received segment cost ~15 % of bulk
    receive on veth). The chain is still there for ports no one holds."""
    a, b = hosts
    with a.entered(), IptablesGuard() as guard:
        port = guard.claim()
        with pytest.raises((TimeoutError, socket.timeout)):
            b.call(socket.create_connection, (a.address, port), 1.0)
        counters = subprocess.run(
            ["iptables", "-w", "-L", guard.chain, "-v", "-x", "-n"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        drops = [line.split() for line in counters.splitlines() if "DROP" in line]
        assert drops and all(fields[0] == "0" for fields in drops), counters
