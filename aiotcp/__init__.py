"""aiotcp: a TCP stack in Python, in user space, on asyncio.

The public names mirror asyncio's, and behave as asyncio's over the kernel do::

    reader, writer = await aiotcp.open_connection("198.18.0.2", 80)
    server = await aiotcp.start_server(handle, port=8080)

``aiotcp.run(main())`` is ``asyncio.run`` with every TCP connection of the loop
over aiotcp, for code that uses asyncio (or a library on it) unchanged.
"""

from aiotcp._compiled import COMPILED
from aiotcp.core.options import TcpOptions
from aiotcp.dropin import EventLoopPolicy, install, new_event_loop, run
from aiotcp.stack import Stack, get_stack
from aiotcp.stream_reader import StreamReader
from aiotcp.streams import (
    Server,
    connections,
    create_connection,
    create_server,
    open_connection,
    start_server,
)
from aiotcp.workers import serve_workers

__version__ = "0.1.0"

__all__ = [
    "COMPILED",
    "EventLoopPolicy",
    "Server",
    "Stack",
    "StreamReader",
    "TcpOptions",
    "connections",
    "create_connection",
    "create_server",
    "get_stack",
    "install",
    "new_event_loop",
    "open_connection",
    "run",
    "serve_workers",
    "start_server",
]
