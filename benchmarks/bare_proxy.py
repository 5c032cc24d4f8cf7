"""The serving benchmark's control: the front door's hop with none of its work. uvicorn with the front door's own
protocol and event loop, forwarding each POST to one deployment socket with the front door's upstream client, and
nothing else (no credential, no routing, no limits, no metrics, no log).

The front door's p50 at one connection minus this one's is the front door's own work; this one's minus the direct
server's is what the hop itself costs on this machine (a second process, a Unix socket, two more wake-ups).

Run (benchmarks/serving.py starts it): python benchmarks/bare_proxy.py --port PORT --socket PATH
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.local import upstream
from common.local.asgi import Receive, Reply, Scope, Send


def proxy(socket: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        answer = await upstream.exchange(socket, upstream.scoring_request(b"".join(chunks), "application/json"))
        await Reply(answer.status, answer.body, answer.content_type).send(send)

    return app


def main() -> int:
    import uvicorn

    from common.local.connections import GuardedHttpToolsProtocol

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    uvicorn.run(
        proxy(args.socket),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http=GuardedHttpToolsProtocol,
        ws="none",
        lifespan="off",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
