"""Gradient-norm decay: how far back in time does the loss still reach?

For a position t, the gradient of the next-char loss L_t with respect to the recurrent state
k steps earlier, ||dL_t / dh_{t-k}||, shrinks (or grows) roughly geometrically with the lag k
because backprop multiplies by W_hh^T (times the activation's derivative) once per step
(Pascanu et al. 2013). An LSTM's additive cell update lets it survive much longer.

How it is measured: many windows of K+1 characters are cut from a text, each preceded by a
warm-up run without gradients. The recurrence is unrolled by hand (same maths as
`CharRNN.trace`, checked by tests) so every per-step state is a tensor of the graph; the loss
at the LAST step alone is differentiated once, w.r.t. all of them, which gives the whole
curve k = 0..K for a batch of positions in one backward pass. Norms per position are then
summarised by their mean and 10/50/90th percentiles, raw and divided by the mean at lag 0
(`ratio_*` columns).

The cell-state gradient is BPTT's total one: it includes the path through h_t = o_t tanh(c_t).
Norms are float32: below ~1e-38 they underflow to 0 (fully vanished; log plots drop them).
Being a hand-written unroll, it never calls cuDNN, so it runs on CPU and GPU in eval mode.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from probe.checkpoint import Checkpoint, checkpoint_label, load_checkpoint
from probe.errors import ProbeError, argument
from probe.fileio import check_text, save_cache
from probe.model import CharRNN, check_device
from probe.recording import Recording

PERCENTILES = (10, 50, 90)
DECAY_COLUMNS = (
    "model cell layer state lag mean p10 p50 p90 ratio_mean ratio_p10 ratio_p50 ratio_p90 positions"
).split()
# Row blocks of W_hh in PyTorch's gate order, named like the recorded kinds.
BLOCKS = {
    "lstm": ("input_gate", "forget_gate", "candidate", "output_gate"),
    "gru": ("reset_gate", "update_gate", "candidate"),
    "rnn": ("recurrent",),
}


def spectral_radii(model: CharRNN) -> pd.DataFrame:
    """max |eigenvalue| of each layer's recurrent matrix, per gate block for LSTM/GRU.

    For a vanilla RNN this is the textbook predictor (< 1 vanishes, > 1 can explode). For
    gated cells the blocks are informational: gates modulate what is actually multiplied.
    """
    cell, rows = model.config.cell, []
    for layer in range(model.config.layers):
        w_hh = model.layer_weights(layer)[1].detach().double().cpu()
        for block, matrix in zip(BLOCKS[cell], w_hh.chunk(len(BLOCKS[cell]), dim=0)):
            radius = torch.linalg.eigvals(matrix).abs().max().item()
            rows.append({"layer": layer + 1, "block": block, "radius": radius})
    return pd.DataFrame(rows, columns=["layer", "block", "radius"])


def unroll_layer(cell: str, projected, w_hh, b_hh, state):
    """One layer over time from the hoisted input projection (B, T, G*H), keeping the graph.

    Returns (hidden states, cell states or None): lists of T tensors (B, H), the step's own
    tensors, so gradients w.r.t. them are total derivatives through the recurrence.
    """
    w_hh_t = w_hh.t()
    inputs = projected.unbind(1)  # per-step views whose backward is one stack, not T fills
    hs, cs = [], []
    if cell == "lstm":
        h, c = state
        for x in inputs:
            i, f, g, o = (torch.addmm(b_hh, h, w_hh_t) + x).chunk(4, dim=1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
            hs.append(h)
            cs.append(c)
        return hs, cs
    h = state
    for x in inputs:
        recurrent = torch.addmm(b_hh, h, w_hh_t)
        if cell == "gru":
            x_r, x_z, x_n = x.chunk(3, dim=1)
            h_r, h_z, h_n = recurrent.chunk(3, dim=1)
            r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
            h = (1 - z) * (x_n + r * h_n).tanh() + z * h
        else:
            h = (x + recurrent).tanh()
        hs.append(h)
    return hs, None


def unroll(model: CharRNN, ids: torch.Tensor, state):
    """Logits at the last step and {(layer, "hidden"|"cell"): [T tensors]} (layers 1-based)."""
    cell = model.config.cell
    states, layer_input = {}, None
    for layer in range(model.config.layers):
        w_ih, w_hh, b_ih, b_hh = (w.detach() for w in model.layer_weights(layer))
        if layer == 0:  # one-hot input: the projection is a column lookup
            projected = w_ih.t()[ids] + b_ih
        else:
            projected = layer_input @ w_ih.t() + b_ih
        layer_state = (state[0][layer], state[1][layer]) if cell == "lstm" else state[layer]
        hs, cs = unroll_layer(cell, projected, w_hh, b_hh, layer_state)
        states[(layer + 1, "hidden")] = hs
        if cs is not None:
            states[(layer + 1, "cell")] = cs
        layer_input = torch.stack(hs, dim=1)
    return model.decoder(layer_input[:, -1]), states


@torch.no_grad()
def warm_state(model: CharRNN, context: torch.Tensor):
    """The state after reading `context` (B, W) from zeros, as fresh tensors requiring grad."""
    state = model.initial_state(context.shape[0], context.device)
    if context.shape[1]:
        _, states = unroll(model, context, state)
        layers = range(1, model.config.layers + 1)
        hidden = torch.stack([states[(layer, "hidden")][-1] for layer in layers])
        if model.config.cell == "lstm":
            state = (hidden, torch.stack([states[(layer, "cell")][-1] for layer in layers]))
        else:
            state = hidden
    # Leaves requiring grad, so the window's states (whose weights are detached) join the graph.
    return (
        tuple(s.requires_grad_(True) for s in state)
        if isinstance(state, tuple)
        else state.requires_grad_(True)
    )


def plan_windows(chars: int, max_lag: int, positions: int, warmup: int) -> tuple[np.ndarray, int]:
    """Evenly spaced window starts and the warm-up they all get (shortened on short texts)."""
    if chars == 0:
        raise ProbeError("the text is empty")
    if max_lag < 1 or positions < 1 or warmup < 0:
        raise ProbeError(
            f"{argument('max_lag')} and {argument('positions')} must be >= 1, "
            f"{argument('warmup')} >= 0"
        )
    last_start = chars - max_lag - 2  # window of K+1 inputs plus the target after it
    if last_start < 0:
        raise ProbeError(
            f"{argument('max_lag')} {max_lag} needs a text of at least {max_lag + 2} characters; "
            f"this one has {chars}"
        )
    warmup = min(warmup, last_start // 2)
    starts = np.unique(np.linspace(warmup, last_start, positions).round().astype(np.int64))
    return starts, warmup


def summarise(norms: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and percentiles over positions (axis 0), raw and divided by the mean at lag 0.

    Dividing by the lag-0 mean rather than by each position's own lag-0 norm keeps the ratio
    finite: a saturated cell (tanh'(c) = 0) has a zero lag-0 cell gradient at some positions.
    """
    out = {"mean": norms.mean(axis=0)}
    for q, row in zip(PERCENTILES, np.percentile(norms, PERCENTILES, axis=0)):
        out[f"p{q}"] = row
    scale = max(out["mean"][0], np.finfo(np.float64).tiny)
    return {**out, **{f"ratio_{name}": values / scale for name, values in out.items()}}


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Gradients that vanish pass through float32 denormals (below 1e-38), which CPUs compute
    up to 100x slower: flushed to 0, a random-init LSTM's curves take 3-8x less time. Values
    above 1e-33 stay the same (relative 1e-5); a curve's last 2-3 decades, where float32 has
    few bits left either way, may end up to ~5 lags sooner. torch has no getter for the
    setting: it is left off, its default."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def decay_norms(
    model: CharRNN,
    ids: np.ndarray,
    starts: np.ndarray,
    max_lag: int,
    warmup: int,
    batch: int = 64,
    progress: bool | Callable[[str], None] = False,
    label: str = "",
) -> dict[tuple[int, str], np.ndarray]:
    """||dL_t/dstate_{t-k}|| per window: {(layer, state): float64 (windows, K+1)}, k = lag.
    `progress`: True for a bar on stderr, or a function to call with a line before each batch."""
    description = f"gradients {label}".strip()  # one bar per model: say whose
    device = next(model.parameters()).device
    window = max_lag + 1
    norms: dict[tuple[int, str], list[np.ndarray]] = {}
    bar = tqdm(total=len(starts), unit="pos", disable=progress is not True, desc=description)
    with denormals_flushed(), bar:
        for lo in range(0, len(starts), batch):
            if callable(progress):
                progress(f"{description}: {lo} of {len(starts)} positions")
            chunk = starts[lo : lo + batch]
            inputs = np.stack([ids[s - warmup : s + window] for s in chunk])
            targets = torch.from_numpy(ids[chunk + window]).to(device)
            inputs = torch.from_numpy(inputs).to(device)
            state = warm_state(model, inputs[:, :warmup])
            with torch.enable_grad():
                logits, states = unroll(model, inputs[:, warmup:], state)
                loss = F.cross_entropy(logits.float(), targets, reduction="sum")
                keys = list(states)
                grads = torch.autograd.grad(loss, [t for key in keys for t in states[key]])
            for n, key in enumerate(keys):
                steps = torch.stack(grads[n * window : (n + 1) * window], dim=1)  # (B, T, H)
                by_lag = steps.double().norm(dim=2).flip(1)  # column k = lag k from the end
                norms.setdefault(key, []).append(by_lag.cpu().numpy())
            bar.update(len(chunk))
    return {key: np.concatenate(parts) for key, parts in norms.items()}


