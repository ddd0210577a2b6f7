// Portable C99 core of emliir: cascades of second-order IIR sections (biquads).
// No MicroPython headers, no libc/libm, no allocation: the caller hands in the
// memory (mpyml_iir_bytes) and the glue owns it. Builds for the host too.
//
// Float path: direct form II transposed in float32, with scipy.signal.sosfilt's
// operation order, so it matches scipy's own float32 sosfilt bit for bit.
// Q15 path: direct form I on int16 samples with integer coefficients scaled by
// 2^frac per stage (a0 = 2^frac), int32 accumulator that cannot overflow (the
// check below bounds the coefficients), rounding shift, saturation to int16.
// Direct form I keeps only past inputs and outputs as state, so nothing but the
// accumulator needs headroom.
#ifndef MPYML_IIR_H
#define MPYML_IIR_H

#include "mpyml_common.h"

#define MPYML_IIR_SOS_WIDTH 6u
#define MPYML_IIR_MAX_STAGES 65535u
#define MPYML_IIR_Q15_MAX_FRAC 14
// Bounds |accumulator| below 2^31 for any int16 input: 65535 * 32768 + 2^13 < 2^31.
#define MPYML_IIR_Q15_MAX_COEFF_SUM 65535

typedef struct {
    float b0, b1, b2, a1, a2;
    float z1, z2;
} mpyml_iir_f32_stage_t;

typedef struct {
    int32_t b0, b1, b2, a1, a2;
    int32_t frac;
    int32_t x1, x2, y1, y2;
} mpyml_iir_q15_stage_t;

// Number of stages in an sos array of n_values numbers, or an error.
static inline mpyml_err_t mpyml_iir_count_stages(size_t n_values, uint32_t *n_stages) {
    uint32_t remainder;
    if (n_values == 0 || n_values > (size_t)MPYML_IIR_SOS_WIDTH * MPYML_IIR_MAX_STAGES) {
        return n_values == 0 ? MPYML_ERR_SOS_LENGTH : MPYML_ERR_IIR_TOO_MANY_STAGES;
    }
    uint32_t n = mpyml_udiv((uint32_t)n_values, MPYML_IIR_SOS_WIDTH, &remainder);
    if (remainder != 0) {
        return MPYML_ERR_SOS_LENGTH;
    }
    *n_stages = n;
    return MPYML_OK;
}

// Checks a float32 sos (b0 b1 b2 a0 a1 a2 per stage): every number finite, a0 == 1.
// On error *bad_stage is the stage at fault.
static inline mpyml_err_t mpyml_iir_f32_check(const float *sos, uint32_t n_stages, uint32_t *bad_stage) {
    for (uint32_t s = 0; s < n_stages; s++) {
        const float *c = sos + s * MPYML_IIR_SOS_WIDTH;
        *bad_stage = s;
        for (uint32_t i = 0; i < MPYML_IIR_SOS_WIDTH; i++) {
            if (!mpyml_is_finite(c[i])) {
                return MPYML_ERR_SOS_NOT_FINITE;
            }
        }
        if (c[3] != 1.0f) {
            return MPYML_ERR_SOS_A0;
        }
    }
    return MPYML_OK;
}

static inline int32_t mpyml_iir_abs32(int32_t v) {
    return v < 0 ? -v : v;
}

// Checks a Q15 sos (int16 b0 b1 b2 a0 a1 a2 per stage, a0 = 2^frac with frac
// 0..14, and the absolute values of b0 b1 b2 a1 a2 summing to at most 65535).
static inline mpyml_err_t mpyml_iir_q15_check(const int16_t *sos, uint32_t n_stages, uint32_t *bad_stage) {
    for (uint32_t s = 0; s < n_stages; s++) {
        const int16_t *c = sos + s * MPYML_IIR_SOS_WIDTH;
        *bad_stage = s;
        int frac = -1;
        for (int bit = 0; bit <= MPYML_IIR_Q15_MAX_FRAC; bit++) {
            if (c[3] == (int16_t)(1 << bit)) {
                frac = bit;
            }
        }
        if (frac < 0) {
            return MPYML_ERR_Q15_A0;
        }
        int32_t sum = mpyml_iir_abs32(c[0]) + mpyml_iir_abs32(c[1]) + mpyml_iir_abs32(c[2])
            + mpyml_iir_abs32(c[4]) + mpyml_iir_abs32(c[5]);
        if (sum > MPYML_IIR_Q15_MAX_COEFF_SUM) {
            return MPYML_ERR_Q15_COEFF_SUM;
        }
    }
    return MPYML_OK;
}

