/* The recorder's kernels (see probe/kernels.py and probe/fastrecord.py): the fused LSTM
 * layer, the LSTM and GRU step math, the LSTM cell state from oneDNN's gates, and the
 * float16 copies of the recorded states. Built into the same library as _kernels.c. */
#include "_kernels.h"

#ifdef PROBE_X86

/* The LSTM cell state from the gates the recorder reads out of oneDNN's workspace:
 *   cell[t, s, u] = c = f * c + i * g, starting from c[s, u], for t < steps,
 * where i, f, g = gates[t, s, u], gates[t, s, hidden + u], gates[t, s, 2 hidden + u]
 * (gates strided by step and by stream, in floats); c ends as the last step's state. One
 * call a chunk, instead of one op a step. */
FAST void probe_lstm_cells(const float *gates, int64_t step_stride, int64_t stream_stride,
                           int64_t steps, int64_t streams, int64_t hidden, float *c,
                           float *cell) {
    for (int64_t t = 0; t < steps; t++) {
        for (int64_t s = 0; s < streams; s++) {
            const float *i = gates + t * step_stride + s * stream_stride;
            const float *f = i + hidden, *g = i + 2 * hidden;
            float *state = c + s * hidden, *out = cell + (t * streams + s) * hidden;
            int64_t u = 0;
            for (; u + 8 <= hidden; u += 8) {
                __m256 next = _mm256_fmadd_ps(_mm256_loadu_ps(f + u), _mm256_loadu_ps(state + u),
                                              _mm256_mul_ps(_mm256_loadu_ps(i + u),
                                                            _mm256_loadu_ps(g + u)));
                _mm256_storeu_ps(state + u, next);
                _mm256_storeu_ps(out + u, next);
            }
            for (; u < hidden; u++) out[u] = state[u] = f[u] * state[u] + i[u] * g[u];
        }
    }
}

/* out[s, t, u] = float16(values[t, s, u]) for t < steps, s < streams, u < width: the
 * recorder's time-major float32 states to the stream-major float16 rows it writes (values
 * strided by step and by stream, in floats; out contiguous, its steps strided by `steps_out`). */
FAST void probe_to_half(const float *values, int64_t step_stride, int64_t stream_stride,
                        int64_t steps, int64_t streams, int64_t width, uint16_t *out,
                        int64_t steps_out) {
    for (int64_t s = 0; s < streams; s++) {
        for (int64_t t = 0; t < steps; t++) {
            const float *row = values + t * step_stride + s * stream_stride;
            uint16_t *half = out + (s * steps_out + t) * width;
            int64_t u = 0;
            for (; u + 8 <= width; u += 8)
                _mm_storeu_si128((__m128i *)(half + u),
                                 _mm256_cvtps_ph(_mm256_loadu_ps(row + u), _MM_FROUND_TO_NEAREST_INT));
            for (; u < width; u++)
                half[u] = (uint16_t)_mm_extract_epi16(
                    _mm_cvtps_ph(_mm_set_ss(row[u]), _MM_FROUND_TO_NEAREST_INT), 0);
        }
    }
}

/* e^x in float32 for eight lanes (Cephes' expf: x = n ln 2 + r, e^r by a degree-5
 * polynomial, 2^n put into the exponent bits); x is clamped to where e^x is finite. */
static FAST __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i power = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(power));
}

