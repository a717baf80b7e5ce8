"""Inline SVG charts: well-formed, escaped, and honest about their numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from bot.report.charts import columns, hbars


def titles(svg: str) -> list[str]:
    return [t.text or "" for t in ElementTree.fromstring(svg).iter("title")]


def test_stacked_columns_carry_every_value() -> None:
    svg = columns(["1 mar", "2 mar"], [("WhatsApp", [3, 0]), ("Telegram", [1, 2])], title="Mensajes")
    assert titles(svg) == ["Mensajes", "1 mar · WhatsApp: 3", "1 mar · Telegram: 1", "2 mar · Telegram: 2"]
    assert "WhatsApp" in svg and "Telegram" in svg  # the legend


def test_percent_columns_show_shares() -> None:
    svg = columns(["d"], [("a", [1]), ("b", [3])], title="t", percent=True)
    assert "d · a: 1 (25 %)" in titles(svg) and "d · b: 3 (75 %)" in titles(svg)


def test_labels_are_escaped_and_empty_data_is_drawn() -> None:
    svg = hbars([("<b>K'iche' & más</b>", 2)], title="x < y")
    root = ElementTree.fromstring(svg)
    assert root.find("title") is not None and "<b>" not in svg
    ElementTree.fromstring(columns([], [], title="nada"))
    ElementTree.fromstring(hbars([], title="nada"))
    ElementTree.fromstring(columns(["a"], [("s", [0])], title="ceros", percent=True))
