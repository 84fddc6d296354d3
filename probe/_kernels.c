/* Fused kernels for search's two passes over float16 recordings, and small ones for
 * the recorder (see probe/kernels.py).
 *
 * torch runs each pass as separate ops over float32 copies of the data: cast, shift, GEMM
 * with the features, square, sum; then, for the AUROC candidates, a gather, a transpose and
 * bincounts. Each op streams its operands through memory again, and a GEMM with ~12 rows
 * is bound by reading its float32 operand. Here each float16 value is read once, cast in
 * registers (F16C) and multiplied into every feature (FMA) while it sits in cache.
 *
 * Plain C functions called through ctypes (which releases the GIL, so probe.scan runs one
 * call per core). Compiled for AVX2 + FMA + F16C; probe_supported() says whether this CPU
 * has them, and probe.kernels falls back to torch where it has not, or where this file could
 * not be compiled at all.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bumped whenever a function below changes its arguments: probe.kernels refuses a library
 * built from another version (a checkout updated without reinstalling). */
int probe_version(void) { return 3; }

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#include <sys/mman.h>

#define FAST __attribute__((target("avx2,fma,f16c")))
#define FEATURE_BLOCK 6 /* features per sweep: 12 accumulators + 2 values + 1 weight */
#define PANEL_FLOATS (1 << 17) /* float32 values of one tile: 512 KB, stays in L2 */
#define HUGE_PAGE (2 << 20)

int probe_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* out[l] += the first `lanes` of the 16 floats in (low, high) */
static FAST void add_lanes(double *out, __m256 low, __m256 high, int64_t lanes) {
    float values[16];
    _mm256_storeu_ps(values, low), _mm256_storeu_ps(values + 8, high);
    for (int64_t l = 0; l < lanes; l++) out[l] += values[l];
}

/* Rows [start, stop) of a (chars, units) float16 array x, each shifted by shift[unit]:
 *   cross[f, u]         += sum_t columns[f][t] * x'[t, u]  (dense float32 features, f < dense)
 *   cross[dense + s, u] += sum of x'[t, u] over the rows t in positives[s] (sorted; binary
 *                          features, where a sum over the 1s is far cheaper than an FMA a row)
 *   sums[u] += sum_t x'[t, u], squares[u] += sum_t x'[t, u]^2
 *   low[u], high[u] = running min / max of x'              (skipped when low is NULL)
 * Tiles of rows are cast into a panel of 16-unit column strips; each strip (16 KB, in L1)
 * is then read for its sums, its binary features' sums and once per block of FEATURE_BLOCK
 * dense features, with every sum in registers. Sums run in float32 within a tile and are
 * added to the float64 outputs after it. Returns 0, or -1 if memory ran out. */
