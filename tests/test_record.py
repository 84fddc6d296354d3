"""The recorder: streamed = sequential, what is stored, unknown characters, atomic writes."""

import json
import warnings

import numpy as np
import pytest

from probe.checkpoint import load_checkpoint
from probe.errors import ProbeError
from probe.record import record
from probe.recording import Recording
from tests.conftest import shared_text


@pytest.fixture(scope="module")
def held_out():
    return shared_text("linux.txt", 330_000)[300_000:]


def test_streamed_equals_sequential_beyond_warmup(tiny_checkpoint, held_out, tmp_path):
    streamed = record(
        tiny_checkpoint,
        held_out,
        tmp_path / "s",
        streams=12,
        warmup=300,
        twin=False,
        progress=False,
    )
    sequential = record(
        tiny_checkpoint, held_out, tmp_path / "q", streams=1, twin=False, progress=False
    )
    for layer, kind in sequential.layer_kinds:
        a = streamed.array(layer, kind).astype(np.float32)
        b = sequential.array(layer, kind).astype(np.float32)
        tolerance = 2e-3 * max(1.0, float(np.abs(b).max()))  # a few float16 steps
        assert np.abs(a - b).max() <= tolerance, (layer, kind)
    assert np.nanmax(np.abs(streamed.logprob - sequential.logprob)) < 1e-3
    assert np.isnan(sequential.logprob[-1]) and np.isfinite(sequential.logprob[:-1]).all()


def test_many_short_streams_are_exact_or_say_so(tiny_checkpoint, held_out, tmp_path):
    # Each stream starts from its predecessor's end as recorded: what a repair leaves over
    # adds up along 400 streams of 25 chars, unless it is well inside float16's resolution.
    text = held_out[:10_000]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        streamed = record(tiny_checkpoint, text, tmp_path / "s", streams=400, progress=False)
    sequential = record(tiny_checkpoint, text, tmp_path / "q", streams=1, progress=False)
    worst = 0.0
    for layer, kind in sequential.layer_kinds:
        a = streamed.array(layer, kind).astype(np.float32)
        b = sequential.array(layer, kind).astype(np.float32)
        worst = max(worst, float((np.abs(a - b) / (2e-3 + 2e-3 * np.abs(b))).max()))
    said = any("stream starts still differ" in str(w.message) for w in caught)
    assert worst <= 1 or said, worst


def test_recorded_values_equal_the_model_trace(tiny_checkpoint, held_out, tmp_path):
    import torch

    checkpoint = load_checkpoint(tiny_checkpoint)
    text = held_out[:500]
    recording = record(checkpoint, text, tmp_path / "r", streams=1, twin=False, progress=False)
    ids = torch.from_numpy(checkpoint.vocab.encode(text))[None]
    logits, _, traces = checkpoint.model.trace(ids)
    expected = traces[2]["cell"][0].numpy()
    np.testing.assert_allclose(
        recording.array(2, "cell").astype(np.float32), expected, rtol=1e-3, atol=1e-3
    )
    log_probs = torch.log_softmax(logits[0], -1)[torch.arange(499), ids[0, 1:]].numpy()
    assert np.abs(recording.logprob[:-1] - log_probs).max() < 1e-4


def test_manifest_kinds_twin_and_unknown_chars(tiny_checkpoint, tmp_path):
    text = "int x = 1; /* caf\u00e9 \u2603 */\n" * 50
    recording = record(
        tiny_checkpoint, text, tmp_path / "r", kinds=["cell", "forget_gate"], progress=False
    )
    assert recording.layer_kinds == [
        (1, "cell"),
        (1, "forget_gate"),
        (2, "cell"),
        (2, "forget_gate"),
    ]
    assert recording.manifest["unknown_chars"] == 100  # é and the snowman are not in C code
    assert recording.text == text and recording.array(1, "cell").dtype == np.float16
    twin = recording.init_twin
    assert twin is not None and twin.chars == len(text) and twin.manifest["random_init_twin"]
    assert not np.allclose(twin.array(1, "cell"), recording.array(1, "cell"))


