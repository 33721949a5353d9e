"""A real HTTP server on 127.0.0.1 that replays canned responses for tests.

Each route maps a method and path to a :class:`Reply`. The server records every
request it receives, so tests can assert what was sent (and that nothing was).
A reply can be delayed, or can hang until the server stops, to test timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering; float("inf") hangs until the server stops.
    delay_s: float = 0.0
    content_type: str = "application/json"


@dataclass
class SeenRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[SeenRequest], Reply]


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Reply | Responder] = {}
        # The reply for any request no route matches; None answers 404.
        self.fallback: Reply | Responder | None = None
        self.requests: list[SeenRequest] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, reply: Reply | Responder) -> None:
        self.routes[(method.upper(), path)] = reply

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = SeenRequest(
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                server.requests.append(seen)
                route = server.routes.get((self.command, parts.path), server.fallback)
                if route is None:
                    reply = Reply(status=404, body=b'{"error": "no such route"}')
                elif isinstance(route, Reply):
                    reply = route
                else:
                    reply = route(seen)
                self._reply(reply)

            def _reply(self, reply: Reply) -> None:
                if reply.delay_s == float("inf"):
                    server._stopping.wait()
                    return
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = (
                    reply.body.encode() if isinstance(reply.body, str) else reply.body
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