FAST int probe_moments(const uint16_t *x, int64_t units, int64_t start, int64_t stop,
                       const float *const *columns, int64_t dense,
                       const int64_t *const *positives, const int64_t *counts, int64_t sparse,
                       const float *shift, double *cross, double *sums, double *squares,
                       float *low, float *high) {
    int64_t padded = (units + 15) / 16 * 16;
    int64_t tile = PANEL_FLOATS / padded < 16 ? 16 : PANEL_FLOATS / padded;
    size_t panel_bytes = (sizeof(float) * tile * padded + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    float *panel = aligned_alloc(HUGE_PAGE, panel_bytes);
    float *shifts = aligned_alloc(32, sizeof(float) * padded);
    int64_t *cursor = malloc(sizeof(int64_t) * 2 * (sparse + 1)), *until = cursor + sparse + 1;
    if (!panel || !shifts || !cursor) {
        free(panel), free(shifts), free(cursor);
        return -1;
    }
#ifdef MADV_HUGEPAGE /* the strips sit 16 KB apart: 2 MB pages spare TLB misses (10% here) */
    madvise(panel, panel_bytes, MADV_HUGEPAGE);
#endif
    memset(shifts, 0, sizeof(float) * padded);
    memcpy(shifts, shift, sizeof(float) * units);
    for (int64_t s = 0; s < sparse; s++) { /* first positive row >= start */
        int64_t lo = 0, hi = counts[s];
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (positives[s][mid] < start) lo = mid + 1; else hi = mid;
        }
        cursor[s] = lo;
    }

    for (int64_t t0 = start; t0 < stop; t0 += tile) {
        int64_t n = stop - t0 < tile ? stop - t0 : tile;
        for (int64_t t = 0; t < n; t++) {
            const uint16_t *row = x + (t0 + t) * units;
            for (int64_t u = 0; u < padded; u += 8) {
                __m256 value;
                if (u + 8 <= units) {
                    value = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + u)));
                } else { /* the last, partial block: pad lanes hold zeros */
                    uint16_t part[8] = {0};
                    if (u < units) memcpy(part, row + u, sizeof(uint16_t) * (units - u));
                    value = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)part));
                }
                value = _mm256_sub_ps(value, _mm256_load_ps(shifts + u));
                _mm256_store_ps(panel + (u & ~15) * n + 16 * t + (u & 15), value);
            }
        }
        for (int64_t s = 0; s < sparse; s++) { /* this tile's 1s: [cursor, until) */
            while (cursor[s] < counts[s] && positives[s][cursor[s]] < t0) cursor[s]++;
            until[s] = cursor[s];
            while (until[s] < counts[s] && positives[s][until[s]] < t0 + n) until[s]++;
        }

        for (int64_t u0 = 0; u0 < units; u0 += 16) {
            const float *strip = panel + u0 * n;
            int64_t lanes = units - u0 < 16 ? units - u0 : 16;
            __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0;
            __m256 a2 = _mm256_set1_ps(INFINITY), b2 = a2, a3 = _mm256_set1_ps(-INFINITY), b3 = a3;
            for (int64_t t = 0; t < n; t++) {
                __m256 x0 = _mm256_load_ps(strip + 16 * t), x1 = _mm256_load_ps(strip + 16 * t + 8);
                a0 = _mm256_add_ps(a0, x0), b0 = _mm256_add_ps(b0, x1);
                a1 = _mm256_fmadd_ps(x0, x0, a1), b1 = _mm256_fmadd_ps(x1, x1, b1);
                if (low) {
                    a2 = _mm256_min_ps(a2, x0), b2 = _mm256_min_ps(b2, x1);
                    a3 = _mm256_max_ps(a3, x0), b3 = _mm256_max_ps(b3, x1);
                }
            }
            add_lanes(sums + u0, a0, b0, lanes);
            add_lanes(squares + u0, a1, b1, lanes);
            if (low) {
                float lowest[16], highest[16];
                _mm256_storeu_ps(lowest, a2), _mm256_storeu_ps(lowest + 8, b2);
                _mm256_storeu_ps(highest, a3), _mm256_storeu_ps(highest + 8, b3);
                for (int64_t l = 0; l < lanes; l++) {
                    low[u0 + l] = lowest[l] < low[u0 + l] ? lowest[l] : low[u0 + l];
                    high[u0 + l] = highest[l] > high[u0 + l] ? highest[l] : high[u0 + l];
                }
            }

            for (int64_t s = 0; s < sparse; s++) {
                if (until[s] == cursor[s]) continue;
                a0 = _mm256_setzero_ps(), b0 = a0;
                for (int64_t i = cursor[s]; i < until[s]; i++) {
                    int64_t t = positives[s][i] - t0;
                    if (t < 0) continue; /* unsorted rows: wrong sums, never a stray read */
                    const float *values = strip + 16 * t;
                    a0 = _mm256_add_ps(a0, _mm256_load_ps(values));
                    b0 = _mm256_add_ps(b0, _mm256_load_ps(values + 8));
                }
                add_lanes(cross + (dense + s) * units + u0, a0, b0, lanes);
            }

            for (int64_t f0 = 0; f0 < dense; f0 += FEATURE_BLOCK) {
                /* a short last block repeats its last feature and drops those sums */
                const float *c[FEATURE_BLOCK];
                for (int64_t k = 0; k < FEATURE_BLOCK; k++)
                    c[k] = columns[f0 + k < dense ? f0 + k : dense - 1] + t0;
                __m256 c0 = _mm256_setzero_ps(), d0 = c0, c1 = c0, d1 = c0, c2 = c0, d2 = c0,
                       c3 = c0, d3 = c0, c4 = c0, d4 = c0, c5 = c0, d5 = c0;
                for (int64_t t = 0; t < n; t++) {
                    __m256 x0 = _mm256_load_ps(strip + 16 * t);
                    __m256 x1 = _mm256_load_ps(strip + 16 * t + 8);
                    __m256 w;
#define STEP(k)                                    \
    w = _mm256_broadcast_ss(c[k] + t);             \
    c##k = _mm256_fmadd_ps(w, x0, c##k);           \
    d##k = _mm256_fmadd_ps(w, x1, d##k);
                    STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5)
#undef STEP
                }
                __m256 acc[2 * FEATURE_BLOCK] = {c0, d0, c1, d1, c2, d2, c3, d3, c4, d4, c5, d5};
                for (int64_t k = 0; k < FEATURE_BLOCK && f0 + k < dense; k++)
                    add_lanes(cross + (f0 + k) * units + u0, acc[2 * k], acc[2 * k + 1], lanes);
            }
        }
        for (int64_t s = 0; s < sparse; s++) cursor[s] = until[s];
    }
    free(panel), free(shifts), free(cursor);
    return 0;
}

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

