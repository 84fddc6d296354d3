"""Checkpoints: a folder anyone can inspect, loadable without executing code (no pickle).

    config.json            model config, corpus (name, sha256, split), training args,
                           losses, probe version, format version
    vocab.json             the characters, id 0 = unknown
    model.safetensors      weights
    train_state.safetensors + train_state.json   (optional) optimizer state, RNG, carried
                           hidden state and data position, so `--resume` continues exactly

Writes go to a temporary folder renamed into place, so a crash never leaves half a checkpoint.
Also here: finding a run's snapshots and labelling checkpoints apart (`run_snapshots`,
`checkpoint_label`), for the commands that compare several.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save_file

from probe import __version__
from probe.corpus import Vocab
from probe.errors import ProbeError, argument
from probe.fileio import atomic_folder, folder_path, read_json, write_json
from probe.model import CharRNN, ModelConfig, check_device

FORMAT = "probe-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    model: CharRNN
    vocab: Vocab
    info: dict  # the whole config.json
    path: Path

    @property
    def id(self) -> str:
        return weights_id(self.info)

    @property
    def name(self) -> str:
        return self.path.name if self.path.name not in ("best", "last") else self.path.parent.name


def save_checkpoint(
    path: str | Path,
    model: CharRNN,
    vocab: Vocab,
    info: dict,
    train_state: tuple[dict[str, torch.Tensor], dict] | None = None,
) -> None:
    """Write a checkpoint folder atomically (replacing an older one at `path`)."""
    with atomic_folder(path, ("config.json", FORMAT), overwrite=True) as tmp:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, tmp / "model.safetensors")
        digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
        write_json(
            tmp / "config.json",
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "probe_version": __version__,
                **info,
                "model": model.config.to_json(),
                "weights_sha256": digest,
            },
        )
        write_json(tmp / "vocab.json", vocab.to_json())
        if train_state is not None:
            tensors, scalars = train_state
            save_file(
                {k: v.contiguous() for k, v in tensors.items()}, tmp / "train_state.safetensors"
            )
            write_json(tmp / "train_state.json", scalars)


def resolve(path: str | Path) -> Path:
    """Accept a checkpoint folder, or a training run folder (then its `best/`)."""
    path = folder_path(path, "a checkpoint")
    if not path.exists():
        raise ProbeError(f"no checkpoint at {path}")
    if not (path / "config.json").exists() and (path / "best" / "config.json").exists():
        return path / "best"
    if not (path / "config.json").exists() and (path / "manifest.json").exists():
        try:  # name the checkpoint it was made with: the one the user likely meant
            manifest = read_json(path / "manifest.json", "recording")
            made_by = f" (made with {manifest['checkpoint']['path']})"
        except (ProbeError, KeyError, TypeError):
            made_by = ""
        raise ProbeError(f"{path} is a recording, not a checkpoint{made_by}")
    return path


def weights_id(info: dict) -> str:
    """Short content id of a checkpoint's weights (from its config.json), stable across copies
    of the folder: how a recording names the checkpoint that made it."""
    return info.get("weights_sha256", "")[:12]


def checkpoint_id(path: str | Path) -> str:
    """The weights id of the checkpoint at `path`, read without loading the weights."""
    return weights_id(read_json(resolve(path) / "config.json", "checkpoint"))


# Shipped models keep a few snapshots beside them: checkpoints/NAME-snapshots/{init,early}.
SNAPSHOTS_SUFFIX = "-snapshots"


def checkpoint_label(checkpoint: Checkpoint) -> str:
    """A short label that tells a run's checkpoints apart (curves and tables are keyed by it):
    the run name for its best, `run (last)`, `run @ step 500` for a snapshot, and
    `linux-lstm (init)` for a shipped snapshot (checkpoints/linux-lstm-snapshots/init)."""
    path = checkpoint.path.absolute()
    parent = path.parent.name
    if parent == "snapshots" and path.name.startswith("step-") and path.name[5:].isdigit():
        return f"{path.parent.parent.name} @ step {int(path.name[5:])}"
    if path.name == "last":
        return f"{parent} (last)"
    if parent.endswith(SNAPSHOTS_SUFFIX):
        return f"{parent.removesuffix(SNAPSHOTS_SUFFIX)} ({path.name})"
    return checkpoint.name


def distinct_labels(checkpoints: list[Checkpoint]) -> list[str]:
    """checkpoint_label of each, or, where two would be the same (a/model, b/model), their
    paths from the folder they share."""
    labels = [checkpoint_label(checkpoint) for checkpoint in checkpoints]
    clashing = [
        c.path.resolve() for c, label in zip(checkpoints, labels) if labels.count(label) > 1
    ]
    shared = Path(os.path.commonpath(clashing)) if clashing else None
    return [
        str(c.path.resolve().relative_to(shared)) if labels.count(label) > 1 else label
        for c, label in zip(checkpoints, labels)
    ]


def run_snapshots(path: str | Path) -> list[Path]:
    """A run's snapshots in step order, then its final checkpoint: a training run's
    snapshots/step-N, then best/ (its best/ or last/ stand for it); or a folder of snapshot
    checkpoints, as shipped (NAME-snapshots/init, early), then NAME beside it (NAME itself
    stands for both)."""
    path = Path(path).absolute()
    if path.name in ("best", "last") and (path.parent / "snapshots").is_dir():
        path = path.parent
    if (path / "snapshots").is_dir():
        folder, final = path / "snapshots", path / "best"
    elif (path / "config.json").is_file():
        folder, final = path.with_name(path.name + SNAPSHOTS_SUFFIX), path
    else:
        folder, final = path, path.with_name(path.name.removesuffix(SNAPSHOTS_SUFFIX))
    found = checkpoints_in(folder)
    if not found:
        raise ProbeError(
            f"{path} has no snapshots: neither snapshots/ (train with {argument('snapshot_every')})"
            f" nor checkpoint folders in {folder.name}; or give each snapshot as a --checkpoint"
        )
    return found + ([final] if final != folder and (final / "config.json").is_file() else [])


def checkpoints_in(folder: Path) -> list[Path]:
    """The checkpoint folders in a folder, in the order of the training step they were saved at."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if (p / "config.json").is_file()]
    steps = {p: read_json(p / "config.json", "checkpoint").get("step", 0) for p in found}
    return sorted(found, key=lambda p: (steps[p], p.name))


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Load weights, vocab and config; every failure is a one-line ProbeError."""
    device = check_device(device)
    path = resolve(path)
    if not path.is_dir():
        raise ProbeError(
            f"{path} is not a checkpoint folder (expected config.json, model.safetensors)"
        )
    info = read_json(path / "config.json", "checkpoint")
    if info.get("format") != FORMAT:
        raise ProbeError(f"{path} is not a probe checkpoint (config.json has no format {FORMAT!r})")
    if int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise ProbeError(f"{path} was written by a newer probe (format {info['format_version']})")
    vocab = Vocab.from_json(read_json(path / "vocab.json", "checkpoint vocab"))
    try:
        config = ModelConfig(**info["model"])
    except (KeyError, TypeError) as error:
        raise ProbeError(f"{path}/config.json has a malformed model section ({error})") from None
    if config.vocab_size != len(vocab):
        raise ProbeError(
            f"{path}: vocab.json has {len(vocab)} chars, model expects {config.vocab_size}"
        )
    weights_file = path / "model.safetensors"
    if not weights_file.is_file():
        raise ProbeError(f"checkpoint {path} has no model.safetensors")
    try:
        data = weights_file.read_bytes()
        weights = {name: tensor.to(device) for name, tensor in load(data).items()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ProbeError(f"{weights_file} is corrupt or truncated ({error})") from None
    digest = hashlib.sha256(data).hexdigest()
    if info.get("weights_sha256", digest) != digest:
        raise ProbeError(
            f"{weights_file} is not the file its config.json was saved with (its sha256 "
            "differs): damaged or replaced since"
        )
    model = CharRNN(config).to(device)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        # torch's message: a header line, then one line per problem; show the first problem.
        problems = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        detail = problems[0] if problems else str(error).strip()
        raise ProbeError(f"{weights_file} does not match its config ({detail})") from None
    model.eval()
    return Checkpoint(model, vocab, info, path)


def load_train_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    tensors_file, scalars_file = path / "train_state.safetensors", path / "train_state.json"
    if not tensors_file.is_file():
        raise ProbeError(f"{path} has no training state to resume from")
    try:
        tensors = load_file(tensors_file)
    except (SafetensorError, OSError, ValueError) as error:
        raise ProbeError(f"{tensors_file} is corrupt or truncated ({error})") from None
    return tensors, read_json(scalars_file, "training state")


def optimizer_to_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (safetensors) and JSON scalars."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for param_id, slots in state["state"].items():
        scalars["state"][str(param_id)] = {}
        for slot, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{param_id}.{slot}"] = value
            else:
                scalars["state"][str(param_id)][slot] = value
    return tensors, scalars


def optimizer_from_state(optimizer, tensors: dict[str, torch.Tensor], scalars: dict) -> None:
    state = {}
    for param_id, slots in scalars["state"].items():
        state[int(param_id)] = dict(slots)
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, param_id, slot = key.split(".", 2)
            state.setdefault(int(param_id), {})[slot] = value
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


def rng_tensors(device: str) -> dict[str, torch.Tensor]:
    """The random generators' states, saved with the resume state: dropout draws from the
    device's. (cuDNN's dropout between layers keeps a generator of its own that cannot be
    saved: a resumed GPU run of several layers with dropout draws other masks.)"""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    return tensors


def restore_rng(tensors: dict[str, torch.Tensor], device: str) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.device(device).type == "cuda" and "rng.cuda" in tensors:  # not if it ran on CPU
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


# The state carried between training batches, saved with the resume state.
def state_tensors(state) -> dict[str, torch.Tensor]:
    if state is None:
        return {}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"carried.{i}": s.detach().cpu() for i, s in enumerate(parts)}


def state_from_tensors(tensors: dict[str, torch.Tensor], cell: str, device):
    parts = [tensors[k].to(device) for k in sorted(k for k in tensors if k.startswith("carried."))]
    if not parts:
        return None
    return tuple(parts) if cell == "lstm" else parts[0]
