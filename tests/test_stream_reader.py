"""aiotcp's StreamReader against asyncio's own, call for call.

The reader keeps chunks out of asyncio's buffer and leans on asyncio's private
attributes, so every behaviour here runs on both readers: a difference, or a change
in asyncio's internals, fails here first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiotcp.stream_reader import READ_AHEAD, StreamReader

READERS = [asyncio.StreamReader, StreamReader]


class PausableTransport(asyncio.ReadTransport):
    """Records the reader's flow control, as aiotcp's and asyncio's transports obey it."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.paused = True
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.paused = False
        self.calls.append("resume")


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), 5))  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", READERS)
def test_read_returns_the_stream_in_order(cls: type[asyncio.StreamReader]) -> None:
    async def main() -> list[bytes]:
        r = cls()
        r.feed_data(bytes(range(200)) * 5)
        r.feed_data(b"x" * 300)
        r.feed_eof()
        out = []
        while data := await r.read(1 << 20):
            out.append(data)
        return [b"".join(out), await r.read(10), await r.read()]

    assert run(main) == [bytes(range(200)) * 5 + b"x" * 300, b"", b""]


def test_read_hands_back_the_oldest_chunk_uncopied() -> None:
    async def main() -> None:
        r = StreamReader()
        a, b = b"a" * 1000, b"b" * 300
        r.feed_data(a)
        r.feed_data(b)
        assert await r.read(5000) is a  # not joined with b: that was a copy
        assert await r.read(100) == b"b" * 100  # longer than n: asyncio's way
        assert await r.read(5000) == b"b" * 200

    run(main)


@pytest.mark.parametrize("cls", READERS)
def test_read_smaller_than_a_chunk(cls: type[asyncio.StreamReader]) -> None:
    async def main() -> list[bytes]:
        r = cls()
        r.feed_data(b"abcdefgh")
        r.feed_data(b"ij")
        out = [await r.read(3), await r.read(3)]
        r.feed_data(b"kl")
        out.append(await r.read(100))
        r.feed_eof()
        out.append(await r.read(1))
        return out

    got = run(main)
    assert got[:2] == [b"abc", b"def"]
    assert b"".join(got) == b"abcdefghijkl"
    assert got[-1] == b""


@pytest.mark.parametrize("cls", READERS)
def test_readline_readuntil_readexactly_span_chunks(cls: type[asyncio.StreamReader]) -> None:
    async def main() -> list[Any]:
        r = cls()
        for piece in (b"GET / HT", b"TP/1.1\r", b"\nHost: x\r\n\r\nBODY", b"1234"):
            r.feed_data(piece)
        out: list[Any] = [await r.readline(), await r.readuntil(b"\r\n\r\n")]
        out.append(await r.readexactly(6))
        r.feed_data(b"56")
        r.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as e:
            await r.readexactly(5)
        out.append(e.value.partial)
        out.append(r.at_eof())
        return out

    assert run(main) == [b"GET / HTTP/1.1\r\n", b"Host: x\r\n\r\n", b"BODY12", b"3456", True]


@pytest.mark.parametrize("cls", READERS)
def test_waiting_readers_see_data_that_arrives_later(cls: type[asyncio.StreamReader]) -> None:
    async def main() -> list[bytes]:
        r = cls()
        loop = asyncio.get_running_loop()
        for t, piece in enumerate((b"he", b"llo\nwor", b"ld", b"!")):
            loop.call_later(0.001 * (t + 1), r.feed_data, piece)
        loop.call_later(0.01, r.feed_eof)
        line = await r.readline()
        rest = await r.readexactly(3)
        return [line, rest, await r.read()]

    assert run(main) == [b"hello\n", b"wor", b"ld!"]


