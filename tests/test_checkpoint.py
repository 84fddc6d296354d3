"""Checkpoints round-trip exactly and fail with one clear line when bad."""

import json
import shutil

import pytest
import torch

from probe.checkpoint import load_checkpoint, save_checkpoint
from probe.errors import ProbeError


def test_round_trip_gives_identical_model(tiny_checkpoint, tmp_path):
    original = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "copy", original.model, original.vocab, original.info)
    copy = load_checkpoint(tmp_path / "copy")
    ids = torch.from_numpy(original.vocab.encode("int main(void) { return 0; }"))[None]
    assert torch.equal(original.model(ids)[0], copy.model(ids)[0])
    assert copy.vocab.chars == original.vocab.chars
    assert copy.id == original.id and len(copy.id) == 12
    assert copy.info["test_loss"] > 0 and copy.info["corpus"]["sha256"]


def test_run_folder_resolves_to_best(tiny_checkpoint):
    assert load_checkpoint(tiny_checkpoint.parent).path == tiny_checkpoint


def broken(tiny_checkpoint, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(tiny_checkpoint, target)
    return target


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ProbeError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing")


def test_truncated_weights(tiny_checkpoint, tmp_path):
    target = broken(tiny_checkpoint, tmp_path, "truncated")
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ProbeError, match="corrupt or truncated"):
        load_checkpoint(target)


def test_weights_changed_since_they_were_saved(tiny_checkpoint, tmp_path):
    """A file of the right size and layout with other values (one bit flipped by a disk,
    a file copied from another run) loads as a model, but not as this checkpoint."""
    target = broken(tiny_checkpoint, tmp_path, "damaged")
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # the last weight's lowest mantissa bit
    weights.write_bytes(bytes(data))
    with pytest.raises(ProbeError, match="not the file its config.json was saved with"):
        load_checkpoint(target)


def test_foreign_folder(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ProbeError, match="not a probe checkpoint"):
        load_checkpoint(tmp_path / "foreign")


def test_newer_format_and_bad_json(tiny_checkpoint, tmp_path):
    target = broken(tiny_checkpoint, tmp_path, "newer")
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ProbeError, match="newer probe"):
        load_checkpoint(target)
    (target / "config.json").write_text("{not json")
    with pytest.raises(ProbeError, match="not valid JSON"):
        load_checkpoint(target)


def test_weights_that_do_not_match_the_config(tiny_checkpoint, tmp_path):
    target = broken(tiny_checkpoint, tmp_path, "mismatch")
    config = json.loads((target / "config.json").read_text())
    config["model"]["hidden"] = 64
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(ProbeError, match="does not match its config"):
        load_checkpoint(target)


def test_no_pickle_anywhere(tiny_checkpoint):
    """Loading never executes code: every file is JSON or safetensors."""
    suffixes = {p.suffix for p in tiny_checkpoint.iterdir()}
    assert suffixes <= {".json", ".safetensors"}


def test_ctrl_c_while_the_replaced_checkpoint_is_removed(tiny_checkpoint, tmp_path, monkeypatch):
    """Ctrl-C can land while the old copy is deleted; the trainer's final save must still work."""
    original = load_checkpoint(tiny_checkpoint)
    target = tmp_path / "best"
    save_checkpoint(target, original.model, original.vocab, original.info)
    real_rmtree = shutil.rmtree

    def interrupted_rmtree(path, *args, **kwargs):
        if ".old-" in str(path) and path.exists():  # half removed, then Ctrl-C
            (path / "model.safetensors").unlink()
            monkeypatch.setattr(shutil, "rmtree", real_rmtree)
            raise KeyboardInterrupt
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", interrupted_rmtree)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(target, original.model, original.vocab, original.info)
    assert load_checkpoint(target).id == original.id  # the new copy is in place
    save_checkpoint(target, original.model, original.vocab, original.info)
    assert load_checkpoint(target).id == original.id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
