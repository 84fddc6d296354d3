"""Subcommands on why LSTMs remember: gradient-norm decay over time lag, gate saturation."""

from __future__ import annotations

from probe.cli.args import check_out_folder, command, load_text, positive_int, write_files
from probe.errors import ProbeError


# --- gradients -----------------------------------------------------------------------------
def add_gradients(subparsers) -> None:
    p = command(
        subparsers,
        "gradients",
        "how the loss gradient decays with time lag (vanishing / exploding gradients)",
        "  probe gradients --checkpoint runs/rnn --checkpoint runs/gru --checkpoint runs/lstm \\\n"
        "      --corpus linux --split test --out out/decay\n"
        "  probe gradients --checkpoint runs/linux-lstm --snapshots --text held_out.c --out out/train\n"
        "  probe gradients --checkpoint runs/wp --corpus warpeace --max-lag 100 --layer 1 --normalise --out out/wp",
    )
    p.add_argument("--checkpoint", action="append", required=True, help="repeat to overlay models")
    p.add_argument(
        "--snapshots",
        action="store_true",
        help="each run's snapshots in step order, then its best: a run folder's snapshots/, or a "
        "folder of snapshot checkpoints (checkpoints/linux-lstm-snapshots, then linux-lstm)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a UTF-8 text file")
    source.add_argument(
        "--corpus", help="a corpus spec, split as the checkpoints were trained on it (see --split)"
    )
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--max-lag", type=positive_int, default=200, help="largest lag K in characters")
    p.add_argument("--positions", type=positive_int, default=256, help="positions averaged over")
    p.add_argument("--warmup", type=int, default=100, help="chars read before each window")
    p.add_argument("--batch", type=positive_int, default=64, help="positions per backward pass")
    p.add_argument("--layer", type=positive_int, help="layer to plot and print (default: top)")
    p.add_argument("--normalise", action="store_true", help="divide by the lag-0 norm")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, help="folder for decay.csv, spectral.csv, decay.html")
    p.add_argument("--force", action="store_true", help="overwrite those files if they exist")
    p.set_defaults(func=cmd_gradients)


GRADIENT_FILES = ("decay.csv", "spectral.csv", "decay.html")


def cmd_gradients(args) -> None:
    import pandas as pd

    from probe.checkpoint import distinct_labels, load_checkpoint, run_snapshots
    from probe.gradients import gradient_decay, spectral_radii
    from probe.plots import decay_figure

    paths = [s for c in args.checkpoint for s in (run_snapshots(c) if args.snapshots else [c])]
    loaded = [load_checkpoint(path, args.device) for path in paths]
    if len({checkpoint.path.resolve() for checkpoint in loaded}) < len(loaded):
        raise ProbeError("a checkpoint is given twice")
    labels = distinct_labels(loaded)  # the curves and the table are keyed by them
    for checkpoint, label in zip(loaded, labels):
        layers = checkpoint.model.config.layers
        if args.layer and args.layer > layers:
            raise ProbeError(f"--layer {args.layer}: {label} has {layers} layer(s)")
    text, source = load_text(args, paths)
    out = check_out_folder(args.out, GRADIENT_FILES, args.force)  # before the long computation
    decays, radii = [], []
    for checkpoint, label in zip(loaded, labels):
        sizes = (args.max_lag, args.positions, args.warmup, args.batch)
        decays.append(gradient_decay(checkpoint, text, *sizes, label, progress=True))
        radii.append(spectral_radii(checkpoint.model).assign(model=label))
    decay, spectral = pd.concat(decays, ignore_index=True), pd.concat(radii, ignore_index=True)
    figure = decay_figure(decay, normalise=args.normalise, layer=args.layer)
    write_files(
        out,
        {
            "decay.csv": lambda path: decay.to_csv(path, index=False),
            "spectral.csv": lambda path: spectral.to_csv(path, index=False),
            "decay.html": lambda path: figure.write_html(path, include_plotlyjs=True),
        },
    )
    column = "ratio_mean" if args.normalise else "mean"
    lags = sorted({k for k in (0, 10, 50, 100, 200) if k <= args.max_lag} | {args.max_lag})
    print(
        f"gradient norm ({'relative to lag 0' if args.normalise else 'absolute'}, mean over "
        f"{decay['positions'].max()} positions of {source}) at lag:"
    )
    print(f"{'model':32s} {'layer':>5s} {'state':6s} " + " ".join(f"{k:>9d}" for k in lags))
    for (model, layer, state), rows in decay.groupby(["model", "layer", "state"], sort=False):
        top = args.layer or decay.loc[decay["model"] == model, "layer"].max()
        if layer == top:
            values = rows.set_index("lag")[column]
            print(
                f"{model:32s} {layer:5d} {state:6s} " + " ".join(f"{values[k]:9.2e}" for k in lags)
            )
    print("spectral radius of W_hh (per gate block for LSTM/GRU):")
    for (model, layer), rows in spectral.groupby(["model", "layer"], sort=False):
        blocks = ", ".join(f"{b} {r:.3f}" for b, r in zip(rows["block"], rows["radius"]))
        print(f"  {model:30s} layer {layer}: {blocks}")
    print(f"wrote {out}/decay.csv, spectral.csv, decay.html")


# --- saturation ----------------------------------------------------------------------------
def add_saturation(subparsers) -> None:
    p = command(
        subparsers,
        "saturation",
        "gate saturation: how often each gate is nearly shut (< 0.1) or open (> 0.9)",
        "  probe saturation --recording rec/linux-lstm\n"
        "  probe saturation --recording rec/wp --out out/saturation --top 20",
    )
    p.add_argument("--recording", required=True, help="a recording of an LSTM or GRU")
    p.add_argument("--out", help="folder for saturation.csv and saturation.html")
    p.add_argument("--force", action="store_true", help="overwrite those files if they exist")
    p.add_argument("--top", type=positive_int, default=10, help="integrator gates to list")
    p.set_defaults(func=cmd_saturation)


def cmd_saturation(args) -> None:
    from probe.plots import saturation_figure
    from probe.recording import Recording
    from probe.saturation import gate_saturation, integrators, saturation_summary

    recording = Recording.open(args.recording)
    out = check_out_folder(args.out, ("saturation.csv", "saturation.html"), args.force)
    saturation = gate_saturation(recording, progress=True)
    print(
        f"gate saturation over {recording.chars:,} chars of {recording.name} "
        "(fraction of chars < 0.1 / > 0.9, units mostly so):"
    )
    print(saturation_summary(saturation).to_string(index=False, float_format="{:.3f}".format))
    top = integrators(saturation, recording.config["cell"], args.top)
    print(
        f"most right-saturated {top['kind'].iloc[0] if len(top) else 'forget'} units "
        "(candidate integrators; color the text by one in the dashboard or `probe export`):"
    )
    for row in top.itertuples():
        print(f"  {row.unit:24s} open {row.right:6.1%}  shut {row.left:6.1%}  mean {row.mean:.3f}")
    if out:
        figure = saturation_figure(saturation)
        write_files(
            out,
            {
                "saturation.csv": lambda path: saturation.to_csv(path, index=False),
                "saturation.html": lambda path: figure.write_html(path, include_plotlyjs=True),
            },
        )
        print(f"wrote {out}/saturation.csv, saturation.html")
