"""Prometheus metrics of one running server, in a registry of its own (tests run many),
and `SendWatch`, which reads them to tell /healthz when a channel's sends keep failing."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "SendWatch"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter("pregunta_messages_in", "Messages received", ["channel", "lang"], registry=r)
        self.messages_out = Counter("pregunta_messages_out", "Messages sent", ["channel", "lang"], registry=r)
        self.answers = Counter("pregunta_answers", "Replies by kind", ["kind"], registry=r)
        self.not_sure = Counter("pregunta_not_sure", "Replies where the matcher was not sure", registry=r)
        self.latency = Histogram(
            "pregunta_reply_latency_seconds",
            "Time from message received to reply ready",
            ["channel"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.errors = Counter("pregunta_errors", "Errors while handling or sending", ["channel"], registry=r)
        self.send_retries = Counter("pregunta_send_retries", "Send attempts retried", ["channel"], registry=r)
        self.send_failures = Counter("pregunta_send_failures", "Replies given up after retries", ["channel"], registry=r)
        self.inbox_fallback = Counter(
            "pregunta_inbox_fallback", "Messages answered without the durable inbox (database failing)", ["channel"], registry=r
        )
        self.inbox_pending = Gauge("pregunta_inbox_pending", "Messages accepted and not yet answered, every process", registry=r)
        self.usage_events = Gauge("pregunta_usage_events", "Usage log events by state since start", ["state"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class SendWatch:
    """Which channels gave up most of their sends in the last `window` seconds.

    Reads the counters the channels already keep (messages sent, replies given up), so
    the channels need no hook: each `observe()` (every /healthz and /metrics request)
    keeps a sample at most every `every` seconds, and `failing()` compares the newest
    counts with the oldest sample still in the window (or the newest one before it). A
    channel is failing when it gave up `at_least` replies or more, and more than it
    sent messages: Telegram or Meta down, a revoked token, no network.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        window: float = 300.0,
        every: float = 5.0,
        at_least: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.window = window
        self.every = every
        self.at_least = at_least
        self._clock = clock
        self._samples: deque[tuple[float, dict[str, tuple[float, float]]]] = deque()

    def observe(self) -> None:
        now = self._clock()
        if self._samples and now - self._samples[-1][0] < self.every:
            return
        self._samples.append((now, self._totals()))
        # keep one sample at or before the window's start as the baseline
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def failing(self) -> dict[str, tuple[int, int, float]]:
        """channel → (replies given up, messages sent, over how many seconds), for the failing ones."""
        self.observe()
        if not self._samples:
            return {}
        since, before = self._samples[0]
        now = self._totals()
        seconds = self._clock() - since
        found: dict[str, tuple[int, int, float]] = {}
        for channel, (sent, failed) in now.items():
            sent_before, failed_before = before.get(channel, (0.0, 0.0))
            gave_up, went = int(failed - failed_before), int(sent - sent_before)
            if gave_up >= self.at_least and gave_up > went:
                found[channel] = (gave_up, went, seconds)
        return found

    def _totals(self) -> dict[str, tuple[float, float]]:
        """channel → (messages sent, replies given up) since the start."""
        sent: defaultdict[str, float] = defaultdict(float)
        failed: defaultdict[str, float] = defaultdict(float)
        for family in self.metrics.messages_out.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    sent[sample.labels["channel"]] += sample.value
        for family in self.metrics.send_failures.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    failed[sample.labels["channel"]] += sample.value
        return {channel: (sent[channel], failed[channel]) for channel in set(sent) | set(failed)}
