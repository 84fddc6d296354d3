/* Fused kernels for search's two passes over float16 recordings (see probe/kernels.py;
 * the recorder's are in _recorder_kernels.c, built into the same library).
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

#include "_kernels.h"

/* Bumped whenever a function below changes its arguments: probe.kernels refuses a library
 * built from another version (a checkout updated without reinstalling). */
int probe_version(void) { return 7; }

#ifdef PROBE_X86
#include <sys/mman.h>

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
