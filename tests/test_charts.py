"""The report's SVG charts: round ticks, one titled panel per kind of value, the kept epoch marked."""

import re

from runs import charts


def test_nice_ticks_are_round_and_cover_the_range():
    assert charts.nice_ticks(0.0, 0.127) == [0.0, 0.05, 0.1, 0.15]
    assert charts.nice_ticks(640.0, 905.0) == [600, 700, 800, 900, 1000]
    assert charts.nice_ticks(3.0, 3.0)[0] <= 3.0 <= charts.nice_ticks(3.0, 3.0)[-1]  # one value still gets an axis
    assert charts.nice_ticks(float("nan"), 1.0) == [0.0, 1.0]


def test_training_chart_has_a_panel_per_unit_with_ticks_gridlines_and_the_kept_epoch():
    svg = charts.training_chart(
        [1, 2, 3, 4], {"training loss": {"loss": [900.0, 850.0, 820.0, 815.0]},
                       "validation recall@10": {"served blend": [0.118, 0.121, 0.127, 0.126], "towers alone": [0.05, 0.07, 0.08, 0.09]}},
        "Training", best_x=3, from_zero=("validation recall@10",),
    )
    assert "training loss" in svg and "validation recall@10" in svg and "epoch 3, the weights kept" in svg
    assert svg.count("<polyline") == 3 and svg.count("stroke-dasharray") == 2  # three series; the kept epoch in both panels
    labels = re.findall(r"text-anchor='end'>([^<]+)</text>", svg)
    assert "0" in labels and "0.15" in labels  # the metric's axis starts at 0
    assert "800" in labels and "0.118" not in labels  # the loss axis at its own data, round ticks only
    empty = charts.training_chart([], {"training loss": {"loss": []}}, "Training")
    assert "no epochs recorded" in empty and "<polyline" not in empty


def test_bars_draw_each_threshold_as_a_labelled_line_on_the_same_scale():
    rows = {"model": {"recall@10": 0.4}, "most-popular": {"recall@10": 0.2}}
    svg = charts.bars(rows, ("recall@10",), "Retrieval", marks=[("gate: 1.2x most-popular recall@10", 0.24), ("not a number", float("nan"))])
    assert svg.count("stroke-dasharray") == 1 and "gate: 1.2x most-popular recall@10: 0.24" in svg
    line_x = float(re.search(r"<line x1='([0-9.]+)'", svg).group(1))
    widths = [float(w) for w in re.findall(r"<rect x='260' y='\d+' width='([0-9.]+)' height='14'", svg)]  # the bars, not the legend
    assert abs((line_x - 260) - 0.6 * widths[0]) < 0.2  # 0.24 is 0.6 of the model's 0.4 bar
    assert "stroke-dasharray" not in charts.bars(rows, ("recall@10",), "Retrieval")
