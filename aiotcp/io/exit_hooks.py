"""Run cleanups at interpreter exit and on SIGTERM.

The iptables guard changes the host; those rules must go when the process goes.
``atexit`` covers normal exit, exceptions and Ctrl-C (KeyboardInterrupt unwinds to
a normal exit).  SIGTERM's default action kills the process without ``atexit``, so
while cleanups are registered SIGTERM runs them and then dies of SIGTERM exactly as
it would have — no exception is raised into whatever code (an event loop, a
driver task) happened to be running.  SIGKILL cannot be caught:
``python -m aiotcp guard cleanup`` handles that case.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

_hooks: dict[int, Callable[[], None]] = {}
_lock = threading.Lock()
_installed = False


def _run_all() -> None:
    with _lock:
        hooks = list(_hooks.values())
        _hooks.clear()
    for hook in reversed(hooks):
        with contextlib.suppress(Exception):
            hook()


_terminating = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A second SIGTERM while the cleanups of the first run (a supervisor signals
    the process group and the parent passes it on too: ``aiotcp.workers``) must not
    cut them short: it is ignored, and the first ends the process."""
    global _terminating
    if _terminating:
        return
    _terminating = True
    _run_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def register(hook: Callable[[], None]) -> int:
    """Register ``hook``; returns a key for ``unregister``."""
    global _installed
    with _lock:
        key = id(hook)
        _hooks[key] = hook
        if not _installed:
            atexit.register(_run_all)
            main = threading.current_thread() is threading.main_thread()
            if main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
            _installed = True
    return key


def unregister(key: int) -> None:
    with _lock:
        _hooks.pop(key, None)