@pytest.mark.parametrize("cls", READERS)
def test_limit_overrun_matches_asyncio(cls: type[asyncio.StreamReader]) -> None:
    async def main() -> list[Any]:
        r = cls(limit=8)
        r.feed_data(b"0123")
        r.feed_data(b"456789abc")
        with pytest.raises(asyncio.LimitOverrunError) as e:
            await r.readuntil(b"\n")
        consumed = e.value.consumed
        r.feed_data(b"\nnext\n")
        with pytest.raises(ValueError):
            await r.readline()  # over the limit: asyncio drops through the separator
        return [consumed, await r.readline()]

    assert run(main) == [run_asyncio_consumed(), b"next\n"]


def run_asyncio_consumed() -> int:
    async def main() -> int:
        r = asyncio.StreamReader(limit=8)
        r.feed_data(b"0123456789abc")
        try:
            await r.readuntil(b"\n")
        except asyncio.LimitOverrunError as e:
            return e.consumed
        raise AssertionError("no overrun")

    return int(asyncio.run(main()))


def test_asyncios_reader_raises_before_the_bytes_that_came_first() -> None:
    """What aiotcp's reader does differently (below): asyncio's loses the bytes."""

    async def main() -> None:
        r = asyncio.StreamReader()
        r.feed_data(b"left")
        r.set_exception(ConnectionResetError("reset"))
        with pytest.raises(ConnectionResetError):
            await r.read(10)

    run(main)


def test_bytes_received_before_a_reset_are_read_before_it_is_raised() -> None:
    """A kernel socket returns the data that arrived before a RST, then ECONNRESET:
    each read method serves what it can serve whole, then the error comes."""

    async def main() -> None:
        r = StreamReader()
        r.feed_data(b"-ERR go away\r\n")
        r.feed_data(b"ab")
        r.feed_data(b"cdef")
        r.feed_data(b"tail")
        r.set_exception(ConnectionResetError("reset"))
        assert await r.readline() == b"-ERR go away\r\n"
        assert await r.readexactly(3) == b"abc"
        assert await r.readuntil(b"f") == b"def"
        with pytest.raises(ConnectionResetError):
            await r.readexactly(5)  # cannot be served whole: the error, bytes kept
        with pytest.raises(ConnectionResetError):
            await r.readline()
        assert await r.read(100) == b"tail"
        with pytest.raises(ConnectionResetError):
            await r.read(100)

    run(main)


@pytest.mark.parametrize("cls", READERS)
def test_exception_and_eof(cls: type[asyncio.StreamReader]) -> None:
    async def main() -> None:
        r = cls()
        r.set_exception(ConnectionResetError("reset"))
        with pytest.raises(ConnectionResetError):
            await r.read(10)
        r2 = cls()
        assert not r2.at_eof()
        r2.feed_data(b"z")
        r2.feed_eof()
        assert not r2.at_eof()
        assert await r2.read(5) == b"z"
        assert r2.at_eof()
        assert [line async for line in r2] == []

    run(main)


def feed_until_paused(r: asyncio.StreamReader, t: PausableTransport, chunk: int) -> int:
    """Feed ``chunk``-byte pieces until the reader pauses ``t``; the bytes fed."""
    fed = 0
    while not t.paused:
        r.feed_data(b"a" * chunk)
        fed += chunk
    return fed


def pause_point(cls: type[asyncio.StreamReader], limit: int) -> int:
    """Bytes held beyond which the reader pauses its transport.

    asyncio's: twice ``limit``.  aiotcp's holds at least ``READ_AHEAD``: with 64 KiB
    chunks, twice the default limit paused the transport in every receive batch.
    """
    if cls is StreamReader:
        return max(2 * limit, READ_AHEAD)
    return 2 * limit


