// Host test driver for the portable IIR core (natmods/common/mpyml_iir.h), run by
// tests/test_iir_core.py under ASan and UBSan. Reads commands from stdin, one a
// line, whitespace-separated tokens (a test format, not the coefficients file):
//
//   count N              mpyml_iir_count_stages(N); prints "stages S" or "error CODE"
//   f32 S V*6S           a float32 filter of S stages from 6S coefficient bits (8 hex
//                        digits each) in a malloc'd array of exactly that size:
//                        prints "ok" or "error CODE STAGE"; the filter replaces the last
//   q15 S V*6S           the same for a Q15 filter (decimal int16 coefficients)
//   run N X*N            runs the current filter in place on N values (float32 bits or
//                        decimal int16, by the filter's kind) in a malloc'd array of
//                        exactly N items; prints the outputs on one line ("-" for N = 0,
//                        "none" when the last filter was rejected)
//   reset                resets the current filter's state
//
// Input that breaks the test format exits with status 2.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpyml_iir.h"

static void *stages = NULL;
static uint32_t n_stages = 0;
static int kind = 0; // 'f' or 'h' once a filter is bound

static void fail(const char *what) {
    fprintf(stderr, "iir_driver: %s\n", what);
    free(stages);
    exit(2);
}

static long read_long(int hex) {
    char token[64];
    if (scanf("%63s", token) != 1) {
        fail("missing number");
    }
    char *end;
    long v = hex ? (long)strtoul(token, &end, 16) : strtol(token, &end, 10);
    if (*end != '\0') {
        fail("bad number");
    }
    return v;
}

static void new_filter(int is_float) {
    long s = read_long(0);
    if (s < 0 || s > 100000) {
        fail("bad stage count");
    }
    size_t n_values = (size_t)s * MPYML_IIR_SOS_WIDTH;
    float *fsos = is_float ? malloc(n_values * sizeof(float) + 1) : NULL;
    int16_t *qsos = is_float ? NULL : malloc(n_values * sizeof(int16_t) + 1);
    for (size_t i = 0; i < n_values; i++) {
        long v = read_long(is_float);
        if (is_float) {
            fsos[i] = mpyml_f32_from_bits((uint32_t)v);
        } else {
            qsos[i] = (int16_t)v;
        }
    }
    free(stages);
    stages = NULL;
    kind = 0;
    uint32_t count = 0, bad_stage = 0;
    mpyml_err_t err = mpyml_iir_count_stages(n_values, &count);
    if (err == MPYML_OK) {
        err = is_float ? mpyml_iir_f32_check(fsos, count, &bad_stage) : mpyml_iir_q15_check(qsos, count, &bad_stage);
    }
    if (err != MPYML_OK) {
        printf("error %d %u\n", (int)err, bad_stage);
    } else {
        n_stages = count;
        stages = malloc(is_float ? mpyml_iir_f32_bytes(count) : mpyml_iir_q15_bytes(count));
        if (is_float) {
            mpyml_iir_f32_init(stages, fsos, count);
        } else {
            mpyml_iir_q15_init(stages, qsos, count);
        }
        kind = is_float ? 'f' : 'h';
        printf("ok\n");
    }
    free(fsos);
    free(qsos);
}

static void run(void) {
    long n = read_long(0);
    if (n < 0 || n > 10000000) {
        fail("bad run");
    }
    if (kind == 0) {
        for (long i = 0; i < n; i++) {
            read_long(1);
        }
        printf("none\n");
        return;
    }
    if (kind == 'f') {
        float *v = malloc((size_t)n * sizeof(float) + 1);
        for (long i = 0; i < n; i++) {
            v[i] = mpyml_f32_from_bits((uint32_t)read_long(1));
        }
        mpyml_iir_f32_run(stages, n_stages, v, (size_t)n);
        for (long i = 0; i < n; i++) {
            printf(i ? " %08x" : "%08x", mpyml_f32_to_bits(v[i]));
        }
        free(v);
    } else {
        int16_t *v = malloc((size_t)n * sizeof(int16_t) + 1);
        for (long i = 0; i < n; i++) {
            v[i] = (int16_t)read_long(0);
        }
        mpyml_iir_q15_run(stages, n_stages, v, (size_t)n);
        for (long i = 0; i < n; i++) {
            printf(i ? " %d" : "%d", v[i]);
        }
        free(v);
    }
    printf(n ? "\n" : "-\n");
}

int main(void) {
    char command[16];
    while (scanf("%15s", command) == 1) {
        if (strcmp(command, "count") == 0) {
            long n = read_long(0);
            uint32_t s = 0;
            mpyml_err_t err = mpyml_iir_count_stages((size_t)n, &s);
            if (err == MPYML_OK) {
                printf("stages %u\n", s);
            } else {
                printf("error %d\n", (int)err);
            }
        } else if (strcmp(command, "f32") == 0 || strcmp(command, "q15") == 0) {
            new_filter(command[0] == 'f');
        } else if (strcmp(command, "run") == 0) {
            run();
        } else if (strcmp(command, "reset") == 0) {
            if (kind == 'f') {
                mpyml_iir_f32_reset(stages, n_stages);
            } else if (kind == 'h') {
                mpyml_iir_q15_reset(stages, n_stages);
            }
        } else {
            fail("unknown command");
        }
    }
    free(stages);
    return 0;
}
