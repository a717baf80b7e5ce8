"""Guatemala's clock: a fixed UTC-6, no daylight saving time."""

from __future__ import annotations

from datetime import datetime

from bot.clock import GUATEMALA, local_day, today


def test_local_day_is_guatemalan() -> None:
    assert local_day(1_767_247_200.0) == "2026-01-01"  # 2026-01-01 06:00 UTC = midnight in Guatemala
    assert local_day(1_767_247_199.0) == "2025-12-31"


def test_today_is_the_date_in_guatemala() -> None:
    before = datetime.now(GUATEMALA).date()
    assert today() in {before, datetime.now(GUATEMALA).date()}  # the same day unless midnight passed between
