"""What the benchmark's applications share: a readiness line and an optional profile.

The applications stay ordinary asyncio programs, so ``python -m aiotcp run`` runs
them unchanged; this module only lets bench/aiohttp_bench.py check what it is
measuring (the loop class, and whether aiotcp took the loop's TCP over) and ask
for a cProfile of the whole process without a second copy of each application.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import sys
from collections.abc import Iterator

PROFILE_ENV = "AIOTCP_BENCH_PROFILE"
"""If set: a path; the application runs under cProfile and writes its stats there."""


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """``<loop class> <kernel|aiotcp> [compiled|sources]``: the bench refuses to
    measure a mislabelled run, and records whether aiotcp's mypyc build ran (its
    sources run instead, several times slower, when one was edited since the build).

    aiotcp is looked up in ``sys.modules`` rather than imported: a plain run must not
    load it, and ``python -m aiotcp run`` has loaded it before the program starts.
    """
    name = f"{type(loop).__module__}.{type(loop).__qualname__}"
    dropin = sys.modules.get("aiotcp.dropin")
    if dropin is None or not dropin.is_installed(loop):
        return f"{name} kernel"
    build = sys.modules.get("aiotcp._compiled")
    return f"{name} aiotcp {'compiled' if getattr(build, 'COMPILED', False) else 'sources'}"


def ready(extra: str = "") -> None:
    """The line the bench waits for, printed once the application listens or starts."""
    print(f"ready {describe(asyncio.get_running_loop())} {extra}".rstrip(), flush=True)


@contextlib.contextmanager
def profiled() -> Iterator[None]:
    """cProfile around the block when ``AIOTCP_BENCH_PROFILE`` names a file.

    The profile covers the thread that runs the loop, which is where aiotcp's stack,
    asyncio's TLS layer and aiohttp all run; it is written after the loop closed,
    so the stack's shutdown is in it too.
    """
    path = os.environ.get(PROFILE_ENV)
    if not path:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(path)