/* One GRU step's gate math for every stream, as PyTorch's GRU: with row = x W_ih^T + b_ih
 * and recurrent = h W_hh^T + b_hh (streams x 3 hidden each, blocks r, z, n),
 *   r = sigmoid(row_r + recurrent_r), z = sigmoid(row_z + recurrent_z),
 *   n = tanh(row_n + r recurrent_n), h_next = (1 - z) n + z h,
 * with r, z, n written back into row (what the recorder stores). One call a step, instead of
 * eight ops. hidden % 8 == 0 (the wrapper sends other sizes to torch). */
FAST void probe_gru_step(float *row, const float *recurrent, const float *h, float *h_next,
                         int64_t streams, int64_t hidden) {
    for (int64_t s = 0; s < streams; s++) {
        float *r = row + s * 3 * hidden, *z = r + hidden, *n = r + 2 * hidden;
        const float *rec = recurrent + s * 3 * hidden, *state = h + s * hidden;
        float *next = h_next + s * hidden;
        for (int64_t u = 0; u < hidden; u += 8) {
            __m256 reset = sigmoid8(_mm256_add_ps(_mm256_loadu_ps(r + u), _mm256_loadu_ps(rec + u)));
            __m256 update = sigmoid8(
                _mm256_add_ps(_mm256_loadu_ps(z + u), _mm256_loadu_ps(rec + hidden + u)));
            __m256 candidate = tanh8(_mm256_fmadd_ps(reset, _mm256_loadu_ps(rec + 2 * hidden + u),
                                                     _mm256_loadu_ps(n + u)));
            _mm256_storeu_ps(r + u, reset), _mm256_storeu_ps(z + u, update);
            _mm256_storeu_ps(n + u, candidate);
            __m256 old = _mm256_loadu_ps(state + u);
            _mm256_storeu_ps(next + u, _mm256_fmadd_ps(_mm256_sub_ps(old, candidate), update, candidate));
        }
    }
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
            __m256 input = sigmoid8(pre[0]), forget = sigmoid8(pre[1]);
            __m256 output = sigmoid8(pre[2]), candidate = tanh8(pre[3]);
            _mm256_storeu_ps(gates + u, input), _mm256_storeu_ps(gates + hidden + u, forget);
            _mm256_storeu_ps(gates + 2 * hidden + u, output);
            _mm256_storeu_ps(gates + 3 * hidden + u, candidate);
            __m256 next = _mm256_fmadd_ps(forget, _mm256_loadu_ps(state + u),
                                          _mm256_mul_ps(input, candidate));
            _mm256_storeu_ps(cell + u, next);
            _mm256_storeu_ps(out + u, _mm256_mul_ps(output, tanh8(next)));
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
 * of 6 streams (see gemm_tile), while the panel stays in L1; then the gate math for each
 * stream while the block's gates are still there. hidden % 8 == 0. */

/* The gate math of one stream's 8 units from its 4 summed gate vectors (see above). */
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

#define KBLOCK 256 /* a panel's k block: 256 x 16 floats = 16 KB, half of L1 */
#define ROW(r, op) if (rows > r) { op(r); }

/* gates[r] (2 gates x 8 units of stream r, the second gate `hidden` floats after the first)
 * += h[r] . panel over k in [k0, k1), for r < rows (<= 6): 12 sums, 2 weight vectors and 1
 * broadcast h value in the 16 registers, as an optimised GEMM's 6 x 16 kernel. Named
 * registers: an array of them went to the stack on every k. */
static FAST inline __attribute__((always_inline)) void gemm_tile(
    const float *panel, const float *h, int64_t hidden, float *gates, int64_t gate_row,
    int64_t k0, int64_t k1, const int rows) {
    __m256 a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5;
#define LOAD(r) a##r = _mm256_loadu_ps(gates + r * gate_row), \
                b##r = _mm256_loadu_ps(gates + r * gate_row + hidden)
#define FMA(r) { __m256 x = _mm256_broadcast_ss(h + r * hidden + k); \
                 a##r = _mm256_fmadd_ps(x, w0, a##r), b##r = _mm256_fmadd_ps(x, w1, b##r); }
#define STORE(r) _mm256_storeu_ps(gates + r * gate_row, a##r), \
                 _mm256_storeu_ps(gates + r * gate_row + hidden, b##r)
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

FAST void probe_lstm_layer(const float *packed, float *gates, const float *h0, const float *c0,
                           float *hidden_out, float *cell_out, int64_t steps, int64_t streams,
                           int64_t hidden) {
    int64_t gate_row = 4 * hidden, state_step = streams * hidden;
    for (int64_t t = 0; t < steps; t++) {
        const float *h = t ? hidden_out + (t - 1) * state_step : h0;
        const float *c = t ? cell_out + (t - 1) * state_step : c0;
        float *step_gates = gates + t * streams * gate_row;
        float *cell = cell_out + t * state_step, *out = hidden_out + t * state_step;
        for (int64_t u = 0; u < hidden; u += 8) {
            for (int64_t half = 0; half < 2; half++) { /* gates i, f, then o, g */
                const float *panel = packed + (u / 8 * 2 + half) * hidden * 16;
                float *first = step_gates + 2 * half * hidden + u;
                for (int64_t k0 = 0; k0 < hidden; k0 += KBLOCK) {
                    int64_t k1 = k0 + KBLOCK < hidden ? k0 + KBLOCK : hidden;
                    for (int64_t s = 0; s < streams; s += 6) {
                        const float *hs = h + s * hidden;
                        float *gs = first + s * gate_row;
                        switch (streams - s < 6 ? streams - s : 6) {
                        case 6: gemm_tile(panel, hs, hidden, gs, gate_row, k0, k1, 6); break;
                        case 5: gemm_tile(panel, hs, hidden, gs, gate_row, k0, k1, 5); break;
                        case 4: gemm_tile(panel, hs, hidden, gs, gate_row, k0, k1, 4); break;
                        case 3: gemm_tile(panel, hs, hidden, gs, gate_row, k0, k1, 3); break;
                        case 2: gemm_tile(panel, hs, hidden, gs, gate_row, k0, k1, 2); break;
                        default: gemm_tile(panel, hs, hidden, gs, gate_row, k0, k1, 1);
                        }
                    }
                }
            }
            for (int64_t s = 0; s < streams; s++) { /* the block's gates are still in L1 */
                float *g = step_gates + s * gate_row + u;
                lstm_finish(_mm256_loadu_ps(g), _mm256_loadu_ps(g + hidden),
                            _mm256_loadu_ps(g + 2 * hidden), _mm256_loadu_ps(g + 3 * hidden), g,
                            hidden, c + s * hidden + u, cell + s * hidden + u, out + s * hidden + u);
            }
        }
    }
}

/* The 16-bit sort key of a float16 bit pattern, as probe.auroc.sort_keys: keys order like
 * the values (negatives have all bits flipped, the rest their sign bit set). */
static inline uint16_t sort_key(uint16_t bits) {
    return bits & 0x8000 ? (uint16_t)~bits : (uint16_t)(bits | 0x8000);
}

/* out[j, t] = sort_key(x[t, picked[j]]) for rows [start, stop) of a (chars, units) array:
 * the chosen columns, transposed, via a small tile so each output row is written in runs. */
int probe_column_keys(const uint16_t *x, int64_t units, int64_t start, int64_t stop,
                      const int64_t *picked, int64_t count, uint16_t *out, int64_t chars) {
    enum { ROWS = 64 };
    uint16_t *tile = malloc(sizeof(uint16_t) * ROWS * count);
    if (!tile) return -1;
    for (int64_t t0 = start; t0 < stop; t0 += ROWS) {
        int64_t n = stop - t0 < ROWS ? stop - t0 : ROWS;
        for (int64_t t = 0; t < n; t++) {
            const uint16_t *row = x + (t0 + t) * units;
            for (int64_t j = 0; j < count; j++) tile[j * ROWS + t] = sort_key(row[picked[j]]);
        }
        for (int64_t j = 0; j < count; j++)
            memcpy(out + j * chars + t0, tile + j * ROWS, sizeof(uint16_t) * n);
    }
    free(tile);
    return 0;
}

/* counts[key] = number of i < n with keys[rows[i]] == key (rows NULL: every i < n), -0.0
 * counted with +0.0. Four interleaved sub-histograms in `scratch` (4 x 65536), so runs of
 * equal keys (saturated units) do not wait on one counter's previous increment. */
static void histogram(const uint16_t *keys, const int64_t *rows, int64_t n, uint32_t *scratch,
                      int64_t *counts) {
    memset(scratch, 0, sizeof(uint32_t) * (4 << 16));
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) scratch[(k << 16) | keys[rows ? rows[i + k] : i + k]]++;
    for (; i < n; i++) scratch[keys[rows ? rows[i] : i]]++;
    for (int64_t key = 0; key < (1 << 16); key++)
        counts[key] = (int64_t)scratch[key] + scratch[(1 << 16) | key] + scratch[(2 << 16) | key] +
                      scratch[(3 << 16) | key];
    counts[0x8000] += counts[0x7FFF], counts[0x7FFF] = 0; /* keys of +0.0 and -0.0 */
}

/* Exact AUROC of one unit against each of `features` binary features, as probe.auroc does
 * with numpy: keys (n) are the unit's sort keys at every char, positives[f] the counts[f]
 * chars where feature f is 1. Mann-Whitney U from two histograms (every char, positives),
 * ties counted half; NaN without both classes. n < 2^34, so no uint32 counter wraps. */
int probe_auroc(const uint16_t *keys, int64_t n, const int64_t *const *positives,
                const int64_t *counts, int64_t features, double *auroc) {
    uint32_t *scratch = malloc(sizeof(uint32_t) * (4 << 16));
    int64_t *every = malloc(sizeof(int64_t) * (2 << 16)), *positive = every + (1 << 16);
    if (!scratch || !every) {
        free(scratch), free(every);
        return -1;
    }
    histogram(keys, NULL, n, scratch, every);
    for (int64_t f = 0; f < features; f++) {
        histogram(keys, positives[f], counts[f], scratch, positive);
        double pairs = (double)counts[f] * (double)(n - counts[f]), u = 0, below = 0;
        for (int64_t key = 0; key < (1 << 16); key++) {
            double negative = (double)(every[key] - positive[key]);
            u += positive[key] * (below + negative / 2);
            below += negative;
        }
        auroc[f] = pairs > 0 ? u / pairs : NAN;
    }
    free(scratch), free(every);
    return 0;
}

#else
int probe_supported(void) { return 0; }
#endif

/* An importable module, so the build places this library where the package can find it. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_kernels", .m_size = -1};
PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
