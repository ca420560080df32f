"""Worker processes that share their servers' ports: a program run N times.

A server that listens with ``reuse_port=True`` shares its port with every other
process of its user that does (``aiotcp.port_group``), so running the same
program in N processes is all it takes to use N cores, as with the kernel's
``SO_REUSEPORT``.  This forks them and waits: ``serve_workers`` for a coroutine
function, ``python -m aiotcp run --workers N`` for a program.  Each worker is a
process of its own, with its own stack, guard chain and group slot; one that
dies takes only its own connections with it.

The workers are forked before any of them creates a stack (the parent has no
loop), and they get SIGTERM when the parent dies, so none outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1


def fork_workers(count: int, work: Callable[[], object]) -> int:
    """Run ``work()`` in ``count`` forked processes and wait for all of them.

    SIGINT and SIGTERM to the parent reach each worker as SIGTERM (aiotcp's exit
    hooks then remove its guard).  Returns 0, or the first failing worker's exit
    status (128 + the signal for one that was killed).
    """
    if count < 1:
        raise ValueError(f"workers must be at least 1, not {count}")
    sys.stdout.flush()
    sys.stderr.flush()
    children: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        for pid in children:  # the live ones: a reaped pid may be someone else's now
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                _worker(work, previous)
            children.append(pid)
        status = 0
        while children:
            pid, raw = os.waitpid(-1, 0)
            if pid not in children:
                continue  # a child of the caller's own
            children.remove(pid)
            code = os.waitstatus_to_exitcode(raw)
            code = 128 - code if code < 0 else code
            status = status or code
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(work: Callable[[], object], handlers: dict[signal.Signals, Any]) -> None:
    """In a forked worker: the signals as they were, death with the parent, then
    ``work``; never returns into the parent's code."""
    code = 0
    try:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl
            os._exit(1)
        work()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve_workers(
    main: Callable[[], Coroutine[Any, Any, object]],
    workers: int | None = None,
    **run_options: Any,
) -> int:
    """``aiotcp.run(main(), **run_options)`` in each of ``workers`` processes (one
    per CPU by default); ``main`` listens with ``reuse_port=True`` to share its
    ports.  Returns when all have ended, with ``fork_workers``'s status."""
    from aiotcp.dropin import run

    return fork_workers(workers or os.cpu_count() or 1, lambda: run(main(), **run_options))
