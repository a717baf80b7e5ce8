"""Guatemala's clock: the days and months that reports, rollups and pseudonyms count in.

Guatemala has kept UTC-6 without daylight saving time since 2006, so a fixed offset
needs no tz database on the server. Knows nothing of storage or channels.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

__all__ = ["GUATEMALA", "local_day", "today"]

# Days are Guatemalan days, so a report's "Tuesday" is the one staff lived through.
GUATEMALA = timezone(timedelta(hours=-6), "America/Guatemala")


def local_day(at: float) -> str:
    """The Guatemalan date (YYYY-MM-DD) of a unix time."""
    return datetime.fromtimestamp(at, GUATEMALA).date().isoformat()


def today() -> date:
    """Today in Guatemala."""
    return datetime.now(GUATEMALA).date()
