"""One clear error when the process lacks the capabilities aiotcp needs."""

from __future__ import annotations

import errno
import os

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
