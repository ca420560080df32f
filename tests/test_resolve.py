"""Name resolution and Happy Eyeballs behave as asyncio 3.11's create_connection.

No root and no network: IP literals, ``localhost`` (from /etc/hosts), the services
database, and stub getaddrinfo answers. Every test runs on its own loop that fails
the test if asyncio reports an unhandled error ("exception was never retrieved",
"Task was destroyed but it is pending") or if a task outlives the test body.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from asyncio.base_events import _interleave_addrinfos, _ipaddr_info  # type: ignore[attr-defined]
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiotcp.resolve import AddrInfo, interleave, race, resolve

T = TypeVar("T")

INET, INET6 = socket.AF_INET, socket.AF_INET6
STREAM, TCP = socket.SOCK_STREAM, socket.IPPROTO_TCP


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh loop; fail on leftover tasks or unhandled errors."""
    reports: list[dict[str, Any]] = []

    async def guarded() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reports.append(ctx))
        result = await asyncio.wait_for(main(), 5)
        await asyncio.sleep(0)  # let callbacks scheduled by the last step run
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return result

    # Collect the test's garbage, so asyncio reports tasks freed in a reference cycle;
    # freezing what existed before keeps the collection to this test's objects (fast).
    gc.freeze()
    try:
        result = asyncio.run(guarded())
        gc.collect()
    finally:
        gc.unfreeze()
    assert reports == []
    return result


class Stub:
    """A loop.getaddrinfo replacement that records its calls and answers ``answer``."""

    def __init__(self, answer: list[AddrInfo] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answer = answer

    async def __call__(self, host: Any, port: Any, **kwargs: Any) -> list[AddrInfo]:
        self.calls.append((host, port, kwargs))
        if self.answer is None:
            pytest.fail(f"getaddrinfo({host!r}, {port!r}) called")
        return self.answer


def stubbed(stub: Stub) -> asyncio.AbstractEventLoop:
    loop = asyncio.get_running_loop()
    loop.getaddrinfo = stub  # type: ignore[method-assign, assignment]
    return loop


# resolve ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 80, (INET, STREAM, TCP, "", ("127.0.0.1", 80))),
        ("10.1.2.3", "8080", (INET, STREAM, TCP, "", ("10.1.2.3", 8080))),
        ("::1", 443, (INET6, STREAM, TCP, "", ("::1", 443, 0, 0))),
        ("2001:db8::1", None, (INET6, STREAM, TCP, "", ("2001:db8::1", 0, 0, 0))),
    ],
)
def test_an_ip_literal_needs_no_getaddrinfo(
    host: str, port: int | str | None, expected: AddrInfo
) -> None:
    async def main() -> list[AddrInfo]:
        return await resolve(stubbed(Stub()), host, port)

    assert run(main) == [expected]
    # ...and it is what getaddrinfo itself would have answered.
    assert socket.getaddrinfo(host, port, type=STREAM) == [expected]


def test_localhost_goes_through_loop_getaddrinfo() -> None:
    async def main() -> tuple[list[AddrInfo], list[tuple[Any, ...]]]:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo
        calls: list[tuple[Any, ...]] = []

        async def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return await real(*args, **kwargs)

        loop.getaddrinfo = counting  # type: ignore[method-assign]
        return await resolve(loop, "localhost", 7), calls

    infos, calls = run(main)
    assert calls == [("localhost", 7)]
    assert (INET, STREAM, TCP, "", ("127.0.0.1", 7)) in infos
    assert all(info[1] == STREAM for info in infos)


def test_a_service_name_port_is_looked_up() -> None:
    async def main() -> list[AddrInfo]:
        return await resolve(asyncio.get_running_loop(), "127.0.0.1", "http")

    assert run(main) == [(INET, STREAM, TCP, "", ("127.0.0.1", 80))]


@pytest.mark.parametrize(
    ("host", "port", "family"),
    [
        ("127.0.0.1", "http", 0),  # service name: needs the services database
        ("fe80::1%lo", 80, 0),  # zone index: inet_pton refuses it, getaddrinfo maps it
        ("127.0.0.1", 80, INET6),  # the family asked for does not match the literal
        ("example.invalid", 80, 0),
        (None, 0, 0),  # local_addr=(None, 0): asyncio asks getaddrinfo too
    ],
)
def test_everything_else_is_asked_with_the_callers_arguments(
    host: str | None, port: int | str, family: int
) -> None:
    answer: list[AddrInfo] = [(INET, STREAM, TCP, "", ("192.0.2.1", 80))]

    async def main() -> tuple[list[AddrInfo], Stub]:
        stub = Stub(answer)
        return await resolve(stubbed(stub), host, port, family=family, proto=TCP, flags=4), stub

    infos, stub = run(main)
    assert infos == answer
    assert stub.calls == [
        (host, port, {"family": family, "type": STREAM, "proto": TCP, "flags": 4})
    ]


