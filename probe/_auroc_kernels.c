/* The AUROC candidates' kernels of search (see probe/auroc.py and probe/kernels.py), built
 * into the same library as probe/_kernels.c: the chosen columns' sort keys gathered in one
 * read of an array, and each unit's exact AUROC from one histogram of its keys. */
#include "_kernels.h"

#ifdef PROBE_X86
/* The 16-bit sort key of a float16 bit pattern, as probe.auroc.sort_keys: keys order like
 * the values (negatives have all bits flipped, the rest their sign bit set). */
static inline uint16_t sort_key(uint16_t bits) {
    return bits ^ (uint16_t)(((int16_t)bits >> 15) | 0x8000); /* no branch to mispredict */
}

/* out[j, t] = sort_key(x[t, picked[j]]) for rows [start, stop) of a (chars, units) array:
 * the chosen columns, transposed. Tile by tile (~64 KB of rows, in L2), 16 rows at a time
 * (in L1), column by column, so each output row is written in order. Picking columns
 * straight from memory hops `units` values between rows, which the hardware prefetchers
 * follow poorly, so each tile is fetched in order ahead of use: the first touched a byte
 * per cache line, each next one prefetched a few lines per column picked in the tile
 * before it (a touch before each tile waits on memory: its 6 x 1 GB arrays x 68 columns,
 * A/B in one process on a Zen 1, median of 10: 0.62 s prefetched vs 0.75 s touched). */
int probe_column_keys(const uint16_t *restrict x, int64_t units, int64_t start, int64_t stop,
                      const int64_t *picked, int64_t count, uint16_t *restrict out,
                      int64_t chars) {
    enum { ROWS = 16, TOUCH_BYTES = 1 << 16 };
    int64_t tile = TOUCH_BYTES / (2 * units) / ROWS * ROWS;
    tile = tile < ROWS ? ROWS : tile;
    for (int64_t t1 = start; t1 < stop; t1 += tile) {
        int64_t end = stop - t1 < tile ? stop : t1 + tile;
        if (t1 == start) {
            const uint8_t *bytes = (const uint8_t *)(x + t1 * units);
            uint8_t touched = 0;
            for (int64_t b = 0; b < (end - t1) * units * 2; b += 64) touched |= bytes[b];
            __asm__ volatile("" : : "r"(touched)); /* keep the reads */
        }
        const char *ahead = (const char *)(x + end * units); /* the next tile's bytes */
        const char *ahead_end = (const char *)(x + (stop - end < tile ? stop : end + tile) * units);
        int64_t lines = (ahead_end - ahead + 63) / 64, picks = (end - t1 + ROWS - 1) / ROWS * count;
        int64_t each = picks ? (lines + picks - 1) / picks : 0; /* lines per column picked */
        for (int64_t t0 = t1; t0 < end; t0 += ROWS) {
            int64_t n = end - t0 < ROWS ? end - t0 : ROWS;
            for (int64_t j = 0; j < count; j++) {
                for (int64_t k = 0; k < each && ahead < ahead_end; k++, ahead += 64)
                    _mm_prefetch(ahead, _MM_HINT_T1);
                const uint16_t *column = x + t0 * units + picked[j];
                uint16_t *keys = out + j * chars + t0;
                for (int64_t t = 0; t < n; t++) keys[t] = sort_key(column[t * units]);
            }
        }
    }
    return 0;
}

/* counts[key] = number of i < n with keys[i] == key, -0.0 counted with +0.0. Four
 * interleaved sub-histograms in `scratch` (4 x 65536), so runs of equal keys (saturated
 * units) do not wait on one counter's previous increment. */
static void histogram(const uint16_t *keys, int64_t n, uint32_t *scratch, int64_t *counts) {
    memset(scratch, 0, sizeof(uint32_t) * (4 << 16));
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) scratch[(k << 16) | keys[i + k]]++;
    for (; i < n; i++) scratch[keys[i]]++;
    for (int64_t key = 0; key < (1 << 16); key++)
        counts[key] = (int64_t)scratch[key] + scratch[(1 << 16) | key] + scratch[(2 << 16) | key] +
                      scratch[(3 << 16) | key];
    counts[0x8000] += counts[0x7FFF], counts[0x7FFF] = 0; /* keys of +0.0 and -0.0 */
}

/* Exact AUROC of one unit against each of `features` binary features, as probe.auroc does
 * with numpy: keys (n) are the unit's sort keys at every char, positives[f] the counts[f]
 * chars where feature f is 1 (in any order). With P positives and A(v) = #(chars below v)
 * + #(chars equal to v) / 2 from one histogram of every char, the Mann-Whitney U (ties
 * counted half) is sum over the positives of A(v) - P^2 / 2: each pair of positives adds
 * 1/2 to that sum whatever their values, so no histogram of the positives is needed, only
 * one lookup per positive. NaN without both classes. A is exact in doubles (n < 2^52). */
int probe_auroc(const uint16_t *keys, int64_t n, const int64_t *const *positives,
                const int64_t *counts, int64_t features, double *auroc) {
    uint32_t *scratch = malloc(sizeof(uint32_t) * (4 << 16));
    int64_t *every = malloc(sizeof(int64_t) * (1 << 16));
    double *midrank = malloc(sizeof(double) * (1 << 16));
    if (!scratch || !every || !midrank) {
        free(scratch), free(every), free(midrank);
        return -1;
    }
    histogram(keys, n, scratch, every);
    double below = 0;
    for (int64_t key = 0; key < (1 << 16); key++) {
        midrank[key] = below + every[key] / 2.0;
        below += every[key];
    }
    midrank[0x7FFF] = midrank[0x8000]; /* -0.0 equals +0.0 */
    for (int64_t f = 0; f < features; f++) {
        double positive = (double)counts[f], sum = 0;
        for (int64_t i = 0; i < counts[f]; i++) sum += midrank[keys[positives[f][i]]];
        double pairs = positive * ((double)n - positive);
        auroc[f] = pairs > 0 ? (sum - positive * positive / 2) / pairs : NAN;
    }
    free(scratch), free(every), free(midrank);
    return 0;
}
#endif
