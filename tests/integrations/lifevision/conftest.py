"""Fixtures for the LifeVision tests: a running fake and a tiny callback collector on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from integrations.lifevision.client import LifeVisionClient
from integrations.lifevision.fake import FakeLifeVision

API_KEY = "test-api-key-0123456789"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@dataclass
class Callback:
    path: str
    headers: dict[str, str]
    body: bytes


class Collector:
    """Records every POST it receives; answers with queued statuses, then 200."""

    def __init__(self) -> None:
        self.received: list[Callback] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with collector.lock:
                    status = collector.statuses.pop(0) if collector.statuses else 200
                    if status == 200:
                        collector.received.append(
                            Callback(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/hooks/lifevision/reports") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def snapshot(self) -> list[Callback]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    collector.thread.start()
    yield collector
    collector.server.shutdown()
    collector.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeLifeVision]:
    with FakeLifeVision(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, report_delay=0.05) as server:
        yield server


@pytest.fixture
def client(fake: FakeLifeVision) -> Iterator[LifeVisionClient]:
    with LifeVisionClient(fake.base_url, API_KEY) as lv_client:
        yield lv_client