def gradient_decay(
    checkpoint: Checkpoint | CharRNN | str | Path,
    text: str,
    max_lag: int = 200,
    positions: int = 256,
    warmup: int = 100,
    batch: int = 64,
    label: str | None = None,
    vocab=None,
    device: str | None = None,
    progress: bool | Callable[[str], None] = False,
) -> pd.DataFrame:
    """Gradient-norm decay of every layer's hidden (and, for LSTMs, cell) state on `text`.

    Returns a long DataFrame (DECAY_COLUMNS): one row per model, layer, state and lag
    0..max_lag. A bare `CharRNN` needs `vocab` (the characters to ids mapping).
    """
    if not isinstance(checkpoint, (Checkpoint, CharRNN)):
        checkpoint = load_checkpoint(checkpoint, device or "cpu")
    if isinstance(checkpoint, Checkpoint):
        model, vocab = checkpoint.model, checkpoint.vocab
        label = label or checkpoint_label(checkpoint)
    else:
        model, label = checkpoint, label or checkpoint.config.cell
        if vocab is None:
            raise ProbeError("gradient_decay on a bare model needs its vocab")
    if device is not None:
        model = model.to(check_device(device))
    check_text(text)
    if not all(isinstance(n, numbers.Integral) for n in (max_lag, positions, warmup, batch)):
        raise ProbeError("max_lag, positions, warmup and batch must be whole numbers")
    if batch < 1:
        raise ProbeError(f"batch must be >= 1, got {batch}")
    starts, warmup = plan_windows(len(text), max_lag, positions, warmup)
    was_training = model.training
    model.eval()
    try:
        ids = vocab.encode(text)
        norms = decay_norms(model, ids, starts, max_lag, warmup, batch, progress, label)
    finally:
        model.train(was_training)
    frames = []
    for (layer, state), values in norms.items():
        frame = pd.DataFrame({"lag": np.arange(max_lag + 1), **summarise(values)})
        frame.insert(0, "state", state)
        frame.insert(0, "layer", layer)
        frame.insert(0, "cell", model.config.cell)
        frame.insert(0, "model", label)
        frame["positions"] = len(values)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[DECAY_COLUMNS]


