"""Dashboard callbacks on a real tiny recording: URL state, coloring data, panels, CLI errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from dashboards import build_app
from dashboards.context import View, parse_query, window_bounds
from dashboards.panels import brush_results, contexts_list, model_card, search_table
from dashboards.textview import export_bytes, window_payload
from probe.cli import main as cli_main
from probe.colors import symmetric_limit
from probe.errors import ProbeError
from probe.search import ConstantFeatureWarning, search
from tests.conftest import shared_text


def text_of(component) -> str:
    """All text inside a Dash component tree."""
    if isinstance(component, str | int | float):
        return str(component)
    children = getattr(component, "children", None)
    if children is None:
        return ""
    if not isinstance(children, list | tuple):
        children = [children]
    return " ".join(text_of(child) for child in children)


def goto_ids(component) -> list[dict]:
    found = []
    component_id = getattr(component, "id", None)
    if isinstance(component_id, dict) and component_id.get("type") == "goto":
        found.append(component_id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found += goto_ids(child)
    return found


def goto_targets(component) -> list[str]:
    """The UNIT@POS of each clickable result (each also names its recording: "REC|")."""
    return [component_id["target"].partition("|")[2] for component_id in goto_ids(component)]


def test_index_page_uses_no_external_assets(app):
    page = app.server.test_client().get("/").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert (
        all(f"{name}.js" in page for name in ("colors", "probe", "snippets"))
        and "style.css" in page
    )


def test_url_round_trip(context):
    view = View(rec=0, unit="2:hidden:5", pos=1234, features=("in_comment",), regex="[0-9]+",
                color="loss", cmap="puor")  # fmt: skip
    parsed, messages = parse_query(context, view.query())
    assert parsed == view and messages == []


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?rec=7", "no recording 7"),
        ("?unit=9:cell:0", "no layer 9"),
        ("?unit=1:cell:999", "has units 0.."),  # clamped to the last, as the index box does
        ("?unit=garbage", "bad unit"),
        ("?pos=99999999", "outside the text"),
        ("?pos=abc", "not a number"),
        ("?features=in_comment,nonsense", "unknown feature nonsense"),
        ("?regex=(unclosed", "invalid regex"),
        ("?color=rainbow", "unknown coloring"),
    ],
)
def test_bad_url_values_give_message_and_safe_default(context, tiny_recording, query, expected):
    view, messages = parse_query(context, query)
    assert any(expected in m for m in messages), messages
    tiny_recording.unit(view.unit, 0, 1)  # a valid unit
    assert 0 <= view.pos < tiny_recording.chars and view.rec == 0 and "(" not in view.regex
    window_payload(context, view)  # and it renders


def test_window_payload_matches_recording(context, tiny_recording):
    view = View(unit="2:cell:7", pos=10_000, features=("in_comment", "brace_depth"))
    payload = window_payload(context, view)
    start, stop = window_bounds(context, view)
    assert stop - start == context.window and start <= view.pos < stop
    assert payload["text"] == tiny_recording.text[start:stop] and payload["start"] == start
    expected = tiny_recording.unit("2:cell:7", start, stop)
    assert np.allclose(payload["values"], expected, atol=1e-4)
    assert payload["limit"] == pytest.approx(symmetric_limit(tiny_recording.unit("2:cell:7")))
    binary = {t["name"]: t["binary"] for t in payload["tracks"]}
    assert binary == {"in_comment": True, "brace_depth": False}
    json.dumps(payload)  # the browser gets it as JSON


def test_tracks_drawn_are_as_many_as_fit(context):
    from probe.features import FEATURES

    names = tuple(list(FEATURES)[:8])
    payload = window_payload(context, View(unit="1:cell:0", features=names))
    assert [t["name"] for t in payload["tracks"]] == list(names[:6])
    assert payload["untracked"] == list(names[6:])  # the legend says they are not drawn
    assert len({t["color"] for t in payload["tracks"]}) == 6


def test_window_stays_inside_text(context, tiny_recording):
    last = tiny_recording.chars - 1
    assert window_bounds(context, View(unit="1:cell:0", pos=last)) == (
        tiny_recording.chars - context.window,
        tiny_recording.chars,
    )
    assert window_bounds(context, View(unit="1:cell:0", pos=0))[0] == 0


def test_loss_coloring(context, tiny_recording):
    payload = window_payload(context, View(unit="1:cell:0", pos=0, color="loss"))
    assert payload["values"][0] is None  # nothing predicts the first char
    bits = -tiny_recording.logprob[:20] / np.log(2)
    assert np.allclose(payload["values"][1:21], bits, atol=1e-3)


def test_search_table_rows_jump_to_units(context):
    table = search_table(context, View(unit="1:cell:0", features=("in_comment",), regex="[{}]"))
    targets = goto_targets(table)
    assert len(targets) >= 2 and all(re.fullmatch(r"\d:\w+:\d+@", t) for t in targets)
    assert "re:[{}]" in text_of(table)
    with pytest.warns(ConstantFeatureWarning):  # left out of the search, said in the table
        table = search_table(context, View(unit="1:cell:0", features=("in_comment",), regex="QQQ"))
    assert "re:QQQ matches no char of this text" in text_of(table)
    assert len(goto_targets(table)) == 10
    # Rows that do not beat a null (chance-level tracking) are greyed.
    rows = search_table(context, View(unit="1:cell:0", regex="[{}]")).children[1].children[1]
    classes = [row.className for row in rows.children]
    scores = search(context.recording(0), ["re:[{}]"], top=10)
    below = (scores["score"] <= scores["null_init"]) | (scores["score"] <= scores["null_shift"])
    assert classes == ["result below-null" if b else "result" for b in below]


def test_a_unit_topping_two_features_gets_two_clickable_rows(context):
    # Block comments and in_comment pick the same units: Dash drops buttons that share an id.
    view = View(unit="1:cell:0", features=("in_comment",), regex=r"(?s)/\*.*?\*/")
    ids = goto_ids(search_table(context, view))
    targets = [component_id["target"] for component_id in ids]
    assert len(set(targets)) < len(targets)
    assert len({tuple(sorted(i.items())) for i in ids}) == len(ids)


def test_brush_and_match(context, tiny_recording):
    # Brush the interior of the first block comment: comment-tracking units should be on.
    start = tiny_recording.text.index("/*") + 3
    stop = tiny_recording.text.index("*/", start) - 1
    result = brush_results(context, View(unit="1:cell:0"), start, stop, 0.3, ["cell", "hidden"], [])
    text = text_of(result)
    if "no unit is above" in text:
        pytest.fail(f"no unit on across the comment: {text}")
    targets = goto_targets(result)
    assert any(t.endswith(f"@{start}") for t in targets)  # the units found
    assert any(t.startswith("@") for t in targets)  # the matching spans
    with pytest.raises(Exception, match="brush a span"):
        brush_results(context, View(unit="1:cell:0"), 50, 10, 0.5, ["cell"], [])


def test_top_contexts_are_strongest(context, tiny_recording):
    listing = contexts_list(context, View(unit="2:cell:5"), k=5)
    positions = [int(t[1:]) for t in goto_targets(listing)]
    values = np.abs(tiny_recording.unit("2:cell:5"))
    assert len(positions) == 5 and values[positions[0]] == pytest.approx(values.max(), abs=1e-3)


def test_top_contexts_of_a_gate_are_where_it_departs_from_its_median(context, tiny_recording):
    """Not a tie of many 1.0s: for a gate that is mostly open, where it closes (as `n` finds)."""
    values = tiny_recording.unit("1:forget_gate:2")
    listing = contexts_list(context, View(unit="1:forget_gate:2"), k=5)
    positions = [int(t[1:]) for t in goto_targets(listing)]
    departure = np.abs(values - np.median(values))
    assert departure[positions[0]] == pytest.approx(departure.max())
    assert list(departure[positions]) == sorted(departure[positions], reverse=True)
    assert abs(values[positions[0]]) < np.abs(values).max()  # absolute would list the top


def test_top_contexts_carry_the_view_colors(context, tiny_recording):
    """Each snippet is one component; snippets.js paints its chars from these attributes."""
    from probe.colors import to_rgb

    item = contexts_list(context, View(unit="2:cell:5"), k=1).children[0]
    snippet = item.children.children[1]
    data = snippet.to_plotly_json()["props"]
    start = int(goto_targets(item)[0][1:]) - int(data["data-peak"])
    text = data["data-text"]
    assert len(text) == 40 and text.replace("↵", "\n") == tiny_recording.text[start : start + 40]
    values = tiny_recording.unit("2:cell:5", start, start + 40)
    expected = to_rgb(values, symmetric_limit(tiny_recording.unit("2:cell:5")), "rdbu")
    assert data["data-colors"] == expected.astype(np.uint8).tobytes().hex()


def test_brush_uses_only_the_kinds_this_recording_has(tiny_checkpoint, tmp_path):
    """The kind boxes list every served recording's kinds; a recording without cells (as a
    GRU) still brushes with the rest, and says so when none is left."""
    from probe.record import record

    text = shared_text("linux.txt", 3_000)
    hidden = record(tiny_checkpoint, text, tmp_path / "h", kinds=["hidden"], twin=False,
                    progress=False)  # fmt: skip
    context = build_app([hidden]).probe_context
    view = View(unit="1:hidden:0")
    found = text_of(brush_results(context, view, 10, 12, -1.0, ["cell", "hidden"], []))
    assert "unit(s) on across [10, 12)" in found
    with pytest.raises(ProbeError, match="records none of cell: check one of hidden"):
        brush_results(context, view, 10, 12, -1.0, ["cell"], [])


def test_model_card(context):
    card = text_of(model_card(context, 0))
    assert "LSTM" in card and "2 layers × 32" in card and "bits/char" in card


def test_export_window(context):
    pytest.importorskip("probe.export")
    content, name = export_bytes(context, View(unit="1:cell:0", pos=500), "png")
    assert content[:8] == b"\x89PNG\r\n\x1a\n" and name.startswith("tiny_1-cell-0_")
    content, name = export_bytes(context, View(unit="1:cell:0", color="loss"), "tex")
    assert name.startswith("tiny_loss_0-") and b"per-char loss (bits)" in content


def test_navigation_callback_over_http(app, tiny_recording):
    """The registered callback answers the browser's request: view, URL and window payload."""
    key = next(k for k in app.callback_map if k.startswith("..view.data..."))
    spec = app.callback_map[key]
    outputs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
               for o in key.strip(".").split("...")]  # fmt: skip
    inputs = [
        []
        if item["id"].startswith("{")  # the pattern-matching goto buttons: none yet
        else {**item, "value": "?unit=1:cell:1&pos=50" if item["id"] == "url" else None}
        for item in spec["inputs"]
    ]
    request = {"output": key, "outputs": outputs, "inputs": inputs, "changedPropIds": [],
               "state": [{**s, "value": None} for s in spec["state"]]}  # fmt: skip
    answer = app.server.test_client().post("/_dash-update-component", json=request)
    assert answer.status_code == 200, answer.get_data(as_text=True)[-300:]
    response = answer.get_json()["response"]
    assert response["url"]["search"] == "?rec=0&unit=1%3Acell%3A1&pos=50"
    payload = response["window-payload"]["data"]
    assert payload["key"].startswith("0|unit|rdbu|1:cell:1|0|50|")
    assert np.allclose(payload["values"], tiny_recording.unit("1:cell:1", 0, 3000), atol=1e-4)


