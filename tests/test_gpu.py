"""The trainer and recorder on a CUDA GPU: the same results as on the CPU (skipped without one)."""

import math

import numpy as np
import pytest
import torch

from probe.checkpoint import load_checkpoint
from probe.record import record
from probe.recording import Recording
from probe.train import train
from tests.conftest import shared_text
from tests.test_cli import probe
from tests.test_train import log_rows, settings

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def test_training_on_the_gpu_learns_and_loads_on_the_cpu(linux_file, tmp_path):
    config = settings(
        linux_file, tmp_path, layers=2, hidden=64, batch=32, seq_len=50, max_steps=300,
        val_every=100, eval_chars=20_000, dropout=0.0, device="cuda",
    )  # fmt: skip
    result = train(config)
    on_gpu, on_cpu = (load_checkpoint(tmp_path / "best", d) for d in ("cuda", "cpu"))
    assert result["val_loss"] < 0.7 * math.log(len(on_cpu.vocab))  # far below chance
    ids = torch.from_numpy(on_cpu.vocab.encode(shared_text("linux.txt", 500)))[None]
    with torch.no_grad():
        expected = on_cpu.model(ids)[0]
        got = on_gpu.model(ids.cuda())[0].cpu()
    assert torch.allclose(got, expected, atol=1e-3)  # cuDNN and oneDNN sum in other orders


def test_a_resumed_gpu_run_draws_the_same_dropout(linux_file, tmp_path):
    """The GPU's generator is saved with `last/`: one layer, so the dropout is the decoder's
    (cuDNN's between layers keeps its own generator, which cannot be saved)."""
    common = dict(hidden=64, batch=32, dropout=0.3, device="cuda")
    train(settings(linux_file, tmp_path / "straight", max_steps=40, **common))
    train(settings(linux_file, tmp_path / "resumed", max_steps=20, **common))
    train(settings(linux_file, tmp_path / "resumed", max_steps=40, resume=True, **common))
    straight, resumed = (log_rows(tmp_path / run) for run in ("straight", "resumed"))
    assert [row["step"] for row in resumed] == [row["step"] for row in straight]
    for a, b in zip(straight, resumed):
        assert abs(float(a["val_loss"]) - float(b["val_loss"])) < 1e-4, (a, b)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_recording_on_the_gpu_equals_the_cpu_recording(train_tiny, tmp_path, cell):
    """Same streams and warm-up: the GPU's path (the step loop; cuDNN for RNN layers) and
    the CPU's (oneDNN's fused kernel for LSTMs) store the same float16 values (to a float16
    step: c grows past 1)."""
    checkpoint = train_tiny(cell, layers=2, hidden=32, steps=100)
    text = shared_text("linux.txt", 330_000)[300_000:]
    recordings = {
        device: record(
            checkpoint,
            text,
            tmp_path / device,
            streams=12,
            warmup=50,
            twin=False,
            progress=False,
            device=device,
        )  # fmt: skip
        for device in ("cpu", "cuda")
    }
    cpu, gpu = recordings["cpu"], recordings["cuda"]
    assert gpu.manifest["kinds"] == cpu.manifest["kinds"]
    for layer in range(1, 3):
        for kind in cpu.manifest["kinds"]:
            a, b = (np.asarray(r.array(layer, kind), np.float32) for r in (cpu, gpu))
            np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-3, err_msg=f"{layer} {kind}")
    assert np.allclose(cpu.logprob[:-1], gpu.logprob[:-1], atol=1e-3)


def test_record_command_takes_the_gpu(tiny_checkpoint, tmp_path, linux_file):
    code, out, err = probe(
        "record", "--checkpoint", tiny_checkpoint, "--text", linux_file, "--max-chars", 20_000,
        "--out", tmp_path / "rec", "--device", "cuda",
    )  # fmt: skip
    assert code == 0, err
    assert Recording.open(tmp_path / "rec").chars == 20_000


def test_gradient_decay_on_the_gpu_equals_the_cpu(tiny_checkpoint):
    from probe.gradients import gradient_decay

    text = shared_text("linux.txt", 20_000)
    tables = [
        gradient_decay(tiny_checkpoint, text, max_lag=40, positions=32, device=device)
        for device in ("cpu", "cuda")
    ]
    for column in ("mean", "p50", "ratio_mean"):
        np.testing.assert_allclose(tables[1][column], tables[0][column], rtol=1e-3, atol=1e-7)