def decay_cache(recording: Recording, max_lag: int, positions: int) -> Path:
    """Where `recording_decay` keeps a recording's curves: beside it, named by its model."""
    model = recording.manifest.get("checkpoint", {}).get("id", "unknown")
    return recording.path / "cache" / f"gradients-{model}-K{max_lag}-P{positions}.csv"


def recording_decay(
    recording: Recording,
    max_lag: int = 200,
    positions: int = 256,
    checkpoint=None,
    device: str | None = None,
    progress: bool | Callable[[str], None] = False,
) -> pd.DataFrame:
    """Decay curves of a recording's model and of its random-init twin, on the recording's text.

    Cached as REC/cache/gradients-<checkpoint id>-K<max_lag>-P<positions>.csv, so the
    dashboard computes it once. `checkpoint` defaults to the path in the recording manifest.
    """
    from probe.record import random_twin

    info = recording.manifest.get("checkpoint", {})
    cache = decay_cache(recording, max_lag, positions)
    if cache.is_file():
        return pd.read_csv(cache)
    if checkpoint is None:
        if not info.get("path") or not Path(info["path"]).exists():
            raise ProbeError(
                f"the checkpoint that made {recording.path} is no longer at {info.get('path')}; "
                f"give its new place with {argument('checkpoint')}"
            )
        checkpoint = info["path"]
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint, device or "cpu")
    if info.get("id") and checkpoint.id != info["id"]:  # e.g. a run retrained in the same folder
        raise ProbeError(
            f"{checkpoint.path} is not the checkpoint that made {recording.path} (its weights "
            f"changed since); give that one with {argument('checkpoint')}"
        )
    trained = random_twin(checkpoint.model) if info.get("init_only") else checkpoint.model
    name = checkpoint_label(checkpoint)
    models = [(name, trained), (f"{name} (random init)", random_twin(checkpoint.model))]
    frame = pd.concat(
        [
            gradient_decay(
                model,
                recording.text,
                max_lag,
                positions,
                label=label,
                vocab=checkpoint.vocab,
                device=device,
                progress=progress,
            )
            for label, model in models
        ],
        ignore_index=True,
    )
    save_cache(frame, cache)
    return frame
