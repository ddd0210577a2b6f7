// Portable C99 core of emlmixture: Gaussian components scored against a row.
// GaussianMixture / BayesianGaussianMixture and k-means in float32; GaussianNB
// and EllipticEnvelope in float64, so that their decisions are scikit-learn's.
// No MicroPython headers, no libc/libm, no allocation: the caller provides one
// block of mpyml_mixture_bytes() bytes. The file format (docs/formats.md,
// mpyml-mixture) fills the values row by row with mpyml_mixture_add_row.
#ifndef MPYML_MIXTURE_H
#define MPYML_MIXTURE_H

#include "mpyml_common.h"
#include "mpyml_math.h"

enum { MPYML_MIX_GMM = 1, MPYML_MIX_NB = 2, MPYML_MIX_ENVELOPE = 3, MPYML_MIX_KMEANS = 4 };
enum { MPYML_COV_FULL = 1, MPYML_COV_TIED = 2, MPYML_COV_DIAG = 3, MPYML_COV_SPHERICAL = 4 };

#define MPYML_MIX_MAX_WIDTH 65535u
#define MPYML_MIX_MAX_COUNT 16777216.0f

typedef struct {
    uint32_t kind, cov, n_features, n_components;
} mpyml_mixture_shape_t;

typedef struct {
    mpyml_mixture_shape_t shape;
    void *values;  // float (gmm, kmeans) or double (nb, envelope), row after row
    void *work;    // n_features + n_components of the same type
    uint32_t rows_added, values_added;
    double threshold;  // gmm: score below it is an outlier; envelope: offset_
} mpyml_mixture_t;

static inline int mpyml_mixture_is_double(const mpyml_mixture_shape_t *s) {
    return s->kind == MPYML_MIX_NB || s->kind == MPYML_MIX_ENVELOPE;
}

static inline mpyml_err_t mpyml_mixture_check_shape(const mpyml_mixture_shape_t *s) {
    uint32_t d = s->n_features, k = s->n_components;
    int ok = d >= 1 && d <= MPYML_MIX_MAX_WIDTH && k >= 1 && k <= MPYML_MIX_MAX_WIDTH;
    if (s->kind == MPYML_MIX_GMM) {
        ok = ok && s->cov >= MPYML_COV_FULL && s->cov <= MPYML_COV_SPHERICAL;
    } else if (s->kind == MPYML_MIX_NB) {
        ok = ok && s->cov == MPYML_COV_DIAG;
    } else if (s->kind == MPYML_MIX_ENVELOPE) {
        ok = ok && s->cov == MPYML_COV_FULL && k == 1;
    } else {
        ok = ok && s->kind == MPYML_MIX_KMEANS && (s->cov == MPYML_COV_SPHERICAL || s->cov == MPYML_COV_DIAG);
    }
    return ok ? MPYML_OK : MPYML_ERR_MIX_HEADER;
}

static inline uint32_t mpyml_mixture_triangle(uint32_t d) {
    return d + ((d * (d - 1u)) >> 1);
}

// Rows of the values section, in order (docs/formats.md):
//   gmm: K means (d), precision factors (full: K of d(d+1)/2; tied: 1 of d(d+1)/2; diag: K of d;
//        spherical: 1 of K), 1 row of K constants
//   nb: K means (d), K inverse variances (d), 1 row of K log priors, 1 row of K normalisers
//   envelope: 1 location (d), d precision rows (d)
//   kmeans: K centres (d), 1 row of K counts; diag: 1 row of per-feature weights (d)
static inline uint32_t mpyml_mixture_n_rows(const mpyml_mixture_shape_t *s) {
    uint32_t k = s->n_components;
    switch (s->kind) {
        case MPYML_MIX_GMM: return k + ((s->cov == MPYML_COV_TIED || s->cov == MPYML_COV_SPHERICAL) ? 1u : k) + 1u;
        case MPYML_MIX_NB: return 2u * k + 2u;
        case MPYML_MIX_ENVELOPE: return 1u + s->n_features;
        default: return k + (s->cov == MPYML_COV_DIAG ? 2u : 1u);
    }
}

