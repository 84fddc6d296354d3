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
int probe_version(void) { return 10; }

#ifdef PROBE_X86
#define FEATURE_BLOCK 6 /* features per sweep: 12 accumulators + 2 values + 1 weight */
#define TILE_BYTES (1 << 18) /* float16 rows of one tile: 256 KB, stays in L2 */
#define STRIP_ROWS 256 /* at most: a strip of 16 units in float32 is 16 KB, stays in L1 */

int probe_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* 8 float16 values at row (of which `lanes` are there; the rest read as 0) - shift */
static FAST inline __attribute__((always_inline)) __m256 cast_half(const uint16_t *row,
                                                                    int64_t lanes, __m256 shift) {
    if (lanes >= 8)
        return _mm256_sub_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)row)), shift);
    uint16_t part[8] = {0}; /* the last, partial strip: pad lanes hold zeros */
    if (lanes > 0) memcpy(part, row, sizeof(uint16_t) * lanes);
    return _mm256_sub_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)part)), shift);
}

/* One 16-unit column strip of a tile: strip[16 t + l] = x'[t, l] = x[t * units + l] - shift[l]
 * for t < n, l < lanes (other lanes 0), written in order in float32 (where `strip` is given:
 * only the dense and binary features read it); and the strip's sum, sum of squares (and
 * min / max, where `ranges`) per lane, stored in the 16 floats of each stats row: sums,
 * squares, low, high. Even and odd rows keep separate sums of squares, so the loop waits on
 * no FMA's latency. Where `prefix` is given (stepped features), also stats row 4 = R = sum
 * of t * x'[t, l] and the prefix sums P(t)[l] = sum of x'[s, l] over s < t at the pairs of
 * rows the stepped features jump in: pair p = rows 2p, 2p + 1 with slots[p] > 0 has P(2p)
 * at prefix[32 (slots[p] - 1)] and P(2p + 1) 16 floats on (a store for every row was a
 * third of the pass on a Zen 1, whose cores store 16 bytes a cycle). The sum is then P(n),
 * and R = (n - 1) P(n) - sum of P(t) over t < n, an add a row where t * x' took an FMA and
 * a counter. The flags are constants where `cast_strip` calls this, so each case compiles
 * to its own loop, with no branch a row and its sums in registers. */
