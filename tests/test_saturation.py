"""Gate saturation counts exactly, refuses gate-less recordings, and plots as in the paper."""

from __future__ import annotations

import numpy as np
import pytest

from probe.cli import main
from probe.errors import ProbeError
from probe.plots import saturation_figure, search_figure
from probe.recording import Recording, RecordingWriter
from probe.saturation import gate_saturation, integrators, saturation_summary


def hand_built(folder, cell: str, arrays: dict) -> Recording:
    """A recording written directly from chosen float16 values (no model involved)."""
    chars = len(next(iter(arrays.values())))
    folder.mkdir()
    writer = RecordingWriter(
        folder, "x" * chars, {key: values.shape[1] for key, values in arrays.items()}
    )
    for key, values in arrays.items():
        writer.arrays[key][:] = values
    writer.finish(
        {"name": folder.name, "config": {"cell": cell, "layers": 2, "hidden": 3}, "kinds": []}
    )
    return Recording.open(folder)


@pytest.fixture
def gates(tmp_path) -> Recording:
    """100 chars. Unit 0 of 1:forget_gate: 30 x 0.05, 50 x 0.95, 20 x 0.5. Unit 1: all 0.1 and
    0.9 exactly as float16 (0.0999755859375 < 0.1, 0.89990234375 < 0.9). Unit 2: random."""
    forget = np.zeros((100, 3), np.float16)
    forget[:, 0] = [0.05] * 30 + [0.95] * 50 + [0.5] * 20
    forget[:, 1] = [0.1] * 40 + [0.9] * 60
    forget[:, 2] = np.random.default_rng(0).random(100)
    inputs = np.full((100, 3), 0.99, np.float16)
    inputs[::4, 2] = 0.0
    arrays = {(1, "forget_gate"): forget, (2, "input_gate"): inputs, (1, "cell"): forget * 7}
    return hand_built(tmp_path / "gates", "lstm", arrays)


def test_fractions_match_exact_counts(gates):
    table = gate_saturation(gates, chunk=7).set_index("unit")  # chunks that do not divide 100
    assert list(table.index) == [f"1:forget_gate:{i}" for i in range(3)] + [
        f"2:input_gate:{i}" for i in range(3)
    ]
    assert table.loc["1:forget_gate:0", ["left", "right"]].tolist() == [0.30, 0.50]
    assert table.loc["1:forget_gate:1", ["left", "right"]].tolist() == [0.40, 0.0]
    random = gates.unit("1:forget_gate:2")
    assert table.loc["1:forget_gate:2", "left"] == np.count_nonzero(random < 0.1) / 100
    assert table.loc["1:forget_gate:2", "right"] == np.count_nonzero(random > 0.9) / 100
    assert table.loc["2:input_gate:2", ["left", "right"]].tolist() == [0.25, 0.75]
    assert table.loc["1:forget_gate:0", "mean"] == pytest.approx(
        (30 * 0.05 + 50 * 0.95 + 20 * 0.5) / 100, abs=1e-3
    )
    summary = saturation_summary(table.reset_index()).set_index("kind")
    assert (
        summary.loc["input_gate", "mostly_right"] == 3 and summary.loc["forget_gate", "units"] == 3
    )


def test_integrators_are_the_most_open_forget_gates(gates):
    top = integrators(gate_saturation(gates), "lstm", top=2)
    assert list(top["unit"]) == ["1:forget_gate:0", "1:forget_gate:2"]
    with pytest.raises(ProbeError, match="no forget or update gates"):
        integrators(gate_saturation(gates), "rnn")


def test_recordings_without_gates_are_refused(tmp_path):
    rnn = hand_built(tmp_path / "rnn", "rnn", {(1, "hidden"): np.zeros((10, 3), np.float16)})
    with pytest.raises(ProbeError, match="no gates"):
        gate_saturation(rnn)
    cells = hand_built(tmp_path / "cells", "lstm", {(1, "cell"): np.zeros((10, 3), np.float16)})
    with pytest.raises(ProbeError, match=r"stores no gates .* --kinds \(kinds in Python\)"):
        gate_saturation(cells)


def test_real_recording_every_gate_unit_lies_under_the_diagonal(tiny_recording):
    table = gate_saturation(tiny_recording)
    assert len(table) == 2 * 3 * 32  # layers x (input, forget, output gates) x units
    assert ((table["left"] + table["right"]) <= 1).all() and (
        table[["left", "right"]] >= 0
    ).all().all()
    figure = saturation_figure(table)
    assert len({t.xaxis for t in figure.data}) == 2  # one subplot per layer
    assert figure.layout.shapes[0].x0 == 0 and figure.layout.shapes[0].y0 == 1  # left + right = 1
    assert figure.data[0].customdata[0] == "1:input_gate:0"  # hover shows unit ids
    assert len(saturation_figure(table, layer=2).data) == 3
    with pytest.raises(ProbeError, match="layer 5"):
        saturation_figure(table, layer=5)


def test_search_figure_has_bars_and_null_lines(tiny_recording):
    from probe.search import search

    results = search(tiny_recording, ["in_comment", "brace_depth"], top=3)
    figure = search_figure(results)
    assert [len(bar.y) for bar in figure.data] == [3, 3]
    assert figure.data[0].y[0] == results["unit"].iloc[0]
    assert len(figure.layout.shapes) == 4  # init and shift null per feature


def test_cli_prints_integrators_and_writes_files(tiny_recording, tmp_path, capsys):
    assert (
        main(
            [
                "saturation",
                "--recording",
                str(tiny_recording.path),
                "--top",
                "3",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.count(":forget_gate:") == 3 and "candidate integrators" in printed
    assert (tmp_path / "saturation.csv").is_file() and (tmp_path / "saturation.html").is_file()
    argv = ["saturation", "--recording", str(tiny_recording.path), "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "already holds saturation.csv" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


def test_cli_rnn_recording_is_a_one_line_error(tmp_path, capsys):
    hand_built(tmp_path / "rnn", "rnn", {(1, "hidden"): np.zeros((10, 3), np.float16)})
    assert main(["saturation", "--recording", str(tmp_path / "rnn")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no gates" in error


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path):
    import pandas as pd

    from probe.fileio import save_cache

    (tmp_path / "file").write_text("")
    save_cache(pd.DataFrame({"a": [1]}), tmp_path / "file" / "cache" / "x.csv")  # no error
    save_cache(pd.DataFrame({"a": [1]}), tmp_path / "cache" / "x.csv")
    assert (tmp_path / "cache" / "x.csv").read_text() == "a\n1\n"
