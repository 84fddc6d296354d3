"""The gradient-decay and gate-saturation tabs on a real tiny recording, at callback level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboards import build_app
from dashboards.tabs import TABS, gradients, saturation
from dashboards.tabs.gradients import gradients_panel, vanished
from dashboards.tabs.saturation import saturation_panel
from probe.recording import RecordingWriter


@pytest.fixture(scope="module")
def app(tiny_recording):
    return build_app([tiny_recording])


def test_tabs_are_registered_and_laid_out(app):
    assert gradients in TABS and saturation in TABS
    page = str(app.layout)
    assert "gradients-run" in page and "saturation-holder" in page
    # No graph until a tab shows one: a graph in the page loads plotly.js, even hidden.
    assert "Graph(" not in page


def test_saturation_panel_plots_and_lists_integrators(app, tiny_recording):
    figure, children = saturation_panel(app.probe_context, 0)
    assert figure.data[0].customdata[0] == "1:input_gate:0"
    buttons = children[1].children
    assert len(buttons) == saturation.TOP
    assert all(b.id["target"].split(":")[1] == "forget_gate" for b in buttons)
    assert (tiny_recording.path / "cache" / "saturation.csv").is_file()


def test_saturation_panel_explains_a_gateless_recording(tmp_path):
    folder = tmp_path / "rnn"
    folder.mkdir()
    writer = RecordingWriter(folder, "ab" * 10, {(1, "hidden"): 4})
    writer.arrays[(1, "hidden")][:] = np.zeros((20, 4), np.float16)
    writer.finish(
        {"name": "rnn", "config": {"cell": "rnn", "layers": 1, "hidden": 4}, "kinds": ["hidden"]}
    )
    context = build_app([folder]).probe_context
    figure, children = saturation_panel(context, 0)
    assert not figure.data and "no gates" in children[0].children


def test_gradients_panel_draws_trained_and_init_curves(app, tiny_recording):
    figure, message = gradients_panel(app.probe_context, 10, positions=4)
    # What the page polls while it computes: the last batch begun, of the last model.
    assert app.probe_context.status["gradients"].startswith("tiny: gradients ")
    assert "(random init): 0 of 4 positions · " in app.probe_context.status["gradients"]
    names = [t.name for t in figure.data if t.mode == "lines"]
    assert message == "" and len(names) == 4  # trained + random init, hidden + cell
    assert any("random init" in n for n in names)
    assert list((tiny_recording.path / "cache").glob("gradients-*-K10-P4.csv"))
    figure, message = gradients_panel(app.probe_context, 10**6, positions=4)
    assert not figure.data and "needs a text of at least" in message


def test_one_model_on_two_texts_draws_two_sets_of_curves(app, tiny_recording, tiny_checkpoint,
                                                         tmp_path):  # fmt: skip
    from probe.record import record

    other = record(tiny_checkpoint, tiny_recording.text[:2_000], tmp_path / "short", twin=False,
                   progress=False)  # fmt: skip
    context = build_app([tiny_recording, other]).probe_context
    figure, message = gradients_panel(context, 10, positions=4)
    names = [t.name for t in figure.data if t.mode == "lines"]
    assert message == "" and len(names) == len(set(names)) == 8, names
    assert sum(" on short · " in n for n in names) == 4


def test_curves_end_where_the_gradient_underflows(app):
    figure, _ = gradients_panel(app.probe_context, 10, positions=4)
    frame = pd.read_csv(next((app.probe_context.recordings[0].path / "cache").glob("*K10-P4.csv")))
    # As a random-init net's gradient after a few hundred chars: float32 denormals, then 0.
    frame.loc[frame["lag"] >= 8, ["mean", "p10", "p90"]] = 0.0
    frame.loc[frame["lag"] == 6, "p10"] = 1e-44
    kept = vanished(frame)
    assert kept["lag"].max() == 7 and (kept["p10"] > 0).all()
    assert np.isfinite(np.log(kept[["ratio_p10", "ratio_mean", "ratio_p90"]])).all().all()


def test_gradients_find_a_moved_checkpoint_given_and_refuse_a_changed_one(tiny_checkpoint,
                                                                          tmp_path):  # fmt: skip
    import shutil

    import torch

    from probe.checkpoint import load_checkpoint, save_checkpoint
    from probe.record import record

    first = tmp_path / "first"
    shutil.copytree(tiny_checkpoint, first)
    text = "int main(void) {\n\treturn 0;\n}\n" * 20
    recording = record(first, text, tmp_path / "rec", twin=False, progress=False)
    moved = first.rename(tmp_path / "moved")
    _, message = gradients_panel(build_app([recording]).probe_context, 10, positions=4)
    assert "is no longer at" in message and "probe dashboard --checkpoint" in message
    figure, message = gradients_panel(build_app([recording], [moved]).probe_context, 10, 4)
    assert message == "" and len(figure.data) > 0

    shutil.rmtree(recording.path / "cache")
    retrained = load_checkpoint(moved)  # other weights in the folder the recording names
    with torch.no_grad():
        next(retrained.model.parameters()).add_(0.1)
    save_checkpoint(first, retrained.model, retrained.vocab, retrained.info)
    _, message = gradients_panel(build_app([recording]).probe_context, 10, positions=4)
    assert "is not the checkpoint that made" in message
