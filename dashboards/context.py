"""What the dashboard knows: the opened recordings, cached per-unit data, and the view state.

The view state (recording, unit, position, features, coloring) lives in the URL query string,
so a view can be bookmarked and shared. Parsing never fails: a bad value becomes a message and
a safe default.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import numpy as np

from probe.checkpoint import checkpoint_id
from probe.colors import COLORMAPS, DEFAULT_COLORMAP, kind_low, percentile_limit
from probe.errors import ProbeError
from probe.recording import Recording, array_name
from probe.units import Unit

WINDOW = 3000  # characters rendered around the focused position
# n/p navigation: a char is strong where its value is off the unit's rest by at least STRONG x
# half its color range. Rest is 0 for states (|v| >= half of max |v|); a gate (0..1) or the
# loss rests at its median, so an always-open forget gate stops where it closes.
STRONG = 0.5
COLORINGS = ("unit", "loss")


@dataclass(eq=False)
class Context:
    """The recordings served (paths come only from the command line) plus caches over them.

    Tabs receive this object: `recordings`, `checkpoints` (paths, possibly empty), `status`
    (what a long computation is doing, for the page to poll) and the cached helpers below are
    their whole interface to the data.
    """

    recordings: list[Recording]
    checkpoints: list[Path] = field(default_factory=list)
    window: int = WINDOW
    status: dict[str, str] = field(default_factory=dict)  # what a long computation is doing

    def checkpoint_of(self, recording: Recording) -> Path | None:
        """The checkpoint given on the command line that made `recording` (same weights id)."""
        made_by = recording.manifest.get("checkpoint", {}).get("id")
        return next((path for path in self.checkpoints if checkpoint_id(path) == made_by), None)

    def recording(self, rec: int) -> Recording:
        if not 0 <= rec < len(self.recordings):
            raise ProbeError(f"no recording {rec} (serving {len(self.recordings)})")
        return self.recordings[rec]

    def column(self, rec: int, unit: str) -> np.ndarray:
        """A unit's values over the whole recording (float32), read through a fresh memmap.

        The memmap is dropped afterwards so its pages leave the server's resident memory. Not
        cached: `strong_starts`, its one user, caches what it finds, and 32 cached columns
        held 790 MB of a 6M-char recording.
        """
        recording = self.recording(rec)
        parsed = Unit.parse(unit)
        recording.unit(parsed, 0, 1)  # validates layer, kind and index with clear messages
        array = np.load(recording.path / array_name(parsed.layer, parsed.kind), mmap_mode="r")
        column = np.empty(len(array), np.float32)
        for start in range(0, len(array), 1 << 16):
            column[start : start + (1 << 16)] = array[start : start + (1 << 16), parsed.index]
        del array
        return column

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one Context per app, lives as long as it
    def limits(self, rec: int, layer: int, kind: str) -> np.ndarray:
        """symmetric_limit of every unit of one layer and kind, in one chunked pass.

        Stepping through units then costs no reads; as in `column`, the memmap is dropped.
        """
        recording = self.recording(rec)
        recording.array(layer, kind)  # a clear error for a layer or kind not recorded
        array = np.load(recording.path / array_name(layer, kind), mmap_mode="r")
        # |x| of a float16 is its bits with the sign cleared, and those bits sort like the
        # values: an integer max is exact and many times faster than float16 arithmetic.
        peak = np.zeros(array.shape[1], np.uint16)
        for start in range(0, len(array), 1 << 16):
            bits = np.asarray(array[start : start + (1 << 16)]).view(np.uint16) & 0x7FFF
            bits[bits > 0x7C00] = 0  # NaN
            peak = np.maximum(peak, bits.max(axis=0))
        del array
        peak = peak.view(np.float16).astype(np.float32)
        return np.where(peak > 0, peak, 1.0)  # as symmetric_limit: all-zero units get 1

    def warm(self) -> None:
        """Compute every color limit up front (run in a background thread at start-up)."""
        for rec, recording in enumerate(self.recordings):
            for layer, kind in recording.layer_kinds:
                self.limits(rec, layer, kind)

    def limit(self, rec: int, unit: str) -> float:
        """The unit's largest |value| over the whole recording."""
        parsed = Unit.parse(unit)
        self.recording(rec).unit(parsed, 0, 1)  # validates the index
        return float(self.limits(rec, parsed.layer, parsed.kind)[parsed.index])

    def color_range(self, rec: int, unit: str) -> tuple[float | None, float]:
        """The unit's fixed color range (low, top) over the whole recording, so colors compare:
        ±limit, or 0 to 1 for a gate (as in the exports; low None means -top)."""
        low = kind_low(Unit.parse(unit).kind)
        return (low, 1.0) if low is not None else (None, self.limit(rec, unit))

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def strong_starts(self, rec: int, unit: str) -> np.ndarray:
        """Positions where a run of strong values (see STRONG) of a unit, or of the per-char
        loss for unit "loss", begins."""
        if unit == "loss":
            values, low, top = self.loss_bits(rec), 0.0, self.loss_limit(rec)
        else:
            values = self.column(rec, unit)
            low, top = self.color_range(rec, unit)
        rest = 0.0 if low is None else float(np.nanmedian(values))
        half_range = top if low is None else (top - low) / 2
        strong = np.abs(values - rest) >= STRONG * half_range  # NaN (loss at char 0): False
        return np.flatnonzero(strong & ~np.concatenate([[False], strong[:-1]]))

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def loss_bits(self, rec: int) -> np.ndarray:
        """Surprise of each char in bits: -log2 p(char t | text before t); NaN at char 0."""
        return self.recording(rec).loss_bits()

    @functools.lru_cache(maxsize=8)  # noqa: B019
    def loss_limit(self, rec: int) -> float:
        """99th percentile of the per-char loss, so a few huge surprises don't wash out color."""
        return percentile_limit(self.loss_bits(rec))

    def feature(self, rec: int, name: str) -> np.ndarray:
        """A feature's values over the recording's text (cached by probe.search)."""
        from probe.profiles import feature_values

        return feature_values(self.recording(rec), name)


