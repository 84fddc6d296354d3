"""Gradient-norm decay: the hand unroll is the model, and the curves obey the textbook maths."""

from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import probe.gradients
from probe.checkpoint import checkpoint_label, distinct_labels, load_checkpoint, run_snapshots
from probe.cli import main
from probe.errors import ProbeError
from probe.gradients import (
    DECAY_COLUMNS,
    decay_norms,
    gradient_decay,
    plan_windows,
    recording_decay,
    spectral_radii,
    unroll,
)
from probe.plots import decay_figure
from tests.conftest import shared_text


@pytest.fixture(scope="module")
def text() -> str:
    return shared_text("linux.txt", 330_000)[300_000:]


def slope(frame, state="hidden", lags=(5, 40)) -> float:
    rows = frame[(frame["state"] == state) & frame["lag"].between(*lags)]
    return float(np.polyfit(rows["lag"], np.log(rows["mean"]), 1)[0])


def at_lag(frame, state: str, lag: int) -> float:
    return frame[(frame["state"] == state) & (frame["lag"] == lag)]["ratio_mean"].item()


def set_recurrence(checkpoint, radius: float) -> None:
    """W_hh = radius * orthogonal, tiny inputs, no biases: backprop multiplies norms by radius."""
    model = checkpoint.model
    hidden = model.config.hidden
    w_ih, w_hh, b_ih, b_hh = model.layer_weights(0)
    generator = torch.Generator().manual_seed(0)
    orthogonal, _ = torch.linalg.qr(torch.randn(hidden, hidden, generator=generator))
    with torch.no_grad():
        w_hh.copy_(radius * orthogonal)
        w_ih.mul_(1e-6)
        b_ih.zero_()
        b_hh.zero_()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_unroll_matches_the_fused_model(train_tiny, tiny_checkpoint, cell):
    model = load_checkpoint(tiny_checkpoint if cell == "lstm" else train_tiny(cell)).model
    ids = torch.randint(
        0, model.config.vocab_size, (3, 25), generator=torch.Generator().manual_seed(1)
    )
    fused, _ = model(ids)
    last, states = unroll(model, ids, model.initial_state(3))
    assert torch.allclose(fused[:, -1], last, atol=1e-5)
    assert len(states[(model.config.layers, "hidden")]) == 25


def test_norms_equal_brute_force_autograd_through_the_fused_lstm(train_tiny, text):
    """Each lag's norm is dL/dstate computed independently: restart the fused nn.LSTM at that
    step from the unrolled (h, c) as leaves and differentiate the same last-step loss. The cell
    gradient is the total one of BPTT: it includes the path through h_t = o_t tanh(c_t)."""
    checkpoint = load_checkpoint(train_tiny("lstm"))
    model, ids = checkpoint.model, checkpoint.vocab.encode(text[:2000])
    starts, warmup = plan_windows(len(ids), 12, 3, 20)
    norms = decay_norms(model, ids, starts, 12, warmup)
    start = int(starts[1])
    window = torch.from_numpy(ids[start - warmup : start + 13][None])
    target = torch.tensor([ids[start + 13]])
    _, _, traces = model.trace(window)
    for lag in (0, 3, 12):
        step = warmup + 12 - lag  # index of state_{T-lag} in the unrolled sequence
        h = traces[1]["hidden"][:, step][None].requires_grad_(True)
        c = traces[1]["cell"][:, step][None].requires_grad_(True)
        logits = model(window[:, step + 1 :], (h, c))[0][0, -1:] if lag else model.decoder(h)[0]
        loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
        grad_h, grad_c = torch.autograd.grad(loss, (h, c), allow_unused=True)
        grad_c = 0 if grad_c is None else grad_c
        through_h = grad_h * traces[1]["output_gate"][:, step] * (1 - c.detach().tanh() ** 2)
        assert norms[(1, "hidden")][1, lag] == pytest.approx(grad_h.norm().item(), rel=1e-4)
        assert norms[(1, "cell")][1, lag] == pytest.approx(
            (grad_c + through_h).norm().item(), rel=1e-4
        )


def test_rnn_at_spectral_radius_half_decays_by_half_per_step(train_tiny, text):
    checkpoint = load_checkpoint(train_tiny("rnn"))
    set_recurrence(checkpoint, 0.5)
    radii = spectral_radii(checkpoint.model)
    assert radii["radius"].iloc[0] == pytest.approx(0.5, abs=1e-6)
    frame = gradient_decay(checkpoint, text, max_lag=40, positions=16, warmup=20)
    assert list(frame.columns) == DECAY_COLUMNS
    assert slope(frame) == pytest.approx(math.log(0.5), abs=0.01)
    assert frame["ratio_mean"].iloc[10] == pytest.approx(0.5**10, rel=0.02)


