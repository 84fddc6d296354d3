"""The fast recorder computes exactly what the readable `CharRNN.trace` computes."""

import platform
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import probe.record as record_module
from probe.checkpoint import load_checkpoint
from probe.fastrecord import FastTracer, next_char_logprob
from probe.record import record, record_arrays
from probe.recording import RecordingWriter
from tests.conftest import shared_text

SHAPES = [("lstm", 1), ("lstm", 3), ("gru", 1), ("gru", 2), ("rnn", 1), ("rnn", 3)]


@pytest.fixture(scope="module")
def text():
    return shared_text("linux.txt", 312_345)[300_000:]


@pytest.fixture(scope="module", params=SHAPES, ids=[f"{c}x{n}" for c, n in SHAPES])
def checkpoint(request, train_tiny):
    cell, layers = request.param
    return load_checkpoint(
        train_tiny(cell, layers=layers, hidden=32, steps=40)
    )  # every kernel takes 32


@pytest.mark.parametrize("path", ["layer-kernel", "step-loop", "onednn-step-loop"])
def test_tracer_equals_trace_across_chunks(checkpoint, text, monkeypatch, path):
    """Several streams, chunks of 7 steps (the last one short), state carried between chunks;
    through the compiled layers, the step loop (where they decline), and the step loop with
    oneDNN's GEMM (what AVX-512 CPUs run)."""
    import probe.fastrecord as fastrecord

    if path != "layer-kernel":
        monkeypatch.setattr(fastrecord.recorder_kernels, "lstm_layer", lambda *args: False)
        monkeypatch.setattr(fastrecord.recorder_kernels, "gru_layer", lambda *args: False)
        monkeypatch.setattr(fastrecord.recorder_kernels, "rnn_layer", lambda *args: False)
    if path == "onednn-step-loop":
        if not fastrecord.onednn.ONEDNN:
            pytest.skip("this PyTorch has no oneDNN linear")
        monkeypatch.setattr(fastrecord.onednn, "PREFER_ONEDNN", True)
    model = checkpoint.model
    ids = torch.from_numpy(checkpoint.vocab.encode(text[: 5 * 60]).reshape(5, 60))
    logits, final, traces = model.trace(ids)
    tracer = FastTracer(model, streams=5, steps=7, state=model.initial_state(5))
    got = {}
    for column in range(0, 60, 7):
        for layer, values, _ in tracer.run(ids[:, column : column + 7]):
            values = {"logits": values} if layer == "logits" else values
            for kind, value in values.items():
                got.setdefault((layer, kind), []).append(value.transpose(0, 1).clone())
    for (layer, kind), parts in got.items():
        expected = logits if layer == "logits" else traces[layer][kind]
        torch.testing.assert_close(torch.cat(parts, dim=1), expected, atol=1e-5, rtol=1e-5)
    assert {k for layer, k in got if layer == 1} == set(model.kinds)
    final_h = torch.stack(tracer.h)
    torch.testing.assert_close(final_h, final[0] if model.config.cell == "lstm" else final)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_layer_kernels_run_sizes_off_their_blocks_padded(cell, train_tiny, text, tmp_path):
    """20 units (not a multiple of the kernels' 8 or 16): the tracer pads every layer with
    units that stay 0 and still equals `trace`; a recording of it equals the per-segment
    traces (the float16 copies then come from the model's units, not the padded ones)."""
    import probe.fastrecord as fastrecord

    if fastrecord.kernels.library is None:
        pytest.skip("compiled kernels not built")
    checkpoint = load_checkpoint(train_tiny(cell, layers=2, hidden=20, steps=40))
    model = checkpoint.model
    ids = torch.from_numpy(checkpoint.vocab.encode(text[: 4 * 30]).reshape(4, 30))
    logits, final, traces = model.trace(ids)
    tracer = FastTracer(model, streams=4, steps=30, state=model.initial_state(4))
    assert tracer.packed and tracer.hidden > 20
    for layer, values, _ in tracer.run(ids):  # views: checked before the next layer runs
        for kind, value in values.items() if layer != "logits" else [("logits", values)]:
            expected = logits if layer == "logits" else traces[layer][kind]
            assert value.shape[-1] == expected.shape[-1]
            torch.testing.assert_close(value.transpose(0, 1), expected, atol=1e-5, rtol=1e-5)
    final_h = torch.stack(tracer.h)[..., :20]
    torch.testing.assert_close(final_h, final[0] if cell == "lstm" else final)
    assert not torch.stack(tracer.h)[..., 20:].any()  # the padded units stayed 0
    recording = record(checkpoint, text[:300], tmp_path / "r", streams=3, warmup=0,
                       twin=False, progress=False)  # fmt: skip
    assert_is_the_sequential_trace(recording, checkpoint, text[:300])


