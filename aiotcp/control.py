"""A running stack's control socket, so ``python -m aiotcp ss`` in another shell can see it.

A stack started with ``control=True`` (or with ``AIOTCP_CONTROL=1`` in the
environment) listens on ``/run/aiotcp/<pid>.sock``: a Unix socket, mode 0600 in a
0700 directory, so only its owner can read the table.  The protocol is one JSON
request line and one JSON reply line.  Unix sockets are not network-namespaced,
so a stack running inside a namespace is visible from the host's shell.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

CONTROL_DIR = Path(os.environ.get("AIOTCP_CONTROL_DIR", "/run/aiotcp"))


def socket_path(pid: int, index: int = 0) -> Path:
    return CONTROL_DIR / (f"{pid}.sock" if index == 0 else f"{pid}-{index}.sock")


class Observed(Protocol):
    """What the control socket reads of a stack."""

    counters: collections.Counter[str]

    def table_chunks(
        self, *, state: str | None = None, port: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The state table's rows, a chunk at a time (``Stack.table_chunks``)."""


class ControlServer:
    """Serves ``{"cmd": "connections"}`` and ``{"cmd": "counters"}`` for one stack."""

    def __init__(self, stack: Observed) -> None:
        self.stack = stack
        self.path: Path | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> Path:
        CONTROL_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(CONTROL_DIR, 0o700)
        index = 0
        while socket_path(os.getpid(), index).exists():
            index += 1
        path = socket_path(os.getpid(), index)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self.path = path
        return path

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await asyncio.wait_for(reader.readline(), 5))
            reply: Any
            if request.get("cmd") == "connections":
                await self._send_table(writer, request.get("state"), request.get("port"))
                return
            if request.get("cmd") == "counters":
                reply = {"pid": os.getpid(), "counters": dict(self.stack.counters)}
            else:
                reply = {"error": f"unknown command {request.get('cmd')!r}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send_table(
        self, writer: asyncio.StreamWriter, state: str | None, port: int | None
    ) -> None:
        """The reply ``{"pid": ..., "rows": [...]}`` written a chunk of rows at a time.

        The program this stack serves keeps running between chunks: building and
        encoding thousands of rows in one go held its loop for most of a second
        (docs/performance.md).  The filter runs first, on the connections
        themselves, so a query that matches little costs little.
        """
        try:
            chunks = self.stack.table_chunks(state=state, port=port)
            writer.write(b'{"pid": %d, "rows": [' % os.getpid())
            first = True
            for rows in chunks:
                if rows:
                    text = json.dumps(rows)[1:-1]
                    writer.write((text if first else ", " + text).encode())
                    first = False
                await writer.drain()
                await asyncio.sleep(0)  # the served program's turn
            writer.write(b"]}\n")
        except ValueError as exc:  # an unknown state name
            writer.write(json.dumps({"error": str(exc)}).encode() + b"\n")
        await writer.drain()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path = None


def query(
    path: Path, cmd: str = "connections", timeout: float = 2.0, **filters: object
) -> dict[str, Any]:
    """Ask one running stack (blocking; used by the CLI); ``filters`` are the
    ``connections`` command's ``state`` and ``port``."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"cmd": cmd, **filters}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data)
    return reply


def running_stacks() -> list[tuple[int, Path]]:
    """(pid, socket) of every stack with a control socket whose process lives."""
    found = []
    for path in sorted(CONTROL_DIR.glob("*.sock")) if CONTROL_DIR.exists() else []:
        pid = int(path.stem.split("-")[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                path.unlink()  # left by a process that died without cleaning up
            continue
        except PermissionError:
            pass
        found.append((pid, path))
    return found
