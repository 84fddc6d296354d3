"""The method text under the tables of docs/performance.md (and the GPU page): how each
benchmark measures, and what it found costs. Kept apart from bench/run.py, which writes it."""

METHOD = """
## How to reproduce

    make bench                          # = .venv/bin/python -m bench.run --rounds 2
    .venv/bin/python -m bench.run --quick                   # smoke run, small inputs
    .venv/bin/python -m bench.run --scale 0.1 --rounds 2    # 10% of the characters
    .venv/bin/python -m bench.run --skip recorder trainer   # some benchmarks only

Quick runs and runs that skip a benchmark print their table but leave this page alone.
The recorder and trainer on a CUDA GPU: `docs/performance-gpu.md` (`--device cuda`).

The 2-core machines these figures come from are not all alike; the machine line above the
table says which ran it. Two kinds are quoted below: AMD Zen 3 (family 25: 32 MB L3,
full-width FMA units, peak 1024^3 GEMM ~176 GFLOP/s on both cores) and AMD Zen 1 (family
23: 8 MB L3, FMA units half as wide, 67-85 GFLOP/s and 14-24 GB/s of memory bandwidth from
day to day; its disk took 0.4-0.55 GB/s, the Zen 3's 1.2). Ratios against a reference
measured in the same run carry over between them; absolute targets (search's 2 s, the
dashboard's 150 ms) do not, and neither does the per-char loop, which on the Zen 1 reads
3x512's 20 MB of weights for every char from memory, not L3, and gains more than the GEMMs
on a day of more bandwidth (2x256's fused layer: 20.5x the loop at 16.6 GB/s, 16.5x at 24).

Every benchmark runs ours and its reference interleaved, round after round, in one process;
ratios are medians over rounds of per-round ratios, rates are the best round. Threads: 2
unless `--threads` says otherwise (1 is steadier on a busy machine: OpenMP threads that lose
their time slice stall every small parallel op).

- Recorder: records every kind (LSTM: c, h, 4 gates) of every layer to float16 files in a
  fresh folder in the temp dir each round, with the recorder's warm-up of 500 chars per
  stream included; the folder is deleted between rounds, untimed (deleting gigabytes of
  dirty pages belongs to no recording; a round that overwrote the last one's files paid it).
  References: (a) `per_char_loop` (bench/recorder.py) on a 3,000-char prefix: batch 1,
  each char through every layer in turn, gates from `F.linear` on the char's input and the
  previous h, states appended to lists, what a script that needs the gates is written as
  (a test checks it computes `CharRNN.trace`'s states); also `CharRNN.trace` with batch 1
  ("layer-major loop" row), a stricter loop that already hoists each layer's input
  projection out of the time loop and writes into preallocated outputs; (b) the fused
  `nn.LSTM`/`GRU`/`RNN` forward over the same text in the same streams, h only, nothing stored,
  timed on the first quarter of each stream's steps (same GEMMs; storing nothing, its rate
  is steady from the start, and the whole text took a quarter of the bench's time);
  (c) the FLOP bound = peak fp32 GEMM rate / FLOPs per char, the peak being the best rate
  of the whole run (8 GEMMs 1024^3 each through MKL `torch.mm` and oneDNN in every round of
  every shape: noise only ever slows a GEMM down, and a slowed peak flatters every fraction
  measured against it), FLOPs counting 2 x gates x hidden x (hidden + input) per layer with
  layer 1's one-hot input projection as a lookup (0 FLOPs) and the decoder not counted. A
  fraction is the best round's chars/s x FLOPs per char / the peak: the rows above give
  every figure it is made of.
  The two "ceiling" rows apply (c) and (a) to the fused layer itself: on a CPU where it is
  far from the FLOP bound, or not far ahead of the per-char loop, no recorder built on it can
  be either. 3x512 records 18 KB per char, so it runs on 250k chars at scale 1 (rates are per
  char). Models have random-init weights: speed does not depend on the values. "GB/s
  written" is chars/s x bytes per char, against the disk's write + fsync rate measured at the
  start: past the kernel's dirty-page limit (a share of the RAM; 2x256 at 1M chars writes
  6 GB) a recording can go no faster than the disk takes it.
- Trainer: `Trainer.train_step` (what `probe train` runs) against a bare nn.LSTM + Linear +
  Adam loop of the same shape, batch 64 x 100 chars, on the Linux corpus.
- Search: `probe.search.search` (nulls off; also timed with the shift null, the CLI's and
  dashboard's default) of all cell and hidden units of a 3x512 recording against 10
  features; GB/s counts 2 reads of every array (the r pass; gathering the
  candidates' columns for exact AUROC, which touches every page of an array holding any),
  against the read rate of all cores together. Both passes run row blocks on a pool of one
  thread per core, each calling the compiled kernels (`probe/_kernels.c` and
  `probe/_auroc_kernels.c`, AVX2; where they are not built the same passes run in torch,
  ~4x slower: 3x512, 300k chars, Zen 1, 0.58 vs 2.3 s). The r pass takes a tile of
  rows (256 KB, in L2) one 16-unit strip at a time: it casts the strip to float32, taking
  its sums and squares as it goes, into a 16 KB buffer in L1 that it then sweeps with the
  dense features' sums in registers (no dense or binary feature, no buffer). A feature that
  moves by a fixed step a char (0, +1 or -1) but at few jumps (all 10 here: positions and
  lengths in a line, indents, depths, and the binary features' runs) costs no FMA a row:
  with the strip's prefix sums P, its sum over a tile is (value at the tile's start + its
  jumps) * sum(x) + slope * sum(t x) - sum over the jumps of size * P(jump), where sum(t x)
  = (n - 1) P(n) - the sum of P over the tile's rows: a lookup a jump (0.5-4% of rows
  here), and P stored only at the pairs of rows some feature jumps in, their slots found
  once a tile for all its strips. Storing P at every row and taking sum(t x) by FMAs cost a
  third of the pass on the Zen 1 (its cores store 16 bytes a cycle); with each flag of the
  cast a constant of its own loop, its sums stay in registers. A/B in one process on the
  Zen 1, one 1 GB array (512 units) x the 10 features, median of 5: 4.6-4.8 GB/s a core vs
  2.9 before, 6.0-7.0 vs 3.9-4.3 GB/s on both cores (the same sweep with no features: 5.9 a
  core, 11.6 both); search, 6 rounds, best 1.72 s vs 2.11 (the machine's noise then ran
  rounds up to 3.6 s); r of that array within 4e-7 of the float64 value (before: 1.1e-6).
  Steps against the same features as FMAs a row (binary ones as sums over their 1s), when
  they came: search 1.72-1.86 s vs 1.95-2.50 s, with the shift null 3.8-4.6 s vs 5.3-6.0 s.
  Each named feature's profile (mean, variance, 1s, steps) is cached with its values, and
  the features are stacked as rows, as the passes read them: 0.35 s less Python a search
  (cProfile), search 1.45-1.53 s vs 1.67-1.74 (5 rounds each, same process, Zen 1).
  The search is timed over at least 5 rounds, whatever `--rounds` says: a 2 s measurement
  on a shared machine needs more than 2 to see one undisturbed. The candidates' pass
  gathers their columns (~0.1 s per 1 GB array) tile by tile, each tile fetched in order
  ahead of use (Zen 3: touched first, 0.52-0.63 s for 6 arrays x 68 columns vs 0.59-0.87 s
  picking columns straight from memory; Zen 1, A/B in one process, median of 10: prefetched
  a few lines per column picked in the tile before, 0.62 s, vs touched first, 0.75 s), then
  takes their histograms. One keys buffer serves
  every array: a fresh one per array (6 x 136 MB here) page-faulted in, the OS zeroing each
  page (A/B in one process, median of 6: search 1.77 s with one buffer, 2.26 s without).
  The r pass prefetches each tile's successor a line or two per pair of rows it casts: issued
  in one burst per strip, the prefetches filled the load queue and stalled the cast on the
  Zen 1 (a quarter of the pass's samples on the prefetch loop); A/B in one process there,
  median of 5: search 2.32 s vs 3.05 s (no prefetching: 2.87 s). Tried without a change
  beyond the noise: casting each tile first in row order (which the hardware prefetchers
  follow) into float32 strips kept in L2, then taking each strip's sums from there (the same
  sums to the bit; Zen 1, interleaved rounds, median of 15: r pass 1.49 vs 1.52 s).
- Dashboard: `bench/dashboard.py` in headless Chromium on a 1M-char recording: from the click
  to the view showing the new coloring or window, painted. The text view draws first the
  blocks of lines that can be in view (the focus is scrolled to the middle) and the rest of
  the window when the browser is next idle (tests wait for that, `data-drawn`).

## The recorder's fast path (`probe/fastrecord.py`, `probe/recorder_kernels.py`, `probe/recording.py`)

`CharRNN.trace` stays the readable reference; the recorder runs `FastTracer`, which computes
the same numbers (tests: equal to `trace` within 1e-5 in float32 for LSTM/GRU/RNN with 1-3
layers, and recordings equal to per-segment traces within float16 tolerance):

- Streams are independent, so on CPU the recorder runs them in groups side by side, one
  thread per core, each with torch on one thread (`probe.streams.plan_shards`): no group
  waits for another, and the float16 copies, gate math and Python's per-step work, serial
  before, run in parallel too. LSTM 2x256, 1M chars: 29.7k -> 45k chars/s with the rest of
  the path unchanged.
- LSTM layers, where the kernels are built: one compiled call per layer and chunk
  (`probe_lstm_layer`) runs the recurrence with each step's recurrent GEMM and the gate
  math fused. W_hh is packed once into panels of 2 gates x 8 units; each step sweeps them
  in 6-stream x 16-column register tiles (12 sums, as an optimised GEMM's kernel), then
  does the gate math of each 8-unit block while its gates are still in L1. One core, 64
  streams: 2x256 74 GFLOP/s with the gate math, against 53-70 for MKL's GEMM plus a
  compiled gate-math call per step; in the recorder (A/B in one process, 600k chars):
  54k chars/s, against 47.5k with the per-step calls and 46.7k without the kernels.
  Input projections are hoisted out (a row lookup for layer 1's one-hot input, one GEMM
  per chunk above). The same call writes the float16 copies the recording stores, each
  value while it is in L1 (a separate pass read every chunk back from memory: LSTM 2x256,
  1M chars, A/B in one process: 53.3k -> 60.1k chars/s). Where oneDNN is the faster GEMM
  (AVX-512 CPUs: MKL skips AVX-512 on
  AMD) the step loop below runs instead, with oneDNN's GEMM.
- LSTM layers without the kernels run through oneDNN's fused LSTM kernel (the one
  `nn.LSTM` runs on CPU) in training mode, which keeps every step's activated gates in its
  workspace for the backward pass; the recorder reads them there, rebuilds c with one
  multiply-add per step and checks, every chunk, that this c ends at the kernel's own final
  c (a PyTorch release that moved the gates switches to the step loop).
- Vanilla RNN layers, where the kernels are built: the same in `probe_rnn_layer` (panels
  of 16 units); 1M chars of 2x256, A/B in one process: 189k chars/s, against 141k for
  one-layer fused `nn.RNN`s with the model's weights (what runs without the kernels, or
  with oneDNN on AVX-512: h is all a vanilla RNN has to record, and all it returns).
- GRU layers, where the kernels are built: the same in `probe_gru_layer` (panels of 16
  columns: r and z of 8 units, or n of 16, whose recurrent sum stays apart for r's
  product); 600k chars, A/B in one process: 78.8k chars/s, against 65.2k with one compiled
  gate-math call per step and 52.8k without the kernels.
- The layer kernels take units in blocks of 8 (LSTM) or 16 (GRU, RNN); other sizes run
  padded with zero weights, so the padded units stay 0 and never reach a real one (the
  shipped checkpoints on 309k chars of held-out C, A/B against the previous commit: GRU
  with 149 units 38.8k -> 117k chars/s, through the layer kernel instead of torch's step
  loop; RNN with 264 units 98k -> 153k, instead of fused `nn.RNN`s).
- The log-probs of the next char: one compiled call per chunk (`probe_logprob`) runs the
  decoder's GEMM in the same register tiles, 48 rows at a time, and each row's softmax
  while its logits are in L1; the logits never reach memory (LSTM 2x256, A/B: 60.8k ->
  64.7k chars/s; RNN 2x256: 141k -> 145k).
- The fallbacks use a step loop: all streams of a group step together, input projections
  hoisted out, one recurrent GEMM per step (MKL, or oneDNN on AVX-512), the gate math in
  place, one compiled call per step where built.
- Warm-up and the repair of each stream's start (below) cost as much as recording, so the
  step loop on CPU takes one stream per 32 warm-ups (~3% extra chars; 1M chars of 2x256,
  A/B: 62 streams 67.2k chars/s, 125 streams 61.9k), at least 16 per core; oneDNN's fused
  kernel (no kernels built) takes few long streams. Each group warms its own streams up
  through its own tracer, side by side (RNN 2x256: 0.58 s on both cores before the groups
  started -> 0.22 s per group).
- A repair pass makes the recording equal one sequential pass: stream k runs again from
  stream k - 1's final state until its state meets the first pass's (within 1e-4, absolute
  plus relative; checked after 64 steps, then every chunk), overwriting what it recomputed.
  What a meeting leaves over is carried to the next stream, so it adds up along the streams:
  at 1e-3, 500 streams of 20 chars left cells off by 0.0067; at 1e-4, 0.0042, the float16
  rounding of a single pass (at 1e-5 such short streams never meet). The warm-up alone left the
  shipped stdlib LSTM's long-memory cells off by up to 17 (log-probs up to 3 nats) at ~1%
  of 150k chars; repaired, the largest difference to a sequential pass is one float16
  step. Its cost: with this benchmark's random weights every stream meets within 64 steps
  (~3% here); with trained long-memory models, thousands of steps per stream (the stdlib
  demo's 300k chars: ~120k chars/s against ~160k without the repair).
- Stored arrays: the layer kernels' float16 copies, or, on the other paths, one float16
  conversion per kind per chunk (compiled where built: the time-major float32 states to
  stream-major float16 rows, 2-3x torch's strided copy); then each stream's piece (at
  least 32 KB) goes to the file with one `os.pwrite` from a
  background thread, overlapping the next chunk's compute; files are preallocated
  (`posix_fallocate`), so a full disk fails at the start with a clear message. Writing
  through the memmap instead page-faults on every new page and cost about as much as the
  compute.
- While recording, freed blocks stay in the heap (`keep_freed_memory`: glibc's `mallopt`).
  By default glibc returns every block over 32 MB to the OS when it is freed, so each
  chunk's buffers page-faulted afresh: about a fifth of the time went to the OS zeroing
  pages.

- Chunks are long (>= 32k chars, buffers up to 512 MB): each costs Python per array and
  stream (the writes' pieces) and per call. 1M chars of 2x256 on 128 streams, A/B in one
  process: 48 steps a chunk 53.7k chars/s, 256 steps 61.9k.

What still costs, LSTM 2x256 at 1M chars, by perf profiles of whole recordings. On the Zen 3
(32 MB L3; before the tiles below): the layer kernels 54% of
CPU samples (GEMM sweeps 45%, gate math and float16 copies 9%), layer 2's input projection
(MKL) 20%, copying the writes into the page cache ~3%, the log-probs ~2.5%. On the Zen 1
(to tmpfs, the input projection summed in the layer kernel, tried below): the GEMM sweeps 72%, the rest of the layer kernel 11%, page-cache copies 6%, the
log-probs 3%. LSTM 3x512 on the Zen 1 (250k chars to tmpfs, the code as it is): the sweeps
51% of samples for 60% of the FLOPs (~0.9 of the peak GEMM rate), MKL's input projections
of layers 2 and 3 30% for 40% (at the peak), the rest of the layer kernel (gate math,
float16 copies) 6%, page-cache copies 5%; to disk rather than tmpfs ~5% slower (4.65-4.8k
vs 4.9-5.1k chars/s), 1M chars no faster than 250k (4.4-5.0k). On that machine the per-char
loop runs ~275 chars/s (its 20 MB of weights from memory every char), so 20x asks for
~0.83 of the FLOP bound, where the fused h-only layer reaches 0.73 and we ~0.77. The
warm-up is 6% of that run's chars, and random weights need none (without it: 4.8-5.4k
vs 4.7-4.8k chars/s, alternating runs), but trained ones do: the shipped stdlib LSTM on 300k held-out chars
records 67-77k chars/s with 500 warm-up chars, 60k with 100 and 32-33k with none, its
repairs running longer, so it stays at 500. Sigmoids by reciprocal and a Newton step
instead of a division: within the noise (LSTM 2x256, A/B in one process). Writing to this disk rather than tmpfs
costs the Zen 1 ~14% (alternating runs: 27.6k vs 31.8k chars/s): the kernel's writeback
shares the two cores. The layer kernel's GEMM takes the streams in tiles of 4-6: a tile of
r streams costs max(r, 4) cycles a k on the Zen 3 (below 4 the FMA latency binds), so each
core's 31 streams run as 6 + 5 x 5, not 5 x 6 + 1 (the kernel alone, both cores busy, A/B
in one process: 66.9 vs 58.4 GFLOP/s per core; a whole recording: 62.0k vs 57.7k chars/s,
median of 4). Tried without a change beyond the noise: converting each step's rows to
float16 after the step (plain or non-temporal stores), prefetching the next step's gates,
32 streams instead of 62 (half the warm-up); on the Zen 1, 62 streams a core instead of 31
(3x512 kernel: 45 vs 61 GFLOP/s, its gates outgrow L2), and the input projection summed in
the layer kernel, each step's GEMM over x and h together: equal to tmpfs (2x256 ~31k chars/s,
3x512 ~4.4k), but to disk 3x512 fell from 4.5k/4.0k to 3.6k/3.1k chars/s (alternating runs),
each step streaming both weight matrices (8 MB) from memory while the writeback runs.
Writing with O_DIRECT (headers and pieces aligned to 4 KB, no copy into the page cache) was
slower on the Zen 1: its disk takes direct writes at 0.23-0.27 GB/s with 1 to 4 in flight
(buffered: 0.37-0.56), and 2x256 recorded 19.1k/22.5k chars/s vs 24.1k/25.8k buffered.

The per-char loop (a) runs 1.3-2x slower than the layer-major loop for the 1- and 2-layer
shapes and 3.5-3.7x for 3x512 on the Zen 3, whose five weight matrices (20 MB) it reads for
every char, more than that machine's L2 keeps, where the layer-major loop reads one layer's 4 MB a
step. Against the layer-major loop, 20x is above what even the fused h-only layer reaches
for 2x256, 3x512 and the RNN.
"""

