// Float32 sin, cos and sqrt without libm (MicroPython's mpy_ld links no libm)
// and without float division (libgcc's divsf3.o does not link on armv6m).
// Portable C99, no MicroPython headers: also builds for the host, where
// tests/test_fft_core.py checks these functions against numpy.
#ifndef MPYML_MATH_H
#define MPYML_MATH_H

#include <stdint.h>

#include "mpyml_common.h"

// mpyml_sincosf accepts |x| up to this; beyond, it returns NaN. The quadrant
// count stays below 4096, where the three-part reduction below is exact.
#define MPYML_TRIG_MAX_ARG 6400.0f

// Taylor polynomials of sin and cos on [-pi/4, pi/4]: the first omitted terms
// (x^11/11!, x^12/12!) are below 2e-9 there, under float32's half ulp of the result.
static inline float mpyml_sin_kernel(float x) {
    float x2 = x * x;
    return x + x * x2 * (-1.6666667163e-01f + x2 * (8.3333337680e-03f + x2 * (-1.9841270114e-04f + x2 * 2.7557319224e-06f)));
}

static inline float mpyml_cos_kernel(float x) {
    float x2 = x * x;
    return 1.0f + x2 * (-0.5f + x2 * (4.1666667908e-02f + x2 * (-1.3888889225e-03f + x2 * (2.4801587642e-05f + x2 * -2.7557319224e-07f))));
}

// sin and cos of the angle (quadrant * pi/2 + r), r in [-pi/4, pi/4].
static inline void mpyml_sincos_quadrant(uint32_t quadrant, float r, float *s, float *c) {
    float sr = mpyml_sin_kernel(r), cr = mpyml_cos_kernel(r);
    switch (quadrant & 3u) {
        case 0: *s = sr; *c = cr; break;
        case 1: *s = cr; *c = -sr; break;
        case 2: *s = -sr; *c = -cr; break;
        default: *s = -cr; *c = sr; break;
    }
}

// sin(x) and cos(x) for |x| <= MPYML_TRIG_MAX_ARG, within a few float32 ulps
// of the exact values (absolute error below 1.5e-7); NaN for larger |x|, inf or NaN.
static inline void mpyml_sincosf(float x, float *s, float *c) {
    if (!(x <= MPYML_TRIG_MAX_ARG && x >= -MPYML_TRIG_MAX_ARG)) {
        *s = *c = mpyml_f32_from_bits(0x7fc00000u);
        return;
    }
    float scaled = x * 6.3661974669e-01f;  // x * 2/pi
    int32_t q = (int32_t)(scaled + (scaled >= 0.0f ? 0.5f : -0.5f));
    float qf = (float)q;
    // pi/2 in three parts; the first two have 12 trailing zero bits, so q * part is exact.
    float r = ((x - qf * 1.5703125f) - qf * 4.8375129700e-04f) - qf * 7.5497901264e-08f;
    mpyml_sincos_quadrant((uint32_t)q, r, s, c);
}

// 2**-k as a float, for 0 <= k <= 126.
static inline float mpyml_exp2_neg(uint32_t k) {
    return mpyml_f32_from_bits((127u - k) << 23);
}

// sin and cos of 2*pi*k / 2**log2n (log2n 2..24, any k): the turn is reduced
// exactly in integers to an angle of at most pi/4, so the result is within an
// ulp or two of the exact values whatever k is.
static inline void mpyml_sincos_turn(uint32_t k, uint32_t log2n, float *s, float *c) {
    uint32_t quarter_shift = log2n - 2;          // 2**quarter_shift steps make a quarter turn
    uint32_t quarter = 1u << quarter_shift;
    uint32_t quadrant = (k >> quarter_shift) & 3u;
    int32_t steps = (int32_t)(k & (quarter - 1u));
    if ((uint32_t)steps > (quarter >> 1)) {      // past an eighth: reduce toward the next quadrant
        steps -= (int32_t)quarter;
        quadrant++;
    }
    // 2*pi * steps / 2**log2n with 2*pi in two parts: float32(2*pi) and its remainder.
    float scale = mpyml_exp2_neg(log2n);
    float stepsf = (float)steps;
    float r = stepsf * (6.2831854820e+00f * scale) + stepsf * (-1.7484555314e-07f * scale);
    mpyml_sincos_quadrant(quadrant, r, s, c);
}

// Square root of x >= 0, within an ulp: Newton steps on 1/sqrt(x) (which need
// no division), then one correction of the square root itself. sqrt(+inf) is
// +inf, sqrt of NaN or of x < 0 is NaN, sqrt(+-0) is 0.
static inline float mpyml_sqrtf(float x) {
    if (!(x > 0.0f)) {
        return x == 0.0f ? 0.0f : mpyml_f32_from_bits(0x7fc00000u);
    }
    if (!mpyml_is_finite(x)) {
        return x;
    }
    // Scale tiny inputs (subnormals included) up by 2**64 so the bit-level guess is close.
    float unscale = 1.0f;
    if (x < 1.0e-30f) {
        x *= 1.8446744074e+19f;  // 2**64
        unscale = 2.3283064365e-10f;  // 2**-32
    }
    float y = mpyml_f32_from_bits(0x5f375a86u - (mpyml_f32_to_bits(x) >> 1));
    float half = 0.5f * x;
    for (int i = 0; i < 3; i++) {
        y = y * (1.5f - half * y * y);
    }
    float root = x * y;
    root += 0.5f * y * (x - root * root);
    return root * unscale;
}

