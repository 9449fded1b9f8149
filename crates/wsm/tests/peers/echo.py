"""An independent WebSocket echo peer for wsm's tests (Python `websockets`).

Listens on 127.0.0.1 on a port the system chooses and prints
`listening PORT`; echoes every message with its type; prints
`closed CODE` when a connection ends (1000 after a clean close frame,
1006 when the TCP connection ended without one). Exits when stdin closes,
so it never outlives the test that started it.
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    finally:
        await ws.wait_closed()
        print(f"closed {ws.close_code}", flush=True)


async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