def test_flushing_denormals_changes_only_the_last_decades_before_underflow(train_tiny, text,
                                                                           monkeypatch):  # fmt: skip
    """Gradients under 1e-38 are flushed to 0 (fast); above 1e-32 the values are as computed
    without, and the curve ends within a few lags of where it would."""
    checkpoint = load_checkpoint(train_tiny("rnn"))
    set_recurrence(checkpoint, 0.5)  # the norm halves each lag: float32 underflows past ~lag 130
    flushed = gradient_decay(checkpoint, text, max_lag=160, positions=8, warmup=20)["mean"]
    monkeypatch.setattr(probe.gradients, "denormals_flushed", contextlib.nullcontext)
    kept = gradient_decay(checkpoint, text, max_lag=160, positions=8, warmup=20)["mean"]
    tiny = np.finfo(np.float32).tiny
    assert 100 < (kept >= tiny).sum() < 160 and (kept[kept < tiny] > 0).any()  # denormals there
    exact = kept >= 1e-32
    np.testing.assert_allclose(flushed[exact], kept[exact], rtol=1e-5)
    assert 0 <= (kept >= tiny).sum() - (flushed >= tiny).sum() <= 5


def test_rnn_above_radius_one_grows(train_tiny, text):
    checkpoint = load_checkpoint(train_tiny("rnn"))
    set_recurrence(checkpoint, 1.2)
    frame = gradient_decay(checkpoint, text, max_lag=40, positions=16, warmup=0)
    assert slope(frame) == pytest.approx(math.log(1.2), abs=0.01)
    assert frame["mean"].iloc[40] > 100 * frame["mean"].iloc[0]


def test_lstm_with_open_forget_gates_keeps_gradients_far_longer_than_rnn(train_tiny, text):
    rnn = gradient_decay(train_tiny("rnn"), text, max_lag=60, positions=32)
    lstm = load_checkpoint(train_tiny("lstm"))
    hidden = lstm.model.config.hidden
    with torch.no_grad():
        lstm.model.layer_weights(0)[2][hidden : 2 * hidden] += 8.0  # forget gate bias: f ~ 1
    kept = gradient_decay(lstm, text, max_lag=60, positions=32)
    # measured: rnn 1.8e-11, lstm hidden 5.8e-4, cell 6.5e-3 relative to lag 0
    assert at_lag(kept, "hidden", 60) > 1e4 * at_lag(rnn, "hidden", 60)
    assert at_lag(kept, "cell", 60) > 1e4 * at_lag(rnn, "hidden", 60)


def test_bad_inputs_are_one_line_errors(train_tiny):
    path = train_tiny("rnn")
    with pytest.raises(ProbeError, match="empty"):
        gradient_decay(path, "", max_lag=10)
    with pytest.raises(ProbeError, match=r"^--max-lag \(max_lag in Python\) 200 needs a text of"):
        gradient_decay(path, "x" * 150, max_lag=200)
    with pytest.raises(ProbeError, match="at least 202 characters; this one has 150"):
        gradient_decay(path, "x" * 150, max_lag=200)
    with pytest.raises(ProbeError, match="vocab"):
        gradient_decay(load_checkpoint(path).model, "x" * 500, max_lag=10)
    with pytest.raises(ProbeError, match="batch must be >= 1"):
        gradient_decay(path, "x" * 500, max_lag=10, batch=0)
    with pytest.raises(ProbeError, match="whole numbers"):
        gradient_decay(path, "x" * 500, max_lag=10.5)


def test_recording_decay_is_cached_next_to_the_recording(tiny_recording):
    frame = recording_decay(tiny_recording, max_lag=15, positions=8)
    cached = list((tiny_recording.path / "cache").glob("gradients-*-K15-P8.csv"))
    assert len(cached) == 1
    assert set(frame["model"]) == {
        frame["model"].iloc[0],
        frame["model"].iloc[0] + " (random init)",
    }
    assert set(frame["state"]) == {"hidden", "cell"} and set(frame["layer"]) == {1, 2}
    again = recording_decay(tiny_recording, max_lag=15, positions=8)
    np.testing.assert_allclose(again["mean"], frame["mean"], rtol=1e-9)


def test_decay_figure_overlays_models_on_a_log_axis(train_tiny, text):
    frames = [
        (cell, gradient_decay(train_tiny(cell), text, max_lag=10, positions=4))
        for cell in ("rnn", "lstm")
    ]
    figure = decay_figure(frames, normalise=True)
    assert figure.layout.yaxis.type == "log"
    lines = [t for t in figure.data if t.mode == "lines"]
    assert [t.name for t in lines] == [
        "rnn · layer 1 hidden",
        "lstm · layer 1 hidden",
        "lstm · layer 1 cell",
    ]
    assert lines[0].y[0] == pytest.approx(1.0)  # normalised by lag 0
    with pytest.raises(ProbeError, match="no layer 3"):
        decay_figure(frames, layer=3)


