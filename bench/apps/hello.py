"""aiohttp's "hello world", written as an application would write it.

    python bench/apps/hello.py PORT [uvloop]                    # the kernel's TCP
    python -m aiotcp run [--loop uvloop] bench/apps/hello.py PORT   # aiotcp's

``uvloop`` makes the program install uvloop itself (the kernel's uvloop case);
under ``aiotcp run --loop uvloop`` it is left out, since aiotcp picks the loop.
The program uses ``web.run_app``, which creates its own loop: the drop-in's
event-loop policy is what puts that loop on aiotcp.  SIGTERM stops it cleanly
(run_app's own handler), so a profile (``AIOTCP_BENCH_PROFILE``) is written.
"""

from __future__ import annotations

import sys
from typing import Any

import appkit  # bench/apps/appkit.py: the script's directory is on sys.path
from aiohttp import web

BODY = "Hello, World!"


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=BODY)


def announce(*args: Any, **kwargs: Any) -> None:
    """run_app's ``print``: called once its sites listen, inside the running loop."""
    appkit.ready()


def main() -> None:
    port = int(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
        import uvloop

        uvloop.install()
    app = web.Application()
    app.router.add_get("/", hello)
    with appkit.profiled():
        # shutdown_timeout: wrk has closed its connections by the time the bench
        # stops us; 60 s (the default) would only matter if it had not.
        web.run_app(app, host="0.0.0.0", port=port, print=announce, shutdown_timeout=2.0)


if __name__ == "__main__":
    main()
