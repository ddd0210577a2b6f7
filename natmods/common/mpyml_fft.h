// Portable C99 core of emlfft: radix-2 FFT of 8..4096 points in float32, its
// inverse, and the magnitude / power spectrum of real input. No MicroPython
// headers, no libc or libm, no allocation: the caller hands mpyml_fft_init one
// block of mpyml_fft_bytes(n) bytes. Also builds for the host
// (tests/c/fft_driver.c under ASan and UBSan).
#ifndef MPYML_FFT_H
#define MPYML_FFT_H

#include <stddef.h>
#include <stdint.h>

#include "mpyml_common.h"
#include "mpyml_math.h"

#define MPYML_FFT_MIN_LOG2 3
#define MPYML_FFT_MAX_LOG2 12

typedef struct {
    uint32_t n, log2n;
    // n/2 pairs (cos, sin) of 2*pi*k/n for k < n/2: the forward transform
    // multiplies by cos - i*sin. Transforms of n/2 points use every other pair.
    float *twiddle;
    // n floats for the real-input helpers' n/2-point complex transform:
    // real parts, then imaginary parts.
    float *scratch;
} mpyml_fft_t;

// OK when n is a power of two from 8 to 4096; sets *log2n.
static inline mpyml_err_t mpyml_fft_check_size(uint32_t n, uint32_t *log2n) {
    for (uint32_t k = MPYML_FFT_MIN_LOG2; k <= MPYML_FFT_MAX_LOG2; k++) {
        if (n == (1u << k)) {
            *log2n = k;
            return MPYML_OK;
        }
    }
    return MPYML_ERR_FFT_SIZE;
}

// Bytes of the block mpyml_fft_init needs for n points (n checked).
static inline size_t mpyml_fft_bytes(uint32_t n) {
    return (size_t)2 * n * sizeof(float);
}

// Binds `f` to `block` (mpyml_fft_bytes(n) bytes, float-aligned) and fills the twiddles.
static inline void mpyml_fft_init(mpyml_fft_t *f, uint32_t n, uint32_t log2n, void *block) {
    f->n = n;
    f->log2n = log2n;
    f->twiddle = (float *)block;
    f->scratch = f->twiddle + n;
    for (uint32_t k = 0; k < n / 2; k++) {
        mpyml_sincos_turn(k, log2n, &f->twiddle[2 * k + 1], &f->twiddle[2 * k]);
    }
    for (uint32_t i = 0; i < n; i++) {
        f->scratch[i] = 0.0f;
    }
}

