"""Run a coroutine on a chosen event loop (asyncio's default or uvloop).

Interop tests run every scenario on both loops; ``asyncio.Runner`` (3.11+) takes a
loop factory, so each run gets a fresh loop and a fresh aiotcp stack, and the
stack is closed before the loop is (no firewall rule outlives a test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopKind = Literal["asyncio", "uvloop"]
LOOP_KINDS: tuple[LoopKind, ...] = ("asyncio", "uvloop")


def loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(
    main: Callable[[], Awaitable[T]],
    kind: LoopKind = "asyncio",
    *,
    timeout: float = 60.0,
    **stack_options: Any,
) -> T:
    """Run ``main()`` under a fresh loop with an aiotcp stack that closes with it."""
    from aiotcp.stack import Stack

    async def wrapper() -> T:
        async with Stack(**stack_options):
            return await asyncio.wait_for(main(), timeout)

    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(wrapper())
