"""STAND-IN for a rosbridge server, for the tests of the ``rosbridge`` transport only.

No rosbridge server installs on these machines (it is a ROS package with no Debian or PyPI build), so the
tests run the ``rosbridge`` transport against this small websocket server, which speaks the part of the
rosbridge v2 protocol that roslibpy's topics use: ``advertise``, ``unadvertise``, ``publish``,
``subscribe`` and ``unsubscribe``. It relays each published message to the clients subscribed to its
topic, as the real server does for its ROS graph; it has no ROS graph, services, parameters or type
checks of its own. The clients are the project's real code (roslibpy inside ``equirobot deploy`` and
``equirobot sim-robot``).

    python tests/rosbridge_standin.py <port>
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict

from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

SUBSCRIBERS: dict[str, set[WebSocketServerProtocol]] = defaultdict(set)


class Relay(WebSocketServerProtocol):
    """One client connection."""

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802,N803 (autobahn's API)
        message = json.loads(payload)
        op, topic = message.get("op"), message.get("topic", "")
        if op == "subscribe":
            SUBSCRIBERS[topic].add(self)
        elif op == "unsubscribe":
            SUBSCRIBERS[topic].discard(self)
        elif op == "publish":
            out = json.dumps({"op": "publish", "topic": topic, "msg": message["msg"]}).encode()
            for client in list(SUBSCRIBERS[topic]):
                client.sendMessage(out)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:  # noqa: N802,N803
        for clients in SUBSCRIBERS.values():
            clients.discard(self)


def main(port: int) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # before the factory, which takes the current loop
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = Relay
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port))
    print(f"rosbridge stand-in on ws://127.0.0.1:{port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