static inline uint32_t mpyml_mixture_row_width(const mpyml_mixture_shape_t *s, uint32_t row) {
    uint32_t d = s->n_features, k = s->n_components;
    if (s->kind == MPYML_MIX_GMM && row >= k && row < mpyml_mixture_n_rows(s) - 1u) {
        return s->cov == MPYML_COV_SPHERICAL ? k : (s->cov == MPYML_COV_DIAG ? d : mpyml_mixture_triangle(d));
    }
    if (s->kind == MPYML_MIX_NB) {
        return row < 2u * k ? d : k;
    }
    if (s->kind == MPYML_MIX_ENVELOPE) {
        return d;
    }
    if (s->kind == MPYML_MIX_KMEANS && row == k + 1u) {
        return d;  // diag: the per-feature weights
    }
    return row < k ? d : k;  // means or centres, then constants or counts
}

// Index of the first value of `row` in the values.
static inline uint32_t mpyml_mixture_row_offset(const mpyml_mixture_shape_t *s, uint32_t row) {
    uint32_t at = 0;
    for (uint32_t r = 0; r < row; r++) {
        at += mpyml_mixture_row_width(s, r);
    }
    return at;
}

static inline uint64_t mpyml_mixture_n_values(const mpyml_mixture_shape_t *s) {
    uint64_t n = 0;
    for (uint32_t r = 0, rows = mpyml_mixture_n_rows(s); r < rows; r++) {
        n += mpyml_mixture_row_width(s, r);
    }
    return n;
}

// Bytes of the block (exporter/mpyml/mixture.py ram_bytes mirrors it); 0 if above 2**30.
static inline size_t mpyml_mixture_bytes(const mpyml_mixture_shape_t *s) {
    uint64_t items = mpyml_mixture_n_values(s) + s->n_features + s->n_components;
    uint64_t bytes = items * (mpyml_mixture_is_double(s) ? 8u : 4u);
    return bytes > 0x40000000u ? 0 : (size_t)bytes;
}

static inline void mpyml_mixture_bind(mpyml_mixture_t *m, const mpyml_mixture_shape_t *s, void *block) {
    // Field by field: a struct copy can become a memcpy call, which a natmod cannot link.
    m->shape.kind = s->kind;
    m->shape.cov = s->cov;
    m->shape.n_features = s->n_features;
    m->shape.n_components = s->n_components;
    m->values = block;
    size_t item = mpyml_mixture_is_double(s) ? 8u : 4u;
    m->work = (char *)block + item * (size_t)mpyml_mixture_n_values(s);
    m->rows_added = 0;
    m->values_added = 0;
    m->threshold = 0.0;
}

// Parses hex digits of IEEE-754 bits: 8 (float32) or 16 (float64).
static inline mpyml_err_t mpyml_mixture_parse_value(const char *text, size_t len, int is_double, double *out) {
    uint32_t hi = 0, lo = 0;
    if (!is_double) {
        mpyml_err_t err = mpyml_parse_hex32(text, len, &hi);
        *out = (double)mpyml_f32_from_bits(hi);
        return (err == MPYML_OK && !mpyml_is_finite(mpyml_f32_from_bits(hi))) ? MPYML_ERR_MIX_NOT_FINITE : err;
    }
    if (len != 16 || mpyml_parse_hex32(text, 8, &hi) != MPYML_OK || mpyml_parse_hex32(text + 8, 8, &lo) != MPYML_OK) {
        return MPYML_ERR_MIX_HEX64;
    }
    if ((hi & 0x7ff00000u) == 0x7ff00000u) {
        return MPYML_ERR_MIX_NOT_FINITE;
    }
    union { uint64_t u; double d; } v;
    v.u = ((uint64_t)hi << 32) | lo;
    *out = v.d;
    return MPYML_OK;
}

// The next row of the values section: comma-separated hex values (no spaces).
static inline mpyml_err_t mpyml_mixture_add_row(mpyml_mixture_t *m, const char *text, size_t len) {
    const mpyml_mixture_shape_t *s = &m->shape;
    if (m->rows_added >= mpyml_mixture_n_rows(s)) {
        return MPYML_ERR_MIX_TOO_MANY_ROWS;
    }
    int is_double = mpyml_mixture_is_double(s);
    int counts = s->kind == MPYML_MIX_KMEANS && m->rows_added == s->n_components;
    uint32_t width = mpyml_mixture_row_width(s, m->rows_added), n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != ',') {
            continue;
        }
        if (n == width) {
            return MPYML_ERR_MIX_ROW_WIDTH;
        }
        double v;
        mpyml_err_t err = mpyml_mixture_parse_value(text + start, i - start, is_double, &v);
        if (err != MPYML_OK) {
            return err;
        }
        if (counts && !(v >= 0.0 && v <= MPYML_MIX_MAX_COUNT)) {
            return MPYML_ERR_MIX_COUNT;
        }
        uint32_t at = m->values_added + n;
        if (is_double) {
            ((double *)m->values)[at] = v;
        } else {
            ((float *)m->values)[at] = (float)v;
        }
        n++;
        start = i + 1;
    }
    if (n != width) {
        return MPYML_ERR_MIX_ROW_WIDTH;
    }
    m->values_added += width;
    m->rows_added++;
    return MPYML_OK;
}

