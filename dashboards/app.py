"""The dashboard shell: layout, URL state and navigation.

One callback (`navigate`) owns the view: every control, the URL and every clickable result
feed into it, and it writes back the checked view, the URL query and the controls' values.
Because inputs and outputs meet in one callback, Dash never loops between URL and controls.
Everything is served from this package (no CDN): the app works with the network off.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboards import panels, textview
from dashboards.context import (
    COLORINGS,
    Context,
    View,
    check_view,
    nearest_unit,
    next_strong,
    page_query,
    parse_query,
    query_fields,
    query_tab,
    step_unit,
)
from dashboards.tabs import TABS
from probe.colors import COLORMAPS
from probe.errors import ProbeError
from probe.recording import Recording
from probe.units import Unit

CONTROLS = [
    "rec-select",
    "layer-select",
    "kind-select",
    "index-input",
    "pos-slider",
    "features-select",
    "regex-input",
    "color-select",
    "cmap-select",
]
BUTTONS = ["prev-unit", "next-unit", "prev-window", "next-window", "prev-strong", "next-strong"]


def navigate(context: Context, view: View, trigger, value, controls: dict) -> tuple[View, list]:
    """The new view after one user action (`trigger` is the component id that fired), and
    messages: what the action could not do, then check_view's."""
    recording = context.recording(view.rec)
    notes, before = [], view
    if isinstance(trigger, dict) and trigger.get("type") == "saturation-plot":  # a point clicked
        points = (value or {}).get("points") or [{}]
        view = replace(view, unit=points[0].get("customdata") or view.unit)
    elif isinstance(trigger, dict):  # a clicked result: "REC|UNIT@POS", UNIT or POS may be empty
        rec, _, target = trigger["target"].partition("|")
        unit, _, pos = target.partition("@")
        pos = int(pos) if pos else view.pos  # the recording it was found in, shown again
        view = replace(view, rec=int(rec), unit=unit or view.unit, pos=pos)
    elif trigger == "rec-select":
        view = replace(view, rec=int(value))
        old, new = Unit.parse(before.unit), context.recording(view.rec)
        unit = nearest_unit(new, old)
        if unit != old:
            notes.append(f"{new.name} has no {old}; showing {unit}")
        view = replace(view, unit=str(unit))
    elif trigger in ("layer-select", "kind-select", "index-input"):
        layer, kind = controls["layer-select"], controls["kind-select"]
        if (layer, kind) not in recording.layer_kinds:  # a layer change keeps the kind if it can
            kind = next(k for l, k in recording.layer_kinds if l == layer)
        units = recording.units_in(layer, kind)
        asked = controls["index-input"]  # an emptied box: the unit shown, written back
        asked = Unit.parse(view.unit).index if asked is None else asked
        index = min(max(int(asked), 0), units - 1)
        if index != int(asked):
            notes.append(f"layer {layer} {kind} has units 0..{units - 1}; showing {index}")
        elif index != asked:
            notes.append(f"unit index {asked} is not a whole number; showing {index}")
        view = replace(view, unit=str(Unit(layer, kind, index)))
    elif trigger in ("prev-unit", "next-unit"):
        view = replace(
            view, unit=step_unit(recording, view.unit, 1 if trigger == "next-unit" else -1)
        )
    elif trigger in ("pos-slider", "jump"):
        view = replace(view, pos=int(value) if value is not None else view.pos)
        if value is not None and value != int(value):
            notes.append(f"char {value} is not a whole number; showing {int(value)}")
    elif trigger in ("prev-window", "next-window"):
        view = replace(
            view, pos=view.pos + (context.window if trigger == "next-window" else -context.window)
        )
    elif trigger in ("prev-strong", "next-strong"):
        pos = next_strong(context, view, 1 if trigger == "next-strong" else -1)
        if pos == view.pos:
            where = "after" if trigger == "next-strong" else "before"
            shown = "high loss" if view.color == "loss" else f"strong activation of {view.unit}"
            notes.append(f"no {shown} {where} char {view.pos}")
        view = replace(view, pos=pos)
    elif trigger == "features-select":
        view = replace(view, features=tuple(value or ()))
    elif trigger == "regex-input":
        view = replace(view, regex=(value or "").strip())
    elif trigger == "color-select":
        view = replace(view, color=value)
    elif trigger == "cmap-select":
        view = replace(view, cmap=value)
    if view.unit != before.unit and view.color == "loss":  # a unit picked is a unit to see
        view = replace(view, color="unit")
    if trigger in ("prev-window", "next-window"):  # clamped: paging past the end is normal
        pos = min(max(view.pos, 0), recording.chars - 1)
        if pos == before.pos:
            notes.append(f"already at the {'end' if pos else 'start'} of the text")
        view = replace(view, pos=pos)
    view, messages = check_view(context, view)
    return view, notes + messages


