// Host test driver for the portable FFT core (natmods/common/mpyml_fft.h) and
// the float helpers of mpyml_math.h, run by tests/test_fft_core.py under ASan
// and UBSan. Reads commands from stdin, one a line, whitespace-separated tokens;
// VALUES are float32 bits as 8 hex digits; every output line is one result.
//
//   size N              mpyml_fft_check_size: prints "ok LOG2N BYTES" or "error CODE"
//   forward N RE.. IM.. n real parts, then n imaginary parts; prints the n real,
//                       then the n imaginary parts of mpyml_fft_forward
//   inverse N RE.. IM.. the same with mpyml_fft_inverse
//   magnitude N X..     n real samples; prints the n/2+1 values of
//   power N X..         mpyml_fft_real_spectrum
//   twiddle N           prints the n floats of the twiddle table (cos, sin pairs)
//   sincos X            prints "S C": mpyml_sincosf(X)
//   turn K LOG2N        prints "S C": mpyml_sincos_turn(K, LOG2N) (decimal K, LOG2N)
//   sqrt X              prints mpyml_sqrtf(X)
//
// Every FFT gets its own malloc'd block of exactly mpyml_fft_bytes(n) bytes and
// malloc'd input and output arrays of exactly their size, so the sanitizers see
// any access past them. An FFT command with an invalid N prints "error CODE".
// Input that breaks this format exits with status 2.
#include "mpyml_fft.h"

#define DRIVER_NAME "fft_driver"
#define MAX_TOKENS 20000
#include "driver_input.h"

static float parse_float(const char *tok) {
    return mpyml_f32_from_bits(parse_bits(tok));
}

static void print_floats(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        printf(i ? " %08x" : "%08x", (unsigned)mpyml_f32_to_bits(v[i]));
    }
    printf("\n");
}

static float *alloc_floats(size_t n) {
    float *p = (float *)malloc(n * sizeof(float));
    if (p == NULL) {
        fail("out of memory");
    }
    return p;
}

static float *parse_floats(size_t first, size_t n) {
    float *p = alloc_floats(n);
    for (size_t i = 0; i < n; i++) {
        p[i] = parse_float(tokens[first + i]);
    }
    return p;
}

// Runs one FFT command on a fresh, exactly sized block; returns 0 if N was invalid.
static int fft_command(const char *cmd, size_t n_tokens) {
    if (n_tokens < 2) {
        fail("missing N");
    }
    uint32_t n = (uint32_t)parse_int(tokens[1], 0, 0xffffffffLL), log2n = 0;
    mpyml_err_t err = mpyml_fft_check_size(n, &log2n);
    if (err != MPYML_OK) {
        printf("error %d\n", (int)err);
        return 0;
    }
    void *block = malloc(mpyml_fft_bytes(n));
    if (block == NULL) {
        fail("out of memory");
    }
    mpyml_fft_t f;
    mpyml_fft_init(&f, n, log2n, block);
    if (strcmp(cmd, "twiddle") == 0) {
        if (n_tokens != 2) {
            fail("twiddle takes N only");
        }
        print_floats(f.twiddle, n);
    } else if (strcmp(cmd, "forward") == 0 || strcmp(cmd, "inverse") == 0) {
        if (n_tokens != 2 + 2 * (size_t)n) {
            fail("expected 2N values");
        }
        float *re = parse_floats(2, n), *im = parse_floats(2 + n, n);
        (cmd[0] == 'f' ? mpyml_fft_forward : mpyml_fft_inverse)(&f, re, im);
        float *both = alloc_floats(2 * (size_t)n);
        for (uint32_t i = 0; i < n; i++) {
            both[i] = re[i];
            both[n + i] = im[i];
        }
        print_floats(both, 2 * (size_t)n);
        free(both);
        free(re);
        free(im);
    } else {
        if (n_tokens != 2 + (size_t)n) {
            fail("expected N values");
        }
        float *x = parse_floats(2, n), *out = alloc_floats(n / 2 + 1);
        mpyml_fft_real_spectrum(&f, x, out, strcmp(cmd, "power") == 0 ? MPYML_SPECTRUM_POWER : MPYML_SPECTRUM_MAGNITUDE);
        print_floats(out, n / 2 + 1);
        free(x);
        free(out);
    }
    free(block);
    return 1;
}

int main(void) {
    while (read_line(stdin) >= 0) {
        size_t n_tokens = split(line_buf);
        if (n_tokens == 0) {
            continue;
        }
        const char *cmd = tokens[0];
        if (strcmp(cmd, "size") == 0 && n_tokens == 2) {
            uint32_t n = (uint32_t)parse_int(tokens[1], 0, 0xffffffffLL), log2n = 0;
            mpyml_err_t err = mpyml_fft_check_size(n, &log2n);
            if (err == MPYML_OK) {
                printf("ok %u %zu\n", (unsigned)log2n, mpyml_fft_bytes(n));
            } else {
                printf("error %d\n", (int)err);
            }
        } else if (strcmp(cmd, "forward") == 0 || strcmp(cmd, "inverse") == 0 || strcmp(cmd, "magnitude") == 0 ||
                   strcmp(cmd, "power") == 0 || strcmp(cmd, "twiddle") == 0) {
            fft_command(cmd, n_tokens);
        } else if (strcmp(cmd, "sincos") == 0 && n_tokens == 2) {
            float sc[2];
            mpyml_sincosf(parse_float(tokens[1]), &sc[0], &sc[1]);
            print_floats(sc, 2);
        } else if (strcmp(cmd, "turn") == 0 && n_tokens == 3) {
            float sc[2];
            uint32_t k = (uint32_t)parse_int(tokens[1], 0, 0xffffffffLL);
            mpyml_sincos_turn(k, (uint32_t)parse_int(tokens[2], 2, 24), &sc[0], &sc[1]);
            print_floats(sc, 2);
        } else if (strcmp(cmd, "sqrt") == 0 && n_tokens == 2) {
            float r = mpyml_sqrtf(parse_float(tokens[1]));
            print_floats(&r, 1);
        } else {
            fail("unknown command");
        }
    }
    free(line_buf);
    return 0;
}
