"""Color maps shared by the dashboard and every export, so colors always match.

Values are mapped linearly from [low, limit] to the map. low is -limit for states (a
diverging range centred on 0, white/neutral) and 0 for what cannot be negative: gates,
which live in (0, 1), and the per-char loss.
"""

from __future__ import annotations

import numpy as np

from probe.errors import ProbeError
from probe.units import GATE_KINDS

# Anchor colors from negative to positive; interpolated linearly in RGB.
COLORMAPS = {
    # ColorBrewer RdBu reversed (blue = negative, red = positive): colorblind-safe default.
    "rdbu": ["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"],
    # ColorBrewer PuOr: colorblind-safe, prints well in grayscale-ish.
    "puor": ["#542788", "#998ec3", "#d8daeb", "#f7f7f7", "#fee0b6", "#f1a340", "#b35806"],
    # The paper's look: saturated blue through white to saturated red.
    "paper": ["#0000ff", "#ffffff", "#ff0000"],
    # Sequential: white at the bottom of the range, black at the top.
    "gray": ["#ffffff", "#000000"],
}
DEFAULT_COLORMAP = "rdbu"
UPPER = ":upper"  # a map's upper half, white to its top: for what starts at 0, as the loss


def upper(name: str) -> str:
    """The name of a map's upper half: the per-char loss is colored from white (no surprise)
    to the map's top, so well-predicted text stays pale and surprises stand out."""
    return name + UPPER


def anchor_colors(name: str) -> list[str]:
    """A map's anchor colors ('#rrggbb'), bottom to top; NAME:upper is a diverging map from
    its middle (white) up, a sequential map whole."""
    base, part = name.removesuffix(UPPER), UPPER if name.endswith(UPPER) else ""
    if base not in COLORMAPS:
        raise ProbeError(f"unknown colormap {base!r}; choose from {', '.join(COLORMAPS)}")
    colors = COLORMAPS[base]
    diverging = len(colors) >= 3 and len(colors) % 2 == 1
    return colors[len(colors) // 2 :] if part and diverging else colors


def missing_position(name: str) -> float:
    """Where a missing value sits on a map, -1..1: its neutral white, the centre of a whole
    map, the bottom of an upper half."""
    return -1.0 if name.endswith(UPPER) else 0.0


def anchors(name: str) -> np.ndarray:
    return np.array(
        [[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in anchor_colors(name)], float
    )


def to_rgb(
    values: np.ndarray, limit: float, colormap: str = DEFAULT_COLORMAP, low: float | None = None
) -> np.ndarray:
    """uint8 RGB (n, 3) for values clipped to [low, limit] (low: -limit unless given); NaN
    maps to the map's neutral white (see `missing_position`)."""
    table = anchors(colormap)
    limit = float(limit) if limit and np.isfinite(limit) and limit > 0 else 1.0
    low = -limit if low is None else float(low)
    position = 2 * (np.asarray(values, float) - low) / (limit - low) - 1
    position = np.where(np.isnan(position), missing_position(colormap), position).clip(-1, 1)
    scaled = (position + 1) / 2 * (len(table) - 1)
    low = np.floor(scaled).astype(int).clip(0, len(table) - 2)
    fraction = (scaled - low)[:, None]
    return np.round(table[low] * (1 - fraction) + table[low + 1] * fraction).astype(np.uint8)


def to_hex(
    values: np.ndarray, limit: float, colormap: str = DEFAULT_COLORMAP, low: float | None = None
) -> list[str]:
    """'#rrggbb' strings for values (see `to_rgb`)."""
    rgb = to_rgb(np.atleast_1d(values), limit, colormap, low)
    return ["#%02x%02x%02x" % tuple(color) for color in rgb]


def kind_low(kind: str) -> float | None:
    """The bottom of a kind's color range: 0 for gates (with a top of 1), else None (-limit)."""
    return 0.0 if kind in GATE_KINDS else None


def range_labels(low: float | None, limit: float) -> tuple[str, str]:
    """Colorbar end labels: '−0.965', '+0.965' for a diverging range, '0', '1' for a gate's."""
    if low is None:
        return f"−{limit:.3g}", f"+{limit:.3g}"
    return f"{low:.3g}".replace("-", "−"), f"{limit:.3g}"


def text_color(rgb: np.ndarray) -> np.ndarray:
    """Black or white text per background, whichever reads better (relative luminance)."""
    luminance = (rgb.astype(float) @ np.array([0.2126, 0.7152, 0.0722])) / 255
    return np.where(luminance > 0.45, "#000000", "#ffffff")


def percentile_limit(values: np.ndarray, percentile: float = 99) -> float:
    """A range that a few outliers do not wash out (per-char loss): a percentile of |value|."""
    finite = np.abs(values[np.isfinite(values)])
    limit = float(np.percentile(finite, percentile)) if len(finite) else 0.0
    return limit if limit > 0 else 1.0


def symmetric_limit(values: np.ndarray) -> float:
    """The unit's symmetric range over the whole recording: max |value| (1.0 if all zero)."""
    limit = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    return limit if limit > 0 else 1.0