// e**x for float32 x, within 1e-7 relative (tests/test_nets_core.py checks it
// against numpy); x is clamped to [-87, 88], so the result stays normal and finite.
// exporter/mpyml/nets.py (expf) mirrors these exact operations.
static inline float mpyml_expf(float x) {
    if (x != x) {
        return x;
    }
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t = x * 0x1.715476p+0f;  // log2(e)
    int32_t n = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f));
    float nf = (float)n;
    // ln 2 in two parts; the first has few mantissa bits so nf * part is exact.
    float r = (x - nf * 0x1.62e4p-1f) - nf * 0x1.7f7d1cp-20f;
    // Taylor polynomial of e**r on |r| <= ln(2)/2: the first omitted term is below 6e-9.
    float p = 0x1.a01a02p-13f;
    p = p * r + 0x1.6c16c2p-10f;
    p = p * r + 0x1.111112p-7f;
    p = p * r + 0x1.555556p-5f;
    p = p * r + 0x1.555556p-3f;
    p = p * r + 0x1p-1f;
    p = p * r + 0x1p+0f;
    p = p * r + 0x1p+0f;
    return p * mpyml_f32_from_bits((uint32_t)(n + 127) << 23);
}

// 1/d for a positive normal float32 d up to 1e37, within 1e-7 relative, without
// a division: a bit-level first guess and four Newton-Raphson steps.
static inline float mpyml_recipf(float d) {
    float r = mpyml_f32_from_bits(0x7ef311c3u - mpyml_f32_to_bits(d));
    for (int i = 0; i < 4; i++) {
        r = r * (2.0f - d * r);
    }
    return r;
}

// Natural logarithm for float32, within 1 ulp over the whole float32 range
// (tests/test_mixture_core.py checks every exponent against numpy): log(+0) is
// -inf, log(+inf) is +inf, NaN or x < 0 give NaN. x = 2**e * m with m in
// [sqrt(1/2), sqrt(2)); log(m) = log1p(f), f = m - 1 (exact), from s = f / (2 + f)
// as f - s*(f*f/2 - ... ) (the classic fdlibm arrangement), the division by
// mpyml_recipf. exporter/mpyml/mixture.py (logf) mirrors these exact operations.
static inline float mpyml_logf(float x) {
    if (!(x > 0.0f)) {
        return x == 0.0f ? mpyml_f32_from_bits(0xff800000u) : mpyml_f32_from_bits(0x7fc00000u);
    }
    if (!mpyml_is_finite(x)) {
        return x;
    }
    int32_t e = 0;
    if (x < 1.17549435e-38f) {
        x *= 33554432.0f;  // 2**25: subnormals become normal
        e = -25;
    }
    uint32_t bits = mpyml_f32_to_bits(x);
    e += (int32_t)(bits >> 23) - 127;
    float m = mpyml_f32_from_bits((bits & 0x007fffffu) | 0x3f800000u);
    if (m > 1.41421356f) {
        m *= 0.5f;
        e += 1;
    }
    float f = m - 1.0f;
    float s = f * mpyml_recipf(2.0f + f);
    float z = s * s;
    // 2/3 z + 2/5 z^2 + 2/7 z^3 + 2/9 z^4: |s| <= 0.1716, the next term is below 1e-9 relative.
    float r = z * (0x1.555556p-1f + z * (0x1.99999ap-2f + z * (0x1.24924ap-2f + z * 0x1.c71c72p-3f)));
    float hfsq = 0.5f * f * f;
    float ef = (float)e;
    return ef * 0x1.62e4p-1f + ((f - (hfsq - s * (hfsq + r))) + ef * 0x1.7f7d1cp-20f);
}

// sigmoid(x) = 1/(1 + e**-x) is computed for x clamped to [-80, 80], where 1 + e**80 stays in mpyml_recipf's range.
#define MPYML_SIGMOID_LIMIT 80.0f

static inline float mpyml_sigmoidf(float x) {
    x = x < -MPYML_SIGMOID_LIMIT ? -MPYML_SIGMOID_LIMIT : (x > MPYML_SIGMOID_LIMIT ? MPYML_SIGMOID_LIMIT : x);
    return mpyml_recipf(1.0f + mpyml_expf(-x));
}

// Softmax of v[0 .. n) in place, in float32: e**(v[i] - max v), summed in index order, times the
// reciprocal of the sum (>= 1: the largest term is 1).
static inline void mpyml_softmaxf(float *v, uint32_t n) {
    float top = v[0];
    for (uint32_t i = 1; i < n; i++) {
        top = v[i] > top ? v[i] : top;
    }
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        v[i] = mpyml_expf(v[i] - top);
        sum += v[i];
    }
    float inverse = mpyml_recipf(sum);
    for (uint32_t i = 0; i < n; i++) {
        v[i] *= inverse;
    }
}

#endif // MPYML_MATH_H
