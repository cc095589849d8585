"""The SVG chart helpers: accessible markup, escaped text, and the edge cases (no data,
one point, zeros) drawn without dividing by zero."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from userdesk.dashboard.charts import (
    Bar,
    Series,
    column_groups,
    horizontal_bars,
    nice_ceiling,
    stacked_area,
)

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own markup, under test
    # An image, or a figure where it holds links (an image holds nothing a keyboard reaches).
    has_links = root.find(".//svg:a", NS) is not None
    assert root.get("role") == ("figure" if has_links else "img")
    title_id, desc_id = root.get("aria-labelledby", "").split()
    assert root.find(f"svg:title[@id='{title_id}']", NS) is not None
    assert root.find(f"svg:desc[@id='{desc_id}']", NS) is not None
    return root


def _polygon_points(root: ET.Element) -> list[list[tuple[float, float]]]:
    return [
        [tuple(map(float, p.split(","))) for p in poly.get("points", "").split()]  # type: ignore[misc]
        for poly in root.findall("svg:polygon", NS)
    ]


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (-3, 1), (1, 1), (7, 10), (180, 200), (2100, 2500), (0.3, 0.5)]
)
def test_the_axis_ends_at_a_round_number_at_or_above_the_largest_value(
    value: float, ceiling: float
) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_no_data_draws_a_message_instead_of_a_chart() -> None:
    for svg in (
        stacked_area("a", "T", "D", [], [Series("Active", [], "#000")], empty="Nothing yet"),
        column_groups("b", "T", "D", [], [], empty="Nothing yet"),
        horizontal_bars("c", "T", "D", [], empty="Nothing yet"),
    ):
        root = _parsed(svg)
        assert [t.text for t in root.findall("svg:text", NS)] == ["Nothing yet"]


def test_stacked_series_sit_on_each_other_and_one_point_spans_the_width() -> None:
    svg = stacked_area(
        "s", "Users", "Desc", ["2026-11-01"], [Series("A", [2], "#111"), Series("B", [3], "#222")]
    )
    root = _parsed(svg)
    lower, upper = _polygon_points(root)
    assert len({x for x, _ in lower}) == 2  # a band from the left edge to the right
    # The upper series starts where the lower one ends.
    assert min(y for _, y in lower) == max(y for _, y in upper)
    assert "B: 3 on 2026-11-01" in svg


def test_all_zero_values_and_many_points_stay_inside_the_box() -> None:
    labels = [f"d{i}" for i in range(90)]
    svg = stacked_area("z", "T", "D", labels, [Series("A", [0] * 90, "#111")], height=200)
    root = _parsed(svg)
    ys = [y for points in _polygon_points(root) for _, y in points]
    assert all(0 <= y <= 200 for y in ys)
    assert {t.text for t in root.findall("svg:text", NS)} >= {"d0", "d45", "d89"}


def test_text_is_escaped_and_bars_link_to_their_page() -> None:
    svg = horizontal_bars(
        "h",
        "Most <at> risk",
        "D & more",
        [
            Bar("Zoë <script>", 80, text="80%", href="/console/users/7"),
            Bar("B", 0, text="0%"),
        ],
        maximum=100,
    )
    root = _parsed(svg)
    assert "<script>" not in svg
    link = root.find("svg:a", NS)
    assert link is not None
    assert link.get("href") == "/console/users/7"
    widths = [float(r.get("width", "")) for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert widths[0] > 0
    assert widths[1] == 0


def test_columns_are_labelled_with_their_values() -> None:
    svg = column_groups(
        "c",
        "Levels",
        "D",
        ["run 1", "run 2"],
        [Series("Low", [5, 0], "#0a0"), Series("High", [1, 12], "#a00")],
    )
    root = _parsed(svg)
    assert len(root.findall("svg:rect", NS)) == 4
    texts = [t.text for t in root.findall("svg:text", NS)]
    assert texts.count("12") == 1
    assert "run 2" in texts
    heights = [float(r.get("height", "")) for r in root.findall("svg:rect", NS)]
    assert heights[3] > heights[0] > heights[2] == 0  # 12 > 5 > 0, to scale
    assert re.search(r"run 2, High: 12", svg)
