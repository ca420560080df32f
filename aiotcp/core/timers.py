"""Named deadlines as data (smoltcp's ``Timer`` enum, aioquic's ``get_timer``).

A connection holds at most one deadline per ``TimerName``; the asyncio driver only
ever sees the earliest one (``next_deadline``).  Keeping them as data makes them
visible in ``Connection.info()`` and trivial to assert on in tests.
"""

from __future__ import annotations

import enum


class TimerName(enum.StrEnum):
    RETRANSMIT = "retransmit"
    """RFC 6298 retransmission timer (also SYN / SYN-ACK retransmission)."""
    PERSIST = "persist"
    """RFC 9293 §3.8.6.1 zero-window probe timer."""
    DELAYED_ACK = "delayed_ack"
    """RFC 5681 §4.2 / RFC 9293 §3.8.6.3 delayed ACK."""
    KEEPALIVE = "keepalive"
    """RFC 9293 §3.8.4 keepalive idle / probe interval."""
    FIN_WAIT_2 = "fin_wait_2"
    """Linux ``tcp_fin_timeout`` for an orphaned FIN_WAIT_2."""
    TIME_WAIT = "time_wait"
    """RFC 9293 §3.6: 2*MSL in TIME_WAIT."""
    USER_TIMEOUT = "user_timeout"
    """RFC 9293 §3.8.3 / RFC 5482 user timeout."""
    LOSS_PROBE = "loss_probe"
    """RFC 8985 §7 tail loss probe (PTO): about two RTTs, well before the RTO."""
    REORDER = "reorder"
    """RFC 8985 §6.2 step 5: re-check for loss once the reordering window has passed."""
    PACING = "pacing"
    """The next paced frame may leave (Linux's pacing hrtimer): the flush resumes."""


class Timers:
    """A tiny table of armed deadlines (absolute times in seconds)."""

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: dict[TimerName, float] = {}

    def set(self, name: TimerName, at: float) -> None:
        self._at[name] = at

    def set_if_idle(self, name: TimerName, at: float) -> None:
        """Arm ``name`` unless it is already running (RFC 6298 §5.1)."""
        if name not in self._at:
            self._at[name] = at

    def cancel(self, name: TimerName) -> None:
        at = self._at
        at.pop(name, None)
        if not at:
            # Gives back the table a dict keeps after its last key goes: an idle
            # connection (every timer cancelled) then holds an empty dict's 64 bytes.
            at.clear()

    def cancel_all(self) -> None:
        self._at.clear()

    def get(self, name: TimerName) -> float | None:
        return self._at.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._at

    def next_deadline(self) -> float | None:
        return min(self._at.values()) if self._at else None

    def expired(self, now: float) -> list[TimerName]:
        """Names due at ``now``, earliest first; they stay armed until handled."""
        due = [(at, name) for name, at in self._at.items() if at <= now]
        due.sort(key=lambda item: item[0])
        return [name for _, name in due]

    def remaining(self, now: float) -> dict[str, float]:
        """Seconds left per armed timer, for ``info()`` (like ``ss -o``)."""
        return {name.value: max(at - now, 0.0) for name, at in self._at.items()}
