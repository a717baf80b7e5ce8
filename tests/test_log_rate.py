"""The log flood limit: one line per condition per interval, and a count of the rest."""

from __future__ import annotations

import logging

import pytest

from bot.log_rate import RateLimit
from bot.logs import PrivateRecords


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured() -> list[logging.LogRecord]:
    return []


@pytest.fixture
def logger(captured: list[logging.LogRecord]) -> logging.Logger:
    """A logger of its own whose handler keeps what passes its filters, as the root's handlers do."""

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    log = logging.getLogger("tests.log_rate")
    log.handlers = [Keep()]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log


def test_one_line_per_condition_per_interval_then_the_count(logger: logging.Logger, captured: list[logging.LogRecord]) -> None:
    clock = Clock()
    limit = RateLimit(10.0, clock=clock)
    logger.handlers[0].addFilter(limit)
    for user in range(1000):
        logger.warning("reply to %s not sent: %s", f"wa:{user}", "HTTP 503")
    logger.warning("another condition")
    clock.now = 10.5
    logger.warning("reply to %s not sent: %s", "wa:x", "HTTP 503")
    assert [r.getMessage() for r in captured] == [
        "reply to wa:0 not sent: HTTP 503",
        "another condition",
        "reply to wa:x not sent: HTTP 503 [999 more like this in the last 10 s not logged]",
    ]


def test_info_and_debug_always_pass(logger: logging.Logger, captured: list[logging.LogRecord]) -> None:
    logger.handlers[0].addFilter(RateLimit(10.0, clock=Clock()))
    for _ in range(5):
        logger.info("channel started")
        logger.debug("detail")
    assert len(captured) == 10


def test_flush_writes_the_counts_still_held(logger: logging.Logger, captured: list[logging.LogRecord]) -> None:
    limit = RateLimit(10.0, clock=Clock())
    logger.handlers[0].addFilter(limit)
    for _ in range(3):
        logger.warning("connection refused: %d open on port %d", 5, 8080)
        logger.error("WhatsApp webhook refused: %s", "busy")
    limit.flush(logger)
    messages = [r.getMessage() for r in captured]
    assert messages[2:] == [
        "2 more record(s) of tests.log_rate like 'connection refused: %d open on port %d' not logged",
        "2 more record(s) of tests.log_rate like 'WhatsApp webhook refused: %s' not logged",
    ]


def test_installed_first_it_sees_templates_before_the_privacy_filter_formats_them(captured: list[logging.LogRecord]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:]

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    handler = Keep()
    handler.addFilter(PrivateRecords())
    root.handlers = [handler]
    limit = RateLimit(10.0, clock=Clock())
    try:
        limit.install()
        assert handler.filters[0] is limit
        for phone in ("50255501234", "50255509876", "50255500000"):
            logging.getLogger("bot.channels.whatsapp").warning("reply to %s not sent", phone)
    finally:
        limit.remove()
        root.handlers = saved
    assert [r.getMessage() for r in captured] == ["reply to <id> not sent"]  # one line, and no phone number