static FAST __m256 sigmoid8(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

static FAST __m256 tanh8(__m256 x) { /* 2 sigmoid(2x) - 1: absolute error ~1e-7 */
    __m256 two = _mm256_set1_ps(2.0f);
    return _mm256_fmsub_ps(two, sigmoid8(_mm256_mul_ps(two, x)), _mm256_set1_ps(1.0f));
}

/* The GRU gate math of one stream's 8 units: r, z from their summed pre-activations, n =
 * tanh(x_n + r rec_n), written to gates (r; z and n `hidden` and 2 `hidden` floats on), and
 * h' = (1 - z) n + z h to out. */
static FAST inline __attribute__((always_inline)) void gru_finish(
    __m256 reset, __m256 update, __m256 rec_n, float *gates, int64_t hidden, const float *h,
    float *out) {
    reset = sigmoid8(reset), update = sigmoid8(update);
    __m256 candidate = tanh8(_mm256_fmadd_ps(reset, rec_n, _mm256_loadu_ps(gates + 2 * hidden)));
    _mm256_storeu_ps(gates, reset), _mm256_storeu_ps(gates + hidden, update);
    _mm256_storeu_ps(gates + 2 * hidden, candidate);
    __m256 old = _mm256_loadu_ps(h);
    _mm256_storeu_ps(out, _mm256_fmadd_ps(_mm256_sub_ps(old, candidate), update, candidate));
}

/* One GRU step's gate math for every stream, as PyTorch's GRU: with row = x W_ih^T + b_ih
 * and recurrent = h W_hh^T + b_hh (streams x 3 hidden each, blocks r, z, n),
 *   r = sigmoid(row_r + recurrent_r), z = sigmoid(row_z + recurrent_z),
 *   n = tanh(row_n + r recurrent_n), h_next = (1 - z) n + z h,
 * with r, z, n written back into row (what the recorder stores). One call a step, instead of
 * eight ops. hidden % 8 == 0 (the wrapper sends other sizes to torch). */
FAST void probe_gru_step(float *row, const float *recurrent, const float *h, float *h_next,
                         int64_t streams, int64_t hidden) {
    for (int64_t s = 0; s < streams; s++) {
        float *gates = row + s * 3 * hidden;
        const float *rec = recurrent + s * 3 * hidden;
        for (int64_t u = 0; u < hidden; u += 8)
            gru_finish(_mm256_add_ps(_mm256_loadu_ps(gates + u), _mm256_loadu_ps(rec + u)),
                       _mm256_add_ps(_mm256_loadu_ps(gates + hidden + u),
                                     _mm256_loadu_ps(rec + hidden + u)),
                       _mm256_loadu_ps(rec + 2 * hidden + u), gates + u, hidden,
                       h + s * hidden + u, h_next + s * hidden + u);
    }
}

/* The LSTM gate math of one stream's 8 units from its 4 summed gate vectors i, f, o, g
 * (`hidden` floats apart in gates, where the activated gates go), c to cell, h to out. */
static FAST inline __attribute__((always_inline)) void lstm_finish(
    __m256 i, __m256 f, __m256 o, __m256 g, float *gates, int64_t hidden, const float *c,
    float *cell, float *out) {
    i = sigmoid8(i), f = sigmoid8(f), o = sigmoid8(o), g = tanh8(g);
    _mm256_storeu_ps(gates, i), _mm256_storeu_ps(gates + hidden, f);
    _mm256_storeu_ps(gates + 2 * hidden, o), _mm256_storeu_ps(gates + 3 * hidden, g);
    __m256 next = _mm256_fmadd_ps(f, _mm256_loadu_ps(c), _mm256_mul_ps(i, g));
    _mm256_storeu_ps(cell, next);
    _mm256_storeu_ps(out, _mm256_mul_ps(o, tanh8(next)));
}

/* One LSTM step's gate math for every stream, in the recorder's gate order i, f, o, g: with
 * row = x W_ih^T + b (streams x 4 hidden) plus recurrent = h W_hh^T (same shape; NULL when
 * the caller's GEMM already added it into row),
 *   i, f, o = sigmoid(.), g = tanh(.), c_next = f c + i g, h_next = o tanh(c_next),
 * with i, f, o, g written back into row (what the recorder stores). One call a step, instead
 * of six ops that each stream the step's gates through memory. hidden % 8 == 0. */
FAST void probe_lstm_step(float *row, const float *recurrent, const float *c, float *c_next,
                          float *h_next, int64_t streams, int64_t hidden) {
    for (int64_t s = 0; s < streams; s++) {
        float *gates = row + s * 4 * hidden;
        const float *added = recurrent ? recurrent + s * 4 * hidden : NULL;
        const float *state = c + s * hidden;
        float *cell = c_next + s * hidden, *out = h_next + s * hidden;
        for (int64_t u = 0; u < hidden; u += 8) {
            __m256 pre[4];
            for (int k = 0; k < 4; k++) {
                pre[k] = _mm256_loadu_ps(gates + k * hidden + u);
                if (added) pre[k] = _mm256_add_ps(pre[k], _mm256_loadu_ps(added + k * hidden + u));
            }
            lstm_finish(pre[0], pre[1], pre[2], pre[3], gates + u, hidden, state + u, cell + u,
                        out + u);
        }
    }
}

/* An LSTM layer's recurrence over a chunk of steps, every stream, the recurrent GEMM and
 * the gate math fused: a step's gates never leave L1 between the two, and no Python runs
 * between steps. For each step t and stream s (gate order i, f, o, g),
 *   gates[t, s] = act(gates[t, s] + W_hh h_{t-1, s}),
 *   cell[t, s] = f c_{t-1, s} + i g, hidden[t, s] = o tanh(cell[t, s]),
 * with gates holding x W_ih^T + b on entry; h_{-1}, c_{-1} are h0, c0. W_hh comes packed by
 * `lstm_pack`: for each block of 8 units, two panels (gates i and f, then o and g), each k's
 * row of 16 weights in a row. Per step and block: the GEMM into the block's gates, in tiles
 * of 4-6 streams (see panel_sweep), while the panel stays in L1; then the gate math for each
 * stream while the block's gates are still there. hidden % 8 == 0.
 * `halves` (or NULL) holds, for i, f, o, g, c and h in that order, NULL or a float16
 * (streams, steps_out, hidden) array, stream-major as the recording stores it: each value
 * is copied there too, while it is in L1 (a separate pass reads the chunk back from memory). */

/* halves[k][offset .. offset + 8) = float16(value[0 .. 8)) where halves[k] is not NULL. */
static FAST inline __attribute__((always_inline)) void store_half(
    uint16_t *const *halves, int k, int64_t offset, const float *value) {
    if (halves[k])
        _mm_storeu_si128((__m128i *)(halves[k] + offset),
                         _mm256_cvtps_ph(_mm256_loadu_ps(value), _MM_FROUND_TO_NEAREST_INT));
}

#define KBLOCK 256 /* a panel's k block: 256 x 16 floats = 16 KB, half of L1 */
#define ROW(r, op) if (rows > r) { op(r); }

/* out[r] (two groups of 8 sums for stream r, the second `second` floats after the first)
 * += h[r] . panel over k in [k0, k1), for r < rows (<= 6), h's rows `hidden` floats apart
 * and out's `out_row`: 12 sums, 2 weight vectors and 1 broadcast h value in the 16
 * registers, as an optimised GEMM's 6 x 16 kernel. Named registers: an array of them went
 * to the stack on every k. */
static FAST inline __attribute__((always_inline)) void gemm_tile(
    const float *panel, const float *h, int64_t hidden, float *out, int64_t out_row,
    int64_t second, int64_t k0, int64_t k1, const int rows) {
    __m256 a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5;
#define LOAD(r) a##r = _mm256_loadu_ps(out + r * out_row), \
                b##r = _mm256_loadu_ps(out + r * out_row + second)
#define FMA(r) { __m256 x = _mm256_broadcast_ss(h + r * hidden + k); \
                 a##r = _mm256_fmadd_ps(x, w0, a##r), b##r = _mm256_fmadd_ps(x, w1, b##r); }
#define STORE(r) _mm256_storeu_ps(out + r * out_row, a##r), \
                 _mm256_storeu_ps(out + r * out_row + second, b##r)
    a0 = a1 = a2 = a3 = a4 = a5 = b0 = b1 = b2 = b3 = b4 = b5 = _mm256_setzero_ps();
    ROW(0, LOAD) ROW(1, LOAD) ROW(2, LOAD) ROW(3, LOAD) ROW(4, LOAD) ROW(5, LOAD)
    for (int64_t k = k0; k < k1; k++) {
        __m256 w0 = _mm256_loadu_ps(panel + k * 16), w1 = _mm256_loadu_ps(panel + k * 16 + 8);
        ROW(0, FMA) ROW(1, FMA) ROW(2, FMA) ROW(3, FMA) ROW(4, FMA) ROW(5, FMA)
    }
    ROW(0, STORE) ROW(1, STORE) ROW(2, STORE) ROW(3, STORE) ROW(4, STORE) ROW(5, STORE)
#undef LOAD
#undef FMA
#undef STORE
}

/* out[s] += h[s] . panel (hidden x 16) for every stream s, in tiles of 4-6 streams and k
 * blocks (the block's 16 KB of weights stay in L1 while every tile uses them). A tile of r
 * rows takes max(r, 4) cycles a k (12 FMAs at 2 a cycle for 6 rows; below 4 rows, the FMA
 * latency of 4 cycles), so the streams are shared out evenly over ceil(streams / 6) tiles:
 * 31 streams as 6 + 5 x 5 (31 cycles a k), not 5 x 6 + 1 (34). */
static FAST void panel_sweep(const float *panel, const float *h, int64_t hidden, float *out,
                             int64_t out_row, int64_t second, int64_t streams) {
    int64_t tiles = (streams + 5) / 6;
    for (int64_t k0 = 0; k0 < hidden; k0 += KBLOCK) {
        int64_t k1 = k0 + KBLOCK < hidden ? k0 + KBLOCK : hidden;
        for (int64_t tile = 0, s = 0; tile < tiles; tile++) {
            int64_t rows = streams / tiles + (tile < streams % tiles);
            const float *hs = h + s * hidden;
            float *os = out + s * out_row;
            switch (rows) {
            case 6: gemm_tile(panel, hs, hidden, os, out_row, second, k0, k1, 6); break;
            case 5: gemm_tile(panel, hs, hidden, os, out_row, second, k0, k1, 5); break;
            case 4: gemm_tile(panel, hs, hidden, os, out_row, second, k0, k1, 4); break;
            case 3: gemm_tile(panel, hs, hidden, os, out_row, second, k0, k1, 3); break;
            case 2: gemm_tile(panel, hs, hidden, os, out_row, second, k0, k1, 2); break;
            default: gemm_tile(panel, hs, hidden, os, out_row, second, k0, k1, 1);
            }
            s += rows;
        }
    }
}

/* log p(next char) under the decoder, for every step and stream: with logits = W h + b
 * for h = hidden[t, s] (steps x streams x width, time-major as the layers leave it),
 *   out[s, t] = logits[next[s, t]] - log(sum(exp(logits)))   (out, next: streams x steps).
 * W comes packed by `decoder_pack`: `padded / 16` panels, each a row of 16 weights per k
 * (the rows past the vocabulary zero, and ignored). Rows go in blocks of DECODE_ROWS: the
 * GEMM into `scratch` (DECODE_ROWS x padded floats) by panel sweeps, then each row's
 * softmax while its logits are in L1; the logits never reach memory. */
#define DECODE_ROWS 48
FAST void probe_logprob(const float *packed, const float *bias, const float *hidden,
                        const int64_t *next, float *out, float *scratch, int64_t steps,
                        int64_t streams, int64_t width, int64_t vocab, int64_t padded) {
    int64_t rows = steps * streams;
    for (int64_t first = 0; first < rows; first += DECODE_ROWS) {
        int64_t count = rows - first < DECODE_ROWS ? rows - first : DECODE_ROWS;
        for (int64_t r = 0; r < count; r++) memcpy(scratch + r * padded, bias, padded * sizeof(float));
        for (int64_t panel = 0; panel < padded / 16; panel++)
            panel_sweep(packed + panel * width * 16, hidden + first * width, width,
                        scratch + panel * 16, padded, 8, count);
        for (int64_t r = 0; r < count; r++) {
            float *logits = scratch + r * padded;
            for (int64_t v = vocab; v < padded; v++) logits[v] = -INFINITY;
            __m256 top = _mm256_set1_ps(-INFINITY), sum = _mm256_setzero_ps();
            for (int64_t v = 0; v < padded; v += 8) top = _mm256_max_ps(top, _mm256_loadu_ps(logits + v));
            float most = -INFINITY, lanes[8];
            _mm256_storeu_ps(lanes, top);
            for (int k = 0; k < 8; k++) most = lanes[k] > most ? lanes[k] : most;
            for (int64_t v = 0; v < padded; v += 8) /* exp8 takes -inf to ~1e-38: nothing */
                sum = _mm256_add_ps(sum, exp8(_mm256_sub_ps(_mm256_loadu_ps(logits + v),
                                                            _mm256_set1_ps(most))));
            _mm256_storeu_ps(lanes, sum);
            double total = 0;
            for (int k = 0; k < 8; k++) total += lanes[k];
            int64_t row = first + r, t = row / streams, s = row % streams;
            out[s * steps + t] = (float)(logits[next[s * steps + t]] - most - log(total));
        }
    }
}

FAST void probe_lstm_layer(const float *packed, float *gates, const float *h0, const float *c0,
                           float *hidden_out, float *cell_out, uint16_t *const *halves,
                           int64_t steps_out, int64_t steps, int64_t streams, int64_t hidden) {
    int64_t gate_row = 4 * hidden, state_step = streams * hidden;
    for (int64_t t = 0; t < steps; t++) {
        const float *h = t ? hidden_out + (t - 1) * state_step : h0;
        const float *c = t ? cell_out + (t - 1) * state_step : c0;
        float *step_gates = gates + t * streams * gate_row;
        float *cell = cell_out + t * state_step, *out = hidden_out + t * state_step;
        for (int64_t u = 0; u < hidden; u += 8) {
            const float *panels = packed + u / 8 * 2 * hidden * 16; /* i, f; then o, g */
            panel_sweep(panels, h, hidden, step_gates + u, gate_row, hidden, streams);
            panel_sweep(panels + hidden * 16, h, hidden, step_gates + 2 * hidden + u, gate_row,
                        hidden, streams);
            for (int64_t s = 0; s < streams; s++) { /* the block's gates are still in L1 */
                float *g = step_gates + s * gate_row + u;
                lstm_finish(_mm256_loadu_ps(g), _mm256_loadu_ps(g + hidden),
                            _mm256_loadu_ps(g + 2 * hidden), _mm256_loadu_ps(g + 3 * hidden), g,
                            hidden, c + s * hidden + u, cell + s * hidden + u, out + s * hidden + u);
                if (halves) {
                    int64_t at = (s * steps_out + t) * hidden + u;
                    for (int k = 0; k < 4; k++) store_half(halves, k, at, g + k * hidden);
                    store_half(halves, 4, at, cell + s * hidden + u);
                    store_half(halves, 5, at, out + s * hidden + u);
                }
            }
        }
    }
}

/* A GRU layer over a chunk, as probe_lstm_layer: gates (steps, streams, 3 hidden: r, z, n)
 * hold x W_ih^T + b_ih on entry and the activated r, z, n on return, hidden_out gets h:
 *   r = sigmoid(x_r + W_hr h + b_hr), z = sigmoid(x_z + W_hz h + b_hz),
 *   n = tanh(x_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h (PyTorch's GRU).
 * W_hh packed by `gru_pack`: for each block of 16 units, three panels of 16 columns (r and
 * z of units 0-7, r and z of units 8-15, n of all 16); W_hn h + b_hn is summed apart, in
 * `scratch` (streams x 16). b_hh is r, z, n's recurrent bias (r and z's are added here too).
 * hidden % 16 == 0. `halves`: as for probe_lstm_layer, for r, z, n and h. */
FAST void probe_gru_layer(const float *packed, const float *b_hh, float *gates, const float *h0,
                          float *hidden_out, float *scratch, uint16_t *const *halves,
                          int64_t steps_out, int64_t steps, int64_t streams, int64_t hidden) {
    int64_t gate_row = 3 * hidden, state_step = streams * hidden;
    for (int64_t t = 0; t < steps; t++) {
        const float *h = t ? hidden_out + (t - 1) * state_step : h0;
        float *step_gates = gates + t * streams * gate_row, *out = hidden_out + t * state_step;
        for (int64_t u = 0; u < hidden; u += 16) {
            const float *panels = packed + u / 16 * 3 * hidden * 16;
            for (int64_t s = 0; s < streams; s++) /* recurrent biases: r, z in; n apart */
                for (int64_t v = 0; v < 16; v += 8) {
                    float *g = step_gates + s * gate_row + u + v;
                    _mm256_storeu_ps(g, _mm256_add_ps(_mm256_loadu_ps(g), _mm256_loadu_ps(b_hh + u + v)));
                    _mm256_storeu_ps(g + hidden, _mm256_add_ps(_mm256_loadu_ps(g + hidden),
                                                               _mm256_loadu_ps(b_hh + hidden + u + v)));
                    _mm256_storeu_ps(scratch + s * 16 + v, _mm256_loadu_ps(b_hh + 2 * hidden + u + v));
                }
            panel_sweep(panels, h, hidden, step_gates + u, gate_row, hidden, streams);
            panel_sweep(panels + hidden * 16, h, hidden, step_gates + u + 8, gate_row, hidden,
                        streams);
            panel_sweep(panels + 2 * hidden * 16, h, hidden, scratch, 16, 8, streams);
            for (int64_t s = 0; s < streams; s++)
                for (int64_t v = 0; v < 16; v += 8) {
                    float *g = step_gates + s * gate_row + u + v;
                    gru_finish(_mm256_loadu_ps(g), _mm256_loadu_ps(g + hidden),
                               _mm256_loadu_ps(scratch + s * 16 + v), g, hidden,
                               h + s * hidden + u + v, out + s * hidden + u + v);
                    if (halves) {
                        int64_t at = (s * steps_out + t) * hidden + u + v;
                        for (int k = 0; k < 3; k++) store_half(halves, k, at, g + k * hidden);
                        store_half(halves, 3, at, out + s * hidden + u + v);
                    }
                }
        }
    }
}

/* A vanilla (tanh) RNN layer over a chunk, as probe_lstm_layer: gates (steps, streams,
 * hidden) hold x W_ih^T + b_ih + b_hh on entry and h W_hh^T added on return; hidden_out
 * gets h' = tanh(gates). W_hh packed by `panel_pack`: a panel of 16 units per block, a row
 * of their 16 weights per k. `halves`: NULL or {h's float16 copy}. hidden % 16 == 0. */
FAST void probe_rnn_layer(const float *packed, float *gates, const float *h0, float *hidden_out,
                          uint16_t *const *halves, int64_t steps_out, int64_t steps,
                          int64_t streams, int64_t hidden) {
    int64_t state_step = streams * hidden;
    for (int64_t t = 0; t < steps; t++) {
        const float *h = t ? hidden_out + (t - 1) * state_step : h0;
        float *step_gates = gates + t * state_step, *out = hidden_out + t * state_step;
        for (int64_t u = 0; u < hidden; u += 16) {
            panel_sweep(packed + u * hidden, h, hidden, step_gates + u, hidden, 8, streams);
            for (int64_t s = 0; s < streams; s++)
                for (int64_t v = u; v < u + 16; v += 8) {
                    int64_t at = s * hidden + v;
                    _mm256_storeu_ps(out + at, tanh8(_mm256_loadu_ps(step_gates + at)));
                    if (halves) store_half(halves, 0, (s * steps_out + t) * hidden + v, out + at);
                }
        }
    }
}
#endif