def user_action(triggered: list[dict], ids: dict) -> tuple:
    """(id, value) of what fired the navigation. A step's hand-over ("view-sync") sent in the
    same tick as a control change (probe.js sends it first) comes in one call with it: the
    change is the action, the view it starts from already the step's."""
    fired = [(ids[t["prop_id"]], t["value"]) for t in triggered if t["prop_id"] in ids]
    actions = [(i, value) for i, value in fired if i != "view-sync"] or fired
    return actions[0] if actions else (None, None)


def shown_payload(context: Context, view: View) -> tuple[View, dict, list[str]]:
    """(view, its window's payload, messages); a view whose features cannot be computed (a
    regex past its time limit) is shown without its regex, else without a new payload."""
    try:
        return view, textview.window_payload(context, view), []
    except ProbeError as error:
        if not view.regex:
            return view, no_update, [str(error)]
        view, payload, problems = shown_payload(context, replace(view, regex=""))
        return view, payload, [f"{error}; shown without it", *problems]


def control_values(context: Context, view: View) -> dict:
    """What each control shows for a view (options too, since they depend on the recording)."""
    recording = context.recording(view.rec)
    unit = Unit.parse(view.unit)
    layers = sorted({layer for layer, _ in recording.layer_kinds})
    kinds = [kind for layer, kind in recording.layer_kinds if layer == unit.layer]
    return {
        "rec-select": view.rec,
        "layer-options": [{"label": f"layer {layer}", "value": layer} for layer in layers],
        "layer-select": unit.layer,
        "kind-options": kinds,
        "kind-select": unit.kind,
        "index-input": unit.index,
        "pos-slider": view.pos,
        "pos-max": recording.chars - 1,
        "features-select": list(view.features),
        "regex-input": view.regex,
        "color-select": view.color,
        "cmap-select": view.cmap,
    }


def sidebar(context: Context) -> html.Aside:
    from probe.features import list_features

    records = [{"label": f"{i}: {r.name}", "value": i} for i, r in enumerate(context.recordings)]
    features = [{"label": f.name, "value": f.name, "title": f.description} for f in list_features()]
    return html.Aside(
        className="sidebar",
        children=[
            html.Label("recording"),
            dcc.Dropdown(id="rec-select", options=records, value=0, clearable=False),
            html.Label("unit"),
            html.Div(
                className="row",
                children=[
                    dcc.Dropdown(id="layer-select", clearable=False, className="narrow"),
                    dcc.Dropdown(id="kind-select", clearable=False, className="wide"),
                ],
            ),
            html.Div(
                className="row",
                children=[
                    html.Button("◀", id="prev-unit", title="previous unit (k)"),
                    # No min or max: the browser would drop an out-of-range number unsaid;
                    # navigate() clamps it and says so.
                    dcc.Input(id="index-input", type="number", debounce=True),
                    html.Button("▶", id="next-unit", title="next unit (j)"),
                ],
            ),
            html.Label("color by"),
            dcc.RadioItems(id="color-select", options=list(COLORINGS), value="unit", inline=True),
            dcc.Dropdown(id="cmap-select", options=list(COLORMAPS), value="rdbu", clearable=False),
            html.Label("features (tracks under the text, and search)"),
            dcc.Dropdown(id="features-select", options=features, multi=True),
            dcc.Input(
                id="regex-input", placeholder="regex, e.g. [0-9]+", debounce=True, className="regex"
            ),
            html.H3("Model"),
            html.Div(id="model-card"),
            html.P(
                "keys: j/k next/previous unit · n/p next/previous strong activation · "
                "select text to brush a span",
                className="hint",
            ),
        ],
    )


