"""Name resolution and Happy Eyeballs (RFC 8305) for aiotcp's connects.

aiotcp's ``create_connection`` promises asyncio's behaviour, so this module follows
CPython 3.11's ``BaseEventLoop.create_connection`` step for step: the same shortcut
for IP literals (``_ipaddr_info``), the same address ordering
(``_interleave_addrinfos``), the same staggered start of attempts
(``asyncio.staggered``) and the same error when every attempt fails. It is our own
code, not asyncio's private helpers, which may change between Python versions.

Where asyncio 3.11 is weaker than its own intent, this module keeps the intent:
``race`` awaits cancelled attempts even when it is itself cancelled, hands every
connection it will not return to ``discard``, and lets a non-``OSError`` escape in
both modes (asyncio's staggered mode swallows it and then fails with an
``IndexError``).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["AddrInfo", "interleave", "race", "resolve"]

AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
"""One ``getaddrinfo`` answer: (family, type, proto, canonname, sockaddr)."""

T = TypeVar("T")


async def resolve(
    loop: asyncio.AbstractEventLoop,
    host: str | None,
    port: int | str | None,
    *,
    family: int = 0,
    type: int = socket.SOCK_STREAM,
    proto: int = 0,
    flags: int = 0,
) -> list[AddrInfo]:
    """The addresses to try for ``(host, port)``, as asyncio's ``_ensure_resolved``.

    An IP literal with a numeric port is answered here: resolving it needs no DNS,
    and ``loop.getaddrinfo`` would cost a trip through the default executor on every
    connect to an address. Anything else (names, service-name ports, scoped IPv6
    such as ``fe80::1%eth0``, ``host=None``) goes to ``loop.getaddrinfo``, never to
    a blocking call on the loop. ``host=None`` is not special: as in asyncio,
    ``getaddrinfo(None, port)`` without ``AI_PASSIVE`` answers the *loopback*
    addresses, so a ``local_addr=(None, 0)`` binds to loopback.
    """
    info = _literal(host, port, family, type, proto)
    if info is not None:
        return [info]
    infos: list[AddrInfo] = list(
        await loop.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)
    )
    if not infos:
        raise OSError("getaddrinfo() returned empty list")
    return infos


def _literal(
    host: str | None, port: int | str | None, family: int, type: int, proto: int
) -> AddrInfo | None:
    """What ``getaddrinfo`` would answer for an IP literal, or None to ask it.

    Mirrors asyncio's ``_ipaddr_info``: only stream and datagram sockets (whose
    protocol getaddrinfo would fill in as TCP or UDP), only ports that are numbers
    (a service name like ``"http"`` needs the services database). An IPv6 zone
    index (``fe80::1%eth0``) also goes to getaddrinfo, which turns it into a scope
    id: Linux's ``inet_pton`` rejects it (asyncio tests for ``%`` because other
    systems' might not).
    """
    if host is None or proto not in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None or port == "":
        number = 0
    else:
        try:
            number = int(port)
        except (TypeError, ValueError):
            return None
    families = [socket.AF_INET, socket.AF_INET6] if family == socket.AF_UNSPEC else [family]
    for af in families:
        try:
            socket.inet_pton(af, host)
        except OSError:
            continue
        if af == socket.AF_INET6:
            return af, type, proto, "", (host, number, 0, 0)
        return af, type, proto, "", (host, number)
    return None


def interleave(infos: Sequence[AddrInfo], first_family_count: int = 1) -> list[AddrInfo]:
    """Alternate address families, RFC 8305 §4, as asyncio's ``_interleave_addrinfos``.

    A host whose first family is broken (typically IPv6 without a route) must not
    make the client wait out a timeout per address of that family before it tries
    the other one. Families keep the order of their first appearance (the resolver's
    preference, RFC 6724), and within a family the resolver's order is kept;
    ``first_family_count`` addresses of the first family go before the first of
    another family (values below 1 act as 1).
    """
    by_family: dict[int, list[AddrInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    if not groups:
        return []
    head = groups[0][: max(first_family_count - 1, 0)]
    del groups[0][: len(head)]
    rounds = itertools.zip_longest(*groups)
    return head + [info for info in itertools.chain.from_iterable(rounds) if info is not None]


async def race(
    attempts: Sequence[Callable[[], Awaitable[T]]],
    delay: float | None,
    *,
    discard: Callable[[T], None],
) -> T:
    """The result of the first attempt to succeed; Happy Eyeballs, RFC 8305 §5.

    With ``delay`` None the attempts run one after another, each once the previous
    one failed (asyncio without ``happy_eyeballs_delay``). With a delay, attempt
    i+1 starts when attempt i fails or ``delay`` seconds after attempt i started,
    whichever comes first (asyncio's ``staggered_race``), so a silent address costs
    ``delay`` rather than a connect timeout.

    Only ``OSError`` means "this address did not work, try the next one"; any other
    exception (a bug, a cancellation from inside an attempt) ends the race and
    propagates, as in asyncio's sequential mode. When every attempt failed, the
    error is asyncio 3.11's: the only one, the first if all read the same, else
    ``OSError("Multiple exceptions: ...")`` in the order the attempts started.

    Sequential attempts run in the caller's task, as in asyncio; staggered ones run
    as tasks. Those that lose are cancelled and awaited before ``race`` returns or
    raises, also when ``race`` itself is cancelled, so no task outlives it (unless
    ``race`` is cancelled again while it waits: then they finish on their own and
    are settled, as below, when they do). An attempt that
    succeeded but whose result will not be returned (it finished in the same loop
    iteration as the winner, it ignored its cancellation, or ``race`` was cancelled)
    is passed to ``discard`` exactly once: a connection is either returned or handed
    to ``discard``, never leaked. ``discard`` must not raise.
    """
    if not attempts:
        raise ValueError("race() needs at least one attempt")
    if delay is None:
        errors: list[OSError] = []
        for attempt in attempts:
            try:
                return await attempt()
            except OSError as exc:
                errors.append(exc)
        raise _combined(errors)
    return await _staggered(attempts, delay, discard)


async def _staggered(
    attempts: Sequence[Callable[[], Awaitable[T]]],
    delay: float,
    discard: Callable[[T], None],
) -> T:
    """``race`` with attempts as tasks, each started on a failure or a timeout."""
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[T]] = []
    running: set[asyncio.Task[T]] = set()
    decided: asyncio.Task[T] | None = None  # a success, or a failure that isn't an OSError
    start_next = True
    deadline = 0.0
    try:
        while decided is None:
            if start_next and len(started) < len(attempts):
                task = loop.create_task(_call(attempts[len(started)]))
                started.append(task)
                running.add(task)
                deadline = loop.time() + delay
            start_next = False
            if not running:
                break  # every attempt started and failed
            timeout = max(deadline - loop.time(), 0.0) if len(started) < len(attempts) else None
            done, running = await asyncio.wait(
                running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            start_next = not done  # the delay ran out
            # Tasks finishing in the same iteration: the earliest-started one decides.
            for task in sorted(done, key=started.index):
                if _os_error(task) is None:
                    decided = task
                    break
                start_next = start_next or task is started[-1]
        if decided is not None:
            return decided.result()  # the winner's connection, or the exception
        raise _combined([exc for task in started if (exc := _os_error(task)) is not None])
    finally:
        won = decided if decided is not None and _succeeded(decided) else None
        await _stop(started, won, discard)


async def _call(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` in a task (which needs a coroutine, not any awaitable)."""
    return await attempt()


def _succeeded(task: asyncio.Task[T]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _os_error(task: asyncio.Task[T]) -> OSError | None:
    """The OSError a finished attempt failed with: a connect failure, try the next."""
    if task.cancelled():
        return None
    exc = task.exception()
    return exc if isinstance(exc, OSError) else None


async def _stop(
    tasks: list[asyncio.Task[T]], winner: asyncio.Task[T] | None, discard: Callable[[T], None]
) -> None:
    """Cancel and await every attempt but ``winner``; discard what they won anyway.

    Every task is settled exactly once, now if it is done, else when it finishes
    (if we are cancelled while waiting for it): settling retrieves its exception,
    so asyncio does not log "exception was never retrieved", and passes a success
    that ``race`` will not return to ``discard``.
    """

    def settle(task: asyncio.Task[T]) -> None:
        if task is not winner and _succeeded(task):
            discard(task.result())

    for task in tasks:
        if task is not winner:
            task.cancel()
    try:
        running = [task for task in tasks if not task.done()]
        if running:
            await asyncio.wait(running)
    except BaseException:
        # Cancelled while the losers wind down: the caller won't get the winner.
        if winner is not None:
            discard(winner.result())
        raise
    finally:
        for task in tasks:
            if task.done():
                settle(task)
            else:
                task.add_done_callback(settle)


def _combined(errors: list[OSError]) -> OSError:
    """The exception asyncio 3.11's create_connection raises when no attempt worked.

    A single error, or several that read the same (every address refused), is raised
    as is, so its ``errno`` survives; otherwise one ``OSError`` (without errno) lists
    them all, so the user sees why each address failed.
    """
    if all(str(exc) == str(errors[0]) for exc in errors):
        return errors[0]
    return OSError(f"Multiple exceptions: {', '.join(str(exc) for exc in errors)}")
