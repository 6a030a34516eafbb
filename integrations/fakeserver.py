"""The small HTTP base of the vendors' fake servers (``integrations/<vendor>/fake.py``).

A fake runs on a background thread of the test or the local run (``port=0`` picks a free port)
or on its own (``python -m integrations.<vendor>.fake``). A vendor's fake subclasses
``FakeServer`` and writes only what the vendor's API means: ``respond(request) -> FakeResponse``.
Starting, stopping, reading the body and writing the answer are here, once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self, cast

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class FakeRequest:
    method: str
    target: str  # the path with its query string
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class FakeResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, payload: Any, *, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> FakeResponse:
        """``payload`` as JSON (None: no body)."""
        body = b"" if payload is None else json.dumps(payload).encode()
        return cls(status, body, content_type, headers or {})


class FakeServer:
    """An in-process HTTP server on a background thread that answers with ``respond``."""

    name: ClassVar[str] = "fake"  # the serving thread's name, and the ``Server`` header

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def respond(self, request: FakeRequest) -> FakeResponse:
        raise NotImplementedError

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the fake is already running")
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        # A short poll interval keeps stop() quick; the fake idles on loopback, so the cost is nil.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def serve(fake: FakeServer, banner: str) -> None:
    """Run ``fake`` in the foreground until interrupted (the fakes' ``python -m`` entry)."""
    fake.start()
    print(banner.format(fake=fake), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    @property
    def fake(self) -> FakeServer:
        return cast(_Server, self.server).fake

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return f"{self.fake.name}/1"

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._send(FakeResponse.json(400 if length < 0 else 413, {"error": "bad Content-Length"}))
            return
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(self.fake.respond(FakeRequest(self.command, self.path, headers, body)))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _send(self, response: FakeResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
