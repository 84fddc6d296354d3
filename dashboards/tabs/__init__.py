"""The tab registry: analyses that get their own tab next to the text view.

A tab is a module exposing three names:

    TITLE: str                                  the tab's label
    layout(context: Context) -> dash component  built once, when the app is built
    register(app: dash.Dash, context: Context)  adds the tab's callbacks

`context` is a `dashboards.context.Context`: `context.recordings` (opened `Recording`s),
`context.checkpoints` (checkpoint paths given on the command line, possibly empty) and cached
helpers (`column`, `limit`, `feature`). The current view (recording, unit, position, features)
is the store with id "view"; read it with `Input("view", "data")` and
`dashboards.context.View.from_json(data)`. A callback that needs a unit to show should use
`view.rec` and `view.unit`, so the tab follows the unit picker. Prefix every component id with
the module name (e.g. "gradients-plot") so tabs never collide. Tab contents stay mounted while
hidden, so a tab may compute lazily when its own button is pressed.

To add a tab, import its module here and append it to TABS.
"""

from __future__ import annotations

from types import ModuleType

from dashboards.tabs import gradients, saturation

TABS: list[ModuleType] = [gradients, saturation]
