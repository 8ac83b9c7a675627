#!/usr/bin/env python3
"""A WebSocket echo server for the benchmark's round-trip figure (any path; text and
binary frames up to 125 bytes, as hubbench.py sends). Usage: echo.py PORT"""

import asyncio
import base64
import hashlib
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


async def serve(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    key = next((l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
                if l.lower().startswith(b"sec-websocket-key:")), None)
    if key is None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()
        return
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(6, 1, 1)  # TCP_NODELAY
    try:
        while True:
            b0, b1 = await reader.readexactly(2)
            n = b1 & 0x7F
            mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(n)))
            if b0 & 0x0F == 8:
                break
            writer.write(bytes([b0, n]) + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