@pytest.mark.parametrize("path", ["kernel", "torch"])
def test_tracer_log_probs_equal_log_softmax_of_trace_logits(checkpoint, text, monkeypatch, path):
    """log p(next char) per stream and step, by the compiled decoder (GEMM and softmax fused)
    and by torch from the logits, equals log_softmax of the readable trace's logits."""
    import probe.fastrecord as fastrecord

    if path == "torch":
        monkeypatch.setattr(fastrecord.recorder_kernels, "logprob", lambda *args: False)
    elif fastrecord.kernels.library is None:
        pytest.skip("compiled kernels not built")
    model = checkpoint.model
    ids = torch.from_numpy(checkpoint.vocab.encode(text[: 5 * 61]).reshape(5, 61))
    logits, _, _ = model.trace(ids[:, :-1])
    expected = next_char_logprob(logits.transpose(0, 1), ids[:, 1:])
    tracer = FastTracer(model, streams=5, steps=7, state=model.initial_state(5))
    got = []
    for column in range(0, 60, 7):
        *_, (what, picked, _) = tracer.run(
            ids[:, column : column + 7], next_ids=ids[:, column + 1 : column + 8]
        )
        assert what == "logprob"
        got.append(picked)
    np.testing.assert_allclose(np.concatenate(got, axis=1), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 3])
def test_streamed_recording_is_the_sequential_trace(
    checkpoint, text, tmp_path, monkeypatch, groups
):
    """Without warm-up each stream starts from zeros, and the repair pass has to carry every
    state over; 7 streams over 1000 chars leave a short last stream and chunks that do not
    divide the segment. In 3 groups side by side (streams 0-1, 2-3, 4-6), each group's rows
    land where they belong."""
    monkeypatch.setattr(record_module, "plan_shards", lambda model, streams: groups)
    model, chars = checkpoint.model, 1000
    kinds = list(model.kinds)[-2:]  # a subset, in the model's order
    recording = record(
        checkpoint, text[:chars], tmp_path / "r", kinds=kinds, streams=7, warmup=0,
        twin=False, progress=False,
    )  # fmt: skip
    assert [k for layer, k in recording.layer_kinds if layer == 1] == kinds
    assert_is_the_sequential_trace(recording, checkpoint, text[:chars])


def assert_is_the_sequential_trace(recording, checkpoint, text: str) -> None:
    """A recording made in streams equals one `trace` over the whole text (to float16), its
    log-probs included: each stream's start was repaired from its predecessor's end."""
    model, ids = checkpoint.model, checkpoint.vocab.encode(text)
    kinds = [kind for layer, kind in recording.layer_kinds if layer == 1]
    logits, _, traces = model.trace(torch.from_numpy(ids)[None])
    for layer in range(1, model.config.layers + 1):
        for kind in kinds:
            got = recording.array(layer, kind).astype(np.float32)
            np.testing.assert_allclose(got, traces[layer][kind][0].numpy(), atol=2e-3, rtol=2e-3)
    log_probs = torch.log_softmax(logits[0, :-1], -1)
    expected = log_probs[torch.arange(len(ids) - 1), torch.from_numpy(ids[1:])].numpy()
    np.testing.assert_allclose(recording.logprob[:-1], expected, atol=1e-4)
    assert np.isnan(recording.logprob[-1])


