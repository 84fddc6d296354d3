"""Dashboard navigation on real tiny recordings: steps, controls, clicked results, switching
recording, and what a view cannot show."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dashboards import build_app
from dashboards.app import control_values, navigate
from dashboards.context import View, next_strong, step_unit
from dashboards.panels import search_table
from tests.test_dashboard import goto_ids


def test_unit_stepping_wraps_through_kinds_and_layers(tiny_recording):
    assert step_unit(tiny_recording, "1:cell:0", 1) == "1:cell:1"
    assert step_unit(tiny_recording, "1:cell:31", 1) == "1:hidden:0"
    first = str(tiny_recording.all_units()[0])
    last = str(tiny_recording.all_units()[-1])
    assert step_unit(tiny_recording, first, -1) == last


def test_navigation(context, tiny_recording):
    view = View(unit="1:cell:3", pos=100)
    controls = control_values(context, view)
    new, _ = navigate(context, view, "next-unit", 1, controls)
    assert new.unit == "1:cell:4"
    new, _ = navigate(context, view, "kind-select", "hidden", {**controls, "kind-select": "hidden"})
    assert new.unit == "1:hidden:3"
    new, messages = navigate(context, view, "index-input", 500, {**controls, "index-input": 500})
    assert new.unit == "1:cell:31"  # clamped to the layer's last unit, and said
    assert messages == ["layer 1 cell has units 0..31; showing 31"]
    new, messages = navigate(context, view, "index-input", 3.5, {**controls, "index-input": 3.5})
    assert new.unit == "1:cell:3" and messages == [
        "unit index 3.5 is not a whole number; showing 3"
    ]
    new, messages = navigate(context, view, "index-input", None, {**controls, "index-input": None})
    assert (new.unit, messages) == ("1:cell:3", [])  # an emptied box keeps the unit
    new, messages = navigate(context, view, "jump", 12.7, controls)
    assert new.pos == 12 and messages == ["char 12.7 is not a whole number; showing 12"]
    new, _ = navigate(context, view, {"type": "goto", "target": "0|2:cell:1@777"}, 1, controls)
    assert (new.unit, new.pos) == ("2:cell:1", 777)
    new, _ = navigate(context, replace(view, color="loss"), "next-unit", 1, controls)
    assert (new.unit, new.color) == ("1:cell:4", "unit")  # picking a unit shows it
    clicked = {"points": [{"customdata": "2:forget_gate:3", "x": 0.1, "y": 0.8}]}
    plot = {"type": "saturation-plot", "place": "tab"}  # made when the tab is first opened
    new, _ = navigate(context, view, plot, clicked, controls)  # a scatter point
    assert (new.unit, new.pos) == ("2:forget_gate:3", view.pos)
    new, _ = navigate(context, view, "next-window", 1, controls)
    assert new.pos == 100 + context.window
    end = replace(view, pos=tiny_recording.chars - 1)
    new, messages = navigate(context, end, "next-window", 1, controls)
    assert new.pos == end.pos and messages == ["already at the end of the text"]
    new, messages = navigate(context, view, "jump", -5, controls)
    assert new.pos == 0 and "position -5 is outside the text" in messages[0]
    new, messages = navigate(context, view, "regex-input", "([", controls)
    assert new.regex == "" and "invalid regex" in messages[0]


def test_next_strong_activation(context, tiny_recording):
    view = View(unit="2:cell:2", pos=0)
    values = tiny_recording.unit(view.unit)
    limit = context.limit(0, view.unit)
    forward = next_strong(context, view, 1)
    assert forward > 0 and abs(values[forward]) >= 0.5 * limit
    assert np.all(np.abs(values[1:forward]) < 0.5 * limit) or abs(values[0]) >= 0.5 * limit
    second = next_strong(context, View(unit=view.unit, pos=forward), 1)
    assert second > forward and abs(values[second - 1]) < 0.5 * limit  # a new run, not the same
    assert next_strong(context, View(unit=view.unit, pos=second), -1) == forward
    assert next_strong(context, View(unit=view.unit, pos=forward), -1) <= forward
    last = int(context.strong_starts(0, view.unit)[-1])
    controls = control_values(context, view)
    new, messages = navigate(context, replace(view, pos=last), "next-strong", 1, controls)
    assert new.pos == last and messages == [f"no strong activation of 2:cell:2 after char {last}"]


def first_run_start(strong: np.ndarray) -> int:
    """The first t > 0 where a run of True begins."""
    return int(np.flatnonzero(strong[1:] & ~strong[:-1])[0]) + 1


def test_strong_means_off_its_rest_for_gates_and_the_loss(context, tiny_recording):
    # A forget gate resting high that sometimes falls: strong is a quarter off its median.
    gates = tiny_recording.array(2, "forget_gate")[:].astype(np.float32)
    medians = np.median(gates, axis=0)
    falls = (np.abs(gates - medians) >= 0.25).mean(axis=0)
    index = int(np.argmax(np.where((falls > 0.001) & (falls < 0.2), medians, -1)))
    assert medians[index] > 0.6
    values, unit = gates[:, index], f"2:forget_gate:{index}"
    strong = np.abs(values - np.median(values)) >= 0.25
    assert next_strong(context, View(unit=unit, pos=0), 1) == first_run_start(strong)
    # Colored by loss, n goes to the next char the model found surprising.
    loss = context.loss_bits(0)
    view = View(unit=unit, pos=0, color="loss")
    strong = np.abs(loss - np.nanmedian(loss)) >= 0.25 * context.loss_limit(0)
    assert next_strong(context, view, 1) == first_run_start(strong)
    end = tiny_recording.chars - 1
    controls = control_values(context, view)
    new, messages = navigate(context, replace(view, pos=end), "next-strong", 1, controls)
    assert new.pos == end and messages == [f"no high loss after char {end}"]


@pytest.fixture(scope="module")
def lstm_and_gru(tiny_recording, train_tiny, tmp_path_factory):
    """A context serving the 2-layer LSTM's recording and a 1-layer GRU's (no cell state)."""
    from probe.record import record

    out = tmp_path_factory.mktemp("gru") / "rec"
    gru = record(train_tiny("gru"), tiny_recording.text[:4000], out, twin=False, progress=False)
    return build_app([tiny_recording, gru]).probe_context


def test_a_change_sent_with_a_steps_hand_over_is_the_action():
    from dashboards.app import user_action

    both = [{"prop_id": "view-sync.data", "value": {"unit": "1:cell:6"}},
            {"prop_id": "color-select.value", "value": "loss"}]  # fmt: skip
    ids = {"view-sync.data": "view-sync", "color-select.value": "color-select"}
    assert user_action(both, ids) == ("color-select", "loss")
    assert user_action(both[:1], ids) == ("view-sync", {"unit": "1:cell:6"})
    assert user_action([{"prop_id": ".", "value": None}], {}) == (None, None)  # page load


def test_switching_recording_keeps_the_unit_where_it_can(lstm_and_gru):
    context = lstm_and_gru
    view = View(unit="2:forget_gate:7", pos=100)
    controls = {**control_values(context, view), "rec-select": 1}
    new, messages = navigate(context, view, "rec-select", 1, controls)
    assert (new.rec, new.unit) == (1, "1:hidden:7")  # the layer it has, its hidden state
    assert messages == ["rec has no 2:forget_gate:7; showing 1:hidden:7"]  # its folder's name
    view = View(unit="1:hidden:5", pos=100)
    new, messages = navigate(context, view, "rec-select", 1, controls)
    assert (new.rec, new.unit, messages) == (1, "1:hidden:5", [])


def test_a_result_shows_the_recording_it_was_found_in(lstm_and_gru):
    context = lstm_and_gru
    table = search_table(context, View(rec=0, unit="1:cell:0", features=("in_comment",)))
    target = goto_ids(table)[0]
    assert target["target"].startswith("0|")
    shown = View(rec=1, unit="1:hidden:0", features=("in_comment",))  # switched since
    new, _ = navigate(context, shown, target, 1, control_values(context, shown))
    assert new.rec == 0 and f"{new.unit}@" == target["target"].partition("|")[2]


def test_a_regex_past_its_time_limit_is_dropped_from_the_view(context, monkeypatch):
    """Else the URL keeps it, and every reload of the page hangs until it times out again."""
    from dashboards.app import shown_payload
    from probe import features

    monkeypatch.setattr(features, "REGEX_SECONDS", 0.05)
    view = View(unit="1:cell:0", features=("in_comment",), regex=r"(\w|\w)*\(")
    shown, payload, messages = shown_payload(context, view)
    assert shown == replace(view, regex="") and "regex=" not in shown.query()
    assert [t["name"] for t in payload["tracks"]] == ["in_comment"]
    assert len(messages) == 1 and "took over 0.05 s" in messages[0]