@pytest.mark.parametrize("limit", [100, READ_AHEAD])
@pytest.mark.parametrize("cls", READERS)
def test_flow_control_pauses_past_the_pause_point_and_resumes_at_the_limit(
    cls: type[asyncio.StreamReader], limit: int
) -> None:
    chunk = 1000

    async def main() -> tuple[int, list[str]]:
        r = cls(limit=limit)
        t = PausableTransport()
        r.set_transport(t)
        fed = feed_until_paused(r, t, chunk)
        held = fed
        while held > limit:  # until at most the limit is left: still paused
            assert t.paused
            held -= len(await r.read(chunk // 3))
        assert not t.paused
        return fed, t.calls

    fed, calls = run(main)
    assert fed == (pause_point(cls, limit) // chunk + 1) * chunk  # the first feed past it
    assert calls == ["pause", "resume"]


@pytest.mark.parametrize(("cap", "limit", "pause_at"), [(5000, 100, 5000), (5000, 4000, 8000)])
def test_a_small_receive_buffer_caps_the_read_ahead(cap: int, limit: int, pause_at: int) -> None:
    """A connection that keeps little (``recv_buffer=``) gets a reader that keeps
    little: ``min(READ_AHEAD, receive_buffer_max)``, never below asyncio's 2 * limit."""

    class SmallBuffer(PausableTransport):
        receive_buffer_max = cap

    async def main() -> int:
        r = StreamReader(limit=limit)
        t = SmallBuffer()
        r.set_transport(t)
        return feed_until_paused(r, t, 100)

    assert run(main) == pause_at + 100


@pytest.mark.parametrize("cls", READERS)
def test_readexactly_beyond_the_pause_point_resumes_a_paused_transport(
    cls: type[asyncio.StreamReader],
) -> None:
    limit = 10
    wanted = pause_point(cls, limit) + 100
    piece = max(15, wanted // 16)

    async def main() -> tuple[bytes, list[str]]:
        r = cls(limit=limit)
        t = PausableTransport()
        r.set_transport(t)
        loop = asyncio.get_running_loop()

        def feed() -> None:
            if not t.paused:
                r.feed_data(b"b" * piece)
            loop.call_later(0.001, feed)

        feed()
        got = await r.readexactly(wanted)  # waits while paused: asyncio resumes first
        return got, t.calls

    got, calls = run(main)
    assert got == b"b" * wanted
    assert calls[:2] == ["pause", "resume"]


def test_other_buffer_types_are_copied() -> None:
    async def main() -> bytes:
        r = StreamReader()
        buf = bytearray(b"mutable")
        r.feed_data(buf)
        r.feed_data(memoryview(b"-view"))
        buf[:] = b"changed"
        r.feed_eof()
        return await r.read()

    assert run(main) == b"mutable-view"


# One script of feeds and reads, replayed on both readers and checked against a model
# of the stream: every result is the stream's next bytes, a line ends at its first
# newline, an exact read is exact; read(n) may return fewer bytes than asyncio's
# (whole chunks), never more than n and never nothing while bytes wait.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("read"), st.integers(1, 60)),
        st.tuples(st.just("exactly"), st.integers(0, 30)),
        st.tuples(st.just("line"), st.just(0)),
    ),
    max_size=40,
)


async def replay(cls: type[asyncio.StreamReader], ops: list[tuple[str, Any]]) -> list[Any]:
    r = cls(limit=1 << 16)
    unread = bytearray()  # the model: what the stream holds
    out: list[Any] = []
    for op, arg in ops:
        if op == "feed":
            r.feed_data(arg)
            unread += arg
            continue
        if op == "read" and unread:
            data = await r.read(arg)
            assert 0 < len(data) <= arg
        elif op == "exactly" and len(unread) >= arg:
            data = await r.readexactly(arg)
            assert len(data) == arg
        elif op == "line" and b"\n" in unread:
            data = await r.readline()
            assert data.endswith(b"\n") and data.count(b"\n") == 1
        else:
            continue  # it would wait for bytes that never come
        assert unread.startswith(data)
        del unread[: len(data)]
        out.append((op, data))
    r.feed_eof()
    rest = await r.read()
    assert rest == unread and r.at_eof()
    out.append(("rest", rest))
    return out


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_same_bytes_as_asyncio(ops: list[tuple[str, Any]]) -> None:
    theirs = asyncio.run(replay(asyncio.StreamReader, ops))
    ours = asyncio.run(replay(StreamReader, ops))
    assert b"".join(d for _, d in ours) == b"".join(d for _, d in theirs)
