"""Initial sequence numbers per RFC 6528: ``ISN = M + F(4-tuple, secret)``.

``M`` is a 4-microsecond clock (RFC 9293 §3.4.1) derived from the caller's ``now``
so the core stays deterministic; ``F`` is a keyed hash (BLAKE2s, keyed with the
injected secret) of the connection's addresses and ports, so an off-path attacker
cannot predict the ISN of a connection it cannot see (RFC 6528 §3).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from aiotcp.core.seq import MASK

#: RFC 9293 §3.4.1: the ISN clock ticks every 4 microseconds.
TICKS_PER_SECOND: Final = 250_000


#: Keyed hash states by (secret, personalisation): copying one skips hashing the key
#: block again, which was most of a hash's cost on every connection.
_KEYED: Final[dict[tuple[bytes, bytes], Any]] = {}


def _keyed_hash(secret: bytes, *parts: bytes, person: bytes = b"isn") -> int:
    base = _KEYED.get((secret, person))
    if base is None:
        if len(_KEYED) >= 16:  # a few stacks' secrets, not one per connection
            _KEYED.clear()
        base = hashlib.blake2s(key=secret[:32], digest_size=4, person=person[:8])
        _KEYED[(secret, person)] = base
    h = base.copy()
    for part in parts:
        h.update(part)
    return int.from_bytes(h.digest(), "big")


def _tuple_bytes(local: tuple[bytes, int], remote: tuple[bytes, int]) -> bytes:
    local_part = bytes(local[0]) + local[1].to_bytes(2, "big")
    return local_part + bytes(remote[0]) + remote[1].to_bytes(2, "big")


def initial_sequence_number(
    secret: bytes, local: tuple[bytes, int], remote: tuple[bytes, int], now: float
) -> int:
    """RFC 6528 §3: ``ISN = M + F(localip, localport, remoteip, remoteport, secretkey)``."""
    clock = int(now * TICKS_PER_SECOND)
    return (clock + _keyed_hash(secret, _tuple_bytes(local, remote))) & MASK


def timestamp_offset(secret: bytes, local: tuple[bytes, int], remote: tuple[bytes, int]) -> int:
    """Per-connection random TSval offset (RFC 7323 §7.1) so timestamps leak no uptime."""
    return _keyed_hash(secret, _tuple_bytes(local, remote), person=b"tsoff")


def keyed_hash24(secret: bytes, *parts: bytes) -> int:
    """24-bit keyed hash, used by SYN cookies (``listener``)."""
    return _keyed_hash(secret, *parts, person=b"cookie") & 0xFFFFFF
