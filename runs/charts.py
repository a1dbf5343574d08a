"""Small self-contained SVG charts (no plotting stack, no network): grouped bars and lines."""

import html
import math
from typing import Dict, List, Sequence

COLOURS = ("#3465a4", "#e67e22", "#4e9a06", "#75507b", "#cc0000")
_WIDTH, _LEFT, _ROW = 900, 260, 18


def _finite(values) -> List[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _legend(keys: Sequence[str], y: int) -> str:
    items = []
    for n, key in enumerate(keys):
        x = _LEFT + n * 170
        items.append(f"<rect x='{x}' y='{y}' width='12' height='12' fill='{COLOURS[n % len(COLOURS)]}'/>"
                     f"<text x='{x + 16}' y='{y + 11}' font-size='12'>{html.escape(key)}</text>")
    return "".join(items)


def bars(rows: Dict[str, Dict[str, float]], keys: Sequence[str], title: str) -> str:
    """One group of horizontal bars per row, one bar per key, each labelled with its value."""
    group = len(keys) * _ROW + 10
    height = 60 + group * max(len(rows), 1)
    top = max(_finite(row.get(k) for row in rows.values() for k in keys), default=0.0) or 1.0
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
    parts.append("</svg>")
    return "".join(parts)


def lines(xs: Sequence[float], series: Dict[str, Sequence[float]], title: str) -> str:
    """Each series on its own min..max scale (they differ in units; labels give both ends), over shared x."""
    height, left, bottom, right = 320, 60, 40, 20
    plot_w, plot_h = _WIDTH - left - right, height - 60 - bottom
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{height}' font-family='sans-serif' role='img'>",
             f"<title>{html.escape(title)}</title><text x='10' y='20' font-size='14' font-weight='bold'>{html.escape(title)}</text>",
             _legend(list(series), 30),
             f"<rect x='{left}' y='60' width='{plot_w}' height='{plot_h}' fill='none' stroke='#999'/>"]
    if len(xs) < 1:
        parts.append(f"<text x='{left + 10}' y='90' font-size='12'>no epochs recorded</text></svg>")
        return "".join(parts)
    x_min, x_max = min(xs), max(xs)
    scale_x = lambda x: left + (plot_w * (x - x_min) / (x_max - x_min) if x_max > x_min else plot_w / 2)
    for x in xs:
        parts.append(f"<text x='{scale_x(x):.1f}' y='{height - bottom + 15}' font-size='10' text-anchor='middle'>{x:g}</text>")
    for n, (name, values) in enumerate(series.items()):
        finite = _finite(values)
        if not finite:
            continue
        low, top = min(finite), max(finite)
        span = (top - low) or 1.0
        points = [f"{scale_x(x):.1f},{60 + plot_h * (1 - (v - low) / span):.1f}" for x, v in zip(xs, values) if isinstance(v, (int, float)) and math.isfinite(v)]
        colour = COLOURS[n % len(COLOURS)]
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{' '.join(points)}'/>")
        parts.append(f"<text x='{left - 5}' y='{72 + 14 * n}' font-size='10' text-anchor='end' fill='{colour}'>{top:.3g}</text>")
        parts.append(f"<text x='{left - 5}' y='{60 + plot_h - 14 * n}' font-size='10' text-anchor='end' fill='{colour}'>{low:.3g}</text>")
    parts.append(f"<text x='{left + plot_w / 2}' y='{height - 5}' font-size='11' text-anchor='middle'>epoch</text></svg>")
    return "".join(parts)