@dataclass(frozen=True)
class View:
    """Everything a URL says about the view."""

    rec: int = 0
    unit: str = ""
    pos: int = 0
    features: tuple[str, ...] = ()
    regex: str = ""
    color: str = "unit"
    cmap: str = DEFAULT_COLORMAP

    @property
    def feature_names(self) -> list[str]:
        """Built-in features plus the regex box as `re:PATTERN`."""
        return list(self.features) + ([f"re:{self.regex}"] if self.regex else [])

    def query(self) -> str:
        fields = {"rec": self.rec, "unit": self.unit, "pos": self.pos}
        if self.features:
            fields["features"] = ",".join(self.features)
        if self.regex:
            fields["regex"] = self.regex
        if self.color != "unit":
            fields["color"] = self.color
        if self.cmap != DEFAULT_COLORMAP:
            fields["cmap"] = self.cmap
        return "?" + urlencode(fields)

    def to_json(self) -> dict:
        return {**self.__dict__, "features": list(self.features)}

    @classmethod
    def from_json(cls, data: dict | None) -> View:
        data = data or {}
        return cls(**{**data, "features": tuple(data.get("features", ()))})


def default_unit(recording: Recording) -> str:
    """The first recorded unit, preferring the cell state (the paper's main object)."""
    kinds = [(layer, kind) for layer, kind in recording.layer_kinds if kind == "cell"]
    layer, kind = (kinds or recording.layer_kinds)[0]
    return str(Unit(layer, kind, 0))


def nearest_unit(recording: Recording, unit: Unit) -> Unit:
    """The unit of a recording nearest to one of another: the same layer, kind and index
    where it has them, else its top layer, hidden state (what every cell has), last index."""
    layer = min(unit.layer, max(layer for layer, _ in recording.layer_kinds))
    kinds = [kind for at, kind in recording.layer_kinds if at == layer]
    kind = unit.kind if unit.kind in kinds else "hidden" if "hidden" in kinds else kinds[0]
    return Unit(layer, kind, min(unit.index, recording.units_in(layer, kind) - 1))