def build_layout(context: Context) -> html.Div:
    tabs = [("text", "Text", html.Div([textview.layout(context), panels.layout(context)]))]
    tabs += [(m.__name__.rsplit(".", 1)[-1], m.TITLE, m.layout(context)) for m in TABS]
    return html.Div(
        className="app",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="view"),
            dcc.Store(id="unit-key"),
            dcc.Store(id="view-sync"),
            html.Header(
                [
                    html.H1("probe"),
                    html.Span("inside character-level RNNs", className="tag"),
                    html.Div(id="banner", className="banner"),
                ]
            ),
            html.Div(
                className="main",
                children=[
                    sidebar(context),
                    html.Div(
                        className="content",
                        children=[
                            dcc.Tabs(
                                id="tabs",
                                value="text",
                                children=[dcc.Tab(label=t, value=v) for v, t, _ in tabs],
                            ),
                            *(html.Div(c, id=f"tab-{v}", className="tab-body") for v, _, c in tabs),
                        ],
                    ),
                ],
            ),
        ],
    )


def register(app: dash.Dash, context: Context) -> None:
    tab_names = ["text", *(m.__name__.rsplit(".", 1)[-1] for m in TABS)]
    tab_ids = [f"tab-{name}" for name in tab_names]

    # Tab bodies stay mounted (the text view keeps its rendered spans); only visibility changes.
    @app.callback([Output(i, "style") for i in tab_ids], Input("tabs", "value"))
    def show_tab(selected):
        return [{"display": "block" if i == f"tab-{selected}" else "none"} for i in tab_ids]

    # Control props the view drives, keyed like control_values(); only changed ones are sent,
    # so the browser re-renders as little as possible on each step.
    control_props = {
        "rec-select": ("rec-select", "value"),
        "layer-options": ("layer-select", "options"),
        "layer-select": ("layer-select", "value"),
        "kind-options": ("kind-select", "options"),
        "kind-select": ("kind-select", "value"),
        "index-input": ("index-input", "value"),
        "pos-slider": ("pos-slider", "value"),
        "pos-max": ("pos-slider", "max"),
        "features-select": ("features-select", "value"),
        "regex-input": ("regex-input", "value"),
        "color-select": ("color-select", "value"),
        "cmap-select": ("cmap-select", "value"),
    }

    @app.callback(
        Output("view", "data"),
        Output("url", "search"),
        Output("banner", "children"),
        Output("unit-key", "data"),
        Output("window-payload", "data"),
        Output("tabs", "value"),
        *(Output(*prop) for prop in control_props.values()),
        Input("url", "search"),
        Input("tabs", "value"),  # only the URL follows it, so a reload opens the same tab
        *(Input(c, "value") for c in CONTROLS),
        Input("jump", "value"),
        Input("view-sync", "data"),
        *(Input(b, "n_clicks") for b in BUTTONS),
        Input({"type": "saturation-plot", "place": ALL}, "clickData"),  # made on first view
        panels.GOTO,
        State("unit-key", "data"),
        State("view", "data"),
    )
    def on_navigate(search, selected, *args):
        shown_key, previous = args[-2:]
        controls = dict(zip(CONTROLS, args[: len(CONTROLS)], strict=True))
        trigger, fired = user_action(ctx.triggered, ctx.triggered_prop_ids)
        if isinstance(trigger, dict) and not fired:  # a result list re-rendered, no click
            return (no_update,) * (6 + len(control_props))
        old = View.from_json(previous) if previous else None
        if trigger == "tabs" and old is not None:
            return (no_update, page_query(old, selected)) + (no_update,) * (4 + len(control_props))
        tab = selected
        payload = no_update
        if old is None or trigger in (None, "url"):
            view, messages = parse_query(context, search)
            tab, more = query_tab(search, tab_names)
            messages += more
        elif trigger == "view-sync":  # the browser already drew this step (see /_probe/step)
            view, messages = check_view(context, View.from_json(fired))
        else:
            view, messages = navigate(context, old, trigger, fired, controls)
            tab = "text" if isinstance(trigger, dict) else tab  # a clicked result is shown
        if trigger != "view-sync":
            view, payload, problems = shown_payload(context, view)
            messages = [*messages, *problems]
        shown = control_values(context, view)
        if trigger in (None, "url"):  # a bad regex from the URL stays in the box, to be fixed
            shown["regex-input"] = query_fields(search).get("regex", "").strip() or view.regex
        before = control_values(context, old) if old and trigger != "url" else {}
        # What the controls show now: behind the view after a step not yet handed over.
        before.update((key, value) for key, value in controls.items() if key in before)

        # Never overwrite what the user typed in the control that fired, but a unit index the
        # view had to clamp (the box would name a unit that is not shown).
        def unchanged(key: str) -> bool:
            if key == trigger:
                return key != "index-input" or shown[key] == fired
            return before.get(key) == shown[key]

        values = [no_update if unchanged(key) else shown[key] for key in control_props]
        unit_key = f"{view.rec}|{view.unit}|{view.cmap}"
        changed = unit_key != shown_key  # (not the view's: a step sets it before handing over)
        banner = html.Div([html.Div(m) for m in messages]) if messages else None
        return (view.to_json(), page_query(view, tab), banner,
                unit_key if changed else no_update, payload,
                tab if tab != selected else no_update, *values)  # fmt: skip


