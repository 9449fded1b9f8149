"""An independent Toxiproxy client against `wsm fault-proxy`.

Drives the API with toxiproxy-python (PyPI, written for Shopify's
Toxiproxy) and checks each toxic's effect with a WebSocket client on
Python's `websockets`, through the proxy to an echo server. Prints one
JSON object of what it saw; the Rust test (tests/fault_proxy.rs) judges
it.

    python3 toxiproxy_client.py API_PORT UPSTREAM_HOST:PORT
"""

import json
import sys
import time

import requests
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound
from websockets.sync.client import connect

TIMEOUT = 5


def main():
    api_port = int(sys.argv[1])
    upstream = sys.argv[2]
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", api_port)
    seen = {"running": server.running()}
    seen["version"] = json.loads(server.version())["version"]

    proxy = server.create(upstream=upstream, name="feed")
    url = "ws://%s/" % proxy.listen
    seen["listen"] = proxy.listen

    def echo_ms(text):
        with connect(url, open_timeout=TIMEOUT) as ws:
            start = time.monotonic()
            ws.send(text)
            answer = ws.recv(timeout=TIMEOUT)
            return answer, (time.monotonic() - start) * 1000

    seen["plain"] = echo_ms("plain")[0]

    # 300 ms on the way back.
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    seen["toxics"] = sorted(proxy.toxics().keys())
    seen["latency_toxic"] = proxy.get_toxic("latency_downstream").attributes
    seen["delayed"], seen["delayed_ms"] = echo_ms("delayed")
    proxy.destroy_toxic("latency_downstream")

    # Nothing passes towards the server: the opening handshake never ends.
    proxy.add_toxic(
        name="silence", type="timeout", stream="upstream", attributes={"timeout": 0}
    )
    try:
        with connect(url, open_timeout=1):
            seen["silenced"] = "connected"
    except TimeoutError:
        seen["silenced"] = "timed out"
    proxy.destroy_toxic("silence")
    seen["after_silence"] = echo_ms("after silence")[0]

    # Disabled: connections refused; enabled again: echoes.
    with proxy.down():
        try:
            with connect(url, open_timeout=TIMEOUT):
                seen["disabled"] = "connected"
        except ConnectionRefusedError:
            seen["disabled"] = "refused"
    seen["enabled_again"] = echo_ms("enabled again")[0]

    # What the proxy cannot do, and what does not exist.
    try:
        proxy.add_toxic(type="poison")
        seen["poison"] = "accepted"
    except InvalidToxic as e:
        seen["poison"] = json.loads(e.args[0])
    again = requests.post(
        "http://127.0.0.1:%d/proxies" % api_port,
        json={"name": "feed", "upstream": upstream},
        timeout=TIMEOUT,
    )
    seen["duplicate_status"] = again.status_code
    try:
        APIConsumer.get("/proxies/nowhere")
        seen["unknown"] = "found"
    except NotFound as e:
        seen["unknown"] = json.loads(e.args[0])

    # Reset removes every toxic; destroy removes the proxy.
    proxy.add_toxic(type="bandwidth", attributes={"rate": 100})
    seen["before_reset"] = sorted(proxy.toxics().keys())
    server.reset()
    seen["after_reset"] = sorted(proxy.toxics().keys())
    proxy.destroy()
    seen["proxies_at_end"] = sorted(server.proxies().keys())

    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