def test_one_kind_as_a_string_and_a_file_name_as_text(tiny_checkpoint, tmp_path):
    text = "int x = 1;\n" * 50
    one = record(tiny_checkpoint, text, tmp_path / "one", kinds="cell", twin=False, progress=False)
    assert one.layer_kinds == [(1, "cell"), (2, "cell")]  # not the kinds 'c', 'e', 'l'
    (tmp_path / "code.c").write_text(text)
    with pytest.raises(ProbeError, match="the name of a file: pass its contents"):
        record(tiny_checkpoint, str(tmp_path / "code.c"), tmp_path / "two", progress=False)
    with pytest.raises(ProbeError, match="streams must be >= 1"):
        record(tiny_checkpoint, text, tmp_path / "three", streams=0, progress=False)


def test_refuses_to_overwrite_and_leaves_nothing_half_written(tiny_checkpoint, tmp_path):
    out = tmp_path / "r"
    record(tiny_checkpoint, "abc" * 100, out, twin=False, progress=False)
    with pytest.raises(ProbeError, match=r"pass --overwrite \(overwrite=True in Python\)$"):
        record(tiny_checkpoint, "xyz" * 100, out, twin=False, progress=False)
    with pytest.raises(ProbeError, match="no kind"):
        record(
            tiny_checkpoint, "xyz" * 100, out, kinds=["reset_gate"], overwrite=True, progress=False
        )
    assert Recording.open(out).text == "abc" * 100  # the failed overwrite changed nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folders left


def test_overwrite_replaces_only_a_recording(tiny_checkpoint, tmp_path):
    text_file, run = tmp_path / "chapter.txt", tmp_path / "run"
    text_file.write_text("abc" * 100)
    (run / "last").mkdir(parents=True)
    (run / "manifest.json").write_text('{"name": "an app"}')  # a manifest, but not ours
    for target, what in [(text_file, "is a file"), (run, "not a probe-recording folder")]:
        with pytest.raises(ProbeError, match=what):
            record(tiny_checkpoint, "xyz" * 100, target, overwrite=True, twin=False, progress=False)
    assert text_file.read_text() == "abc" * 100 and (run / "last").is_dir()
    empty = tmp_path / "empty"
    empty.mkdir()
    record(tiny_checkpoint, "xyz" * 100, empty, overwrite=True, twin=False, progress=False)
    assert Recording.open(empty).text == "xyz" * 100


def test_recording_checks_its_files(tiny_checkpoint, tmp_path):
    out = tmp_path / "r"
    record(tiny_checkpoint, "abc" * 100, out, twin=False, progress=False)
    np.save(out / "L1_cell.npy", np.zeros((10, 3), np.float16))
    with pytest.raises(ProbeError, match="manifest says"):
        Recording.open(out)
    (out / "L1_cell.npy").write_bytes(b"garbage")
    with pytest.raises(ProbeError, match="corrupt"):
        Recording.open(out)
    with pytest.raises(ProbeError, match="no recording"):
        Recording.open(tmp_path / "missing")


def test_record_or_reuse_keys_on_weights_and_text(tiny_checkpoint, tmp_path):
    from probe.record import record_or_reuse

    out = tmp_path / "r"
    first = record_or_reuse(tiny_checkpoint, "int a;\n" * 40, out, twin=False, progress=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    again = record_or_reuse(tiny_checkpoint, "int a;\n" * 40, out, twin=False, progress=False)
    assert (out / "manifest.json").stat().st_mtime_ns == stamp and again.text == first.text
    changed = record_or_reuse(tiny_checkpoint, "int b;\n" * 40, out, twin=False, progress=False)
    assert changed.text == "int b;\n" * 40
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["recorder"]  # as an earlier recorder wrote it: its stream starts were inexact
    (out / "manifest.json").write_text(json.dumps(manifest))
    stamp = (out / "manifest.json").stat().st_mtime_ns
    record_or_reuse(tiny_checkpoint, "int b;\n" * 40, out, twin=False, progress=False)
    assert (out / "manifest.json").stat().st_mtime_ns != stamp
    assert json.loads((out / "manifest.json").read_text())["recorder"] == 2