def test_many_small_chunks_record_the_same_values(checkpoint, text, tmp_path):
    """Chunks of 16 steps cycle the float16 buffers (reused once the writer is done with
    them) many times over: every value must match the one-chunk recording's (to one float16
    step: other GEMM shapes round differently in float32; a reused buffer would differ wholly)."""
    model, ids = checkpoint.model, checkpoint.vocab.encode(text[:3000])
    kinds = list(model.kinds)
    layers = range(1, model.config.layers + 1)
    shapes = {(layer, k): model.config.hidden for layer in layers for k in kinds}
    arrays = []
    for steps in (None, 16):
        folder = tmp_path / f"steps-{steps}"
        folder.mkdir()
        writer = RecordingWriter(folder, text[:3000], shapes)
        record_arrays(model, ids, writer, kinds, streams=5, warmup=50, steps=steps, progress=False)
        arrays.append({key: np.array(array) for key, array in writer.arrays.items()})
    for key in shapes:
        np.testing.assert_allclose(arrays[0][key], arrays[1][key], rtol=2e-3, atol=1e-3)


def test_lstm_uses_the_fused_kernel_and_falls_back_if_its_layout_changes(monkeypatch, text):
    """On CPU without the compiled step kernel, LSTM layers run through oneDNN's fused kernel
    with gates read from its workspace. If a PyTorch release moved the gates, the c they imply would not end at the
    kernel's final c: the tracer notices on the first chunk and steps the layers itself."""
    import probe.fastrecord as fastrecord
    from probe.model import CharRNN, ModelConfig

    torch.manual_seed(0)
    model = CharRNN(ModelConfig("lstm", 2, 24, 0.0, 50)).eval()
    ids = torch.randint(0, 50, (4, 30))
    logits, _, traces = model.trace(ids)
    assert not fastrecord.uses_fused_kernel(model) or fastrecord.kernels.library is None
    monkeypatch.setattr(fastrecord.kernels, "library", None)
    assert fastrecord.uses_fused_kernel(model)

    expected_layout = fastrecord.onednn.workspace_gates

    def shifted(workspace, steps, streams, hidden):  # a layout we do not expect
        return expected_layout(workspace[64:], steps, streams, hidden)

    for layout in (expected_layout, shifted):
        monkeypatch.setattr(fastrecord.onednn, "workspace_gates", layout)
        tracer = FastTracer(model, streams=4, steps=30, state=model.initial_state(4))
        got = {layer: values for layer, values, _ in tracer.run(ids)}
        assert tracer.fused is (layout is not shifted)
        for kind in model.kinds:
            expected = traces[2][kind]
            torch.testing.assert_close(got[2][kind].transpose(0, 1), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got["logits"].transpose(0, 1), logits, atol=1e-5, rtol=1e-5)


def test_an_error_in_one_group_stops_the_others(checkpoint, text, tmp_path, monkeypatch):
    """A group that fails (here: at its second chunk's log-probs) stops the other group at
    its next chunk, and the error reaches the caller."""
    monkeypatch.setattr(record_module, "plan_shards", lambda model, streams: 2)
    calls, logprob = [], FastTracer._logprob

    def failing(tracer, hidden, next_ids):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        if len(calls) > 3:  # chunks of a real model take this long: time for the stop to be
            time.sleep(0.1)  # set even on a busy machine (these take microseconds)
        return logprob(tracer, hidden, next_ids)

    monkeypatch.setattr(FastTracer, "_logprob", failing)
    model, ids = checkpoint.model, checkpoint.vocab.encode(text[:3000])
    layers = range(1, model.config.layers + 1)
    shapes = {(layer, kind): model.config.hidden for layer in layers for kind in model.kinds}
    writer = RecordingWriter(tmp_path, text[:3000], shapes)
    with pytest.raises(RuntimeError, match="disk on fire"):
        record_arrays(model, ids, writer, list(model.kinds), streams=4, warmup=0, steps=16,
                      progress=False)  # fmt: skip
    assert len(calls) <= 6  # of 2 x 47 chunks: both groups stopped within a chunk or two


