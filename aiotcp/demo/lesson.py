"""Plumbing for the lesson examples: two hosts, an aiotcp stack on each, a narrator.

Each side of a lesson runs its own event loop and aiotcp stack in a thread that
is moved into its host's network namespace, so one script shows both ends of a
connection.  Every state transition is printed with a timestamp, and each side
leaves a pcap (``lesson-<name>-a.pcap``, ``-b.pcap``) for Wireshark or
``python -m aiotcp plot``.  A lesson runs over IPv4, or over IPv6 with ``--ipv6``
(``python examples/lesson_close.py [PCAP_DIR] [--ipv6]``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver
from aiotcp.io import route
from aiotcp.io.packet import format_endpoint
from aiotcp.plot import Seen, read_pcap
from aiotcp.stack import Stack
from aiotcp.testing.netns import Host, two_hosts
from aiotcp.testing.scripted import tcpdump_line

T = TypeVar("T")


@dataclass
class Lesson:
    name: str
    a: Host
    b: Host
    pcap_dir: Path
    family: str = "ipv4"
    t0: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, text: str) -> None:
        with self.lock:
            print(f"[{time.monotonic() - self.t0:7.3f}s] {text}", flush=True)

    def address(self, host: Host) -> str:
        """``host``'s address in the lesson's family."""
        return host.address_of(self.family)

    def pcap(self, host: Host) -> str:
        return str(self.pcap_dir / f"lesson-{self.name}-{host.name}.pcap")

    def observer(self, host: Host) -> Callable[[ConnectionDriver, State, State], None]:
        def show(driver: ConnectionDriver, old: State, new: State) -> None:
            if old is State.CLOSED and new is State.LISTEN:
                return  # a listener's child being born, not a transition on the wire
            (lip, lport), (rip, rport) = driver.conn.local, driver.conn.remote
            self.say(
                f"host {host.name.upper()} {format_endpoint(lip, lport)} <-> "
                f"{format_endpoint(rip, rport)}  {old.value} -> {new.value}"
            )

        return show

    def captured(self, host: Host) -> list[Seen]:
        """Every segment ``host``'s stack sent and received, from its pcap."""
        return read_pcap(self.pcap(host))

    @staticmethod
    def show(segments: list[Seen]) -> None:
        """Print segments the way ``tcpdump -n -S`` does."""
        for s in segments:
            src, dst = _packed(s.src), _packed(s.dst)
            print("   ", tcpdump_line(src, s.seg.src_port, dst, s.seg.dst_port, s.seg))

    def play(
        self,
        server: Callable[[Stack], Awaitable[Any]],
        client: Callable[[Stack], Awaitable[Any]],
        *,
        timeout: float = 15.0,
        **stack_options: Any,
    ) -> None:
        """The usual lesson: ``server`` on host B, then ``client`` on host A; wait for both."""
        serving = self.run_on(self.b, server, **stack_options)
        time.sleep(0.3)  # the server is listening by then
        self.run_on(self.a, client, **stack_options).result(timeout)
        serving.result(timeout)

    def run_on(
        self,
        host: Host,
        main: Callable[[Stack], Awaitable[T]],
        *,
        narrate: bool = True,
        **stack_options: Any,
    ) -> concurrent.futures.Future[T]:
        """Run ``main(stack)`` on a fresh loop and stack inside ``host``, in a thread;
        ``narrate`` prints that stack's state transitions."""
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        async def wrapper() -> T:
            async with Stack(pcap=self.pcap(host), **stack_options) as stack:
                if narrate:
                    stack.state_observers.append(self.observer(host))
                return await main(stack)

        def thread() -> None:
            try:
                with host.entered():
                    result.set_result(asyncio.run(wrapper()))
            except BaseException as exc:  # handed to the caller through the future
                result.set_exception(exc)

        threading.Thread(target=thread, name=f"lesson-{host.name}", daemon=True).start()
        return result


def _packed(address: str) -> bytes:
    return socket.inet_pton(route.family_of(address), address)


def lesson_args(argv: list[str] | None = None) -> tuple[str, bool]:
    """A lesson's command line: ``[PCAP_DIR] [--ipv6]``."""
    args = sys.argv[1:] if argv is None else argv
    ipv6 = "--ipv6" in args
    rest = [arg for arg in args if arg != "--ipv6"]
    return (rest[0] if rest else "."), ipv6


@contextlib.contextmanager
def lesson(
    name: str, title: str, pcap_dir: str | Path = ".", *, ipv6: bool = False
) -> Iterator[Lesson]:
    """Build two hosts for a lesson; the pcaps stay in ``pcap_dir`` afterwards."""
    with two_hosts("lesson", ipv6=ipv6) as (a, b):
        les = Lesson(name, a, b, Path(pcap_dir), "ipv6" if ipv6 else "ipv4")
        print(f"== {title} ==")
        print(f"host A {les.address(a)}   host B {les.address(b)}")
        yield les
        written = [les.pcap(h) for h in (a, b) if Path(les.pcap(h)).exists()]
        print(f"pcaps written: {' '.join(written)}")
