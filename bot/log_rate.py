"""A log filter that lets one line per condition through per interval, and counts the rest.

Hostile or broken clients can make the same warning thousands of times a second (a
refused signature, a connection over the cap, a send that fails for every user); the
attack run of issue 15 wrote 35 MB of log in 20 s. A condition is a logger, a level and
a message template (`record.msg` before its arguments), so "reply to %s not sent: %s" is
one condition whoever it concerns. The first record of a condition passes; the next
ones within `interval` seconds are dropped and counted, and the first one after the
interval says how many were dropped. `flush()` logs the counts still held (at shutdown).

Records below `level` (INFO and DEBUG by default) always pass: they are rare at the
levels production runs at, and whoever turns DEBUG on wants every line.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimit"]

_KEYS = 2000  # conditions remembered; the least recent are forgotten first


@dataclass
class _Seen:
    since: float  # when the last record of this condition passed
    dropped: int = 0


class RateLimit(logging.Filter):
    """One record per (logger, level, template) per `interval` seconds, at `level` and above."""

    def __init__(self, interval: float = 10.0, *, level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.level = level
        self._clock = clock
        self._seen: OrderedDict[tuple[str, int, str], _Seen] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return True
        key = (record.name, record.levelno, str(record.msg)[:300])
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self.interval:
            seen.dropped += 1
            return False
        if seen is not None and seen.dropped:
            record.msg = f"{record.getMessage()} [{seen.dropped} more like this in the last {now - seen.since:.0f} s not logged]"
            record.args = None
        self._seen[key] = _Seen(now)
        self._seen.move_to_end(key)
        while len(self._seen) > _KEYS:
            self._seen.popitem(last=False)
        return True

    def flush(self, logger: logging.Logger) -> None:
        """Log what is still counted (a flood that stopped before its interval ended)."""
        held = [(key, seen.dropped) for key, seen in self._seen.items() if seen.dropped]
        self._seen.clear()
        for (name, level, template), dropped in held:  # each line its own condition: none is dropped
            logger.log(level, f"{dropped} more record(s) of {name} like {template[:120]!r} not logged")

    def install(self) -> None:
        """First on every handler of the root logger (every logger's records pass those),
        so it sees templates before `bot.logs` formats and redacts them."""
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.filters.insert(0, self)

    def remove(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)