static FAST inline __attribute__((always_inline)) void cast_rows(
    const uint16_t *x, int64_t units, int64_t n, int64_t lanes, const float *shift, float *strip,
    float *prefix, const uint8_t *slots, float (*stats)[16], const int ranges,
    const int stepped, const int full, const char *ahead, const char *ahead_end) {
    __m256 shift0 = _mm256_load_ps(shift), shift1 = _mm256_load_ps(shift + 8);
    __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
    __m256 square0 = sum0, square1 = sum0, square2 = sum0, square3 = sum0;
    __m256 low0 = _mm256_set1_ps(INFINITY), low1 = low0;
    __m256 high0 = _mm256_set1_ps(-INFINITY), high1 = high0;
    __m256 before0 = sum0, before1 = sum0, prefixes0 = sum0, prefixes1 = sum0; /* stepped */
    __m256 two = _mm256_set1_ps(2.0f);
    for (int64_t t = 0; t < n; t += 2) {
        for (int k = 0; k < 2 && ahead < ahead_end; k++, ahead += 64) /* [ahead, ahead_end) */
            _mm_prefetch(ahead, _MM_HINT_T1); /* into L2, a line or two a pair of rows */
        const uint16_t *row = x + t * units, *next = t + 1 < n ? row + units : row;
        __m256 x0 = cast_half(row, full ? 8 : lanes, shift0);
        __m256 x1 = cast_half(row + 8, full ? 8 : lanes - 8, shift1);
        __m256 y0 = cast_half(next, full ? 8 : lanes, shift0);
        __m256 y1 = cast_half(next + 8, full ? 8 : lanes - 8, shift1);
        if (t + 1 == n) y0 = y1 = _mm256_setzero_ps(); /* odd n: no second row */
        if (strip) {
            _mm256_store_ps(strip + 16 * t, x0), _mm256_store_ps(strip + 16 * t + 8, x1);
            _mm256_store_ps(strip + 16 * t + 16, y0), _mm256_store_ps(strip + 16 * t + 24, y1);
        }
        square0 = _mm256_fmadd_ps(x0, x0, square0), square1 = _mm256_fmadd_ps(x1, x1, square1);
        square2 = _mm256_fmadd_ps(y0, y0, square2), square3 = _mm256_fmadd_ps(y1, y1, square3);
        if (stepped) { /* P(t) and P(t + 1); the chain adds once a pair */
            if (slots[t >> 1]) {
                float *at = prefix + 32 * (slots[t >> 1] - 1);
                _mm256_store_ps(at, before0), _mm256_store_ps(at + 8, before1);
                _mm256_store_ps(at + 16, _mm256_add_ps(before0, x0));
                _mm256_store_ps(at + 24, _mm256_add_ps(before1, x1));
            }
            prefixes0 = _mm256_add_ps(prefixes0, _mm256_fmadd_ps(two, before0, x0));
            prefixes1 = _mm256_add_ps(prefixes1, _mm256_fmadd_ps(two, before1, x1));
            before0 = _mm256_add_ps(before0, _mm256_add_ps(x0, y0));
            before1 = _mm256_add_ps(before1, _mm256_add_ps(x1, y1));
        } else {
            sum0 = _mm256_add_ps(sum0, x0), sum1 = _mm256_add_ps(sum1, x1);
            sum2 = _mm256_add_ps(sum2, y0), sum3 = _mm256_add_ps(sum3, y1);
        }
        if (ranges) {
            if (t + 1 == n) y0 = x0, y1 = x1;
            low0 = _mm256_min_ps(low0, _mm256_min_ps(x0, y0));
            low1 = _mm256_min_ps(low1, _mm256_min_ps(x1, y1));
            high0 = _mm256_max_ps(high0, _mm256_max_ps(x0, y0));
            high1 = _mm256_max_ps(high1, _mm256_max_ps(x1, y1));
        }
    }
    if (stepped) { /* odd n: the last pair added P(n), which is no row's */
        if (n & 1)
            prefixes0 = _mm256_sub_ps(prefixes0, before0),
            prefixes1 = _mm256_sub_ps(prefixes1, before1);
        __m256 last = _mm256_set1_ps((float)(n - 1));
        _mm256_storeu_ps(stats[0], before0), _mm256_storeu_ps(stats[0] + 8, before1);
        _mm256_storeu_ps(stats[4], _mm256_fmsub_ps(last, before0, prefixes0));
        _mm256_storeu_ps(stats[4] + 8, _mm256_fmsub_ps(last, before1, prefixes1));
    } else {
        _mm256_storeu_ps(stats[0], _mm256_add_ps(sum0, sum2));
        _mm256_storeu_ps(stats[0] + 8, _mm256_add_ps(sum1, sum3));
        _mm256_storeu_ps(stats[4], sum0), _mm256_storeu_ps(stats[4] + 8, sum0); /* unused */
    }
    _mm256_storeu_ps(stats[1], _mm256_add_ps(square0, square2));
    _mm256_storeu_ps(stats[1] + 8, _mm256_add_ps(square1, square3));
    _mm256_storeu_ps(stats[2], low0), _mm256_storeu_ps(stats[2] + 8, low1);
    _mm256_storeu_ps(stats[3], high0), _mm256_storeu_ps(stats[3] + 8, high1);
}

static FAST void cast_strip(const uint16_t *x, int64_t units, int64_t n, int64_t lanes,
                            const float *shift, float *strip, float *prefix,
                            const uint8_t *slots, float (*stats)[16], int ranges,
                            const char *ahead, const char *ahead_end) {
#define CAST(strip, ranges, stepped, full) \
    cast_rows(x, units, n, lanes, shift, strip, prefix, slots, stats, ranges, stepped, full, \
              ahead, ahead_end)
    if (lanes == 16 && !ranges && prefix && !strip) /* search's usual case */
        CAST(NULL, 0, 1, 1);
    else if (lanes == 16 && !ranges && !prefix)
        CAST(strip, 0, 0, 1);
    else
        CAST(strip, ranges, prefix != NULL, 0);
#undef CAST
}

/* out[l] += the first `lanes` of the 16 floats in (low, high) */
static FAST void add_lanes(double *out, __m256 low, __m256 high, int64_t lanes) {
    if (lanes == 16) { /* four float64 vectors, converted in registers */
        __m256d parts[4] = {_mm256_cvtps_pd(_mm256_castps256_ps128(low)),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(low, 1)),
                            _mm256_cvtps_pd(_mm256_castps256_ps128(high)),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(high, 1))};
        for (int k = 0; k < 4; k++)
            _mm256_storeu_pd(out + 4 * k, _mm256_add_pd(_mm256_loadu_pd(out + 4 * k), parts[k]));
        return;
    }
    float values[16];
    _mm256_storeu_ps(values, low), _mm256_storeu_ps(values + 8, high);
    for (int64_t l = 0; l < lanes; l++) out[l] += values[l];
}