static inline size_t mpyml_iir_f32_bytes(uint32_t n_stages) {
    return (size_t)n_stages * sizeof(mpyml_iir_f32_stage_t);
}

static inline size_t mpyml_iir_q15_bytes(uint32_t n_stages) {
    return (size_t)n_stages * sizeof(mpyml_iir_q15_stage_t);
}

static inline void mpyml_iir_f32_reset(mpyml_iir_f32_stage_t *stages, uint32_t n_stages) {
    for (uint32_t s = 0; s < n_stages; s++) {
        stages[s].z1 = 0.0f;
        stages[s].z2 = 0.0f;
    }
}

// Binds a checked sos to stages (mpyml_iir_f32_bytes of memory); the state starts at zero.
static inline void mpyml_iir_f32_init(mpyml_iir_f32_stage_t *stages, const float *sos, uint32_t n_stages) {
    for (uint32_t s = 0; s < n_stages; s++) {
        const float *c = sos + s * MPYML_IIR_SOS_WIDTH;
        stages[s].b0 = c[0];
        stages[s].b1 = c[1];
        stages[s].b2 = c[2];
        stages[s].a1 = c[4];
        stages[s].a2 = c[5];
    }
    mpyml_iir_f32_reset(stages, n_stages);
}

// One stage over the whole buffer keeps its coefficients and state in registers;
// the cascade's result is the same as running every stage per sample.
static inline void mpyml_iir_f32_stage_run(mpyml_iir_f32_stage_t *st, float *values, size_t n) {
    const float b0 = st->b0, b1 = st->b1, b2 = st->b2, a1 = st->a1, a2 = st->a2;
    float z1 = st->z1, z2 = st->z2;
    for (size_t i = 0; i < n; i++) {
        float x = values[i];
        float y = b0 * x + z1;
        z1 = b1 * x - a1 * y + z2;
        z2 = b2 * x - a2 * y;
        values[i] = y;
    }
    st->z1 = z1;
    st->z2 = z2;
}

// Two stages per pass: their recurrences are independent chains the CPU overlaps.
static inline void mpyml_iir_f32_pair_run(mpyml_iir_f32_stage_t *s, mpyml_iir_f32_stage_t *t, float *values, size_t n) {
    const float b0 = s->b0, b1 = s->b1, b2 = s->b2, a1 = s->a1, a2 = s->a2;
    const float c0 = t->b0, c1 = t->b1, c2 = t->b2, d1 = t->a1, d2 = t->a2;
    float z1 = s->z1, z2 = s->z2, w1 = t->z1, w2 = t->z2;
    for (size_t i = 0; i < n; i++) {
        float x = values[i];
        float y = b0 * x + z1;
        z1 = b1 * x - a1 * y + z2;
        z2 = b2 * x - a2 * y;
        float v = c0 * y + w1;
        w1 = c1 * y - d1 * v + w2;
        w2 = c2 * y - d2 * v;
        values[i] = v;
    }
    s->z1 = z1;
    s->z2 = z2;
    t->z1 = w1;
    t->z2 = w2;
}

// Four stages per pass: four independent recurrences in flight (all 28 values fit the
// 32 single-precision registers of a Cortex-M4F).
static inline void mpyml_iir_f32_quad_run(mpyml_iir_f32_stage_t *st, float *values, size_t n) {
    const float b00 = st[0].b0, b01 = st[0].b1, b02 = st[0].b2, a01 = st[0].a1, a02 = st[0].a2;
    const float b10 = st[1].b0, b11 = st[1].b1, b12 = st[1].b2, a11 = st[1].a1, a12 = st[1].a2;
    const float b20 = st[2].b0, b21 = st[2].b1, b22 = st[2].b2, a21 = st[2].a1, a22 = st[2].a2;
    const float b30 = st[3].b0, b31 = st[3].b1, b32 = st[3].b2, a31 = st[3].a1, a32 = st[3].a2;
    float z01 = st[0].z1, z02 = st[0].z2, z11 = st[1].z1, z12 = st[1].z2;
    float z21 = st[2].z1, z22 = st[2].z2, z31 = st[3].z1, z32 = st[3].z2;
    for (size_t i = 0; i < n; i++) {
        float x = values[i];
        float y0 = b00 * x + z01;
        z01 = b01 * x - a01 * y0 + z02;
        z02 = b02 * x - a02 * y0;
        float y1 = b10 * y0 + z11;
        z11 = b11 * y0 - a11 * y1 + z12;
        z12 = b12 * y0 - a12 * y1;
        float y2 = b20 * y1 + z21;
        z21 = b21 * y1 - a21 * y2 + z22;
        z22 = b22 * y1 - a22 * y2;
        float y3 = b30 * y2 + z31;
        z31 = b31 * y2 - a31 * y3 + z32;
        z32 = b32 * y2 - a32 * y3;
        values[i] = y3;
    }
    st[0].z1 = z01;
    st[0].z2 = z02;
    st[1].z1 = z11;
    st[1].z2 = z12;
    st[2].z1 = z21;
    st[2].z2 = z22;
    st[3].z1 = z31;
    st[3].z2 = z32;
}