def register_step(app: dash.Dash, context: Context) -> None:
    """The fast path for the step buttons and keys: one small POST, answered with the window.

    probe.js calls it, draws the answer at once, then hands the view to Dash ("view-sync") so
    the URL and controls follow. The body holds only a view (indices, never paths).
    """
    from flask import jsonify, request

    @app.server.route("/_probe/step", methods=["POST"])
    def step():
        body = request.get_json(silent=True) or {}
        action = body.get("action")
        try:
            if action not in BUTTONS:
                raise ProbeError(f"unknown step {action!r}")
            view, _ = check_view(context, View.from_json(body.get("view")))
            view, messages = navigate(context, view, action, 1, {})
            payload = textview.window_payload(context, view)
        except (ProbeError, TypeError, ValueError) as error:
            return jsonify({"error": str(error)}), 400
        return jsonify({"view": view.to_json(), "payload": payload, "messages": messages})


def open_recordings(recordings: list) -> list[Recording]:
    return [r if isinstance(r, Recording) else Recording.open(r) for r in recordings]


def build_app(recordings: list[Recording] | list[str | Path], checkpoints=()) -> dash.Dash:
    """A Dash app over recordings (opened here if given as paths); run it with `app.run()`.

    Recordings come only from the caller (the command line): nothing in the page can name a
    file, so the app cannot be used to read other files.
    """
    context = Context(open_recordings(recordings), [Path(c) for c in checkpoints])
    if not context.recordings:
        raise ProbeError("no recording to show: pass --recording or --checkpoint with --text")
    app = dash.Dash(
        __name__,
        title="probe",
        serve_locally=True,
        external_stylesheets=[],
        external_scripts=[],
        assets_folder=str(Path(__file__).parent / "assets"),
        update_title=None,
    )
    app.layout = build_layout(context)
    register(app, context)
    register_step(app, context)
    textview.register(app, context)
    panels.register(app, context)
    for module in TABS:
        module.register(app, context)
    threading.Thread(target=context.warm, daemon=True).start()  # first paints need no pass
    app.probe_context = context  # for tests and benchmarks
    return app
