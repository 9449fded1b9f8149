"""An independent TLS WebSocket echo peer for wsm's tests (Python
`websockets` with Python's `ssl`, that is OpenSSL).

    tls_echo.py CERT KEY [--client-ca FILE] [--protocol NAME ...]

Listens on 127.0.0.1 on a port the system chooses, with the certificate
and key given; with --client-ca, requires a client certificate that CA
signed; with --protocol, speaks those subprotocols (choosing, as
`websockets` does, the first of its own list that the client offers).
Prints `listening PORT`, echoes every message, exits when stdin closes.
"""

import argparse
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("--client-ca")
    parser.add_argument("--protocol", action="append")
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.client_ca)
    async with serve(
        echo, "127.0.0.1", 0, ssl=context, subprotocols=args.protocol
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
