from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from integrations.lifevision.fake import FakeLifeVision


@pytest.fixture
def fake_lifevision(settings: Any) -> Iterator[FakeLifeVision]:
    fake = FakeLifeVision(send_reports=False).start()
    settings.LIFEVISION_BASE_URL = fake.base_url
    settings.LIFEVISION_API_KEY = fake.api_key
    settings.LIFEVISION_WEBHOOK_SECRET = fake.webhook_secret
    settings.SMS_SEND_WINDOW = None  # tests of the window set their own
    # Short backoffs and probes, so retries in tests take milliseconds (windows set their own).
    settings.SEND_BACKOFF_MIN = 0.01
    settings.SEND_BACKOFF_MAX = 0.05
    settings.PROVIDER_PROBE_INTERVAL = 0.05
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def broker() -> StubBroker:
    stub = dramatiq.get_broker()
    assert isinstance(stub, StubBroker)
    stub.flush_all()
    return stub


@pytest.fixture
def run_actors(broker: StubBroker) -> Iterator[Callable[[], None]]:
    """Run every enqueued message (and what they enqueue) to the end, on a real worker."""
    worker = Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()

    def run() -> None:
        for _ in range(5):
            for queue in list(broker.queues):
                broker.join(queue, fail_fast=True)
            worker.join()

    try:
        yield run
    finally:
        worker.stop()
