/* Shared by probe/_kernels.c (search's kernels, the module) and probe/_recorder_kernels.c
 * (the recorder's): includes, and FAST, the instruction sets the kernels are compiled for.
 * PROBE_X86 is defined where they can be (GCC or Clang on x86-64). */
#ifndef PROBE_KERNELS_H
#define PROBE_KERNELS_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#define PROBE_X86 1
#include <immintrin.h>
#define FAST __attribute__((target("avx2,fma,f16c")))
#endif
#endif
