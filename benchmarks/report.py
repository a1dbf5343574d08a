"""What every benchmark shares: its Markdown section and its chart.

Benchmarks print their numbers; they write a Markdown file (BENCHMARKS.md)
only when the command is given one with --markdown.
"""

import os
from typing import Dict, List, Sequence

from data.atomic import atomic_text_file

_COLOURS = ((52, 101, 164), (230, 126, 34), (78, 154, 6), (117, 80, 123))


def replace_section(path: str, heading: str, lines: List[str]) -> None:
    """Writes `heading` + `lines` into a Markdown file, replacing only that "## ..." section (others kept)."""
    existing = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    section = "\n".join([heading, *lines]).rstrip("\n") + "\n"
    start = existing.find(heading + "\n") if not existing.startswith(heading + "\n") else 0
    if start < 0:
        text = existing.rstrip("\n") + "\n\n" + section
    else:
        after = existing.find("\n## ", start + len(heading))
        tail = existing[after + 1 :] if after >= 0 else ""
        text = existing[:start] + section + ("\n" + tail if tail else "")
    with atomic_text_file(path) as handle:
        handle.write(text)


def bar_chart(rows: Dict[str, Dict[str, float]], keys: Sequence[str], title: str, path: str) -> None:
    """A horizontal bar chart, one group of bars (one per key) per row, as a PNG (Pillow: no plotting stack needed)."""
    from PIL import Image, ImageDraw

    bar, gap, left, width = 16, 4, 330, 900
    row_height = len(keys) * (bar + gap) + 6
    image = Image.new("RGB", (width, 40 + row_height * len(rows)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), title, fill="black")
    top = max((max(metrics[key] for key in keys) for metrics in rows.values()), default=0.0) or 1.0
    for row, (name, metrics) in enumerate(rows.items()):
        y = 40 + row * row_height
        draw.text((10, y + 12), name[:48], fill="black")
        for n, key in enumerate(keys):
            offset = n * (bar + gap)
            length = int((width - left - 80) * metrics[key] / top)
            draw.rectangle([left, y + offset, left + length, y + offset + bar], fill=_COLOURS[n % len(_COLOURS)])
            draw.text((left + length + 6, y + offset + 2), f"{metrics[key]:.3f}", fill="black")
    image.save(path)