GPU_METHOD = """
## How to reproduce (needs a CUDA GPU)

    python -m bench.run --device cuda --rounds 2    # writes this page (~1 min on an H100)
    python -m bench.run --device cuda --quick       # smoke run, small inputs

The recorder and trainer benchmarks of `docs/performance.md`, run on the GPU: the same
shapes, characters, references and ratios. Search and the dashboard read recordings on the
CPU and are not part of this run. Timers wait for the GPU (`torch.cuda.synchronize`) before
they stop. The FLOP bound's peak rate is cuBLAS fp32 (TF32 off, as the recorder computes)
on 8192^3 GEMMs, the best of 8 per round.

How to read it: on a GPU the recorder runs LSTM and GRU layers in the step loop (oneDNN's
fused kernel is a CPU path) and RNN layers through cuDNN, on up to 1,024 streams, converts
each chunk to float16 on the GPU, copies it to pinned host memory and hands it to 4 write
threads. Computing is the small part: with the writes skipped, LSTM 2x256 records 1.5M
chars/s (cuDNN's h-only forward: ~20M). Copying the arrays (1.5-18 KB per char) into the
page cache is the large one: 1 write thread ~1.4 GB/s, 4 threads ~2.5 GB/s (the kernel
serialises writes to one file, so threads take chunks of different arrays). So the
FLOP-bound and h-only targets, set for the CPU, are out of reach of any recorder that stores
every kind through the page cache; storing fewer kinds helps (`probe record --device cuda`
with the shipped linux-lstm, 2x128, on the 309k test chars: all six kinds 294k chars/s,
`--kinds cell,hidden` 376k).
"""
