"""Prometheus metrics of one running server, in a registry of its own (tests run many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


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