/* Rows [start, stop) of a (chars, units) float16 array x, each shifted by shift[unit]:
 *   cross[f, u]         += sum_t columns[f][t] * x'[t, u]  (dense float32 features, f < dense)
 *   cross[dense + s, u] += sum of x'[t, u] over the rows t in rows[s] (sorted; binary
 *                          features, where a sum over the 1s is far cheaper than an FMA a row)
 *   cross[dense + sparse + k, u] += the same sum as a dense feature's for a stepped feature k,
 *                          whose values change by slopes[k] a row, plus sizes[k][i] at the
 *                          rows rows[sparse + k][i] (sorted): positions and lengths in a line,
 *                          indents, depths, runs. Within a tile from row t0, with its value
 *                          v0 at t0 and the tile's jumps (r_i, size_i), r_i > t0:
 *                              sum_t v(t) x'_t = (v0 + sum_i size_i) T + slope R
 *                                                - sum_i size_i P(r_i)
 *                          for T = sum_t x'_t, R = sum_t (t - t0) x'_t and the prefix sums
 *                          P(r) = sum of x'_t over t0 <= t < r: a lookup a jump, not an FMA a
 *                          row. v0 is read from columns[dense + k], the feature's values.
 *   sums[u] += sum_t x'[t, u], squares[u] += sum_t x'[t, u]^2
 *   low[u], high[u] = running min / max of x'              (skipped when low is NULL)
 * Each tile of rows (in L2) is cast one 16-unit column strip at a time, taking the strip's
 * sums (and range, and the prefix sums the stepped features' jumps look up) as it goes, into
 * a float32 buffer (16 KB, in L1) where binary or dense features will read it: once for the
 * binary features' sums, once per block of FEATURE_BLOCK dense features, with every sum in
 * registers. The tile's jumps are found once, before its strips.
 * Meanwhile each strip prefetches its share of the next tile into L2 (its rows lie `units`
 * values apart, too far for the hardware), a line or two per pair of rows it casts: in one
 * burst, the prefetches fill the load queue and the cast waits on them. Sums run in
 * float32 within a tile and are added to the float64 outputs after it. Returns 0, or -1
 * if memory ran out. */
