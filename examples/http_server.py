"""A small HTTP/1.1 server on aiotcp that curl and browsers can fetch from.

    sudo python examples/http_server.py --port 8080 [--requests N]

GET /            a greeting
GET /bytes/N     N deterministic bytes (for transfer tests)
Keep-alive is supported; "Connection: close" is honoured.
"""

from __future__ import annotations

import argparse
import asyncio
import random

import aiotcp

STATUS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def body_for(path: str) -> tuple[int, bytes, str]:
    if path == "/":
        return 200, b"Hello from aiotcp: TCP in user space, on asyncio.\n", "text/plain"
    if path.startswith("/bytes/") and path[7:].isdigit() and int(path[7:]) <= 1 << 30:
        return 200, random.Random(0).randbytes(int(path[7:])), "application/octet-stream"
    return 404, b"not found\n", "text/plain"


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: asyncio.Queue[int]
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split()
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            if len(parts) != 3:
                code, body, ctype = 400, b"bad request\n", "text/plain"
            elif parts[0] not in ("GET", "HEAD"):
                code, body, ctype = 405, b"method not allowed\n", "text/plain"
            else:
                code, body, ctype = body_for(parts[1])
            close = headers.get("connection", "").lower() == "close" or parts[-1] == "HTTP/1.0"
            writer.write(
                (
                    f"HTTP/1.1 {code} {STATUS[code]}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nServer: aiotcp\r\n"
                    f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
                ).encode()
            )
            if parts and parts[0] != "HEAD":
                writer.write(body)
            await writer.drain()
            served.put_nowait(code)
            if close:
                break
    finally:
        writer.close()
        await writer.wait_closed()


async def main() -> None:
    parser = argparse.ArgumentParser(description="aiotcp HTTP/1.1 server")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--requests", type=int, default=0, help="exit after N requests")
    args = parser.parse_args()
    served: asyncio.Queue[int] = asyncio.Queue()
    server = await aiotcp.start_server(lambda r, w: handle(r, w, served), args.host, args.port)
    print(f"serving HTTP on {args.host or '*'}:{server.port}", flush=True)
    async with server:
        if not args.requests:
            await server.serve_forever()
        for _ in range(args.requests):
            print("served", await served.get(), flush=True)
        await asyncio.sleep(0.2)  # let the last response's close finish


if __name__ == "__main__":
    asyncio.run(main())
