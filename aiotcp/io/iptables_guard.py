"""The iptables guard: drop the kernel's own RSTs from the ports aiotcp owns, over
IPv4 and IPv6.

Layout in the filter table of the current network namespace, the same in
``iptables`` and in ``ip6tables``::

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

Both families, because a port is one port for both: the reservation socket is
dual-stack (``ports.py``) and a late segment may come over either.  Every step
runs the same ``Xtables`` code once per family, under the one lock, so the two
tables cannot drift apart: installed, extended and removed together, and
``cleanup`` removes a dead process's chains from both.  A family's chain goes in
as one ``iptables-restore`` transaction, so a family is all or nothing, and when
the second fails to install the first is removed again.  IPv6 is guarded whenever
``ip6tables`` works, also where IPv6 is switched off by sysctl (``disable_ipv6``):
the rules cost nothing there and are in place if it is switched on while aiotcp
runs.  When it does not work the guard still guards IPv4 and says so once per
process in the ``aiotcp`` log:

- the kernel has no IPv6 at all (``ipv6.disable=1``): nothing can arrive over it;
  an INFO line.
- ``ip6tables`` is missing or cannot use its table: a WARNING that IPv6 is
  unguarded.  Held ports stay silent over IPv6 (their listeners are dual-stack),
  but the kernel's RSTs from free range ports go out, as under the socket guard.

Missing privileges are the one ``MissingPrivilegeError``, whichever family meets
them first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from aiotcp.io.guard import Guard
from aiotcp.io.ports import DEFAULT_EPHEMERAL_RANGE, dual_stack_socket
from aiotcp.io.privileges import MissingPrivilegeError
from aiotcp.io.socket_guard import listen_filtered

TOP_CHAIN = "AIOTCP"
CHAIN_PREFIX = "AIOTCP-"
LOCK_PATH = "/run/lock/aiotcp-guard.lock"
_JUMP = ["-p", "tcp", "--tcp-flags", "RST", "RST", "-j", TOP_CHAIN]

log = logging.getLogger("aiotcp")


class IptablesError(RuntimeError):
    pass


def _process_chains(listing: str) -> list[str]:
    """The per-process chains in an ``-S`` listing."""
    return re.findall(rf"^-N ({re.escape(CHAIN_PREFIX)}\d+(?:-\d+)?)$", listing, flags=re.M)


def _sport_rule(chain: str, lo: int, hi: int) -> list[str]:
    sport = str(lo) if lo == hi else f"{lo}:{hi}"
    return [chain, "-p", "tcp", "--sport", sport, "-j", "DROP"]


@dataclass(frozen=True)
class Xtables:
    """One family's firewall command.  The rules are the same in both families, so
    this is the only thing that differs."""

    command: str
    """``iptables`` or ``ip6tables`` (or a path to one)."""

    @property
    def name(self) -> str:
        return os.path.basename(self.command)

    def binary(self) -> str:
        name = self.name
        path = shutil.which(self.command) or next(
            (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None
        )
        if path is None:
            raise IptablesError(f"{name} is not installed (apt-get install iptables)")
        return path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one command (waiting for the xtables lock)."""
        return self._execute([self.binary(), "-w", *args], " ".join(args), check=check)

    def apply(self, *transactions: list[list[str]]) -> None:
        """Run commands through one ``iptables-restore``: one process, and each
        transaction committed all or nothing.  On nf_tables a commit that deletes
        took ~15 ms here (one that adds ~2), so removing a chain command by command
        cost ~0.1 s per family; batched, both families' install and removal cost
        less than IPv4's alone did."""
        text = "".join(
            "*filter\n" + "".join(" ".join(cmd) + "\n" for cmd in tx) + "COMMIT\n"
            for tx in transactions
            if tx
        )
        if text:
            restore = self.binary() + "-restore"
            if not os.path.exists(restore):
                raise IptablesError(f"{restore} is not installed (apt-get install iptables)")
            self._execute([restore, "-w", "--noflush"], "-restore", stdin=text)

    def _execute(
        self, argv: list[str], what: str, *, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            err = proc.stderr.strip()
            if "Permission denied" in err or "you must be root" in err:
                raise MissingPrivilegeError(f"cannot change {self.name} rules")
            raise IptablesError(f"{self.name} {what}: {err}")
        return proc

    def exists(self, *rule: str) -> bool:
        return self.run("-C", *rule, check=False).returncode == 0

    def install_chain(self, chain: str, ephemeral_range: tuple[int, int]) -> None:
        """The shared top of the layout unless there, and ``chain`` for one stack, in
        one transaction.  Idempotent."""
        listing = self.run("-S").stdout.splitlines()
        fresh = f"-N {TOP_CHAIN}" not in listing
        tx = [["-N", TOP_CHAIN]] if fresh else []
        owner = ["-m", "owner", "--uid-owner", str(os.geteuid()), "-j", "RETURN"]
        for rule in ([TOP_CHAIN, *owner], ["OUTPUT", *_JUMP]):
            if fresh or not self.exists(*rule):  # no jump to a chain that did not exist
                tx.append(["-A", *rule])
        # A chain of ours already there was left by a dead process with our pid.
        tx.append(["-F" if f"-N {chain}" in listing else "-N", chain])
        tx.append(["-A", *_sport_rule(chain, *ephemeral_range)])
        if f"-A {TOP_CHAIN} -j {chain}" not in listing:
            tx.append(["-A", TOP_CHAIN, "-j", chain])
        self.apply(tx)

    def delete_chain(self, chain: str) -> None:
        """Remove the jump to ``chain`` and the chain itself; drop the top chain when
        no process chain is left."""
        listing = self.run("-S").stdout
        lines = listing.splitlines()
        unhook = [["-D", TOP_CHAIN, "-j", chain]] * lines.count(f"-A {TOP_CHAIN} -j {chain}")
        remove = [["-F", chain], ["-X", chain]] if f"-N {chain}" in lines else []
        if f"-N {TOP_CHAIN}" in lines and set(_process_chains(listing)) <= {chain}:
            jumps = [
                ln
                for ln in lines
                if ln.startswith("-A OUTPUT ") and ln.endswith(f" -j {TOP_CHAIN}")
            ]
            unhook += [["-D", "OUTPUT", *_JUMP]] * len(jumps)
            remove += [["-F", TOP_CHAIN], ["-X", TOP_CHAIN]]
        # Two transactions: nf_tables refuses (EBUSY) to delete a chain in the one
        # that removes the jump to it.
        self.apply(unhook, remove)

    def process_chains(self) -> list[str]:
        return _process_chains(self.run("-S", check=False).stdout)

    def rules(self, chain: str) -> list[str]:
        """``chain``'s rules (none when this table does not have it)."""
        out = self.run("-S", chain, check=False).stdout
        return [line for line in out.splitlines() if line.startswith("-A")]

    def top_rules(self) -> list[str]:
        """Rules outside the per-process chains (the OUTPUT jump and the owner RETURN)."""
        return [
            line
            for line in self.run("-S", check=False).stdout.splitlines()
            if (
                line.startswith(f"-A {TOP_CHAIN} ")
                or (line.startswith("-A OUTPUT") and TOP_CHAIN in line)
            )
            and f"-j {CHAIN_PREFIX}" not in line
        ]


IPV4 = Xtables("iptables")
IPV6 = Xtables("ip6tables")


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one IPv4 iptables command (waiting for the xtables lock)."""
    return IPV4.run(*args, check=check)


def kernel_has_ipv6() -> bool:
    """As the reservations see it: their sockets are IPv4's only without IPv6."""
    with dual_stack_socket() as sock:
        return sock.family == socket.AF_INET6


_said: set[str] = set()


def _say_once(level: int, message: str) -> None:
    """Every stack installs a guard; a process with many says it once."""
    if message not in _said:
        _said.add(message)
        log.log(level, message)


def tables(*, quiet: bool = False) -> list[Xtables]:
    """The families to guard here: IPv4 always (without iptables there is no guard,
    and this raises), IPv6 when ``ip6tables`` works (otherwise logged, unless
    ``quiet``).  Missing privileges raise ``MissingPrivilegeError``, asked of
    iptables first so that an IPv4 user's message names the command they know."""
    try:
        IPV4.run("-S", "OUTPUT")
    except IptablesError as exc:
        raise IptablesError(f"{exc}, or use the firewall-free guard: guard='socket'") from None
    if not kernel_has_ipv6():
        if not quiet:
            _say_once(logging.INFO, "this kernel has no IPv6: the iptables guard covers IPv4")
        return [IPV4]
    try:
        IPV6.run("-S", "OUTPUT")
    except IptablesError as exc:
        if not quiet:
            _say_once(
                logging.WARNING,
                f"iptables guard: IPv6 is not guarded ({exc}); the kernel's RSTs from "
                "aiotcp's free range ports go out over IPv6, ports aiotcp holds stay silent",
            )
        return [IPV4]
    return [IPV4, IPV6]


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
        self.tables: list[Xtables] = []  # the families with our rules, set by install

    def _prepare_socket(self, sock: socket.socket) -> None:
        listen_filtered(sock)

    def _install(self) -> None:
        families = tables()
        with _locked():
            for n, table in enumerate(families):
                try:
                    table.install_chain(self.chain, self.reservations.ephemeral_range)
                except BaseException:
                    # All families or none.  A family's chain is one transaction, so
                    # the failed one has nothing to undo.
                    for done in families[:n]:
                        with contextlib.suppress(IptablesError, PermissionError):
                            done.delete_chain(self.chain)
                    raise
        self.tables = families

    def _uninstall(self) -> None:
        with _locked():
            for table in self.tables:
                table.delete_chain(self.chain)

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
            try:
                for table in self.tables:
                    table.run("-A", *_sport_rule(self.chain, port, port))
            except BaseException:
                self._unguard_port(port)
                raise

    def _unguard_port(self, port: int) -> None:
        if not self._in_range(port) and self._installed:
            for table in self.tables:
                table.run("-D", *_sport_rule(self.chain, port, port), check=False)


@dataclass(frozen=True)
class ChainStatus:
    """One aiotcp process's rules, as ``guard status`` shows them."""

    chain: str
    pid: int
    alive: bool
    rules: list[str]
    """Each prefixed with its command (``iptables -A ...``, ``ip6tables -A ...``)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _status(families: list[Xtables]) -> list[ChainStatus]:
    chains = dict.fromkeys(chain for table in families for chain in table.process_chains())
    result = []
    for chain in chains:
        pid = int(chain[len(CHAIN_PREFIX) :].split("-")[0])
        rules = [f"{table.name} {rule}" for table in families for rule in table.rules(chain)]
        result.append(ChainStatus(chain, pid, _pid_alive(pid), rules))
    return result


def status() -> list[ChainStatus]:
    """Every aiotcp chain in this network namespace, of either family, and whether
    its process lives."""
    return _status(tables(quiet=True))


def top_rules() -> list[str]:
    """Rules outside the per-process chains, prefixed with their command."""
    return [f"{table.name} {rule}" for table in tables(quiet=True) for rule in table.top_rules()]


def cleanup(*, everything: bool = False) -> list[str]:
    """Remove chains of dead processes (or all of them) from both families; returns
    the chains removed.

    This is the answer to SIGKILL: no exit handler runs then, so the rules stay
    until this is called (``python -m aiotcp guard cleanup``).
    """
    families = tables(quiet=True)
    removed = []
    with _locked():
        for st in _status(families):
            if everything or not st.alive:
                for table in families:
                    table.delete_chain(st.chain)
                removed.append(st.chain)
        for table in families:
            if everything or not table.process_chains():
                table.delete_chain(f"{CHAIN_PREFIX}0")  # also drops an orphaned top chain
    return removed
