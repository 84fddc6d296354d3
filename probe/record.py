"""The recorder: run a checkpoint over a text and store every cell's state per character.

Speed comes from parallel streams: the text is cut into `streams` equal segments processed
as one batch. Each segment but the first is preceded by `warmup` characters of the text
before it, run through the same layers (nothing stored), so that its first state is close
to the one a single sequential pass would give it. Close is not equal: a trained model's
long-memory cells carry more than any fixed warm-up (the shipped stdlib LSTM after 500
chars: cell states off by up to 17, log-probs by up to 3 nats, at ~1% of chars). So a
repair pass follows: stream k is run again from stream k - 1's final state (its true
start) until its state meets the first pass's (then every later value is the same, to
float16), overwriting what it recomputed; streams that run to their end without meeting
give their successors a new start, round after round. Tests check that the recording
equals one sequential trace of the whole text.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from probe import kernels, recorder_kernels
from probe.checkpoint import Checkpoint, load_checkpoint
from probe.errors import ProbeError, argument
from probe.fastrecord import (
    FastTracer,
    chunk_steps,
    model_state,
    uses_fused_kernel,
)
from probe.fileio import atomic_folder, check_text, sha256_text
from probe.model import CharRNN
from probe.recording import FORMAT as RECORDING_FORMAT
from probe.recording import Recording, RecordingWriter, StreamWriter
from probe.streams import (
    keep_freed_memory,
    plan_shards,
    plan_streams,
    side_by_side,
    warm_up_context,
)
from probe.units import A_CELL, name_list

RECORDER_VERSION = 2  # 2: stream starts repaired to the sequential pass
TWIN_CHARS = 100_000
TWIN_SEED = 1234
# Write threads while a GPU computes: copying into the page cache is then the bottleneck
# (H100 machine, 1M chars of LSTM 2x256: 1 thread 231k chars/s, 4 threads 392-424k, 8 or
# 12 threads 340-350k; 3x512: 163k, 184-224k, 160-205k).
GPU_WRITERS = 4
REPAIR_ROUNDS = 4  # each makes at least one more stream exact; rarely more than one runs
REPAIR_CHECK_STEPS = 64  # a repair's first check, for streams that meet their pass early
# States "meet" within this (absolute + relative), well inside float16's resolution: each
# stream starts from its predecessor's end as recorded, so what a meeting leaves over adds up
# along the streams (1e-3: 500 streams of 20 chars, cells off by 0.0067; 1e-4: 0.0042, the
# float16 rounding of a single pass; 1e-5: short streams never meet).
MEET_TOLERANCE = 1e-4


@torch.no_grad()
def record_arrays(
    model: CharRNN,
    ids: np.ndarray,
    writer: RecordingWriter,
    kinds: list[str],
    streams: int | None = None,
    warmup: int = 500,
    steps: int | None = None,
    progress: bool = True,
    description: str = "recording",
) -> tuple[float, int]:
    """Fill `writer` with the model's states and next-char log-probs on `ids`; returns chars/s
    and how many stream starts still differ from one sequential pass (0: exact).

    The step loop is `probe.fastrecord.FastTracer` (same math as `CharRNN.trace`, laid out
    for speed); `steps` per chunk defaults to `chunk_steps` (big writes, bounded buffers).
    On CPU the streams are recorded in groups side by side (see `plan_shards`).
    """
    chars = len(ids)
    device = next(model.parameters()).device
    on_gpu = device.type == "cuda"
    streams, segment, warmup = plan_streams(
        chars, streams, warmup, uses_fused_kernel(model), on_gpu
    )
    starts = np.arange(streams) * segment
    padded = np.zeros(streams * segment + 1, dtype=np.int64)  # the last stream is padded
    padded[:chars] = ids
    tokens = torch.from_numpy(padded[:-1].reshape(streams, segment)).to(device)
    next_ids = torch.from_numpy(padded[1:].reshape(streams, segment)).to(device)
    steps = steps or chunk_steps(model, streams)
    began = time.perf_counter()
    shards = plan_shards(model, streams)
    groups = [(streams * k // shards, streams * (k + 1) // shards) for k in range(shards)]
    workers = max(1, min(GPU_WRITERS, (os.cpu_count() or 2) - 1)) if on_gpu else 1
    out, hidden = StreamWriter(chars, segment, workers=workers), model.config.hidden
    stop, counting = threading.Event(), threading.Lock()
    # Chunks of `steps`, after a short first one: where a repair (below) first checks
    # whether a stream has met the pass before; most do within it.
    first_chunk = min(REPAIR_CHECK_STEPS, steps)
    columns = [0, *range(first_chunk, segment, steps)]
    stops = [*columns[1:], segment]
    parts = 2 if model.config.cell == "lstm" else 1
    # Every stream's state after each chunk, as the latest pass computed it.
    trajectory = [
        torch.empty(parts, model.config.layers, streams, hidden, device=device) for _ in columns
    ]
    unmet: dict[int, np.ndarray] = {}  # a repair's first stream -> streams run to the end

    def run_streams(tracer: FastTracer, numbers: np.ndarray, repair: bool = False) -> None:
        """Run `tracer` over the streams numbered `numbers`, chunk by chunk, writing what it
        records and its state after each chunk into `trajectory`. A repair drops each
        stream at the first chunk where its state meets the one there (the pass before's
        values from then on are this pass's, to float16), and leaves the streams it ran to
        the segment's end in unmet[its first stream]."""
        ring: list[torch.Tensor] = []
        group = int(numbers[0])
        used = 0

        def next_half() -> torch.Tensor:
            nonlocal used
            buffer = ring[used % len(ring)]
            used += 1
            out.wait_until_written(buffer.numpy())
            return buffer

        def take_halves(layer: int) -> dict[str, torch.Tensor]:
            return {kind: next_half() for kind in kinds}

        for index, (column, stop_column) in enumerate(zip(columns, stops)):
            if stop.is_set():
                return
            if len(ring) == 0 or len(ring[0]) != len(numbers):
                # float16 buffers, reused round-robin once their last write is done. From a
                # GPU the conversion runs there and the copies land in pinned memory (2-3x).
                shape = (len(numbers), steps, hidden)
                ring = [torch.empty(shape, dtype=torch.float16, pin_memory=on_gpu)
                        for _ in range(out.pending + 2)]  # fmt: skip
            rows = torch.from_numpy(numbers).to(device)
            chunk = tokens[rows, column:stop_column]
            following = next_ids[rows, column:stop_column]
            for layer, values, halves in tracer.run(chunk, take_halves, following):
                if layer == "logprob":
                    written = out.write(writer.logprob, values, column, numbers)
                    with counting:
                        bar.update(0 if repair else written)
                    continue
                for kind in kinds:
                    buffer = halves.get(kind)
                    if buffer is None:  # the tracer did not copy this one: convert it here
                        buffer = next_half()
                        to_half(values[kind], buffer, on_gpu)
                    half = buffer[:, : stop_column - column]
                    out.write(writer.arrays[(layer, kind)], half.numpy(), column, numbers)
            state = tracer.state()
            met = states_meet(state, trajectory[index][:, :, rows]) if repair else None
            trajectory[index][:, :, rows] = state
            if met is not None and met.any():
                numbers, state = numbers[~met.cpu().numpy()], state[:, :, ~met]
                if len(numbers) == 0:
                    break
                start = model_state(state, model.config.cell)
                tracer = FastTracer(model, len(numbers), steps, start)
        if repair:
            unmet[group] = numbers

    def record_group(first: int, last: int) -> None:
        # Each group warms its own streams up, through its tracer: side by side, like the
        # recording, and as fast.
        tracer = FastTracer(model, last - first, steps, model.initial_state(last - first, device))
        context, cold = warm_up_context(ids, starts[first:last], warmup)
        tracer.warm_up(context.to(device), cold.to(device))
        run_streams(tracer, np.arange(first, last))

    def repair(first: int, last: int) -> None:
        # Stream k's true start is stream k - 1's end: from there, until it meets the pass
        # before (the warm-up's guess is forgotten by then).
        numbers = todo[first:last]
        start = model_state(trajectory[-1][:, :, numbers - 1], model.config.cell)
        run_streams(FastTracer(model, len(numbers), steps, start), numbers, repair=True)

    try:
        with (
            keep_freed_memory(),
            tqdm(
                total=chars, unit="char", unit_scale=True, disable=not progress, desc=description
            ) as bar,
        ):
            side_by_side(record_group, groups, stop)
            todo, rounds = np.arange(1, streams), 0
            while len(todo) and rounds < REPAIR_ROUNDS:  # each makes 1+ more streams exact
                rounds += 1
                shares = min(len(groups), len(todo))
                cuts = [len(todo) * k // shares for k in range(shares + 1)]
                unmet.clear()
                stop.clear()
                side_by_side(repair, list(zip(cuts[:-1], cuts[1:])), stop)
                ran_through = np.concatenate([*unmet.values(), np.zeros(0, np.int64)])
                todo = np.sort(ran_through[ran_through + 1 < streams] + 1)
    finally:
        out.close()
    if len(todo):  # once the progress bar is closed: a line of its own
        warnings.warn(
            f"{len(todo)} stream starts still differ from a sequential pass after "
            f"{REPAIR_ROUNDS} repair rounds: this model's state does not forget its past within "
            f"a segment ({segment:,} chars); the manifest says so (inexact_streams); record "
            f"with fewer {argument('streams')} for an exact pass",
            stacklevel=2,
        )
    writer.logprob[chars - 1] = np.nan
    return chars / max(time.perf_counter() - began, 1e-9), len(todo)


def states_meet(state: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per stream, whether two passes' states (parts, layers, streams, units) agree to
    within float16's resolution, so that every later value of the one is the other's as
    stored."""
    close = (state - target).abs() <= MEET_TOLERANCE * (1 + target.abs())
    return close.permute(2, 0, 1, 3).flatten(1).all(dim=1)


def to_half(values: torch.Tensor, buffer: torch.Tensor, on_gpu: bool) -> None:
    """buffer[s, t] = values[t, s] in float16: values (steps, streams, hidden) time-major,
    buffer a (streams, >= steps, hidden) CPU float16 buffer, as the recording is written."""
    half = buffer[:, : values.shape[0]]
    if on_gpu:  # convert there, then one plain copy of half the bytes
        half.copy_(values.transpose(0, 1).to(torch.float16, memory_format=torch.contiguous_format))
    elif kernels.library is not None:
        recorder_kernels.to_half(values, buffer)  # 2-3x torch's strided copy
    else:
        half.copy_(values.transpose(0, 1))


def random_twin(model: CharRNN, seed: int = TWIN_SEED) -> CharRNN:
    """A model of the same shape with fresh random weights: search's random-init null."""
    torch.manual_seed(seed)
    return CharRNN(model.config).to(next(model.parameters()).device).eval()


def record(
    checkpoint: Checkpoint | str | Path,
    text: str,
    out: str | Path,
    kinds: list[str] | None = None,
    max_chars: int | None = None,
    overwrite: bool = False,
    init_only: bool = False,
    twin: bool = True,
    streams: int | None = None,
    warmup: int = 500,
    source: str = "",
    progress: bool = True,
    device: str = "cpu",
) -> Recording:
    """Record `text` through a checkpoint into folder `out`; returns the opened Recording.

    `kinds` limits what is stored (default: all of the cell type's kinds). `init_only`
    records a random-init model of the checkpoint's shape instead of the trained one.
    `twin` also records a random-init twin on the first 100k chars into `out/init`.
    A checkpoint given as a path is loaded onto `device`; a loaded one runs where it is.
    """
    check_text(text, "the text to record")
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint, device)
    model = random_twin(checkpoint.model) if init_only else checkpoint.model
    kinds = check_kinds(model, kinds)
    if max_chars is not None:
        if max_chars < 1:
            raise ProbeError(f"{argument('max_chars')} must be positive")
        text = text[:max_chars]
    if len(text) < 2:
        raise ProbeError(f"text to record has {len(text)} char(s); it needs at least 2")
    ids = checkpoint.vocab.encode(text)
    unknown = int((ids == 0).sum()) - text.count(checkpoint.vocab.chars[0])
    manifest = {
        "name": Path(out).name,
        "source": source,
        "recorder": RECORDER_VERSION,
        "checkpoint": {
            "id": checkpoint.id,
            "path": str(Path(checkpoint.path).resolve()),  # found from any working folder
            "name": checkpoint.name,
            "init_only": init_only,
            **{
                k: checkpoint.info.get(k)
                for k in ("corpus", "val_loss", "test_loss", "parameters", "step")
            },
        },
        "config": model.config.to_json(),
        "kinds": kinds,
        "unknown_chars": unknown,
    }
    with atomic_folder(out, ("manifest.json", RECORDING_FORMAT), overwrite=overwrite) as folder:
        runs = [(model, text, folder, "recording")]
        if twin and not init_only:
            (folder / "init").mkdir()
            runs.append(
                (random_twin(model), text[:TWIN_CHARS], folder / "init", "random-init twin")
            )
        for run_model, run_text, run_folder, what in runs:
            shapes = {
                (layer, kind): model.config.hidden
                for layer in range(1, model.config.layers + 1)
                for kind in kinds
            }
            writer = RecordingWriter(run_folder, run_text, shapes)
            speed, inexact_streams = record_arrays(
                run_model,
                ids[: len(run_text)],
                writer,
                kinds,
                streams,
                warmup,
                progress=progress,
                description=what,
            )
            is_twin = run_folder != folder
            writer.finish(
                {
                    **manifest,
                    "chars_per_s": round(speed),
                    "inexact_streams": inexact_streams,  # stream starts unlike one pass (0: exact)
                    "random_init_twin": is_twin,
                    "name": f"{manifest['name']} (random init)" if is_twin else manifest["name"],
                }
            )
    return Recording.open(out)


def check_kinds(model: CharRNN, kinds: list[str] | None) -> list[str]:
    kinds = name_list(kinds)
    if not kinds:
        return list(model.kinds)
    unknown = [k for k in kinds if k not in model.kinds]
    if unknown:
        raise ProbeError(
            f"{A_CELL[model.config.cell]} has no kind {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(model.kinds)}"
        )
    return [k for k in model.kinds if k in kinds]


def record_or_reuse(
    checkpoint: Checkpoint | str | Path, text: str, out: str | Path, **options
) -> Recording:
    """The recording at `out` if the same weights made it from the same text with this
    recorder (earlier ones left stream starts inexact), else record anew."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    try:
        cached = Recording.open(out)
        manifest = cached.manifest
        same = manifest["checkpoint"]["id"] == checkpoint.id
        same = same and manifest.get("recorder") == RECORDER_VERSION
        if same and manifest["text_sha256"] == sha256_text(text):
            return cached
    except (ProbeError, KeyError):
        pass
    return record(checkpoint, text, out, overwrite=True, **options)
