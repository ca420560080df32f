"""The iptables guard: drop the kernel's own RSTs from the ports aiotcp owns.

Layout in the filter table of the current network namespace::

    OUTPUT   -p tcp --tcp-flags RST RST -j AIOTCP          (one jump, shared)
    AIOTCP   -m owner --uid-owner <uid> -j RETURN           (RSTs some process sent: ours)
    AIOTCP   -j AIOTCP-<pid>[-<n>]                          (one jump per aiotcp stack)
    AIOTCP-<pid>  -p tcp --sport 61000:65535 -j DROP        (the ephemeral range)
    AIOTCP-<pid>  -p tcp --sport <listen port> -j DROP      (one per listener outside it)

Only RSTs ever enter the chain, so other traffic pays one flag test.  The owner
match tells ours from the kernel's: a RST the kernel generates for a segment with
no socket is sent from its per-namespace control socket, which has no file and
so never matches ``--uid-owner``; ours leave through the raw socket, which does
(the tcpreq prober uses the same trick).  Each process has its own chain, named by
pid, so two processes never remove each other's rules, and ``cleanup`` can tell
leftovers of dead processes (SIGKILL) from live ones.  A file lock serialises
changes across processes.

Each reserved port's socket is also a filtered listener, as in the socket guard,
so for a port aiotcp holds the kernel drops segments before TCP and builds no RST
at all; the chain catches the rest: RSTs from range ports that are not (or no
longer) reserved, such as answers to a closed connection's late segments.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from aiotcp.io.guard import Guard
from aiotcp.io.ports import DEFAULT_EPHEMERAL_RANGE
from aiotcp.io.privileges import MissingPrivilegeError
from aiotcp.io.socket_guard import listen_filtered

TOP_CHAIN = "AIOTCP"
CHAIN_PREFIX = "AIOTCP-"
LOCK_PATH = "/run/lock/aiotcp-guard.lock"
_JUMP = ["-p", "tcp", "--tcp-flags", "RST", "RST", "-j", TOP_CHAIN]


class IptablesError(RuntimeError):
    pass


def _iptables_binary() -> str:
    path = shutil.which("iptables") or next(
        (p for p in ("/usr/sbin/iptables", "/sbin/iptables") if os.path.exists(p)), None
    )
    if path is None:
        raise IptablesError(
            "iptables is not installed (apt-get install iptables), "
            "or use the firewall-free guard: guard='socket'"
        )
    return path


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one iptables command (waiting for the xtables lock)."""
    proc = subprocess.run(
        [_iptables_binary(), "-w", *args], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        err = proc.stderr.strip()
        if "Permission denied" in err or "you must be root" in err:
            raise MissingPrivilegeError("cannot change iptables rules")
        raise IptablesError(f"iptables {' '.join(args)}: {err}")
    return proc


def _exists(*rule: str) -> bool:
    return iptables("-C", *rule, check=False).returncode == 0


def _chain_exists(chain: str) -> bool:
    return iptables("-S", chain, check=False).returncode == 0


def _ensure(*rule: str) -> None:
    """Append ``rule`` unless it is there already (install is idempotent)."""
    if not _exists(*rule):
        iptables("-A", *rule)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    try:
        os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
        f = open(LOCK_PATH, "a")  # noqa: SIM115 - closed by the with below
    except PermissionError as exc:
        raise MissingPrivilegeError("cannot change iptables rules") from exc
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _delete_chain(chain: str) -> None:
    """Remove the jump to ``chain`` and the chain itself; drop the top chain when unused."""
    while _exists(TOP_CHAIN, "-j", chain):
        iptables("-D", TOP_CHAIN, "-j", chain)
    if _chain_exists(chain):
        iptables("-F", chain)
        iptables("-X", chain)
    if _chain_exists(TOP_CHAIN) and not _process_chains():
        while _exists("OUTPUT", *_JUMP):
            iptables("-D", "OUTPUT", *_JUMP)
        iptables("-F", TOP_CHAIN)
        iptables("-X", TOP_CHAIN)


def _process_chains() -> list[str]:
    out = iptables("-S", check=False).stdout
    return re.findall(rf"^-N ({re.escape(CHAIN_PREFIX)}\d+(?:-\d+)?)$", out, flags=re.M)


def _sport_rule(chain: str, lo: int, hi: int) -> list[str]:
    sport = str(lo) if lo == hi else f"{lo}:{hi}"
    return [chain, "-p", "tcp", "--sport", sport, "-j", "DROP"]


_instances = itertools.count()


class IptablesGuard(Guard):
    kind = "iptables"

    def __init__(
        self,
        ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE,
        *,
        pid: int | None = None,
        instance: int | None = None,
    ) -> None:
        super().__init__(ephemeral_range)
        self.pid = os.getpid() if pid is None else pid
        if instance is None:
            instance = next(_instances)
        self.instance = instance
        # Two stacks in one process (two loops) must not share, and so remove, a chain.
        suffix = f"-{instance}" if instance else ""
        self.chain = f"{CHAIN_PREFIX}{self.pid}{suffix}"

    def _prepare_socket(self, sock: socket.socket) -> None:
        listen_filtered(sock)

    def _install(self) -> None:
        _iptables_binary()
        with _locked():
            if not _chain_exists(TOP_CHAIN):
                iptables("-N", TOP_CHAIN)
            _ensure(TOP_CHAIN, "-m", "owner", "--uid-owner", str(os.geteuid()), "-j", "RETURN")
            _ensure("OUTPUT", *_JUMP)
            if _chain_exists(self.chain):  # left by a dead process with our pid
                iptables("-F", self.chain)
            else:
                iptables("-N", self.chain)
            lo, hi = self.reservations.ephemeral_range
            _ensure(*_sport_rule(self.chain, lo, hi))
            _ensure(TOP_CHAIN, "-j", self.chain)

    def _uninstall(self) -> None:
        with _locked():
            _delete_chain(self.chain)

    def silences_free_port(self, port: int) -> bool:
        """The range rule drops the kernel's RSTs for every port in the range, owned
        or not.  A port another process (another aiotcp) holds is its business: only
        a port nobody has bound gets our RST.  Probing costs a bind, only for stray
        segments."""
        if not self._installed or not self._in_range(port) or port in self.reservations:
            return False
        return self.reservations.is_free(port)

    def _in_range(self, port: int) -> bool:
        lo, hi = self.reservations.ephemeral_range
        return lo <= port <= hi

    def _guard_port(self, port: int) -> None:
        if not self._in_range(port):
            iptables("-A", *_sport_rule(self.chain, port, port))

    def _unguard_port(self, port: int) -> None:
        if not self._in_range(port) and self._installed:
            iptables("-D", *_sport_rule(self.chain, port, port), check=False)


@dataclass(frozen=True)
class ChainStatus:
    """One aiotcp process's rules, as ``guard status`` shows them."""

    chain: str
    pid: int
    alive: bool
    rules: list[str]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def status() -> list[ChainStatus]:
    """Every aiotcp chain in this network namespace and whether its process lives."""
    result = []
    for chain in _process_chains():
        pid = int(chain[len(CHAIN_PREFIX) :].split("-")[0])
        rules = [
            line for line in iptables("-S", chain).stdout.splitlines() if line.startswith("-A")
        ]
        result.append(ChainStatus(chain, pid, _pid_alive(pid), rules))
    return result


def top_rules() -> list[str]:
    """Rules outside the per-process chains (the OUTPUT jump and the owner RETURN)."""
    out = iptables("-S", check=False).stdout.splitlines()
    return [
        line
        for line in out
        if (
            line.startswith(f"-A {TOP_CHAIN} ")
            or (line.startswith("-A OUTPUT") and TOP_CHAIN in line)
        )
        and f"-j {CHAIN_PREFIX}" not in line
    ]


def cleanup(*, everything: bool = False) -> list[str]:
    """Remove chains of dead processes (or all of them); returns the chains removed.

    This is the answer to SIGKILL: no exit handler runs then, so the rules stay
    until this is called (``python -m aiotcp guard cleanup``).
    """
    removed = []
    with _locked():
        for st in status():
            if everything or not st.alive:
                _delete_chain(st.chain)
                removed.append(st.chain)
        if everything or not _process_chains():
            _delete_chain(f"{CHAIN_PREFIX}0")  # also drops an orphaned top chain
    return removed