MPYML_HOT static inline void mpyml_fft_bit_reverse(float *re, float *im, uint32_t m) {
    uint32_t j = 0;
    for (uint32_t i = 0; i + 1 < m; i++) {
        if (i < j) {
            float t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
        // j = bit-reversed i + 1: clear the leading ones from the top, then set the next bit.
        uint32_t bit = m >> 1;
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
}

// Forward transform of 2**log2m points (2 <= log2m <= f->log2n) in place,
// decimation in time. The first two stages need no multiplications. One copy for every caller.
MPYML_HOT static void mpyml_fft_complex(const mpyml_fft_t *f, float *re, float *im, uint32_t log2m) {
    uint32_t m = 1u << log2m;
    mpyml_fft_bit_reverse(re, im, m);
    for (uint32_t i = 0; i < m; i += 4) {
        float ar = re[i] + re[i + 1], ai = im[i] + im[i + 1];
        float br = re[i] - re[i + 1], bi = im[i] - im[i + 1];
        float cr = re[i + 2] + re[i + 3], ci = im[i + 2] + im[i + 3];
        float dr = re[i + 2] - re[i + 3], di = im[i + 2] - im[i + 3];
        // length-4 butterflies: twiddle 1 for (a, c), -i for (b, d)
        re[i] = ar + cr; im[i] = ai + ci;
        re[i + 2] = ar - cr; im[i + 2] = ai - ci;
        re[i + 1] = br + di; im[i + 1] = bi - dr;
        re[i + 3] = br - di; im[i + 3] = bi + dr;
    }
    for (uint32_t log2len = 3; log2len <= log2m; log2len++) {
        uint32_t half = 1u << (log2len - 1);
        uint32_t step = 2u << (f->log2n - log2len);  // floats between the twiddles this stage uses
        for (uint32_t start = 0; start < m; start += 2 * half) {
            float *ar = re + start, *ai = im + start;
            float *br = ar + half, *bi = ai + half;
            const float *w = f->twiddle;
            for (uint32_t j = 0; j < half; j++, w += step) {
                float c = w[0], s = w[1];
                float tr = br[j] * c + bi[j] * s;
                float ti = bi[j] * c - br[j] * s;
                br[j] = ar[j] - tr;
                bi[j] = ai[j] - ti;
                ar[j] += tr;
                ai[j] += ti;
            }
        }
    }
}

// X[k] = sum_j x[j] exp(-2*pi*i*j*k/n), in place on n real and n imaginary parts.
static inline void mpyml_fft_forward(const mpyml_fft_t *f, float *re, float *im) {
    mpyml_fft_complex(f, re, im, f->log2n);
}

// x[j] = (1/n) sum_k X[k] exp(+2*pi*i*j*k/n), in place: numpy.fft.ifft's scaling.
// A forward transform with real and imaginary parts swapped conjugates input
// and output; 1/n is a power of two, so the scaling is exact.
static inline void mpyml_fft_inverse(const mpyml_fft_t *f, float *re, float *im) {
    mpyml_fft_complex(f, im, re, f->log2n);
    float scale = mpyml_exp2_neg(f->log2n);
    for (uint32_t i = 0; i < f->n; i++) {
        re[i] *= scale;
        im[i] *= scale;
    }
}

enum { MPYML_SPECTRUM_MAGNITUDE, MPYML_SPECTRUM_POWER };

static inline float mpyml_fft_spectrum_value(float re, float im, int kind) {
    float power = re * re + im * im;
    return kind == MPYML_SPECTRUM_POWER ? power : mpyml_sqrtf(power);
}

// out[k] = |X[k]| (magnitude) or |X[k]|**2 (power) for k = 0..n/2, X the
// transform of the n real samples x (numpy.fft.rfft, unscaled). x is only read.
// The n real samples are packed as n/2 complex ones z[k] = x[2k] + i*x[2k+1];
// X[k] = E[k] + W**k O[k] with E, O the transforms of the even and odd samples,
// which the n/2-point transform Z gives as E[k] = (Z[k] + conj Z[n/2-k]) / 2 and
// O[k] = (Z[k] - conj Z[n/2-k]) / 2i; X[n/2-k] = conj(E[k] - W**k O[k]).
static inline void mpyml_fft_real_spectrum(const mpyml_fft_t *f, const float *x, float *out, int kind) {
    uint32_t half = f->n / 2;
    float *re = f->scratch, *im = f->scratch + half;
    for (uint32_t k = 0; k < half; k++) {
        re[k] = x[2 * k];
        im[k] = x[2 * k + 1];
    }
    mpyml_fft_complex(f, re, im, f->log2n - 1);
    out[0] = mpyml_fft_spectrum_value(re[0] + im[0], 0.0f, kind);
    out[half] = mpyml_fft_spectrum_value(re[0] - im[0], 0.0f, kind);
    for (uint32_t k = 1; k <= half / 2; k++) {
        float zr = re[k], zi = im[k], yr = re[half - k], yi = im[half - k];
        float er = 0.5f * (zr + yr), ei = 0.5f * (zi - yi);
        float or_ = 0.5f * (zi + yi), oi = -0.5f * (zr - yr);
        float c = f->twiddle[2 * k], s = f->twiddle[2 * k + 1];
        float tr = or_ * c + oi * s, ti = oi * c - or_ * s;
        out[k] = mpyml_fft_spectrum_value(er + tr, ei + ti, kind);
        out[half - k] = mpyml_fft_spectrum_value(er - tr, ei - ti, kind);
    }
}

#endif // MPYML_FFT_H
