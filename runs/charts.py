"""Small self-contained SVG charts (no plotting stack, no network): grouped bars and lines."""

import html
import math
from typing import Dict, List, Sequence, Tuple

COLOURS = ("#3465a4", "#e67e22", "#4e9a06", "#75507b", "#cc0000")
_WIDTH, _LEFT, _ROW = 900, 260, 18
FEW_POINTS = 3  # a series this short gets labelled points instead of a line


def _finite(values) -> List[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _legend(keys: Sequence[str], y: int) -> str:
    items = []
    spacing = min(170, (_WIDTH - _LEFT) // max(len(keys), 1))
    for n, key in enumerate(keys):
        x = _LEFT + n * spacing
        items.append(f"<rect x='{x}' y='{y}' width='12' height='12' fill='{COLOURS[n % len(COLOURS)]}'/>"
                     f"<text x='{x + 16}' y='{y + 11}' font-size='12'>{html.escape(key)}</text>")
    return "".join(items)


def bars(rows: Dict[str, Dict[str, float]], keys: Sequence[str], title: str, marks: Sequence[Tuple[str, float]] = ()) -> str:
    """One group of horizontal bars per row, one bar per key, each labelled with its value; `marks`: labelled dashed lines (thresholds)."""
    group = len(keys) * _ROW + 10
    marks = [(label, value) for label, value in marks if isinstance(value, (int, float)) and math.isfinite(value)]
    height = 60 + group * max(len(rows), 1) + 16 * len(marks)
    top = max(_finite([*(row.get(k) for row in rows.values() for k in keys), *(value for _, value in marks)]), default=0.0) or 1.0
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{height}' font-family='sans-serif' role='img'>",
             f"<title>{html.escape(title)}</title><text x='10' y='20' font-size='14' font-weight='bold'>{html.escape(title)}</text>",
             _legend(keys, 30)]
    if not rows:
        parts.append("<text x='10' y='70' font-size='12'>no data</text>")
    for r, (name, values) in enumerate(rows.items()):
        y = 55 + r * group
        parts.append(f"<text x='10' y='{y + group / 2}' font-size='12'>{html.escape(name[:36])}</text>")
        for n, key in enumerate(keys):
            value = values.get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            length = max(0.0, (_WIDTH - _LEFT - 90) * value / top)
            by = y + n * _ROW
            parts.append(f"<rect x='{_LEFT}' y='{by}' width='{length:.1f}' height='{_ROW - 4}' fill='{COLOURS[n % len(COLOURS)]}'/>"
                         f"<text x='{_LEFT + length + 5:.1f}' y='{by + _ROW - 6}' font-size='11'>{value:.4g}</text>")
    bottom = 55 + group * max(len(rows), 1)
    for n, (label, value) in enumerate(marks):
        x = _LEFT + max(0.0, (_WIDTH - _LEFT - 90) * value / top)
        parts.append(f"<line x1='{x:.1f}' y1='45' x2='{x:.1f}' y2='{bottom + 16 * n + 4}' stroke='#cc0000' stroke-dasharray='5,3'/>"
                     f"<text x='{x + 4:.1f}' y='{bottom + 16 * n + 12}' font-size='11' fill='#cc0000'>{html.escape(label)}: {value:.4g}</text>")
    parts.append("</svg>")
    return "".join(parts)


def nice_ticks(low: float, high: float, count: int = 5) -> List[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering low..high."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _panel(xs: Sequence[float], series: Dict[str, Sequence[float]], top: int, height: int, y_from_zero: bool, mark_x, colours) -> List[str]:
    """One panel: its series on one y scale, with ticks, gridlines and the marked x."""
    left, plot_w = 70, _WIDTH - 70 - 20
    values = [v for vs in series.values() for v in _finite(vs)]
    if not values:
        return [f"<text x='{left + 10}' y='{top + 20}' font-size='12'>no values recorded</text>"]
    ticks = nice_ticks(0.0 if y_from_zero else min(values), max(values))
    low, high = ticks[0], ticks[-1]
    scale_y = lambda v: top + height * (1 - (v - low) / ((high - low) or 1.0))
    x_min, x_max = min(xs), max(xs)
    scale_x = lambda x: left + (plot_w * (x - x_min) / (x_max - x_min) if x_max > x_min else plot_w / 2)
    parts = [f"<rect x='{left}' y='{top}' width='{plot_w}' height='{height}' fill='none' stroke='#999'/>"]
    for tick in ticks:
        y = scale_y(tick)
        parts.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#ddd'/>"
                     f"<text x='{left - 5}' y='{y + 4:.1f}' font-size='10' text-anchor='end'>{tick:g}</text>")
    if mark_x is not None and x_min <= mark_x <= x_max:
        x = scale_x(mark_x)
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + height}' stroke='#555' stroke-dasharray='4 3'/>")
    for name, vals in series.items():
        kept = [(scale_x(x), scale_y(v), v) for x, v in zip(xs, vals) if isinstance(v, (int, float)) and math.isfinite(v)]
        parts.append(f"<polyline fill='none' stroke='{colours[name]}' stroke-width='2' points='{' '.join(f'{px:.1f},{py:.1f}' for px, py, _ in kept)}'/>")
        few = len(kept) <= FEW_POINTS  # no line to follow: bigger points, each with its value
        for px, py, v in kept:
            parts.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='{5 if few else 2.5}' fill='{colours[name]}'/>")
            if few:
                parts.append(f"<text x='{px + 8:.1f}' y='{py + 4:.1f}' font-size='12' fill='{colours[name]}'>{v:.4g}</text>")
    return parts


