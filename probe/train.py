"""Truncated-BPTT training of a `CharRNN` on a corpus, with exact resume.

The training split is cut into `batch` contiguous streams; each step reads the next
`seq_len` characters of every stream and carries the hidden state over (detached), so the
model sees long contexts while gradients flow `seq_len` steps. Everything needed to continue
exactly (weights, optimizer, RNG, carried state, stream position) is saved in `last/`.

A run folder holds `best/` (lowest validation loss), `last/`, `log.csv` and, with
`--snapshot-every`, `snapshots/step-NNNNNN/`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from probe.checkpoint import (
    load_checkpoint,
    load_train_state,
    optimizer_from_state,
    optimizer_to_state,
    restore_rng,
    rng_tensors,
    save_checkpoint,
    state_from_tensors,
    state_tensors,
)
from probe.corpus import Corpus, Vocab, check_found_from_here, check_held_out, load_corpus
from probe.errors import ProbeError, argument, option
from probe.fileio import append_csv_rows, keep_csv_rows, read_json
from probe.model import CharRNN, ModelConfig, check_device, evaluate, hardware, parameter_count
from probe.stopping import StopRequests

RUN_FILES = {"best", "last", "log.csv", "snapshots"}  # what a run folder holds
LOG_FIELDS = "step epoch train_loss val_loss grad_norm lr chars_per_s elapsed_s".split()


@dataclass
class TrainConfig:
    corpus: str = "stdlib"
    out: str = "runs/model"
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    dropout: float = 0.0
    seq_len: int = 100
    batch: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    grad_clip: float = 5.0
    lr_decay: float = 0.95
    lr_decay_every: int = 1000
    val_every: int = 200
    eval_chars: int = 300_000
    patience: int = 20
    max_steps: int | None = None
    max_minutes: float | None = None
    snapshot_every: int | None = None
    split: tuple[float, float, float] = (0.9, 0.05, 0.05)
    min_char_count: int = 5
    seed: int = 0
    device: str = "cpu"
    resume: bool = False
    quiet: bool = False

    def __post_init__(self):
        positive = ("layers", "hidden", "seq_len", "batch", "val_every", "lr_decay_every")
        for name in (*positive, "eval_chars"):
            if int(getattr(self, name)) < 1:
                raise ProbeError(f"{argument(name)} must be a positive integer")
        if self.lr <= 0 or self.grad_clip <= 0 or not 0 < self.lr_decay <= 1:
            raise ProbeError(
                f"{argument('lr')} and {argument('grad_clip')} must be > 0, "
                f"{argument('lr_decay')} in (0, 1]"
            )
        if self.optimizer not in ("adam", "rmsprop"):
            raise ProbeError(f"{argument('optimizer')} must be adam or rmsprop")
        for name in ("max_steps", "max_minutes", "snapshot_every"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ProbeError(f"{argument(name)} must be positive")
        self.device = check_device(self.device)


@dataclass
class Progress:
    """What changes during training; saved with `last/` so a resume continues exactly."""

    step: int = 0
    epoch: int = 0
    position: int = 0
    best_val: float = math.inf
    bad_validations: int = 0
    elapsed_s: float = 0.0
    history: list = field(default_factory=list)


def make_streams(ids: np.ndarray, batch: int, seq_len: int) -> torch.Tensor:
    """Cut ids into `batch` equal contiguous streams: tensor (batch, stream_len)."""
    stream_len = len(ids) // batch
    if stream_len < seq_len + 1:
        raise ProbeError(
            f"training text too short: {len(ids)} chars for {argument('batch')} {batch} x "
            f"{argument('seq_len')} {seq_len}"
        )
    return torch.from_numpy(ids[: stream_len * batch].reshape(batch, stream_len).copy())


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class Trainer:
    """Holds the model, data and optimizer for one run; `run()` trains until a stop rule."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.out = Path(config.out)
        if self.out.exists() and not self.out.is_dir():
            raise ProbeError(f"{argument('out')} {self.out} is a file, not a run folder")
        torch.manual_seed(config.seed)
        self.corpus: Corpus = load_corpus(config.corpus, tuple(config.split))
        check_held_out(self.corpus)
        if config.resume:
            last = load_checkpoint(self.out / "last", config.device)
            self.vocab, self.model, self.resumed_from = last.vocab, last.model, last.info
            if last.info["corpus"]["sha256"] != self.corpus.sha256:
                raise ProbeError(f"{config.corpus} is not the text this run trained on")
        else:
            if (self.out / "last").exists():
                raise ProbeError(
                    f"{self.out} already holds a run; to continue it, pass {option('resume')}"
                )
            others = sorted(f.name for f in self.out.glob("[!.]*") if f.name not in RUN_FILES)
            if others:  # a recording, a project: a later --overwrite of it would delete the run
                raise ProbeError(
                    f"{argument('out')} {self.out} holds files of its own ({', '.join(others[:3])}"
                    f"{', ...' if len(others) > 3 else ''}), not a run: give a new or empty folder"
                )
            self.vocab = Vocab.build(self.corpus.split("train"), config.min_char_count)
            if len(self.vocab) < 3:  # <unk> and one char: nothing to predict
                raise ProbeError(
                    f"only {len(self.vocab) - 1} char(s) occur {config.min_char_count}+ times in "
                    f"the training text; lower {argument('min_char_count')}"
                )
            model_config = ModelConfig(
                config.cell, config.layers, config.hidden, config.dropout, len(self.vocab)
            )
            self.model = CharRNN(model_config).to(config.device)
        self.model.train()
        self.train_data = make_streams(
            self.vocab.encode(self.corpus.split("train")), config.batch, config.seq_len
        )
        self.val_ids = self.vocab.encode(self.corpus.split("val")[: config.eval_chars])
        optimizer_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.RMSprop
        self.optimizer = optimizer_class(self.model.parameters(), lr=config.lr)
        self.progress = Progress()
        self.state = None
        if config.resume:
            self._restore()

    def _restore(self) -> None:
        tensors, scalars = load_train_state(self.out / "last")
        optimizer_from_state(self.optimizer, tensors, scalars["optimizer"])
        self.progress = Progress(**scalars["progress"])
        restore_rng(tensors, self.config.device)
        self.state = state_from_tensors(tensors, self.model.config.cell, self.config.device)
        self._truncate_log(self.progress.step)

    def info(self) -> dict:
        c = self.corpus
        args = {k: v for k, v in asdict(self.config).items() if k not in ("resume", "quiet")}
        return {
            "corpus": {
                "name": c.name,
                "sha256": c.sha256,
                "split": list(c.fractions),
                "source": c.description,
            },
            "train_args": args,
            "parameters": parameter_count(self.model),
            "step": self.progress.step,
            "epoch": self.progress.epoch,
            "train_minutes": round(self.progress.elapsed_s / 60, 2),
            "val_loss": self.progress.best_val if math.isfinite(self.progress.best_val) else None,
            "hardware": hardware(self.config.device),
        }

    def save(self, name: str, with_state: bool = True, **extra) -> None:
        train_state = None
        if with_state:
            tensors, optimizer_scalars = optimizer_to_state(self.optimizer)
            tensors = {**tensors, **state_tensors(self.state), **rng_tensors(self.config.device)}
            scalars = {"optimizer": optimizer_scalars, "progress": asdict(self.progress)}
            train_state = (tensors, scalars)
        save_checkpoint(
            self.out / name, self.model, self.vocab, {**self.info(), **extra}, train_state
        )

    def _truncate_log(self, step: int) -> None:
        """Drop the rows past `last/` (written after it by a run that then died)."""
        keep_csv_rows(self.out / "log.csv", lambda row: int(row["step"]) <= step)

    def lr_at(self, step: int) -> float:
        return self.config.lr * self.config.lr_decay ** (step // self.config.lr_decay_every)

    def train_step(self) -> tuple[float, float]:
        c, p = self.config, self.progress
        if p.position + c.seq_len + 1 > self.train_data.shape[1]:
            p.epoch, p.position, self.state = p.epoch + 1, 0, None
        x = self.train_data[:, p.position : p.position + c.seq_len].to(c.device)
        y = self.train_data[:, p.position + 1 : p.position + c.seq_len + 1].to(c.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(p.step)
        logits, state = self.model(x, self.state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip).item()
        self.optimizer.step()
        self.state = detach(state)
        p.step += 1
        p.position += c.seq_len
        return loss.item(), grad_norm

    def run(self) -> dict:
        """Train until max steps / minutes / early stop / Ctrl-C; then report test loss."""
        c, p = self.config, self.progress
        self.out.mkdir(parents=True, exist_ok=True)
        if c.snapshot_every and p.step == 0:
            self.save("snapshots/step-000000", with_state=False)
        if c.resume and (limit := self.limit_reached()) and (done := self.finished(limit)):
            return done
        started, chars_seen, losses, grad_norm = time.perf_counter(), 0, [], math.nan
        elapsed_before = p.elapsed_s
        progress_bar = tqdm(
            total=c.max_steps, initial=p.step, disable=c.quiet, unit="step", dynamic_ncols=True
        )
        with StopRequests() as stop, progress_bar as bar:
            while True:
                if stop.requested:
                    reason = "interrupted"
                    break
                if limit := self.limit_reached():
                    reason = limit
                    break
                loss, grad_norm = self.train_step()
                losses.append(loss)
                chars_seen += c.batch * c.seq_len
                p.elapsed_s = elapsed_before + time.perf_counter() - started
                speed = chars_seen / max(time.perf_counter() - started, 1e-9)
                bar.update(1)
                bar.set_postfix_str(
                    f"loss {loss:.3f} nats ({loss / math.log(2):.3f} bpc) {speed:,.0f} chars/s",
                    refresh=False,
                )
                if c.snapshot_every and p.step % c.snapshot_every == 0:
                    self.save(f"snapshots/step-{p.step:06d}", with_state=False)
                if p.step % c.val_every == 0:
                    bar.set_postfix_str("validating…")  # seconds on a big val split
                    patience_spent = self._validate(float(np.mean(losses)), grad_norm, speed)
                    losses = []  # validated: not again after the loop
                    if patience_spent:
                        reason = "early stop"
                        break
        if not c.quiet:  # after a stop, say what the remaining seconds are for
            print("finishing: validating, saving, measuring the test loss…", file=sys.stderr)
        if losses:  # the last partial interval is validated too, so `last` is never stale
            self._validate(
                float(np.mean(losses)),
                grad_norm,  # the last step's
                chars_seen / max(time.perf_counter() - started, 1e-9),
            )
        return self.finish(reason)

    def limit_reached(self) -> str | None:
        """Why the run may take no more steps, if it may not. Minutes count over resumes."""
        c, p = self.config, self.progress
        if c.max_steps is not None and p.step >= c.max_steps:
            return "max steps"
        if c.max_minutes and p.elapsed_s >= c.max_minutes * 60:
            return "max minutes"
        return None

    def finished(self, limit: str) -> dict | None:
        """The summary of a resumed run already at its limit whose test loss was measured:
        there is nothing to train, so nothing is measured or saved again."""
        if self.resumed_from.get("test_loss") is None:  # stopped before `finish`: finish it
            return None
        if not self.config.quiet:
            print(
                f"the run is already at its {limit} (step {self.progress.step}): "
                f"raise {argument('max_steps')} or {argument('max_minutes')} to train on",
                file=sys.stderr,
            )
        return self.summary(self.resumed_from["stopped"], self.resumed_from["test_loss"])

    def _validate(self, train_loss: float, grad_norm: float, speed: float) -> bool:
        """Validate, log, save best/last; True when patience is exhausted. Only scheduled
        validations count toward it, so a resumed run stops where an unstopped one would."""
        p = self.progress
        val = evaluate(self.model, self.val_ids)
        improved = val < p.best_val
        if improved:
            p.best_val, p.bad_validations = val, 0
        elif p.step % self.config.val_every == 0:  # not a stop's extra one: see the docstring
            p.bad_validations += 1
        row = dict(
            step=p.step,
            epoch=p.epoch,
            train_loss=round(train_loss, 5),
            val_loss=round(val, 5),
            grad_norm=round(grad_norm, 4),
            lr=self.lr_at(p.step),
            chars_per_s=round(speed),
            elapsed_s=round(p.elapsed_s, 1),
        )
        append_csv_rows(self.out / "log.csv", [row], LOG_FIELDS)
        if improved:
            self.save("best", with_state=False)
        self.save("last")
        return p.bad_validations >= self.config.patience

    def finish(self, reason: str) -> dict:
        """Measure test loss of `best` and store it in both checkpoints."""
        with torch.random.fork_rng():  # building the model draws random numbers: keep resume exact
            best = load_checkpoint(self.out / "best", self.config.device)
        test_ids = best.vocab.encode(self.corpus.split("test")[: self.config.eval_chars])
        test_loss = evaluate(best.model, test_ids)
        extra = {
            "test_loss": test_loss,
            "test_bits_per_char": test_loss / math.log(2),
            "stopped": reason,
        }
        save_checkpoint(self.out / "best", best.model, best.vocab, {**best.info, **extra})
        self.save("last", **extra)
        return self.summary(reason, test_loss)

    def summary(self, reason: str, test_loss: float) -> dict:
        return {
            "reason": reason,
            "step": self.progress.step,
            "val_loss": self.progress.best_val,
            "test_loss": test_loss,
            "minutes": self.progress.elapsed_s / 60,
            "out": str(self.out),
        }


# What a resumed run may change: how much longer it goes on, where it runs, and how its corpus
# is named (a path from another folder; its text must be the run's, see Trainer). The rest is
# the run's own: another split, say, would leak held-out text into training.
RESUME_MAY_CHANGE = ("max_steps", "max_minutes", "patience", "device", "corpus")


def resumed_config(config: TrainConfig, given: set[str] | None = None) -> TrainConfig:
    """The run's saved settings, with the fields in `given` (the flags typed on the command
    line) taken from `config`: one outside RESUME_MAY_CHANGE that differs from the run's is
    an error. Without `given` (the Python API), a field left at its default counts as not given."""
    path = Path(config.out) / "last" / "config.json"
    if not path.is_file():
        raise ProbeError(f"{config.out} holds no run to resume (no last/config.json)")
    saved = read_json(path, "checkpoint config").get("train_args", {})
    defaults = TrainConfig(device="cpu")
    merged = {}
    for name in (f.name for f in fields(TrainConfig) if f.name in saved and f.name != "out"):
        value, run = getattr(config, name), saved[name]
        same = (lambda a, b: np.allclose(a, b)) if name == "split" else (lambda a, b: a == b)
        typed = name in given if given is not None else not same(value, getattr(defaults, name))
        if typed and name not in RESUME_MAY_CHANGE and not same(value, run):
            raise ProbeError(
                f"{argument(name)}: {value}, not the run's {run}; a resumed run keeps its settings"
            )
        merged[name] = value if typed and name in RESUME_MAY_CHANGE else run
    if merged.get("corpus") == saved.get("corpus"):  # the path as typed where the run began
        check_found_from_here(merged["corpus"], config.out)
    merged["split"] = tuple(merged.get("split", config.split))
    return replace(config, **merged)


def train(config: TrainConfig, given: set[str] | None = None) -> dict:
    """Train (or resume) a run; returns a summary with val/test loss (`given`: resumed_config)."""
    return Trainer(resumed_config(config, given) if config.resume else config).run()