# --- CLI: bad recordings give one line and exit 2 ---------------------------------------
def run_cli(capsys, *args) -> tuple[int, str]:
    code = cli_main(["dashboard", *map(str, args)])
    return code, capsys.readouterr().err.strip()


def test_cli_missing_recording(capsys, tmp_path):
    code, err = run_cli(capsys, "--recording", tmp_path / "nope")
    assert code == 2 and "no recording at" in err and "\n" not in err


def test_cli_corrupt_and_mismatched_recordings(capsys, tmp_path, tiny_recording):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_recording.path, corrupt)
    (corrupt / "L1_cell.npy").write_bytes(b"not an array")
    code, err = run_cli(capsys, "--recording", corrupt)
    assert code == 2 and "corrupt" in err and "\n" not in err

    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny_recording.path, mismatched)
    manifest = json.loads((mismatched / "manifest.json").read_text())
    manifest["arrays"][0]["units"] += 1
    (mismatched / "manifest.json").write_text(json.dumps(manifest))
    code, err = run_cli(capsys, "--recording", mismatched)
    assert code == 2 and "manifest says" in err and "\n" not in err


def test_cli_needs_something_to_show(capsys, tiny_checkpoint):
    code, err = run_cli(capsys)
    assert code == 2 and "nothing to show" in err
    code, err = run_cli(capsys, "--checkpoint", tiny_checkpoint)
    assert code == 2 and "--text" in err
    code, err = run_cli(capsys, "--checkpoint", tiny_checkpoint, "--checkpoint", tiny_checkpoint,
                        "--text", tiny_checkpoint / "config.json")  # fmt: skip
    assert code == 2 and "--text needs one --checkpoint" in err


def test_cli_checkpoints_beside_recordings_must_have_made_one(capsys, tmp_path, tiny_recording):
    from probe.checkpoint import load_checkpoint, save_checkpoint

    other = load_checkpoint(tiny_recording.manifest["checkpoint"]["path"])
    with torch.no_grad():
        next(other.model.parameters()).add_(0.1)
    save_checkpoint(tmp_path / "other", other.model, other.vocab, other.info)
    code, err = run_cli(
        capsys, "--recording", tiny_recording.path, "--checkpoint", tmp_path / "other"
    )
    assert code == 2 and "made none of the recordings" in err and "\n" not in err
    code, err = run_cli(capsys, "--recording", tiny_recording.path, "--checkpoint", tmp_path / "no")
    assert code == 2 and "no checkpoint at" in err