FAST int probe_moments(const uint16_t *x, int64_t units, int64_t start, int64_t stop,
                       const float *const *columns, int64_t dense, const int64_t *const *rows,
                       const int64_t *counts, int64_t sparse, const float *const *sizes,
                       const float *slopes, int64_t stepped, const float *shift, double *cross,
                       double *sums, double *squares, float *low, float *high) {
    int64_t padded = (units + 15) / 16 * 16, lists = sparse + stepped;
    int64_t tile = TILE_BYTES / (2 * units);
    tile = tile < 16 ? 16 : tile > STRIP_ROWS ? STRIP_ROWS : tile;
    /* 16 floats a row + an odd n's; prefix: 32 floats a pair of rows, + an odd n's */
    size_t strip_bytes = sizeof(float) * 16 * (STRIP_ROWS + 2);
    float *strip = aligned_alloc(64, strip_bytes);
    float *prefix = stepped ? aligned_alloc(64, strip_bytes) : NULL;
    float *shifts = aligned_alloc(32, sizeof(float) * padded);
    int64_t *cursor = malloc(sizeof(int64_t) * 2 * (lists + 1)), *until = cursor + lists + 1;
    /* this tile's jumps of the stepped features, found once for all its strips: feature k's
     * are [first[k], first[k + 1]), each its P's offset in `prefix` and its size */
    int64_t jumps_max = stepped * (STRIP_ROWS + 1);
    int64_t *first = malloc(sizeof(int64_t) * (stepped + 1));
    int32_t *offsets = malloc(sizeof(int32_t) * (jumps_max + 1));
    float *jump_sizes = malloc(sizeof(float) * (jumps_max + 1));
    float *levels = malloc(sizeof(float) * (stepped + 1));
    uint8_t slots[STRIP_ROWS / 2 + 1];
    if (!strip || (stepped && !prefix) || !shifts || !cursor || !first || !offsets ||
        !jump_sizes || !levels) {
        free(strip), free(prefix), free(shifts), free(cursor);
        free(first), free(offsets), free(jump_sizes), free(levels);
        return -1;
    }
    memset(shifts, 0, sizeof(float) * padded);
    memcpy(shifts, shift, sizeof(float) * units);
    for (int64_t s = 0; s < lists; s++) { /* first listed row >= start */
        int64_t lo = 0, hi = counts[s];
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (rows[s][mid] < start) lo = mid + 1; else hi = mid;
        }
        cursor[s] = lo;
    }

    for (int64_t t0 = start; t0 < stop; t0 += tile) {
        int64_t n = stop - t0 < tile ? stop - t0 : tile;
        for (int64_t s = 0; s < lists; s++) { /* this tile's listed rows: [cursor, until) */
            while (cursor[s] < counts[s] && rows[s][cursor[s]] < t0) cursor[s]++;
            until[s] = cursor[s];
            while (until[s] < counts[s] && rows[s][until[s]] < t0 + n) until[s]++;
        }
        if (stepped) { /* the pairs of rows where some feature jumps get a slot each */
            memset(slots, 0, sizeof(slots));
            for (int64_t s = sparse; s < lists; s++)
                for (int64_t i = cursor[s]; i < until[s]; i++)
                    if (rows[s][i] > t0) slots[(rows[s][i] - t0) >> 1] = 1;
            for (int64_t pair = 0, used = 0; pair < (n + 1) / 2; pair++)
                if (slots[pair]) slots[pair] = (uint8_t)++used;
            int64_t count = 0;
            for (int64_t k = 0; k < stepped; k++) {
                int64_t s = sparse + k;
                float jumps = 0;
                first[k] = count;
                for (int64_t i = cursor[s]; i < until[s]; i++) {
                    int64_t t = rows[s][i] - t0;
                    if (t <= 0) continue; /* a jump at t0 is in v0 (unsorted: no stray read) */
                    offsets[count] = (int32_t)(32 * (slots[t >> 1] - 1) + 16 * (t & 1));
                    jump_sizes[count++] = sizes[k][i];
                    jumps += sizes[k][i];
                }
                levels[k] = columns[dense + k][t0] + jumps;
            }
            first[stepped] = count;
        }

        for (int64_t u0 = 0; u0 < units; u0 += 16) {
            int64_t lanes = units - u0 < 16 ? units - u0 : 16;
            /* this strip's share of the next tile's bytes, prefetched in order as it runs */
            const char *next = (const char *)(x + (t0 + n) * units);
            int64_t next_rows = stop - t0 - n < tile ? stop - t0 - n : tile;
            int64_t bytes = next_rows * units * 2, share = (bytes / (padded / 16) + 63) & ~63;
            int64_t b = u0 / 16 * share, end = b + share < bytes ? b + share : bytes;
            float stats[5][16];
            cast_strip(x + t0 * units + u0, units, n, lanes, shifts + u0,
                       dense + sparse ? strip : NULL, prefix, slots, stats, low != NULL,
                       next + b, next + (end > b ? end : b));
            add_lanes(sums + u0, _mm256_loadu_ps(stats[0]), _mm256_loadu_ps(stats[0] + 8), lanes);
            add_lanes(squares + u0, _mm256_loadu_ps(stats[1]), _mm256_loadu_ps(stats[1] + 8),
                      lanes);
            for (int64_t l = 0; low && l < lanes; l++) {
                low[u0 + l] = stats[2][l] < low[u0 + l] ? stats[2][l] : low[u0 + l];
                high[u0 + l] = stats[3][l] > high[u0 + l] ? stats[3][l] : high[u0 + l];
            }

            for (int64_t s = 0; s < sparse; s++) {
                if (until[s] == cursor[s]) continue;
                __m256 a0 = _mm256_setzero_ps(), b0 = a0;
                for (int64_t i = cursor[s]; i < until[s]; i++) {
                    int64_t t = rows[s][i] - t0;
                    if (t < 0) continue; /* unsorted rows: wrong sums, never a stray read */
                    const float *values = strip + 16 * t;
                    a0 = _mm256_add_ps(a0, _mm256_load_ps(values));
                    b0 = _mm256_add_ps(b0, _mm256_load_ps(values + 8));
                }
                add_lanes(cross + (dense + s) * units + u0, a0, b0, lanes);
            }

            for (int64_t k = 0; k < stepped; k++) {
                int64_t s = sparse + k;
                __m256 a0 = _mm256_setzero_ps(), b0 = a0;
                for (int64_t i = first[k]; i < first[k + 1]; i++) {
                    __m256 size = _mm256_set1_ps(jump_sizes[i]);
                    a0 = _mm256_fmadd_ps(size, _mm256_load_ps(prefix + offsets[i]), a0);
                    b0 = _mm256_fmadd_ps(size, _mm256_load_ps(prefix + offsets[i] + 8), b0);
                }
                __m256 level = _mm256_set1_ps(levels[k]);
                __m256 slope = _mm256_set1_ps(slopes[k]);
                a0 = _mm256_fmsub_ps(slope, _mm256_loadu_ps(stats[4]), a0);
                b0 = _mm256_fmsub_ps(slope, _mm256_loadu_ps(stats[4] + 8), b0);
                add_lanes(cross + (dense + s) * units + u0,
                          _mm256_fmadd_ps(level, _mm256_loadu_ps(stats[0]), a0),
                          _mm256_fmadd_ps(level, _mm256_loadu_ps(stats[0] + 8), b0), lanes);
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
        for (int64_t s = 0; s < lists; s++) cursor[s] = until[s];
    }
    free(strip), free(prefix), free(shifts), free(cursor);
    free(first), free(offsets), free(jump_sizes), free(levels);
    return 0;
}

#else
int probe_supported(void) { return 0; }
#endif

/* An importable module, so the build places this library where the package can find it. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_kernels", .m_size = -1};
PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
