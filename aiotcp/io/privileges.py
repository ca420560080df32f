"""One clear error when the process lacks the capabilities aiotcp needs."""

from __future__ import annotations

import errno
import os
import socket

HINT = (
    "aiotcp needs CAP_NET_RAW (raw sockets) and, with the default iptables guard, "
    "CAP_NET_ADMIN (firewall rules). Run as root, or grant the interpreter both: "
    'sudo setcap cap_net_raw,cap_net_admin+ep "$(readlink -f "$(which python3)")". '
    "With guard='socket' only CAP_NET_RAW is needed."
)


class MissingPrivilegeError(PermissionError):
    """Raised instead of a bare EPERM so the message says what to do."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EPERM, f"{what}: {HINT}")


def is_permission_error(exc: OSError) -> bool:
    return exc.errno in (errno.EPERM, errno.EACCES)


def has_effective_root() -> bool:
    return os.geteuid() == 0


CAP_NET_ADMIN = 12
CAP_NET_RAW = 13


def missing_capabilities(guard: str) -> list[str]:
    """The capabilities this process lacks for a stack with ``guard``, read from
    /proc before anything is attempted: a program run by ``python -m aiotcp run``
    should hear this at once, not at its first connection."""
    wanted = {"CAP_NET_RAW": CAP_NET_RAW}
    if guard == "iptables":
        wanted["CAP_NET_ADMIN"] = CAP_NET_ADMIN
    try:
        with open("/proc/self/status") as status:
            line = next(ln for ln in status if ln.startswith("CapEff:"))
        effective = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError, IndexError):
        return []  # no /proc: the stack's own check will tell
    return [name for name, bit in wanted.items() if not effective >> bit & 1]


def raw_socket(family: int, proto: int, what: str) -> socket.socket:
    """``socket(family, SOCK_RAW, proto)``, with the one clear message when the
    process lacks CAP_NET_RAW."""
    try:
        return socket.socket(family, socket.SOCK_RAW, proto)
    except OSError as exc:
        if isinstance(exc, PermissionError) or is_permission_error(exc):
            raise MissingPrivilegeError(f"cannot open {what}") from exc
        raise
