"""The `probe` command: real runs end to end, and one-line errors (exit 2) for bad input."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def probe(*args, cwd=None):
    result = subprocess.run(
        [sys.executable, "-m", "probe.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    return result.returncode, result.stdout, result.stderr


def assert_one_line_error(code, stderr, *fragments):
    assert code == 2, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and all(f in lines[0] for f in fragments), stderr


def test_train_sample_record_end_to_end(linux_file, tmp_path):
    code, out, err = probe(
        "train",
        "--corpus",
        linux_file,
        "--out",
        tmp_path / "run",
        "--layers",
        1,
        "--hidden",
        16,
        "--batch",
        8,
        "--seq-len",
        20,
        "--max-steps",
        10,
        "--val-every",
        5,
    )
    assert code == 0, err
    assert "test loss" in out and "bits/char" in out
    code, out, err = probe(
        "sample", "--checkpoint", tmp_path / "run", "--length", 50, "--seed", 1, "--prime", "int "
    )
    assert code == 0 and out.startswith("int ") and len(out) >= 54
    code, out, err = probe(
        "record",
        "--checkpoint",
        tmp_path / "run",
        "--corpus",
        linux_file,
        "--split",
        "test",
        "--out",
        tmp_path / "rec",
        "--kinds",
        "cell,hidden",
    )
    assert code == 0, err
    assert "chars/s" in out and (tmp_path / "rec" / "L1_cell.npy").is_file()
    code, _, err = probe(
        "record",
        "--checkpoint",
        tmp_path / "run",
        "--corpus",
        linux_file,
        "--out",
        tmp_path / "rec",
    )
    assert_one_line_error(code, err, "already exists", "--overwrite")


def test_ctrl_c_saves_the_run_and_exits_130(linux_file, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "probe.cli", "train", "--corpus", str(linux_file)]
    command += ["--out", str(run), "--layers", "1", "--hidden", "16", "--batch", "8"]
    command += ["--val-every", "5", "--max-steps", "100000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "log.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "stopped (interrupted)" in out and (run / "last" / "train_state.safetensors").is_file()
    rows = (run / "log.csv").read_text().splitlines()
    assert "nan" not in rows[-1].split(",")[4]  # the last row has the last step's grad norm


def test_kill_stops_record_cleanly_and_leaves_no_temporary_folder(linux_file, tmp_path):
    """SIGTERM acts as Ctrl-C: the half-written recording's temporary folder goes too."""
    checkpoint = Path(__file__).resolve().parents[1] / "checkpoints" / "linux-lstm"
    command = [sys.executable, "-m", "probe.cli", "record", "--checkpoint", str(checkpoint)]
    command += ["--text", str(linux_file), "--out", str(tmp_path / "rec")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".rec.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "probe record: interrupted" in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_record_killed_outright_leaves_no_temporary_folder_behind_the_next(
    tiny_checkpoint, linux_file, tmp_path
):
    """kill -9 (or the out-of-memory killer) gives no chance to clean up: the next write of
    the same recording removes the dead one's half-written folder."""
    command = [sys.executable, "-m", "probe.cli", "record", "--checkpoint", str(tiny_checkpoint)]
    command += ["--text", str(linux_file), "--out", str(tmp_path / "rec")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".rec.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.communicate(timeout=120)
    assert [p.name for p in tmp_path.iterdir()] == [f".rec.tmp-{process.pid}"]
    code, _, err = probe(*command[3:], "--max-chars", 2000, "--no-twin")
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["rec"]


def test_resume_from_another_folder_says_to_name_a_relative_corpus(linux_file, tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "code.c").write_bytes(linux_file.read_bytes())
    run = tmp_path / "project" / "run"
    tiny = ["--layers", 1, "--hidden", 16, "--batch", 8, "--val-every", 5]
    code, _, err = probe(
        "train", "--corpus", "code.c", "--out", run, *tiny, "--max-steps", 5, cwd=run.parent
    )
    assert code == 0, err
    code, _, err = probe("train", "--out", run, "--resume", "--max-steps", 10, cwd=tmp_path)
    assert_one_line_error(code, err, "trained on code.c", "name it with --corpus")
    corpus = run.parent / "code.c"
    code, _, err = probe("train", "--out", run, "--resume", "--max-steps", 10, "--corpus", corpus)
    assert code == 0, err


def test_python_dash_m_probe_is_the_probe_command():
    result = subprocess.run([sys.executable, "-m", "probe", "--version"], capture_output=True)
    assert result.returncode == 0 and result.stdout.startswith(b"probe "), result.stderr


def test_a_recording_given_as_checkpoint_names_its_checkpoint(tiny_recording):
    code, _, err = probe("sample", "--checkpoint", tiny_recording.path)
    made_by = tiny_recording.manifest["checkpoint"]["path"]
    assert_one_line_error(code, err, f"is a recording, not a checkpoint (made with {made_by})")


def test_resume_takes_the_flags_typed_even_at_their_defaults(linux_file, tmp_path):
    run = ["train", "--corpus", linux_file, "--out", tmp_path / "run", "--val-every", 5]
    code, _, err = probe(*run, "--layers", 1, "--hidden", 16, "--batch", 8, "--max-steps", 5)
    assert code == 0, err
    code, _, err = probe(*run, "--resume", "--max-steps", 10, "--hidden", 256)
    assert_one_line_error(code, err, "--hidden (hidden in Python): 256, not the run's 16")
    for steps, patience in ((10, 7), (15, 20)):  # 20, the default, typed still replaces 7
        code, _, err = probe(*run, "--resume", "--max-steps", steps, "--patience", patience)
        assert code == 0, err
        config = json.loads((tmp_path / "run" / "last" / "config.json").read_text())
        assert config["train_args"]["patience"] == patience


SEARCH_MISSING = ["search", "--recording", "{tmp}/missing", "--feature", "in_quote"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--corpus", "nosuchcorpus", "--out", "{tmp}/r"], ["unknown corpus"]),
        (["train", "--corpus", "{tmp}/empty.txt", "--out", "{tmp}/r"], ["is empty"]),
        (["train", "--corpus", "{tmp}/binary.bin", "--out", "{tmp}/r"], ["looks binary"]),
        (["train", "--out", "{tmp}/r", "--hidden", "0"], ["--hidden", "positive integer"]),
        (["train", "--out", "{tmp}/r", "--seq-len", "-1"], ["--seq-len", "positive integer"]),
        (["sample", "--checkpoint", "{tmp}/missing"], ["no checkpoint"]),
        (["sample", "--checkpoint", "{tmp}"], ["not a probe checkpoint"]),
        (
            [
                "record",
                "--checkpoint",
                "{tmp}/missing",
                "--text",
                "{tmp}/empty.txt",
                "--out",
                "{tmp}/o",
            ],
            ["is empty"],
        ),
        (["train", "--out", "{tmp}/r", "--nonsense-flag"], ["unrecognized", "probe train"]),
        (["train", "--out", "{tmp}/config.json"], ["is a file, not a run folder"]),
        (["dashboard", "--recording", "{tmp}", "--port", "99999"], ["--port", "1..65535"]),
        (
            [
                "export",
                "--recording",
                "{tmp}",
                "--unit",
                "1:cell:0",
                "--out",
                "{tmp}/a.png",
                "--dpi",
                "100000",
            ],
            ["--dpi", "10..1200"],
        ),  # fmt: skip
        (
            ["export", "--recording", "{tmp}", "--unit", "1:cell:0", "--font-size", "1000"],
            ["--font-size", "2..72"],
        ),
        (  # a sheet or a line past these is a page no PDF viewer opens
            ["export", "--recording", "{tmp}", "--unit", "1:cell:0", "--top", "100000"],
            ["--top", "1..500"],
        ),
        (
            ["export", "--recording", "{tmp}", "--unit", "1:cell:0", "--width", "5000"],
            ["--width", "1..400"],
        ),
        (["train", "--out", "{tmp}/r", "--device", "tpu"], ["unknown device 'tpu'"]),
        (  # a value like -5 or -1:cell:3 is the flag's value, checked as such
            ["export", "--recording", "{tmp}", "--unit", "1:cell:0", "--range", "-5"],
            ["--range", "expected START:STOP"],
        ),
        (
            ["train", "--out", "{tmp}/r", "--device", "cuda:99"],
            ["--device (device in Python) cuda:99"],
        ),
        (
            [
                "dashboard",
                "--checkpoint",
                "{tmp}",
                "--text",
                "{tmp}/config.json",
                "--device",
                "tpu",
            ],
            ["unknown device 'tpu'"],
        ),
        (["sample", "--checkpoint", "{tmp}/rec"], ["is a recording, not a checkpoint"]),
        (["saturation", "--recording", "{tmp}/run"], ["is a checkpoint, not a recording"]),
        (  # the inputs are checked first: a missing recording, not the --out in the way
            [*SEARCH_MISSING, "--out", "{tmp}/config.json"],
            ["no recording at"],
        ),
        (
            [
                "export",
                "--recording",
                "{tmp}/missing",
                "--unit",
                "1:cell:0",
                "--out",
                "{tmp}/config.json",
            ],
            ["no recording at"],
        ),  # fmt: skip
        (["train", "--corpus", "{tmp}/rec", "--out", "{tmp}/r"], ["is a recording, not a corpus"]),
        (["train", "--corpus", "{tmp}/run", "--out", "{tmp}/r"], ["is a training run, not a"]),
        (["train", "--corpus", "{tmp}/run/best", "--out", "{tmp}/r"], ["is a checkpoint, not a"]),
    ],
)
def test_bad_input_gets_one_line_error(tmp_path, args, fragments):
    (tmp_path / "rec").mkdir()  # what `record` and `train` leave, as far as the check looks
    (tmp_path / "rec" / "manifest.json").write_text('{"format": "probe-recording"}')
    (tmp_path / "run" / "best").mkdir(parents=True)
    (tmp_path / "run" / "best" / "config.json").write_text('{"format": "probe-checkpoint"}')
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "config.json").write_text("{}")
    code, _, err = probe(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_one_line_error(code, err, *fragments)


def test_the_output_is_checked_after_the_inputs_and_before_the_work(
    tiny_recording, tmp_path, capsys
):
    """One call each, in process: an error must come before the search or drawing runs."""
    from probe.cli import main

    taken, rec = tmp_path / "taken.pdf", str(tiny_recording.path)
    taken.write_text("")
    search = ["search", "--recording", rec, "--feature", "in_comment"]
    export = ["export", "--recording", rec, "--unit", "1:cell:0"]
    for args, fragments in [
        ([*search, "--feature", "nope", "--out", taken], ["unknown feature 'nope'"]),
        ([*search, "--kinds", "telepathy", "--out", taken], ["no kind 'telepathy'"]),
        ([*search, "--out", taken], ["taken.pdf already exists", "--force"]),
        ([*search, "--out", tmp_path, "--force"], ["is a folder; give a file name in it"]),
        ([*export, "--unit", "1:cell:999", "--out", taken], ["index out of range"]),
        ([*export, "--feature", "nope", "--out", taken], ["unknown feature 'nope'"]),
        ([*export, "--range", "0:999999999", "--out", taken], ["outside the text"]),
        ([*export, "--out", taken], ["taken.pdf already exists", "--force"]),
        ([*export, "--out", tmp_path / "figure.doc"], ["unknown export format"]),
    ]:
        code = main([*map(str, args)])
        assert_one_line_error(code, capsys.readouterr().err, *fragments)


def test_a_closed_pipe_ends_quietly():
    command = f"{sys.executable} -m probe.cli features | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("in_quote") and not result.stderr


def test_every_command_has_help_with_examples():
    for command in ("train", "sample", "record", "features"):
        code, out, _ = probe(command, "--help")
        assert code == 0 and "examples:" in out


def test_record_corpus_splits_it_as_the_checkpoint_was_trained(linux_file, tmp_path):
    """A model trained at 96/2/2 saw most of a 90/5/5 test split: --split test must be the
    last 2 %, the text it never saw."""
    from probe.corpus import split_by_position

    run = tmp_path / "run"
    code, _, err = probe(
        *("train", "--corpus", linux_file, "--out", run, "--split", "96/2/2", "--layers", 1),
        *("--hidden", 8, "--batch", 8, "--seq-len", 20, "--max-steps", 2, "--val-every", 2),
    )
    assert code == 0, err
    code, _, err = probe(
        *("record", "--checkpoint", run, "--corpus", linux_file, "--out", tmp_path / "rec"),
        *("--max-chars", 500, "--no-twin"),
    )
    assert code == 0, err
    text = linux_file.read_bytes().decode("utf-8")  # byte-exact, as probe reads it
    held_out = split_by_position(text, (0.96, 0.02, 0.02))["test"]
    recorded = (tmp_path / "rec" / "text.txt").read_bytes().decode("utf-8")
    assert recorded == held_out[:500]
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["source"] == f"{linux_file.name} (test split of 96/2/2)"
    edited = tmp_path / "edited" / linux_file.name  # the same name, other contents
    edited.parent.mkdir()
    edited.write_bytes(linux_file.read_bytes()[: len(text) // 2])
    code, _, err = probe(
        *("record", "--checkpoint", run, "--corpus", edited, "--out", tmp_path / "rec2"),
        *("--max-chars", 500, "--no-twin"),
    )
    assert code == 0 and f"warning: {edited} is not the {linux_file.name} the checkpoint" in err


def test_sample_at_a_tiny_temperature_is_greedy_and_names_unknown_prime_chars(train_tiny):
    """1e-300 overflowed to nan (a traceback); now it is greedy, whatever the seed."""
    outputs = []
    for seed in (1, 2):
        code, out, err = probe(
            *("sample", "--checkpoint", train_tiny(), "--temperature", "1e-300"),
            *("--length", 30, "--prime", "int 日", "--seed", seed),
        )
        assert code == 0, err
        assert err.strip() == "note: 1 char(s) of --prime are outside the vocabulary"
        outputs.append(out)
    assert outputs[0] == outputs[1] and outputs[0].startswith("int 日")