// Filters values in place, continuing from the stages' state.
static inline void mpyml_iir_f32_run(mpyml_iir_f32_stage_t *stages, uint32_t n_stages, float *values, size_t n) {
    uint32_t s = 0;
    for (; s + 3 < n_stages; s += 4) {
        mpyml_iir_f32_quad_run(&stages[s], values, n);
    }
    for (; s + 1 < n_stages; s += 2) {
        mpyml_iir_f32_pair_run(&stages[s], &stages[s + 1], values, n);
    }
    if (s < n_stages) {
        mpyml_iir_f32_stage_run(&stages[s], values, n);
    }
}

static inline void mpyml_iir_q15_reset(mpyml_iir_q15_stage_t *stages, uint32_t n_stages) {
    for (uint32_t s = 0; s < n_stages; s++) {
        stages[s].x1 = stages[s].x2 = stages[s].y1 = stages[s].y2 = 0;
    }
}

// Binds a checked Q15 sos to stages (mpyml_iir_q15_bytes of memory); the state starts at zero.
static inline void mpyml_iir_q15_init(mpyml_iir_q15_stage_t *stages, const int16_t *sos, uint32_t n_stages) {
    for (uint32_t s = 0; s < n_stages; s++) {
        const int16_t *c = sos + s * MPYML_IIR_SOS_WIDTH;
        int32_t frac = 0;
        while ((1 << frac) != c[3]) {
            frac++;
        }
        stages[s].b0 = c[0];
        stages[s].b1 = c[1];
        stages[s].b2 = c[2];
        stages[s].a1 = c[4];
        stages[s].a2 = c[5];
        stages[s].frac = frac;
    }
    mpyml_iir_q15_reset(stages, n_stages);
}

static inline void mpyml_iir_q15_stage_run(mpyml_iir_q15_stage_t *st, int16_t *values, size_t n) {
    const int32_t b0 = st->b0, b1 = st->b1, b2 = st->b2, a1 = st->a1, a2 = st->a2;
    const int32_t frac = st->frac;
    const int32_t half = frac > 0 ? (int32_t)1 << (frac - 1) : 0;
    int32_t x1 = st->x1, x2 = st->x2, y1 = st->y1, y2 = st->y2;
    for (size_t i = 0; i < n; i++) {
        int32_t x = values[i];
        int32_t acc = half + b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
        // Arithmetic shift: floor((acc + half) / 2^frac), rounding half up.
        int32_t y = acc >= 0 ? acc >> frac : -(int32_t)(((uint32_t)(-acc) + ((uint32_t)1 << frac) - 1u) >> frac);
        if (y > INT16_MAX) {
            y = INT16_MAX;
        } else if (y < INT16_MIN) {
            y = INT16_MIN;
        }
        x2 = x1;
        x1 = x;
        y2 = y1;
        y1 = y;
        values[i] = (int16_t)y;
    }
    st->x1 = x1;
    st->x2 = x2;
    st->y1 = y1;
    st->y2 = y2;
}

static inline void mpyml_iir_q15_run(mpyml_iir_q15_stage_t *stages, uint32_t n_stages, int16_t *values, size_t n) {
    for (uint32_t s = 0; s < n_stages; s++) {
        mpyml_iir_q15_stage_run(&stages[s], values, n);
    }
}

#endif // MPYML_IIR_H
