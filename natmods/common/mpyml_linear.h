// Portable C99 core of emllinear: a chain of float32 steps (per-feature
// affine, column selection, matrix-vector product) whose last output is a
// transformer's output, a linear classifier's decision values or a linear
// regressor's value. No MicroPython headers, no libc/libm, no allocation: the
// caller provides one block of mpyml_linear_bytes() bytes.
#ifndef MPYML_LINEAR_H
#define MPYML_LINEAR_H

#include "mpyml_common.h"
#include "mpyml_math.h"

enum { MPYML_LINEAR_CLASSIFIER = 1, MPYML_LINEAR_REGRESSOR = 2, MPYML_LINEAR_TRANSFORMER = 3 };
enum { MPYML_PROBA_NONE = 0, MPYML_PROBA_LOGISTIC = 1, MPYML_PROBA_SOFTMAX = 2, MPYML_PROBA_OVR = 3 };
enum { MPYML_STEP_AFFINE = 1, MPYML_STEP_SELECT = 2, MPYML_STEP_MATRIX = 3 };

#define MPYML_LINEAR_MAX_STEPS 255u
#define MPYML_LINEAR_MAX_WIDTH 65535u

typedef struct {
    uint32_t kind, n_in, n_out;
    uint32_t offset;  // first value of the step in `values`
} mpyml_linear_step_t;

typedef struct {
    uint32_t kind, proba, n_features, n_outputs, n_steps, n_values, max_width;
} mpyml_linear_shape_t;

typedef struct {
    mpyml_linear_shape_t shape;
    mpyml_linear_step_t *steps;
    // float32 bits of affine scales then shifts, matrix rows then biases; select indices as integers.
    uint32_t *values;
    float *work;  // two buffers of max_width
    uint32_t steps_added, values_added;
} mpyml_linear_t;

static inline uint32_t mpyml_step_values(uint32_t kind, uint32_t n_in, uint32_t n_out) {
    if (kind == MPYML_STEP_AFFINE) {
        return 2u * n_out;
    }
    if (kind == MPYML_STEP_SELECT) {
        return n_out;
    }
    return n_out * n_in + n_out;
}

static inline mpyml_err_t mpyml_linear_check_shape(const mpyml_linear_shape_t *s) {
    if (s->kind < MPYML_LINEAR_CLASSIFIER || s->kind > MPYML_LINEAR_TRANSFORMER || s->proba > MPYML_PROBA_OVR ||
        s->n_features < 1 || s->n_outputs < 1 || s->n_steps < 1 || s->n_steps > MPYML_LINEAR_MAX_STEPS ||
        s->max_width < 1 || s->max_width > MPYML_LINEAR_MAX_WIDTH || s->n_features > s->max_width ||
        s->n_values > 0x3fffffffu || (s->kind != MPYML_LINEAR_CLASSIFIER && s->proba != MPYML_PROBA_NONE)) {
        return MPYML_ERR_LIN_HEADER;
    }
    return MPYML_OK;
}

// Bytes of the block that mpyml_linear_bind lays out (exporter/mpyml/linear.py ram_bytes mirrors it).
static inline size_t mpyml_linear_bytes(const mpyml_linear_shape_t *s) {
    return sizeof(mpyml_linear_step_t) * s->n_steps + 4u * (size_t)s->n_values + 8u * (size_t)s->max_width;
}

static inline void mpyml_linear_bind(mpyml_linear_t *m, const mpyml_linear_shape_t *s, void *block) {
    // Field by field: a struct assignment may become a libc memcpy call, which natmods cannot link.
    m->shape.kind = s->kind;
    m->shape.proba = s->proba;
    m->shape.n_features = s->n_features;
    m->shape.n_outputs = s->n_outputs;
    m->shape.n_steps = s->n_steps;
    m->shape.n_values = s->n_values;
    m->shape.max_width = s->max_width;
    m->steps = (mpyml_linear_step_t *)block;
    m->values = (uint32_t *)(m->steps + s->n_steps);
    m->work = (float *)(m->values + s->n_values);
    m->steps_added = 0;
    m->values_added = 0;
}

static inline uint32_t mpyml_linear_width(const mpyml_linear_t *m) {
    return m->steps_added ? m->steps[m->steps_added - 1].n_out : m->shape.n_features;
}

// The values still expected by the last step added.
static inline uint32_t mpyml_linear_values_pending(const mpyml_linear_t *m) {
    if (m->steps_added == 0) {
        return 0;
    }
    const mpyml_linear_step_t *st = &m->steps[m->steps_added - 1];
    return st->offset + mpyml_step_values(st->kind, st->n_in, st->n_out) - m->values_added;
}

static inline mpyml_err_t mpyml_linear_add_step(mpyml_linear_t *m, uint32_t kind, uint32_t n_in, uint32_t n_out) {
    if (kind < MPYML_STEP_AFFINE || kind > MPYML_STEP_MATRIX) {
        return MPYML_ERR_LIN_STEP_KIND;
    }
    if (m->steps_added >= m->shape.n_steps) {
        return MPYML_ERR_LIN_TOO_MANY_STEPS;
    }
    if (mpyml_linear_values_pending(m) != 0) {
        return MPYML_ERR_LIN_MISSING;
    }
    if (n_in != mpyml_linear_width(m)) {
        return MPYML_ERR_LIN_STEP_CHAIN;
    }
    if (n_out < 1 || n_out > m->shape.max_width || (kind == MPYML_STEP_AFFINE && n_out != n_in)) {
        return MPYML_ERR_LIN_STEP_WIDTH;
    }
    // n_in and n_out are at most max_width <= 65535, so n_in * n_out + n_out fits 32 bits (a 32-bit
    // multiply: armv6m cannot link libgcc's 64-bit one); the sum with values_added needs 64.
    uint64_t needed = (uint64_t)m->values_added + (kind == MPYML_STEP_MATRIX ? (uint64_t)(n_in * n_out) + n_out
                                                                                : mpyml_step_values(kind, n_in, n_out));
    if (needed > m->shape.n_values) {
        return MPYML_ERR_LIN_TOO_MANY_VALUES;
    }
    mpyml_linear_step_t *st = &m->steps[m->steps_added++];
    st->kind = kind;
    st->n_in = n_in;
    st->n_out = n_out;
    st->offset = m->values_added;
    return MPYML_OK;
}