static inline mpyml_err_t mpyml_mixture_check_complete(const mpyml_mixture_t *m) {
    return m->rows_added == mpyml_mixture_n_rows(&m->shape) ? MPYML_OK : MPYML_ERR_MIX_MISSING_ROWS;
}

// ---------------------------------------------------------------- float32: mixtures and k-means

// GaussianMixture's weighted log probabilities of x, one per component, into work[d..d+K):
// const[k] - 0.5 * q, q = |(x - mean[k]) U[k]|^2 (full, tied: U upper triangular, stored by
// columns, column j holding rows 0..j), sum (x - mean)^2 * p[k][i] (diag), p[k] * sum (x - mean)^2
// (spherical). Returns that array.
static inline const float *mpyml_mixture_gmm_log_probs(const mpyml_mixture_t *m, const float *x) {
    uint32_t d = m->shape.n_features, k_n = m->shape.n_components, cov = m->shape.cov;
    const float *means = (const float *)m->values;
    const float *prec = means + k_n * d;
    uint32_t prec_width = mpyml_mixture_row_width(&m->shape, k_n);
    uint32_t prec_rows = (cov == MPYML_COV_TIED || cov == MPYML_COV_SPHERICAL) ? 1u : k_n;
    const float *consts = prec + prec_rows * prec_width;
    float *c = (float *)m->work, *out = c + d;
    for (uint32_t k = 0; k < k_n; k++) {
        const float *mu = means + k * d;
        float q = 0.0f;
        for (uint32_t i = 0; i < d; i++) {
            c[i] = x[i] - mu[i];
        }
        if (cov == MPYML_COV_FULL || cov == MPYML_COV_TIED) {
            const float *u = cov == MPYML_COV_FULL ? prec + k * prec_width : prec;
            for (uint32_t j = 0; j < d; j++) {
                float y = 0.0f;
                for (uint32_t i = 0; i <= j; i++) {
                    y += c[i] * u[i];
                }
                u += j + 1u;
                q += y * y;
            }
        } else if (cov == MPYML_COV_DIAG) {
            const float *p = prec + k * d;
            for (uint32_t i = 0; i < d; i++) {
                q += c[i] * c[i] * p[i];
            }
        } else {
            for (uint32_t i = 0; i < d; i++) {
                q += c[i] * c[i];
            }
            q *= prec[k];
        }
        out[k] = consts[k] - 0.5f * q;
    }
    return out;
}

// Index of the first largest of n values.
static inline uint32_t mpyml_mixture_argmax(const float *v, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

// log(sum(exp(v))) = max + log(sum(exp(v - max))); if proba is not NULL it receives
// exp(v - max) / sum. exp is clamped at -87 (mpyml_expf), so a term below e**-87 of the largest
// counts as about 1.6e-38 instead of its value.
static inline float mpyml_mixture_logsumexp(const float *v, uint32_t n, float *proba) {
    float top = v[mpyml_mixture_argmax(v, n)];
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        sum += mpyml_expf(v[i] - top);
    }
    if (proba != NULL) {
        float inv = mpyml_recipf(sum);
        for (uint32_t i = 0; i < n; i++) {
            proba[i] = mpyml_expf(v[i] - top) * inv;
        }
    }
    return top + mpyml_logf(sum);
}

// k-means: squared euclidean distances of x to every centre into work[d..d+K); returns that array.
// diag (a pipeline's scalers folded in): sum_i (x_i - c_ki)^2 * w_i with per-feature weights w.
static inline const float *mpyml_mixture_kmeans_distances(const mpyml_mixture_t *m, const float *x) {
    uint32_t d = m->shape.n_features, k_n = m->shape.n_components;
    const float *centres = (const float *)m->values;
    const float *weights = m->shape.cov == MPYML_COV_DIAG ? centres + k_n * d + k_n : NULL;
    float *out = (float *)m->work + d;
    for (uint32_t k = 0; k < k_n; k++) {
        float q = 0.0f;
        for (uint32_t i = 0; i < d; i++) {
            float diff = x[i] - centres[k * d + i];
            q += weights != NULL ? diff * diff * weights[i] : diff * diff;
        }
        out[k] = q;
    }
    return out;
}