def training_chart(xs: Sequence[float], panels: Dict[str, Dict[str, Sequence[float]]], title: str, best_x=None,
                   from_zero: Sequence[str] = ()) -> str:
    """Stacked panels over shared epochs, each titled and on its own y scale with ticks and gridlines; `best_x` marked.

    Panels named in `from_zero` start their y axis at 0 (a metric's scale), the others at their data.
    """
    panel_h, gap = 170, 50
    names = [name for panel in panels.values() for name in panel]
    colours = {name: COLOURS[n % len(COLOURS)] for n, name in enumerate(names)}
    height = 60 + len(panels) * (panel_h + gap) + 24
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{height}' font-family='sans-serif' role='img'>",
             f"<title>{html.escape(title)}</title><text x='10' y='20' font-size='14' font-weight='bold'>{html.escape(title)}</text>",
             _legend(names, 30)]
    if len(xs) < 1:
        parts.append("<text x='70' y='90' font-size='12'>no epochs recorded</text></svg>")
        return "".join(parts)
    step = max(1, math.ceil(len(xs) / 20))  # at most about 20 x labels
    for n, (panel_title, series) in enumerate(panels.items()):
        top = 60 + gap - 20 + n * (panel_h + gap)
        parts.append(f"<text x='70' y='{top - 6}' font-size='12' font-weight='bold'>{html.escape(panel_title)}</text>")
        parts += _panel(xs, series, top, panel_h, panel_title in from_zero, best_x, colours)
        x_min, x_max, plot_w = min(xs), max(xs), _WIDTH - 90
        for x in list(xs)[::step]:
            px = 70 + (plot_w * (x - x_min) / (x_max - x_min) if x_max > x_min else plot_w / 2)
            parts.append(f"<text x='{px:.1f}' y='{top + panel_h + 14}' font-size='10' text-anchor='middle'>{x:g}</text>")
    note = f" (dashed: epoch {best_x:g}, the weights kept)" if best_x is not None else ""
    parts.append(f"<text x='{_WIDTH / 2}' y='{height - 8}' font-size='11' text-anchor='middle'>epoch{html.escape(note)}</text></svg>")
    return "".join(parts)


def histogram_panels(histograms: Dict[str, Dict[str, Sequence[Tuple[float, float, float]]]], splits: Sequence[str], title: str) -> str:
    """One small panel per feature: each split's share of rows per bucket as a line over the bucket middles.

    `histograms[feature][split]` holds (low, high, share) buckets. Splits share a colour across panels.
    """
    columns, panel_w, panel_h, gap_x, gap_y = 3, 270, 110, 30, 60
    colours = {split: COLOURS[n % len(COLOURS)] for n, split in enumerate(splits)}
    names = sorted(histograms)
    rows = max(1, math.ceil(len(names) / columns))
    height = 60 + rows * (panel_h + gap_y)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{height}' font-family='sans-serif' role='img'>",
             f"<title>{html.escape(title)}</title><text x='10' y='20' font-size='14' font-weight='bold'>{html.escape(title)}</text>",
             _legend(list(splits), 30)]
    if not names:
        parts.append("<text x='10' y='80' font-size='12'>no numeric features profiled</text>")
    for n, name in enumerate(names):
        left, top = 40 + (n % columns) * (panel_w + gap_x), 75 + (n // columns) * (panel_h + gap_y)
        buckets = [b for split in splits for b in histograms[name].get(split, [])]
        if not buckets:
            continue
        low, high = min(b[0] for b in buckets), max(b[1] for b in buckets)
        peak = max(b[2] for b in buckets) or 1.0
        scale_x = lambda x: left + panel_w * ((x - low) / (high - low) if high > low else 0.5)
        scale_y = lambda v: top + panel_h * (1 - v / peak)
        parts.append(f"<text x='{left}' y='{top - 6}' font-size='12' font-weight='bold'>{html.escape(name)}</text>"
                     f"<rect x='{left}' y='{top}' width='{panel_w}' height='{panel_h}' fill='none' stroke='#999'/>"
                     f"<line x1='{left}' x2='{left + panel_w}' y1='{scale_y(peak / 2):.1f}' y2='{scale_y(peak / 2):.1f}' stroke='#ddd'/>"
                     f"<text x='{left - 3}' y='{top + 9}' font-size='9' text-anchor='end'>{peak:.0%}</text>"
                     f"<text x='{left - 3}' y='{top + panel_h}' font-size='9' text-anchor='end'>0</text>"
                     f"<text x='{left}' y='{top + panel_h + 12}' font-size='9'>{low:.4g}</text>"
                     f"<text x='{left + panel_w}' y='{top + panel_h + 12}' font-size='9' text-anchor='end'>{high:.4g}</text>")
        for split in splits:
            points = [f"{scale_x((b[0] + b[1]) / 2):.1f},{scale_y(b[2]):.1f}" for b in histograms[name].get(split, [])]
            if points:
                parts.append(f"<polyline fill='none' stroke='{colours[split]}' stroke-width='1.5' points='{' '.join(points)}'/>")
    parts.append("</svg>")
    return "".join(parts)