// Appends one value of the last step: float32 bits, or a column index for select steps.
static inline mpyml_err_t mpyml_linear_add_value(mpyml_linear_t *m, uint32_t value) {
    if (mpyml_linear_values_pending(m) == 0) {
        return MPYML_ERR_LIN_TOO_MANY_VALUES;
    }
    const mpyml_linear_step_t *st = &m->steps[m->steps_added - 1];
    if (st->kind == MPYML_STEP_SELECT) {
        if (value >= st->n_in) {
            return MPYML_ERR_LIN_INDEX;
        }
    } else if (!mpyml_is_finite(mpyml_f32_from_bits(value))) {
        return MPYML_ERR_LIN_NOT_FINITE;
    }
    m->values[m->values_added++] = value;
    return MPYML_OK;
}

static inline mpyml_err_t mpyml_linear_check_complete(const mpyml_linear_t *m) {
    const mpyml_linear_shape_t *s = &m->shape;
    if (m->steps_added != s->n_steps || m->values_added != s->n_values || mpyml_linear_values_pending(m) != 0) {
        return MPYML_ERR_LIN_MISSING;
    }
    uint32_t widest = s->n_features;
    for (uint32_t i = 0; i < m->steps_added; i++) {
        widest = m->steps[i].n_out > widest ? m->steps[i].n_out : widest;
    }
    if (widest != s->max_width) {  // exact, as the host reader requires: not only a capacity
        return MPYML_ERR_LIN_MAX_WIDTH;
    }
    uint32_t width = mpyml_linear_width(m);
    int ok;
    if (s->kind == MPYML_LINEAR_CLASSIFIER) {
        ok = s->n_outputs >= 2 && (width == s->n_outputs || (width == 1 && s->n_outputs == 2));
        if (s->proba == MPYML_PROBA_LOGISTIC) {
            ok = ok && width == 1;
        } else if (s->proba != MPYML_PROBA_NONE) {
            ok = ok && width >= 2;
        }
    } else if (s->kind == MPYML_LINEAR_REGRESSOR) {
        ok = width == 1 && s->n_outputs == 1;
    } else {
        ok = width == s->n_outputs;
    }
    return ok ? MPYML_OK : MPYML_ERR_LIN_OUTPUT;
}

// Runs every step on x (n_features floats); returns the last step's output (inside m->work).
static inline const float *mpyml_linear_run(const mpyml_linear_t *m, const float *x) {
    const float *in = x;
    float *out = m->work;
    for (uint32_t s = 0; s < m->shape.n_steps; s++) {
        const mpyml_linear_step_t *st = &m->steps[s];
        const uint32_t *v = m->values + st->offset;
        if (st->kind == MPYML_STEP_AFFINE) {
            for (uint32_t i = 0; i < st->n_out; i++) {
                out[i] = in[i] * mpyml_f32_from_bits(v[i]) + mpyml_f32_from_bits(v[st->n_out + i]);
            }
        } else if (st->kind == MPYML_STEP_SELECT) {
            for (uint32_t i = 0; i < st->n_out; i++) {
                out[i] = in[v[i]];
            }
        } else {
            const uint32_t *bias = v + st->n_out * st->n_in;
            for (uint32_t i = 0; i < st->n_out; i++) {
                const uint32_t *row = v + i * st->n_in;
                float acc = mpyml_f32_from_bits(bias[i]);
                for (uint32_t j = 0; j < st->n_in; j++) {
                    acc += mpyml_f32_from_bits(row[j]) * in[j];
                }
                out[i] = acc;
            }
        }
        in = out;
        out = out == m->work ? m->work + m->shape.max_width : m->work;
    }
    return in;
}

static inline uint32_t mpyml_linear_predict_class(const mpyml_linear_t *m, const float *x) {
    const float *d = mpyml_linear_run(m, x);
    uint32_t width = mpyml_linear_width(m);
    if (width == 1) {
        return d[0] > 0.0f ? 1u : 0u;
    }
    uint32_t best = 0;
    for (uint32_t i = 1; i < width; i++) {
        if (d[i] > d[best]) {
            best = i;
        }
    }
    return best;
}

// Class probabilities into out (n_outputs floats); the model is a classifier with proba != NONE.
static inline void mpyml_linear_predict_proba(const mpyml_linear_t *m, const float *x, float *out) {
    const float *d = mpyml_linear_run(m, x);
    uint32_t n = m->shape.n_outputs;
    if (m->shape.proba == MPYML_PROBA_LOGISTIC) {
        float p = mpyml_sigmoidf(d[0]);
        out[0] = 1.0f - p;
        out[1] = p;
        return;
    }
    if (m->shape.proba == MPYML_PROBA_SOFTMAX) {
        for (uint32_t i = 0; i < n; i++) {
            out[i] = d[i];
        }
        mpyml_softmaxf(out, n);
        return;
    }
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = mpyml_sigmoidf(d[i]);
        sum += out[i];
    }
    // One-vs-rest: sum is at least n * sigmoid(-80) > 0.
    float scale = mpyml_recipf(sum);
    for (uint32_t i = 0; i < n; i++) {
        out[i] *= scale;
    }
}

#endif // MPYML_LINEAR_H