// Nearest centre: the first of the smallest distances (scikit-learn's tie rule).
static inline uint32_t mpyml_mixture_kmeans_predict(const mpyml_mixture_t *m, const float *x) {
    const float *dist = mpyml_mixture_kmeans_distances(m, x);
    uint32_t best = 0;
    for (uint32_t k = 1; k < m->shape.n_components; k++) {
        if (dist[k] < dist[best]) {
            best = k;
        }
    }
    return best;
}

// MiniBatchKMeans' update with a batch of one row: the nearest centre moves to the mean of the
// rows it has seen, c += (x - c) / n with n its count after adding x. Returns that centre.
// A centre whose count reached 2**24 no longer moves (its count would no longer be exact).
static inline uint32_t mpyml_mixture_kmeans_learn(mpyml_mixture_t *m, const float *x) {
    uint32_t d = m->shape.n_features, best = mpyml_mixture_kmeans_predict(m, x);
    float *centre = (float *)m->values + best * d;
    float *count = (float *)m->values + m->shape.n_components * d + best;
    if (*count >= MPYML_MIX_MAX_COUNT) {
        return best;
    }
    *count += 1.0f;
    float step = mpyml_recipf(*count);
    for (uint32_t i = 0; i < d; i++) {
        centre[i] += (x[i] - centre[i]) * step;
    }
    return best;
}

// ---------------------------------------------------------------- float64: GaussianNB, EllipticEnvelope

// GaussianNB's joint log likelihoods in scikit-learn's order into work[d..d+K) (doubles):
// prior[k] + (norm[k] - 0.5 * sum (x - mean)^2 * inv_var).
static inline const double *mpyml_mixture_nb_jll(const mpyml_mixture_t *m, const float *x) {
    uint32_t d = m->shape.n_features, k_n = m->shape.n_components;
    const double *means = (const double *)m->values, *inv_var = means + k_n * d;
    const double *prior = inv_var + k_n * d, *norm = prior + k_n;
    double *out = (double *)m->work + d;
    for (uint32_t k = 0; k < k_n; k++) {
        double s = 0.0;
        for (uint32_t i = 0; i < d; i++) {
            double diff = (double)x[i] - means[k * d + i];
            s += diff * diff * inv_var[k * d + i];
        }
        out[k] = prior[k] + (norm[k] - 0.5 * s);
    }
    return out;
}

static inline uint32_t mpyml_mixture_nb_predict(const mpyml_mixture_t *m, const float *x) {
    const double *jll = mpyml_mixture_nb_jll(m, x);
    uint32_t best = 0;
    for (uint32_t k = 1; k < m->shape.n_components; k++) {
        if (jll[k] > jll[best]) {
            best = k;
        }
    }
    return best;
}

// Class probabilities: jll - max rounded to float32, then log-sum-exp in float32.
static inline void mpyml_mixture_nb_proba(const mpyml_mixture_t *m, const float *x, float *proba) {
    const double *jll = mpyml_mixture_nb_jll(m, x);
    uint32_t k_n = m->shape.n_components, best = 0;
    for (uint32_t k = 1; k < k_n; k++) {
        if (jll[k] > jll[best]) {
            best = k;
        }
    }
    double top = jll[best];
    for (uint32_t k = 0; k < k_n; k++) {
        double diff = jll[k] - top;
        proba[k] = diff < -100.0 ? -100.0f : (float)diff;
    }
    mpyml_mixture_logsumexp(proba, k_n, proba);
}

// EllipticEnvelope's squared Mahalanobis distance in scikit-learn's order:
// c = x - location, t_j = sum_i c_i P_ij, sum_j t_j c_j (doubles).
static inline double mpyml_mixture_mahalanobis(const mpyml_mixture_t *m, const float *x) {
    uint32_t d = m->shape.n_features;
    const double *loc = (const double *)m->values, *prec = loc + d;
    double *c = (double *)m->work;
    for (uint32_t i = 0; i < d; i++) {
        c[i] = (double)x[i] - loc[i];
    }
    double sum = 0.0;
    for (uint32_t j = 0; j < d; j++) {
        double t = 0.0;
        for (uint32_t i = 0; i < d; i++) {
            t += c[i] * prec[i * d + j];
        }
        sum += t * c[j];
    }
    return sum;
}

#endif // MPYML_MIXTURE_H