def check_view(context: Context, view: View) -> tuple[View, list[str]]:
    """The view with every out-of-range value replaced by a safe default, plus messages."""
    messages = []
    if not 0 <= view.rec < len(context.recordings):
        messages.append(f"no recording {view.rec}; showing recording 0")
        view = replace(view, rec=0)
    recording = context.recordings[view.rec]
    try:
        if not view.unit:
            raise ProbeError("")
        unit = Unit.parse(view.unit)
        if (unit.layer, unit.kind) in recording.layer_kinds:  # an index past the end: the last
            units = recording.units_in(unit.layer, unit.kind)
            if unit.index >= units:
                messages.append(f"layer {unit.layer} {unit.kind} has units 0..{units - 1}; "
                                f"showing {units - 1}")  # fmt: skip
                unit = Unit(unit.layer, unit.kind, units - 1)
        view = replace(view, unit=str(unit))
        recording.unit(view.unit, 0, 1)
    except ProbeError as error:
        if view.unit:
            messages.append(f"{error}; showing {default_unit(recording)}")
        view = replace(view, unit=default_unit(recording))
    if not 0 <= view.pos < recording.chars:
        messages.append(f"position {view.pos} is outside the text (0..{recording.chars - 1})")
        view = replace(view, pos=min(max(view.pos, 0), recording.chars - 1))
    from probe.features import FEATURES, get_feature

    unknown = [name for name in view.features if name not in FEATURES]
    if unknown:
        messages.append(f"unknown feature {', '.join(unknown)} ignored")
        view = replace(view, features=tuple(n for n in view.features if n in FEATURES))
    if view.regex:
        try:
            get_feature(f"re:{view.regex}")
        except ProbeError as error:
            messages.append(str(error))
            view = replace(view, regex="")
    if view.color not in COLORINGS:
        messages.append(f"unknown coloring {view.color!r}; coloring by unit")
        view = replace(view, color="unit")
    if view.cmap not in COLORMAPS:
        messages.append(f"unknown colormap {view.cmap!r}; using {DEFAULT_COLORMAP}")
        view = replace(view, cmap=DEFAULT_COLORMAP)
    return view, messages


def query_fields(query: str | None) -> dict[str, str]:
    """A URL query's fields, the last value of each: `?pos=1200&pos=5` -> {"pos": "5"}."""
    return {k: v[-1] for k, v in parse_qs((query or "").lstrip("?")).items()}


def page_query(view: View, tab: str) -> str:
    """The URL query of a view on a tab: the view's, plus the tab where it is not the text, so
    a reload or a bookmark opens the tab it was taken on."""
    return view.query() + ("" if tab == "text" else "&" + urlencode({"tab": tab}))


def query_tab(query: str | None, tabs: list[str]) -> tuple[str, list[str]]:
    """The tab a URL query names (the text by default), and a message for an unknown one."""
    tab = query_fields(query).get("tab", "text")
    return (tab, []) if tab in tabs else ("text", [f"unknown tab {tab!r}; showing the text"])


def parse_query(context: Context, query: str | None) -> tuple[View, list[str]]:
    """A checked View from a URL query like `?rec=0&unit=2:cell:13&pos=1200&features=in_quote`."""
    fields = query_fields(query)
    messages = []

    def number(name: str) -> int:
        try:
            return int(fields.get(name, 0))
        except ValueError:
            messages.append(f"{name}={fields[name]!r} is not a number; using 0")
            return 0

    features = tuple(n for n in fields.get("features", "").split(",") if n)
    view = View(
        number("rec"),
        fields.get("unit", ""),
        number("pos"),
        features,
        fields.get("regex", ""),
        fields.get("color", "unit"),
        fields.get("cmap", DEFAULT_COLORMAP),
    )
    view, more = check_view(context, view)
    return view, messages + more


def step_unit(recording: Recording, unit: str, step: int) -> str:
    """The unit `step` places away in recording order (layer, kind, index), wrapping around."""
    parsed = Unit.parse(unit)
    offsets, total = {}, 0
    for layer, kind in recording.layer_kinds:
        offsets[(layer, kind)] = total
        total += recording.units_in(layer, kind)
    flat = (offsets[(parsed.layer, parsed.kind)] + parsed.index + step) % total
    for (layer, kind), offset in reversed(offsets.items()):
        if flat >= offset:
            return str(Unit(layer, kind, flat - offset))
    raise AssertionError("unreachable")


def next_strong(context: Context, view: View, direction: int) -> int:
    """The start of the next (direction=1) or previous (-1) strong run of what the view is
    colored by (the unit, or the loss); stays put if none."""
    starts = context.strong_starts(view.rec, "loss" if view.color == "loss" else view.unit)
    if direction > 0:
        later = starts[starts > view.pos]
        return int(later[0]) if len(later) else view.pos
    earlier = starts[starts < view.pos]
    return int(earlier[-1]) if len(earlier) else view.pos


def window_bounds(context: Context, view: View) -> tuple[int, int]:
    """[start, stop) of the rendered window: `context.window` chars centred on the position."""
    chars = context.recording(view.rec).chars
    start = max(0, min(view.pos - context.window // 2, chars - context.window))
    return start, min(chars, start + context.window)
