"""Fails the test run if any log line, from any test, contains a raw email address or phone number.

Loaded from tests/conftest.py (``pytest_plugins``). A handler on the root logger records every
record's formatted message (with its traceback) for the whole session; at the end, lines that
look like an address (comms.core.logs.looks_personal) are printed and the run fails.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from comms.core.logs import looks_personal


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.count = 0
        self.offenders: list[tuple[str, str, list[str]]] = []  # (test, line, matches)
        self.current_test = "(outside a test)"
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            line = f"{record.name} {record.msg!r} {record.args!r}"
        found = looks_personal(line)
        with self._guard:
            self.count += 1
            if found:
                self.offenders.append((self.current_test, line, found))


RECORDER = RecordingHandler()


def _install() -> None:
    root = logging.getLogger()
    if RECORDER not in root.handlers:
        root.addHandler(RECORDER)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _install()  # in case a test re-ran logging.config
    RECORDER.current_test = item.nodeid
    yield
    RECORDER.current_test = "(outside a test)"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not RECORDER.offenders:
        if reporter is not None:
            reporter.write_line(f"\nlog check: {RECORDER.count} log record(s), none with an address")
        return
    lines = [f"{len(RECORDER.offenders)} log line(s) contain something that looks like an address:"]
    for test, line, found in RECORDER.offenders[:50]:
        lines.append(f"  {test}: {found!r} in {line[:300]!r}")
    text = "\n".join(lines)
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "raw addresses in logs", red=True)
        reporter.write_line(text)
    else:
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
