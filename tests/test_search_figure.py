"""The search plot at the CLI's default top 10: every unit name readable, in Plotly and redrawn."""

from __future__ import annotations

import itertools

import pytest

from probe.plotly_static import plotly_to_matplotlib
from probe.plots import search_figure

FEATURES = ["in_comment", "brace_depth", "in_string"]


@pytest.fixture(scope="module")
def top10(tiny_recording):
    from probe.search import search

    return search(tiny_recording, FEATURES, top=10)


def drawn_texts(figure) -> list:
    """(text, window extent) of every non-empty text matplotlib drew: ticks, titles, labels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    return [
        (text.get_text(), text.get_window_extent(renderer))
        for text in figure.findobj(Text)
        if text.get_visible() and text.get_text().strip()
    ]


@pytest.mark.parametrize("features", [FEATURES, FEATURES[:1]], ids=["three", "one"])
def test_no_two_texts_of_the_redrawn_plot_overlap(top10, features):
    table = top10[top10["feature"].isin(features)]
    texts = drawn_texts(plotly_to_matplotlib(search_figure(table)))
    units = {label for label, _ in texts if label in set(table["unit"])}
    assert units == set(table["unit"])  # every unit is named
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    assert all(box.x0 >= 0 for _, box in texts)  # nothing cut at the left edge


def test_plotly_figure_names_units_on_the_y_axis_best_on_top(top10):
    figure = search_figure(top10)
    assert all(bar.orientation == "h" for bar in figure.data)
    assert list(figure.data[0].y) == list(top10[top10["feature"] == FEATURES[0]]["unit"])
    assert figure.layout.yaxis.autorange == "reversed"
    longest = max(len(unit) for unit in top10["unit"])
    assert figure.layout.margin.l >= 8 * longest  # room for the longest name at 14 px