def test_host_none_resolves_to_loopback_as_in_asyncio() -> None:
    async def main() -> tuple[list[AddrInfo], list[AddrInfo]]:
        loop = asyncio.get_running_loop()
        return await resolve(loop, None, 0), list(await loop.getaddrinfo(None, 0, type=STREAM))

    ours, getaddrinfo = run(main)
    assert ours == getaddrinfo
    assert {info[4][0] for info in ours} <= {"127.0.0.1", "::1"}


def test_an_empty_answer_is_an_error() -> None:
    async def main() -> None:
        await resolve(stubbed(Stub([])), "example.invalid", 80)

    with pytest.raises(OSError, match=r"^getaddrinfo\(\) returned empty list$"):
        run(main)


PORTS: list[int | str | None] = [0, 80, "80", "", None, "http"]
KINDS: list[tuple[int, int]] = [(STREAM, 0), (STREAM, TCP), (socket.SOCK_DGRAM, 0), (STREAM, 132)]


def test_the_literal_shortcut_matches_asyncios() -> None:
    """Where asyncio answers without getaddrinfo, so do we, with the same answer."""
    sentinel: list[AddrInfo] = [(INET, STREAM, TCP, "asked", ("192.0.2.1", 1))]
    cases: list[tuple[str, int | str | None, int, int, int]] = [
        (host, port, family, type_, proto)
        for host in ["127.0.0.1", "::1", "::ffff:1.2.3.4", "fe80::1%2", "1.2.3", "x", ""]
        for port in PORTS
        for family in [0, INET, INET6]
        for type_, proto in [*KINDS, (socket.SOCK_RAW, 0)]
    ]

    async def main() -> list[tuple[Any, ...]]:
        loop = stubbed(Stub(sentinel))
        wrong = []
        for host, port, family, type_, proto in cases:
            expected = _ipaddr_info(host, port, family, type_, proto)
            ours = await resolve(loop, host, port, family=family, type=type_, proto=proto)
            if ours != (sentinel if expected is None else [expected]):
                wrong.append((host, port, family, type_, proto, ours, expected))
        return wrong

    assert run(main) == []
    assert any(_ipaddr_info(*case) is None for case in cases)
    assert any(_ipaddr_info(*case) is not None for case in cases)


# interleave -------------------------------------------------------------------------


def addr(family: int, name: str) -> AddrInfo:
    return (family, STREAM, TCP, "", (name, 80))


A6, B6, C6 = addr(INET6, "a6"), addr(INET6, "b6"), addr(INET6, "c6")
A4, B4, C4 = addr(INET, "a4"), addr(INET, "b4"), addr(INET, "c4")


@pytest.mark.parametrize(
    ("infos", "count", "expected"),
    [
        ([A6, B6, A4, B4], 1, [A6, A4, B6, B4]),
        ([A4, A6, B6, B4], 1, [A4, A6, B4, B6]),  # the first answer's family goes first
        ([A6, B6, C6, A4, B4], 1, [A6, A4, B6, B4, C6]),
        ([A6, B6, C6, A4, B4], 2, [A6, B6, A4, C6, B4]),
        ([A6, B6, C6, A4], 3, [A6, B6, C6, A4]),
        ([A6, A4, B4, C4], 5, [A6, A4, B4, C4]),  # more than the first family has
        ([A6, B6, A4], 0, [A6, A4, B6]),  # below 1 acts as 1
        ([A4, B4, C4], 1, [A4, B4, C4]),
        ([], 1, []),
        ([], 2, []),  # asyncio's raises IndexError here; it never gets an empty list
    ],
)
def test_interleave(infos: list[AddrInfo], count: int, expected: list[AddrInfo]) -> None:
    assert interleave(infos, count) == expected


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([INET, INET6, socket.AF_UNIX]), st.integers(0, 9))),
    st.integers(-1, 6),
)
def test_interleave_matches_asyncios(pairs: list[tuple[int, int]], count: int) -> None:
    infos = [addr(family, str(n)) for family, n in pairs]
    expected = _interleave_addrinfos([*infos], count) if infos else []
    assert interleave(infos, count) == expected


# race -------------------------------------------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``: sturdier than a fixed sleep on a loaded machine."""
    while not condition():
        await asyncio.sleep(0.001)


def refused(message: str = "refused") -> OSError:
    return ConnectionRefusedError(111, message)


