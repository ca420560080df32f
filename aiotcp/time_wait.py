"""The stack's TIME-WAIT connections: bounded in number, and woken by one timer.

Two jobs, as Linux's timewait sockets do them:

- **a bound** (``max_entries``, like ``tcp_max_tw_buckets``): past it, the oldest
  TIME-WAIT connection goes early, so a flood of closes cannot grow the table
  without limit;
- **parking**: a connection in TIME-WAIT has nothing to do but wait 2MSL and
  answer the odd retransmitted FIN.  Its driver gives up its task and its timer
  handle and is *parked* here: one ``call_at`` for the earliest deadline of all
  of them wakes each in turn (``Parked.on_parked_deadline``).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Hashable
from typing import Protocol


class Parked(Hashable, Protocol):
    """What the table needs of a parked connection's driver."""

    def on_parked_deadline(self, deadline: float) -> None:
        """The deadline it was parked with has come."""


class _Wakeup:
    """One deadline in the heap; ``driver`` is None once superseded or withdrawn."""

    __slots__ = ("deadline", "driver", "order")

    def __init__(self, deadline: float, order: int, driver: Parked) -> None:
        self.deadline = deadline
        self.order = order
        self.driver: Parked | None = driver

    def __lt__(self, other: _Wakeup) -> bool:
        return (self.deadline, self.order) < (other.deadline, other.order)


class TimeWaitTable:
    """Every TIME-WAIT connection of one stack, oldest first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_entries: int) -> None:
        self.loop = loop
        self.max_entries = max_entries
        self._entries: dict[Parked, None] = {}  # insertion order is age
        self._wakeups: list[_Wakeup] = []
        self._pending: dict[Parked, _Wakeup] = {}
        self._order = 0
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, driver: Parked) -> bool:
        return driver in self._entries

    def entered(self, driver: Parked) -> Parked | None:
        """``driver`` entered TIME-WAIT; returns the oldest entry if the table is now
        over its bound: the caller ends that connection (and calls ``left``)."""
        self._entries[driver] = None
        if len(self._entries) > self.max_entries:
            return next(iter(self._entries))
        return None

    def left(self, driver: Parked) -> None:
        """``driver`` is out of TIME-WAIT (closed, reopened, or recycled)."""
        self._entries.pop(driver, None)
        wakeup = self._pending.pop(driver, None)
        if wakeup is not None:
            wakeup.driver = None

    def park(self, driver: Parked, deadline: float) -> None:
        """Wake ``driver`` at ``deadline`` (a later call replaces the earlier one: a
        retransmitted FIN restarts 2MSL)."""
        wakeup = self._pending.get(driver)
        if wakeup is not None:
            if wakeup.deadline == deadline:
                return
            wakeup.driver = None
        self._order += 1
        wakeup = self._pending[driver] = _Wakeup(deadline, self._order, driver)
        heapq.heappush(self._wakeups, wakeup)
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        heap = self._wakeups
        # asyncio may fire a timer up to a clock tick early: what is due within 1 ms is due.
        due = self.loop.time() + 0.001
        while heap and heap[0].deadline <= due:
            wakeup = heapq.heappop(heap)
            driver = wakeup.driver
            if driver is not None:
                del self._pending[driver]
                driver.on_parked_deadline(wakeup.deadline)
        if heap and self._timer is None:
            self._timer = self.loop.call_at(heap[0].deadline, self._on_timer)

    def close(self) -> None:
        self._entries.clear()
        self._wakeups.clear()
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