def test_stream_writer_reports_a_failed_write(tmp_path):
    """A write that fails in the background thread (here: a full device) becomes one clear
    error, not a hang or a traceback from the thread."""
    from types import SimpleNamespace

    from probe.errors import ProbeError
    from probe.recording import StreamWriter

    full = SimpleNamespace(filename="/dev/full", offset=0)
    writer = StreamWriter(chars=100, segment=50)
    writer.write(full, np.zeros((2, 50, 4), dtype=np.float16), 0)
    with pytest.raises(ProbeError, match="could not write the recording"):
        writer.close()


def test_stream_writer_with_several_workers_puts_every_chunk_in_place(tmp_path):
    """Three threads take chunks of two arrays in any order; each lands at its own rows, and
    a buffer refilled after `wait_until_written` (as the recorder does) is never overwritten
    while a write of it is still queued."""
    from probe.recording import StreamWriter

    chars, streams, segment, steps, width = 997, 4, 250, 10, 3
    expected = np.random.default_rng(0).standard_normal((2, chars, width)).astype(np.float16)
    padded = np.zeros((2, streams * segment, width), np.float16)
    padded[:, :chars] = expected
    by_stream = padded.reshape(2, streams, segment, width)
    arrays = [
        np.lib.format.open_memmap(tmp_path / f"{i}.npy", "w+", np.float16, (chars, width))
        for i in range(2)
    ]
    writer = StreamWriter(chars, segment, pending=2, workers=3)
    ring = [np.empty((streams, steps, width), np.float16) for _ in range(3)]
    used = 0
    for column in range(0, segment, steps):
        for i, array in enumerate(arrays):
            chunk = ring[used % len(ring)]
            writer.wait_until_written(chunk)
            chunk[:] = by_stream[i, :, column : column + steps]
            writer.write(array, chunk, column)
            used += 1
    writer.close()
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"{i}.npy"), expected[i])


FAULTS_SCRIPT = """
import resource, torch
from probe.record import keep_freed_memory

def faults_refilling(megabytes):  # minor page faults filling a block after an equal one is freed
    torch.ones(megabytes << 18)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(megabytes << 18)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults_refilling(96)
with keep_freed_memory():
    inside = faults_refilling(96)
print(outside, inside, faults_refilling(96))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc returns big blocks")
def test_freed_big_blocks_are_reused_while_recording():
    """In a fresh interpreter (the heap's state depends on what ran before)."""
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True
    )
    outside, inside, after = map(int, result.stdout.split())
    pages = (96 << 20) // 4096
    assert outside > pages // 2  # glibc unmaps blocks over 32 MB when they are freed
    assert inside < pages // 10
    assert after > pages // 2  # and does again afterwards


def test_a_repair_cut_short_says_the_recording_is_not_exact(
    checkpoint, text, tmp_path, monkeypatch
):
    """With no repair rounds allowed, streams keep their warm-up's guess: the recorder warns
    instead of passing the result off as a sequential pass."""
    monkeypatch.setattr(record_module, "REPAIR_ROUNDS", 0)
    with pytest.warns(UserWarning, match="3 stream starts still differ"):
        recording = record(checkpoint, text[:1000], tmp_path / "r", streams=4, warmup=0,
                           twin=False, progress=False)  # fmt: skip
    assert recording.manifest["inexact_streams"] == 3  # the search and dashboard can tell
    exact = record(checkpoint, text[:1000], tmp_path / "q", streams=1, twin=False, progress=False)
    assert exact.manifest["inexact_streams"] == 0