class Log:
    """Attempts that record when they start, end and are cancelled."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.times: dict[str, float] = {}
        self.discarded: list[str] = []

    def attempt(
        self, name: str, sleep: float | None, outcome: str | BaseException
    ) -> Callable[[], Awaitable[str]]:
        """``name`` sleeps ``sleep`` seconds (None: forever), then returns or raises."""

        async def run() -> str:
            self.events.append(f"start {name}")
            self.times[name] = asyncio.get_running_loop().time()
            try:
                await asyncio.sleep(3600 if sleep is None else sleep)
            except asyncio.CancelledError:
                self.events.append(f"cancelled {name}")
                raise
            if isinstance(outcome, BaseException):
                self.events.append(f"fail {name}")
                raise outcome
            self.events.append(f"win {name}")
            return outcome

        return run

    def discard(self, connection: str) -> None:
        self.discarded.append(connection)


def test_sequential_attempts_wait_for_the_previous_failure() -> None:
    log = Log()

    async def main() -> str:
        attempts = [
            log.attempt("a", 0.03, refused()),
            log.attempt("b", 0.0, refused()),
            log.attempt("c", 0.0, "conn c"),
            log.attempt("d", 0.0, "conn d"),
        ]
        return await race(attempts, None, discard=log.discard)

    assert run(main) == "conn c"
    assert log.events == ["start a", "fail a", "start b", "fail b", "start c", "win c"]
    assert log.discarded == []


def test_staggered_starts_the_next_after_the_delay_and_cancels_the_loser() -> None:
    log = Log()

    async def main() -> str:
        attempts = [log.attempt("a", None, "conn a"), log.attempt("b", 0.0, "conn b")]
        return await race(attempts, 0.02, discard=log.discard)

    assert run(main) == "conn b"
    assert log.events == ["start a", "start b", "win b", "cancelled a"]
    assert 0.02 * 0.9 <= log.times["b"] - log.times["a"] < 0.02 * 5  # 5: a loaded CI
    assert log.discarded == []


def test_staggered_starts_the_next_at_once_when_one_fails() -> None:
    log = Log()

    async def main() -> str:
        attempts = [log.attempt("a", 0.0, refused()), log.attempt("b", 0.0, "conn b")]
        return await race(attempts, 30.0, discard=log.discard)

    assert run(main) == "conn b"  # within wait_for's 5 s, not after 30
    assert log.events == ["start a", "fail a", "start b", "win b"]


def test_staggered_only_the_latest_failure_starts_the_next() -> None:
    """As staggered_race: b's timer runs from a's start; a failing late changes nothing."""
    log = Log()

    async def main() -> str:
        fail_a = asyncio.Event()

        async def a() -> str:
            log.events.append("start a")
            await fail_a.wait()
            log.events.append("fail a")
            raise refused()

        attempts = [a, log.attempt("b", None, "conn b"), log.attempt("c", 0.0, "conn c")]
        task = asyncio.create_task(race(attempts, 0.02, discard=log.discard))
        await until(lambda: "start b" in log.events)
        fail_a.set()
        return await task

    assert run(main) == "conn c"
    assert log.events[:3] == ["start a", "start b", "fail a"]
    assert log.times["c"] - log.times["b"] >= 0.02 * 0.9


def test_a_loser_that_ignores_its_cancellation_is_discarded_once() -> None:
    log = Log()

    async def stubborn() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)  # the connect completes as it is cancelled
        return "conn a"

    async def main() -> tuple[str, list[str]]:
        attempts = [stubborn, log.attempt("b", 0.0, "conn b")]
        winner = await race(attempts, 0.01, discard=log.discard)
        return winner, list(log.discarded)  # discarded by the time race returns

    assert run(main) == ("conn b", ["conn a"])
    assert log.discarded == ["conn a"]


def test_two_attempts_succeeding_in_the_same_iteration() -> None:
    """The earlier-started one wins; the other's connection is discarded, once."""
    log = Log()

    async def main() -> tuple[str, list[str]]:
        ready = asyncio.Event()

        def waiting(name: str) -> Callable[[], Awaitable[str]]:
            async def attempt() -> str:
                log.events.append(f"start {name}")
                await ready.wait()
                return f"conn {name}"

            return attempt

        task = asyncio.create_task(race([waiting("a"), waiting("b")], 0.0, discard=log.discard))
        await until(lambda: len(log.events) == 2)
        ready.set()
        result = await task
        return result, list(log.discarded)

    assert run(main) == ("conn a", ["conn b"])


@pytest.mark.parametrize("delay", [None, 0.0, 0.01])
def test_all_failing_with_one_message_raises_the_first(delay: float | None) -> None:
    errors = [refused(), refused(), refused()]

    async def main() -> None:
        log = Log()
        attempts = [log.attempt(str(i), 0.0, exc) for i, exc in enumerate(errors)]
        await race(attempts, delay, discard=log.discard)

    with pytest.raises(ConnectionRefusedError) as info:
        run(main)
    assert info.value is errors[0]
    assert info.value.errno == 111