def test_cli_writes_csv_and_offline_html_and_prints_the_table(train_tiny, text, tmp_path, capsys):
    held_out = tmp_path / "held_out.c"
    held_out.write_text(text[:5000], encoding="utf-8")
    paths = [str(train_tiny(cell)) for cell in ("rnn", "gru")]
    argv = [
        "gradients",
        "--checkpoint",
        paths[0],
        "--checkpoint",
        paths[1],
        "--text",
        str(held_out),
        "--max-lag",
        "12",
        "--positions",
        "4",
        "--normalise",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "spectral radius" in printed and "recurrent" in printed and "update_gate" in printed
    header = next(line for line in printed.splitlines() if line.startswith("model"))
    assert header.split()[-2:] == ["10", "12"]  # the largest lag asked for is shown too
    html = (tmp_path / "out" / "decay.html").read_text(encoding="utf-8")
    assert '<script src="http' not in html and len(html) > 1_000_000  # plotly.js inlined: offline
    assert (tmp_path / "out" / "decay.csv").read_text().startswith(",".join(DECAY_COLUMNS))
    assert main([*argv[:7], "--max-lag", "9000", "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "needs a text of at least 9002 characters" in error
    assert not (tmp_path / "x").exists()  # a run that fails leaves no folder behind
    assert main(argv) == 2  # the first run's results stay unless --force
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "already holds decay.csv" in error and "--force" in error
    assert (
        main([*argv[:5], "--text", str(held_out), "--max-lag", "5", "--out", argv[-1], "--force"])
        == 0
    )
    assert "decay.csv" in capsys.readouterr().out


def test_cli_checks_every_checkpoint_before_computing_any(
    train_tiny, tiny_checkpoint, text, tmp_path, capsys
):
    """A bad last checkpoint fails at once, not after minutes spent on the ones before it."""
    held_out = tmp_path / "held_out.c"
    held_out.write_text(text[:5000], encoding="utf-8")
    argv = ["gradients", "--checkpoint", str(tiny_checkpoint), "--text", str(held_out)]
    argv += ["--max-lag", "12", "--positions", "4", "--out", str(tmp_path / "out")]
    rnn, same_name = str(train_tiny("rnn")), str(tiny_checkpoint.parent)  # run folder: its best/
    for more, message in [
        (["--layer", "2", "--checkpoint", rnn], "has 1 layer(s)"),
        (["--checkpoint", same_name], "is given twice"),
    ]:
        assert main([*argv, *more]) == 2
        error = capsys.readouterr().err  # one line: no progress bar of a computation before it
        assert error.count("\n") == 1 and message in error, error


SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"


def test_labels_tell_a_runs_checkpoints_apart(tiny_checkpoint, tmp_path):
    run = tiny_checkpoint.parent
    best, last = load_checkpoint(run / "best"), load_checkpoint(run / "last")
    assert [checkpoint_label(best), checkpoint_label(last)] == [run.name, f"{run.name} (last)"]
    shipped = [
        load_checkpoint(SHIPPED / f"linux-{cell}-snapshots" / "init") for cell in ("lstm", "rnn")
    ]
    assert distinct_labels(shipped) == ["linux-lstm (init)", "linux-rnn (init)"]
    for where in ("a", "b"):  # the same generic name in two folders: their paths tell them apart
        shutil.copytree(run / "best", tmp_path / where / "model")
    copies = [load_checkpoint(tmp_path / where / "model") for where in ("a", "b")]
    assert distinct_labels([best, *copies]) == [run.name, "a/model", "b/model"]


def test_snapshots_of_a_shipped_model(tmp_path):
    snapshots = SHIPPED / "linux-lstm-snapshots"
    expected = [snapshots / "init", snapshots / "early", SHIPPED / "linux-lstm"]
    assert run_snapshots(snapshots) == expected  # in step order, then the final model
    assert run_snapshots(SHIPPED / "linux-lstm") == expected  # the model stands for its run
    with pytest.raises(ProbeError, match="has no snapshots"):
        run_snapshots(tmp_path)


def test_cli_overlays_a_runs_best_and_last(tiny_checkpoint, text, tmp_path, capsys):
    held_out = tmp_path / "held_out.c"
    held_out.write_text(text[:3000], encoding="utf-8")
    run = tiny_checkpoint.parent
    argv = ["gradients", "--checkpoint", str(run / "best"), "--checkpoint", str(run / "last")]
    argv += ["--text", str(held_out), "--max-lag", "5", "--positions", "2"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    models = pd.read_csv(tmp_path / "out" / "decay.csv")["model"].unique().tolist()
    assert models == [run.name, f"{run.name} (last)"]
