"""Training: resume continues exactly; snapshots; the CSV log; bad settings."""

import csv
import os
import signal

import pytest

import probe.train
from probe.checkpoint import load_checkpoint, load_train_state
from probe.errors import ProbeError
from probe.train import TrainConfig, train


def settings(linux_file, out, **overrides):
    base = dict(
        corpus=str(linux_file),
        out=str(out),
        layers=1,
        hidden=24,
        batch=8,
        seq_len=30,
        val_every=10,
        eval_chars=5_000,
        dropout=0.2,
        quiet=True,
    )
    return TrainConfig(**{**base, **overrides})


def log_rows(run):
    with open(run / "log.csv") as handle:
        return [
            {k: row[k] for k in ("step", "train_loss", "val_loss")}
            for row in csv.DictReader(handle)
        ]


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(linux_file, tmp_path):
    train(settings(linux_file, tmp_path / "straight", max_steps=40))
    train(settings(linux_file, tmp_path / "resumed", max_steps=20))
    with open(tmp_path / "resumed" / "log.csv", "a") as log:  # logged, then died before `last/`
        log.write("30,0,9.9,9.9,1.0,0.002,1000,1.0\n")
    train(settings(linux_file, tmp_path / "resumed", max_steps=40, resume=True))
    straight, resumed = log_rows(tmp_path / "straight"), log_rows(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == ["10", "20", "30", "40"]
    assert resumed == straight  # same weights, optimizer, RNG (dropout), carried state, position
    assert float(straight[-1]["val_loss"]) < float(straight[0]["val_loss"])


def test_resuming_a_finished_run_at_its_limit_trains_and_rewrites_nothing(linux_file, tmp_path,
                                                                          capsys):  # fmt: skip
    first = train(settings(linux_file, tmp_path / "run", max_steps=10))
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    again = train(settings(linux_file, tmp_path / "run", max_steps=10, resume=True, quiet=False))
    assert again == first
    assert files == {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert "already at its max steps (step 10)" in capsys.readouterr().err


def test_resume_keeps_the_runs_settings(linux_file, tmp_path):
    run = tmp_path / "run"
    train(settings(linux_file, run, max_steps=10, split=(0.8, 0.1, 0.1)))
    # Only the run folder and a longer budget: shape, corpus, split and batch are the run's.
    train(TrainConfig(out=str(run), resume=True, max_steps=20, eval_chars=5_000, quiet=True))
    args = load_checkpoint(run / "last").info["train_args"]
    assert args["max_steps"] == 20 and args["hidden"] == 24 and args["batch"] == 8
    assert args["split"] == [0.8, 0.1, 0.1] and args["corpus"] == str(linux_file)
    with pytest.raises(ProbeError, match=r"^--hidden \(hidden in Python\): 32, not the run's 24;"):
        train(settings(linux_file, run, hidden=32, max_steps=30, resume=True))
    with pytest.raises(ProbeError, match=r"^--split \(split in Python\): "):
        train(settings(linux_file, run, split=(0.7, 0.2, 0.1), max_steps=30, resume=True))
    other = tmp_path / "other.c"
    other.write_text(linux_file.read_text()[:-100])
    with pytest.raises(ProbeError, match="not the text this run trained on"):
        train(settings(other, run, max_steps=30, resume=True))
    same = tmp_path / "copy.c"  # the same text by another name (a path from another folder)
    same.write_bytes(linux_file.read_bytes())
    train(settings(same, run, max_steps=30, resume=True))
    with pytest.raises(ProbeError, match="no run to resume"):
        train(settings(linux_file, tmp_path / "none", resume=True))


def test_an_early_stop_validates_its_last_step_once(linux_file, tmp_path):
    # An lr too small to move any weight: the second validation is no better, patience 1.
    result = train(settings(linux_file, tmp_path / "run", lr=1e-30, patience=1, max_steps=100))
    assert result["reason"] == "early stop" and result["step"] == 20
    assert [row["step"] for row in log_rows(tmp_path / "run")] == ["10", "20"]
    progress = load_train_state(tmp_path / "run" / "last")[1]["progress"]
    assert progress["bad_validations"] == 1


def test_a_stops_extra_validation_does_not_count_toward_patience(linux_file, tmp_path):
    """Stopped between validations, a run validates and saves at once; resumed, it must stop
    early where the unstopped run does (no better val loss at lr 1e-30: 10, then 20 and 30
    count, patience 2), not one validation sooner."""
    straight = train(settings(linux_file, tmp_path / "straight", lr=1e-30, patience=2))
    assert straight["reason"] == "early stop" and straight["step"] == 30
    train(settings(linux_file, tmp_path / "run", lr=1e-30, patience=2, max_steps=15))
    resumed = train(
        settings(linux_file, tmp_path / "run", lr=1e-30, patience=2, max_steps=99, resume=True)
    )
    assert resumed["reason"] == "early stop" and resumed["step"] == 30
    assert [row["step"] for row in log_rows(tmp_path / "run")] == ["10", "15", "20", "30"]


def test_a_second_run_in_a_run_folder_says_how_to_resume_from_python_too(linux_file, tmp_path):
    train(settings(linux_file, tmp_path / "run", max_steps=2, val_every=2))
    with pytest.raises(ProbeError, match=r"pass --resume \(resume=True in Python\)$"):
        train(settings(linux_file, tmp_path / "run", max_steps=2, val_every=2))


def test_bad_settings_are_named_as_the_command_line_and_python_spell_them():
    with pytest.raises(ProbeError, match=r"^--seq-len \(seq_len in Python\) must be a positive"):
        TrainConfig(seq_len=0)
    with pytest.raises(ProbeError, match=r"--lr-decay \(lr_decay in Python\) in \(0, 1\]"):
        TrainConfig(lr_decay=1.5)
    with pytest.raises(ProbeError, match=r"^--dropout \(dropout in Python\) must be in"):
        from probe.model import ModelConfig

        ModelConfig(dropout=1.0)


def test_a_vocabulary_of_one_char_is_refused(linux_file, tmp_path):
    with pytest.raises(ProbeError, match=r"lower --min-char-count \(min_char_count in Python\)$"):
        train(settings(linux_file, tmp_path / "run", min_char_count=10**9, max_steps=1))


def test_snapshots_and_checkpoint_contents(linux_file, tmp_path):
    result = train(settings(linux_file, tmp_path / "run", max_steps=20, snapshot_every=10))
    snapshots = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snapshots == ["step-000000", "step-000010", "step-000020"]
    from probe.checkpoint import run_snapshots  # what `gradients --snapshots` overlays

    found = run_snapshots(tmp_path / "run")
    assert [p.name for p in found] == [*snapshots, "best"]
    assert run_snapshots(tmp_path / "run" / "best") == found  # the run's best/ names the run
    best = load_checkpoint(tmp_path / "run")
    assert best.info["test_loss"] == pytest.approx(result["test_loss"])
    assert best.info["corpus"]["name"] == "linux_head.c" and best.info["train_args"]["hidden"] == 24
    assert (tmp_path / "run" / "last" / "train_state.safetensors").is_file()


def test_ctrl_c_while_a_checkpoint_is_saved_waits_for_the_save(linux_file, tmp_path, monkeypatch):
    """Ctrl-C (a real SIGINT) in the middle of validating and saving stops after that save:
    the run is not left with a best loss that no `best/` holds."""
    real_save, saves = probe.train.save_checkpoint, []

    def save_after_ctrl_c(path, *args, **kwargs):
        if path.name == "best" and not saves:
            os.kill(os.getpid(), signal.SIGINT)
        saves.append(path.name)
        real_save(path, *args, **kwargs)

    monkeypatch.setattr(probe.train, "save_checkpoint", save_after_ctrl_c)
    before = signal.getsignal(signal.SIGINT)  # ignored where the tests run as a background job
    result = train(settings(linux_file, tmp_path / "run", max_steps=100))
    assert result["reason"] == "interrupted" and result["step"] == 10
    assert [row["step"] for row in log_rows(tmp_path / "run")] == ["10"]
    assert saves == ["best", "last", "best", "last"]  # then the test loss is stored in both
    best = load_checkpoint(tmp_path / "run")
    assert best.info["val_loss"] == pytest.approx(result["val_loss"]) and best.info["test_loss"]
    assert signal.getsignal(signal.SIGINT) == before  # given back


def test_existing_run_needs_resume(linux_file, tmp_path):
    train(settings(linux_file, tmp_path / "run", max_steps=10))
    with pytest.raises(ProbeError, match="--resume"):
        train(settings(linux_file, tmp_path / "run", max_steps=10))
    with pytest.raises(ProbeError, match=r"^--out \(out in Python\) .* is a file, not a run"):
        train(settings(linux_file, tmp_path / "run" / "log.csv", max_steps=10))
    (tmp_path / "project").mkdir()  # e.g. a recording: its --overwrite would delete the run
    (tmp_path / "project" / "manifest.json").write_text("{}")
    with pytest.raises(ProbeError, match=r"holds files of its own \(manifest.json\), not a run"):
        train(settings(linux_file, tmp_path / "project", max_steps=10))
    assert [f.name for f in (tmp_path / "project").iterdir()] == ["manifest.json"]


def test_a_missing_gpu_is_named_as_the_command_line_and_python_spell_it():
    from probe.model import check_device

    assert check_device("cpu") == "cpu"
    with pytest.raises(ProbeError, match=r"^--device \(device in Python\) cuda:999: "):
        check_device("cuda:999")  # no GPU, or fewer than 1000


@pytest.mark.parametrize(
    ("field", "value"), [("hidden", 0), ("seq_len", -1), ("batch", 0), ("lr", -1.0)]
)
def test_nonsense_numbers_are_refused(linux_file, tmp_path, field, value):
    with pytest.raises(ProbeError):
        settings(linux_file, tmp_path / "x", **{field: value})


def test_text_too_short_for_the_batch(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("hello world, " * 20)
    with pytest.raises(ProbeError, match=r"too short.*--batch \(batch in Python\) 64 x --seq-len"):
        train(
            TrainConfig(
                corpus=str(path), out=str(tmp_path / "r"), batch=64, seq_len=100, quiet=True
            )
        )


def test_a_folder_with_no_held_out_text_is_refused_before_training(linux_file, tmp_path):
    """A folder is split by file: with one file, val and test are empty, and their loss of 0
    must not pass for a perfect model."""
    from probe.corpus import split_files

    folder = tmp_path / "code"
    folder.mkdir()
    name = next(  # a file name that the split sends to training
        f"{i}.c"
        for i in range(100)
        if split_files([folder / f"{i}.c"], folder, (0.9, 0.05, 0.05))["train"]
    )
    (folder / name).write_bytes(linux_file.read_bytes())
    with pytest.raises(ProbeError, match="has no val text .*split by file"):
        train(settings(folder, tmp_path / "run", max_steps=10))
    assert not (tmp_path / "run").exists()
