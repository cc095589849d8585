"""Charts as inline SVG, drawn on the server: pure functions from figures to markup.

Every chart is an <svg role="img"> (a "figure" where its bars are links) named by its
<title> and described by its <desc>, and carries its values as text (axis labels, bar
labels), so that it reads without the picture; the page also gives each chart's figures
as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 12, 28
PALETTE = ("#206bc4", "#2fb344", "#f59f00", "#d63939", "#667382", "#ae3ec9", "#17a2b8")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | float]
    color: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    color: str = PALETTE[0]
    text: str | None = None  # the value as shown; str(value) when None
    href: str | None = None


def _number(value: float) -> str:
    """A coordinate with at most one decimal."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _shown(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _open(
    chart_id: str, title: str, desc: str, width: int, height: int, role: str = "img"
) -> list[str]:
    """The chart's opening: an image, or a figure where it holds links (an image holds
    nothing a keyboard can reach)."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ud-chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="{role}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def _empty(parts: list[str], width: int, height: int, message: str) -> str:
    parts.append(
        f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" '
        f'fill="#667382">{escape(message)}</text></svg>'
    )
    return "".join(parts)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above VALUE (1 for <= 0)."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def stacked_area(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    empty: str = "No data yet",
) -> str:
    """Series stacked on each other over LABELS (the x axis), bottom series first.

    One point is drawn as a band across the whole width; no points give EMPTY.
    """
    parts = _open(chart_id, title, desc, width, height)
    count = len(labels)
    if count == 0 or not series:
        return _empty(parts, width, height, empty)
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    top = nice_ceiling(max(totals))
    inner_w = width - PAD_LEFT - PAD_RIGHT
    inner_h = height - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (inner_w * i / (count - 1) if count > 1 else 0)

    def y(value: float) -> float:
        return PAD_TOP + inner_h * (1 - value / top)

    xs = [x(i) for i in range(count)] if count > 1 else [PAD_LEFT, PAD_LEFT + inner_w]
    for tick in (0, top / 2, top):
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{_number(y(tick))}" '
            f'y2="{_number(y(tick))}" stroke="#dce1e7" stroke-width="1"/>'
            f'<text x="{PAD_LEFT - 6}" y="{_number(y(tick) + 4)}" text-anchor="end" '
            f'font-size="11" fill="#667382">{_shown(tick)}</text>'
        )
    below = [0.0] * count
    for s in series:
        above = [below[i] + s.values[i] for i in range(count)]
        low = below if count > 1 else below * 2
        high = above if count > 1 else above * 2
        points = [f"{_number(px)},{_number(y(v))}" for px, v in zip(xs, high, strict=True)]
        points += [
            f"{_number(px)},{_number(y(v))}" for px, v in reversed(list(zip(xs, low, strict=True)))
        ]
        last = s.values[count - 1]
        parts.append(
            f'<polygon points="{" ".join(points)}" fill="{escape(s.color)}" '
            f'fill-opacity="0.85" stroke="{escape(s.color)}">'
            f"<title>{escape(s.name)}: {_shown(last)} on {escape(labels[-1])}</title></polygon>"
        )
        below = above
    shown = {0, count - 1} | ({count // 2} if count > 2 else set())
    for i in sorted(shown):
        anchor = "start" if i == 0 else "end" if i == count - 1 else "middle"
        px = xs[0] if i == 0 else xs[-1] if i == count - 1 else x(i)
        parts.append(
            f'<text x="{_number(px)}" y="{height - 8}" text-anchor="{anchor}" '
            f'font-size="11" fill="#667382">{escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_groups(
    chart_id: str,
    title: str,
    desc: str,
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    empty: str = "No data yet",
) -> str:
    """Vertical bars: for each of GROUPS (the x axis), one bar per series, side by side,
    each labelled with its value."""
    parts = _open(chart_id, title, desc, width, height)
    if not groups or not series:
        return _empty(parts, width, height, empty)
    top = nice_ceiling(max(max(s.values) for s in series))
    inner_w = width - PAD_LEFT - PAD_RIGHT
    inner_h = height - PAD_TOP - PAD_BOTTOM - 14
    slot = inner_w / len(groups)
    bar = max(slot * 0.8 / len(series), 1.0)
    base = PAD_TOP + 14 + inner_h
    parts.append(
        f'<line x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{_number(base)}" '
        f'y2="{_number(base)}" stroke="#dce1e7"/>'
    )
    for g, group in enumerate(groups):
        left = PAD_LEFT + g * slot + slot * 0.1
        for k, s in enumerate(series):
            value = s.values[g]
            h = inner_h * value / top
            bx = left + k * bar
            parts.append(
                f'<rect x="{_number(bx)}" y="{_number(base - h)}" width="{_number(bar - 1)}" '
                f'height="{_number(h)}" fill="{escape(s.color)}">'
                f"<title>{escape(group)}, {escape(s.name)}: {_shown(value)}</title></rect>"
            )
            if len(groups) * len(series) <= 24:
                parts.append(
                    f'<text x="{_number(bx + bar / 2)}" y="{_number(base - h - 3)}" '
                    f'text-anchor="middle" font-size="10" fill="#1d273b">{_shown(value)}</text>'
                )
        parts.append(
            f'<text x="{_number(PAD_LEFT + g * slot + slot / 2)}" y="{height - 8}" '
            f'text-anchor="middle" font-size="11" fill="#667382">{escape(group)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(
    chart_id: str,
    title: str,
    desc: str,
    bars: Sequence[Bar],
    *,
    width: int = WIDTH,
    row: int = 26,
    label_width: int = 200,
    maximum: float | None = None,
    empty: str = "No data yet",
) -> str:
    """One labelled bar per row, longest first as given, each with its value written at
    its end; a bar with an href links there. MAXIMUM is the full length (the largest
    value when None)."""
    height = max(row * len(bars), row) + 4
    role = "figure" if any(b.href for b in bars) else "img"
    parts = _open(chart_id, title, desc, width, height, role)
    if not bars:
        return _empty(parts, width, height, empty)
    top = maximum if maximum and maximum > 0 else nice_ceiling(max(b.value for b in bars))
    inner_w = width - label_width - 64
    for i, b in enumerate(bars):
        y = 2 + i * row
        length = max(inner_w * min(b.value, top) / top, 0.0)
        text = b.text if b.text is not None else _shown(b.value)
        label = escape(b.label if len(b.label) <= 30 else b.label[:29] + "…")
        item = (
            f'<text x="{label_width - 8}" y="{y + row * 0.65:.1f}" text-anchor="end" '
            f'font-size="12" fill="#1d273b">{label}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{_number(length)}" '
            f'height="{row - 8}" fill="{escape(b.color)}"/>'
            f'<text x="{_number(label_width + length + 6)}" y="{y + row * 0.65:.1f}" '
            f'font-size="12" fill="#1d273b">{escape(text)}</text>'
        )
        if b.href:
            item = (
                f'<a href="{escape(b.href)}"><title>{escape(b.label)}: {escape(text)}</title>'
                f"{item}</a>"
            )
        parts.append(item)
    parts.append("</svg>")
    return "".join(parts)
