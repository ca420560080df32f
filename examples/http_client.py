"""Fetch a URL over aiotcp (HTTP/1.1, Content-Length or read-to-close bodies).

    sudo python examples/http_client.py http://198.18.0.2:8000/file.bin [-o out]

Prints the status line, the body size and its SHA-256.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import urllib.parse

import aiotcp


async def fetch(url: str) -> tuple[str, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    port = parts.port or 80
    reader, writer = await aiotcp.open_connection(parts.hostname, port)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: aiotcp-example\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in head[1:] if ln)
    }
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    writer.close()
    await writer.wait_closed()
    return head[0], headers, body


async def main() -> None:
    parser = argparse.ArgumentParser(description="aiotcp HTTP client")
    parser.add_argument("url")
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    status, _headers, body = await fetch(args.url)
    print(status)
    print(f"{len(body)} bytes sha256={hashlib.sha256(body).hexdigest()}")
    if args.output:
        with open(args.output, "wb") as f:
            f.write(body)


if __name__ == "__main__":
    asyncio.run(main())
