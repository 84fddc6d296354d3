"""Gate saturation (Karpathy et al. 2015, Fig. 3): how often is each gate nearly shut or open?

A gate unit is left-saturated on a character when its activation is < 0.1 and
right-saturated when it is > 0.9 (strict inequalities on the recorded float16 values). Each
gate unit is one point (left fraction, right fraction), so every point lies under the line
left + right = 1. Forget gates that are right-saturated nearly all the time copy their cell
forward unchanged: candidate long-term integrators. For a GRU the analogue is the update
gate (h' = (1 - z) n + z h, so z near 1 keeps the old state).

Computed in one chunked pass over the memory-mapped arrays, so 1M-character recordings
need little memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from probe.errors import ProbeError, argument
from probe.fileio import save_cache
from probe.recording import Recording
from probe.units import A_CELL, GATE_KINDS, Unit

LOW, HIGH = 0.1, 0.9
INTEGRATOR_KIND = {"lstm": "forget_gate", "gru": "update_gate"}
SATURATION_COLUMNS = ["unit", "layer", "kind", "index", "left", "right", "mean"]


def gate_layer_kinds(recording: Recording) -> list[tuple[int, str]]:
    """The recorded gate (layer, kind) pairs; a clear error when there are none."""
    cell = recording.config.get("cell")
    if cell == "rnn":
        raise ProbeError(
            "a vanilla RNN has no gates: gate saturation needs an LSTM or GRU recording"
        )
    found = [(layer, kind) for layer, kind in recording.layer_kinds if kind in GATE_KINDS]
    if not found:
        raise ProbeError(
            f"recording {recording.path} stores no gates (it was recorded with "
            f"{argument('kinds')} without gates); record it again with the gate kinds"
        )
    return found


def gate_saturation(
    recording: Recording | str | Path,
    low: float = LOW,
    high: float = HIGH,
    chunk: int = 65_536,
    progress: bool = False,
) -> pd.DataFrame:
    """Per gate unit: fraction of characters < low (`left`), > high (`right`), and its mean."""
    recording = Recording.of(recording)
    if not 0 <= low < high <= 1 or chunk < 1:
        raise ProbeError(
            f"saturation needs 0 <= low < high <= 1 and chunk >= 1, got {low}, {high}, {chunk}"
        )
    pairs = gate_layer_kinds(recording)
    chars = recording.chars
    frames = []
    total = chars * len(pairs)
    description = f"saturation of {len(pairs)} gate arrays"  # chars x arrays rows to read
    with tqdm(
        total=total, unit="row", unit_scale=True, disable=not progress, desc=description
    ) as bar:
        for layer, kind in pairs:
            array = recording.array(layer, kind)
            left = np.zeros(array.shape[1], np.int64)
            right = np.zeros(array.shape[1], np.int64)
            sums = np.zeros(array.shape[1], np.float64)
            for start in range(0, chars, chunk):
                values = np.asarray(array[start : start + chunk], dtype=np.float32)
                left += (values < low).sum(axis=0)
                right += (values > high).sum(axis=0)
                sums += values.sum(axis=0, dtype=np.float64)
                bar.update(len(values))
            index = np.arange(array.shape[1])
            frames.append(
                pd.DataFrame(
                    {
                        "unit": [str(Unit(layer, kind, i)) for i in index],
                        "layer": layer,
                        "kind": kind,
                        "index": index,
                        "left": left / chars,
                        "right": right / chars,
                        "mean": sums / chars,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)[SATURATION_COLUMNS]


def integrators(saturation: pd.DataFrame, cell: str, top: int = 10) -> pd.DataFrame:
    """The `top` most right-saturated forget (LSTM) or update (GRU) gates, most first; ties
    (e.g. several open on every char) go to the higher mean."""
    kind = INTEGRATOR_KIND.get(cell)
    if kind is None:
        raise ProbeError(f"{A_CELL.get(cell, 'this model')} has no forget or update gates")
    rows = saturation[saturation["kind"] == kind]
    return (
        rows.sort_values(["right", "mean", "unit"], ascending=[False, False, True])
        .head(top)
        .reset_index(drop=True)
    )


def saturation_summary(saturation: pd.DataFrame) -> pd.DataFrame:
    """Per layer and gate kind: mean left/right fractions and how many units are mostly
    (> 50 % of characters) left- or right-saturated."""
    grouped = saturation.groupby(["layer", "kind"], sort=False)
    return pd.DataFrame(
        {
            "units": grouped.size(),
            "left": grouped["left"].mean(),
            "right": grouped["right"].mean(),
            "mostly_left": grouped["left"].apply(lambda s: int((s > 0.5).sum())),
            "mostly_right": grouped["right"].apply(lambda s: int((s > 0.5).sum())),
        }
    ).reset_index()


def recording_saturation(recording: Recording, progress: bool = False) -> pd.DataFrame:
    """`gate_saturation` with the default thresholds, cached as REC/cache/saturation.csv."""
    cache = recording.path / "cache" / "saturation.csv"
    if cache.is_file():
        return pd.read_csv(cache)
    table = gate_saturation(recording, progress=progress)
    save_cache(table, cache)
    return table