@pytest.mark.parametrize("delay", [None, 0.0])
def test_all_failing_differently_lists_them_in_start_order(delay: float | None) -> None:
    async def main() -> None:
        log = Log()
        attempts = [
            log.attempt("a", 0.03, refused("a refused")),  # fails last when staggered
            log.attempt("b", 0.0, OSError(113, "b unreachable")),
            log.attempt("c", 0.01, TimeoutError("c timed out")),
        ]
        await race(attempts, delay, discard=log.discard)

    with pytest.raises(OSError) as info:
        run(main)
    assert type(info.value) is OSError
    assert str(info.value) == (
        "Multiple exceptions: [Errno 111] a refused, [Errno 113] b unreachable, c timed out"
    )


def test_a_single_failure_is_raised_as_is() -> None:
    error = refused()

    async def main() -> None:
        log = Log()
        await race([log.attempt("a", 0.0, error)], 0.01, discard=log.discard)

    with pytest.raises(ConnectionRefusedError) as info:
        run(main)
    assert info.value is error


def test_a_non_oserror_propagates_at_once_when_staggered() -> None:
    """asyncio 3.11's staggered mode swallows it (and ends in IndexError); not ours."""
    log = Log()

    async def main() -> None:
        attempts = [
            log.attempt("a", None, "conn a"),
            log.attempt("b", 0.0, TypeError("bug")),
            log.attempt("c", 0.0, "conn c"),
        ]
        await race(attempts, 0.02, discard=log.discard)

    with pytest.raises(TypeError, match="bug"):
        run(main)
    assert log.events[:3] == ["start a", "start b", "fail b"]
    assert "cancelled a" in log.events
    assert not any(event.startswith("win") for event in log.events)


def test_a_non_oserror_propagates_at_once_when_sequential() -> None:
    log = Log()

    async def main() -> None:
        attempts = [log.attempt("a", 0.0, ValueError("bug")), log.attempt("b", 0.0, "conn b")]
        await race(attempts, None, discard=log.discard)

    with pytest.raises(ValueError, match="bug"):
        run(main)
    assert log.events == ["start a", "fail a"]


@pytest.mark.parametrize("delay", [None, 0.005])
def test_cancelling_the_race_cancels_and_awaits_every_attempt(delay: float | None) -> None:
    log = Log()

    async def turns_into_oserror() -> str:
        log.events.append("start b")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # closing takes a while
            log.events.append("closed b")
            raise refused() from None  # nobody retrieves it: asyncio must not complain
        return "conn b"

    async def completes_anyway() -> str:
        log.events.append("start c")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return "conn c"

    async def main() -> None:
        before = asyncio.all_tasks()
        attempts = [log.attempt("a", None, "conn a"), turns_into_oserror, completes_anyway]
        task = asyncio.create_task(race(attempts, delay, discard=log.discard))
        await until(lambda: log.events[-1:] == ["start a" if delay is None else "start c"])
        await asyncio.sleep(0.01)  # the sequential race would have moved on by now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Every attempt has finished, and its connection was handed over, by now.
        assert asyncio.all_tasks() == before
        if delay is None:
            assert log.events == ["start a", "cancelled a"]
            assert log.discarded == []
        else:
            assert log.events[:3] == ["start a", "start b", "start c"]
            assert sorted(log.events[3:]) == ["cancelled a", "closed b"]
            assert log.discarded == ["conn c"]

    run(main)


def test_cancelled_while_the_losers_wind_down_the_winner_is_discarded() -> None:
    log = Log()

    async def main() -> None:
        closed = asyncio.Event()

        async def slow_to_cancel() -> str:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                log.events.append("closing a")
                await closed.wait()  # e.g. closing a connection politely
                log.events.append("closed a")
                raise
            return "conn a"

        attempts = [slow_to_cancel, log.attempt("b", 0.0, "conn b")]
        task = asyncio.create_task(race(attempts, 0.0, discard=log.discard))
        await until(lambda: "closing a" in log.events)  # b won; race waits for a
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert log.discarded == ["conn b"]
        closed.set()  # a finishes on its own, unawaited; nothing else is discarded
        await until(lambda: "closed a" in log.events)

    run(main)
    assert log.events == ["start b", "win b", "closing a", "closed a"]
    assert log.discarded == ["conn b"]


def test_no_attempts_is_a_programming_error() -> None:
    async def main() -> None:
        await race([], 0.1, discard=Log().discard)

    with pytest.raises(ValueError, match="at least one attempt"):
        run(main)
