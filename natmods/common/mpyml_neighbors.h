// Portable C99 core of emlneighbors: k-nearest-neighbour search over stored
// items, majority / distance-weighted voting, and the novelty score. No
// MicroPython headers, no libc or libm, no allocation: the caller hands
// mpyml_neighbors_bind() one block of mpyml_neighbors_bytes() bytes.
//
// Distances are compared as 64-bit keys: for int16 items the exact integer
// distance (sum of squares, sum of absolute differences or the largest
// absolute difference; |difference| <= 65535, so a square fits 32 bits and
// 65535 features of them fit 64 bits), for float32 items the bits of the
// non-negative float32 distance (ordered like the floats, NaN after +inf).
// Ties between equal keys go to the lower item index.
#ifndef MPYML_NEIGHBORS_H
#define MPYML_NEIGHBORS_H

#include "mpyml_common.h"
#include "mpyml_f64.h"

typedef enum {
    MPYML_METRIC_EUCLIDEAN = 1,
    MPYML_METRIC_MANHATTAN = 2,
    MPYML_METRIC_CHEBYSHEV = 3,
} mpyml_metric_t;

typedef enum {
    MPYML_WEIGHTS_UNIFORM = 1,
    MPYML_WEIGHTS_DISTANCE = 2,
} mpyml_weights_t;

#define MPYML_NEIGHBORS_MAX_FEATURES 65535u
#define MPYML_NEIGHBORS_MAX_ITEMS 0x1000000u
#define MPYML_NEIGHBORS_MAX_K 65535u
#define MPYML_NEIGHBORS_MAX_LABEL 65534u
#define MPYML_NEIGHBORS_MAX_BYTES 0x40000000u

typedef struct {
    uint8_t dtype;     // mpyml_dtype_t
    uint8_t metric;    // mpyml_metric_t
    uint8_t weights;   // mpyml_weights_t
    uint32_t n_features;
    uint32_t max_items;
    uint32_t max_k;
} mpyml_neighbors_shape_t;

typedef struct {
    mpyml_neighbors_shape_t shape;
    uint32_t k;
    uint32_t n_items;
    uint64_t *best_key;      // max_k: the k nearest so far, nearest first
    uint32_t *best_index;    // max_k
    uint32_t n_best;
    uint32_t max_abs;        // int16 items: an upper bound of |value| over the items stored
    void *items;             // max_items * n_features int16 or float32, row after row
    uint16_t *labels;        // max_items
} mpyml_neighbors_t;

static inline uint32_t mpyml_neighbors_itemsize(const mpyml_neighbors_shape_t *s) {
    return s->dtype == MPYML_DTYPE_FLOAT32 ? 4u : 2u;
}

static inline uint32_t mpyml_neighbors_align8(uint32_t n) {
    return (n + 7u) & ~7u;
}

static inline mpyml_err_t mpyml_neighbors_check_shape(const mpyml_neighbors_shape_t *s) {
    if (s->dtype != MPYML_DTYPE_INT16 && s->dtype != MPYML_DTYPE_FLOAT32) {
        return MPYML_ERR_BAD_DTYPE;
    }
    if (s->metric < MPYML_METRIC_EUCLIDEAN || s->metric > MPYML_METRIC_CHEBYSHEV) {
        return MPYML_ERR_NB_BAD_METRIC;
    }
    if (s->weights != MPYML_WEIGHTS_UNIFORM && s->weights != MPYML_WEIGHTS_DISTANCE) {
        return MPYML_ERR_NB_BAD_WEIGHTS;
    }
    if (s->n_features < 1 || s->n_features > MPYML_NEIGHBORS_MAX_FEATURES) {
        return MPYML_ERR_BAD_N_FEATURES;
    }
    if (s->max_items < 1 || s->max_items > MPYML_NEIGHBORS_MAX_ITEMS) {
        return MPYML_ERR_NB_BAD_MAX_ITEMS;
    }
    if (s->max_k < 1 || s->max_k > MPYML_NEIGHBORS_MAX_K) {
        return MPYML_ERR_NB_BAD_K;
    }
    // max_items * (itemsize * n_features + 2) must stay below MAX_BYTES (no 64-bit multiply).
    uint32_t row_bytes = mpyml_neighbors_itemsize(s) * s->n_features + 2u;
    if (s->max_items > mpyml_udiv(MPYML_NEIGHBORS_MAX_BYTES, row_bytes, NULL)) {
        return MPYML_ERR_TOO_BIG;
    }
    return MPYML_OK;
}

// Bytes of the block for a checked shape: keys, indices, items, labels (each 8-aligned).
static inline uint32_t mpyml_neighbors_bytes(const mpyml_neighbors_shape_t *s) {
    return 8u * s->max_k + mpyml_neighbors_align8(4u * s->max_k)
           + mpyml_neighbors_align8(mpyml_neighbors_itemsize(s) * s->n_features * s->max_items)
           + mpyml_neighbors_align8(2u * s->max_items);
}

// `block` must be 8-byte aligned and hold mpyml_neighbors_bytes(shape) bytes.
static inline void mpyml_neighbors_bind(mpyml_neighbors_t *nb, const mpyml_neighbors_shape_t *s, uint32_t k, void *block) {
    uint8_t *p = (uint8_t *)block;
    nb->shape = *s;
    nb->k = k;
    nb->n_items = 0;
    nb->n_best = 0;
    nb->max_abs = 0;
    nb->best_key = (uint64_t *)(void *)p;
    p += 8u * s->max_k;
    nb->best_index = (uint32_t *)(void *)p;
    p += mpyml_neighbors_align8(4u * s->max_k);
    nb->items = p;
    p += mpyml_neighbors_align8(mpyml_neighbors_itemsize(s) * s->n_features * s->max_items);
    nb->labels = (uint16_t *)(void *)p;
}

static inline mpyml_err_t mpyml_neighbors_set_k(mpyml_neighbors_t *nb, uint32_t k) {
    if (k < 1 || k > nb->shape.max_k) {
        return MPYML_ERR_NB_BAD_K;
    }
    nb->k = k;
    return MPYML_OK;
}

static inline uint8_t *mpyml_neighbors_row(const mpyml_neighbors_t *nb, uint32_t index) {
    return (uint8_t *)nb->items + index * nb->shape.n_features * mpyml_neighbors_itemsize(&nb->shape);
}

static inline void mpyml_neighbors_copy_row(const mpyml_neighbors_t *nb, uint8_t *dst, const uint8_t *src) {
    uint32_t n = nb->shape.n_features * mpyml_neighbors_itemsize(&nb->shape);
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = src[i];
    }
}

static inline uint32_t mpyml_neighbors_max_abs16(const int16_t *x, uint32_t n) {
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)(x[i] < 0 ? -(int32_t)x[i] : x[i]);
        if (v > m) {
            m = v;
        }
    }
    return m;
}

// Stores x (n_features values of the dtype) as item `index`: index == n_items
// appends, index < n_items replaces.
static inline mpyml_err_t mpyml_neighbors_set_item(mpyml_neighbors_t *nb, uint32_t index, const void *x, uint32_t label) {
    if (label > MPYML_NEIGHBORS_MAX_LABEL) {
        return MPYML_ERR_NB_LABEL_RANGE;
    }
    if (index > nb->n_items) {
        return MPYML_ERR_NB_ITEM_INDEX;
    }
    if (index == nb->n_items) {
        if (nb->n_items >= nb->shape.max_items) {
            return MPYML_ERR_NB_FULL;
        }
        nb->n_items++;
    }
    mpyml_neighbors_copy_row(nb, mpyml_neighbors_row(nb, index), (const uint8_t *)x);
    nb->labels[index] = (uint16_t)label;
    if (nb->shape.dtype == MPYML_DTYPE_INT16) {
        uint32_t m = mpyml_neighbors_max_abs16((const int16_t *)x, nb->shape.n_features);
        if (m > nb->max_abs) {
            nb->max_abs = m;
        }
    }
    return MPYML_OK;
}

// Removes item `index`; the items after it move down one place, keeping their order.
static inline mpyml_err_t mpyml_neighbors_remove(mpyml_neighbors_t *nb, uint32_t index) {
    if (index >= nb->n_items) {
        return MPYML_ERR_NB_ITEM_INDEX;
    }
    for (uint32_t i = index + 1; i < nb->n_items; i++) {
        mpyml_neighbors_copy_row(nb, mpyml_neighbors_row(nb, i - 1), mpyml_neighbors_row(nb, i));
        nb->labels[i - 1] = nb->labels[i];
    }
    nb->n_items--;
    return MPYML_OK;
}

// ---------------------------------------------------------------- float helpers without libm or division

// 2^e as a float32 for -126 <= e <= 127.
static inline float mpyml_neighbors_pow2(int32_t e) {
    return mpyml_f32_from_bits((uint32_t)(e + 127) << 23);
}

// Multiplies by 2^e for any e in -300..300, in two exact steps where the result is representable.
static inline float mpyml_neighbors_scale(float x, int32_t e) {
    int32_t half = e / 2;
    return x * mpyml_neighbors_pow2(half) * mpyml_neighbors_pow2(e - half);
}

// 1/x in float32 by Newton's iteration on the mantissa (within 1 ulp; 0 -> +inf, inf -> 0).
static inline float mpyml_neighbors_recip(float x) {
    uint32_t bits = mpyml_f32_to_bits(x);
    uint32_t sign = bits & 0x80000000u;
    uint32_t mag = bits & 0x7fffffffu;
    if (mag > 0x7f800000u) {
        return x;
    }
    if (mag == 0x7f800000u) {
        return mpyml_f32_from_bits(sign);
    }
    if (mag == 0) {
        return mpyml_f32_from_bits(sign | 0x7f800000u);
    }
    int32_t adjust = 0;
    if (mag < 0x00800000u) {  // subnormal: make it normal first
        mag = mpyml_f32_to_bits(mpyml_f32_from_bits(mag) * 16777216.0f);
        adjust = 24;
    }
    int32_t e = (int32_t)(mag >> 23) - 127 - adjust;
    float m = mpyml_f32_from_bits((mag & 0x007fffffu) | 0x3f800000u);  // 1 <= m < 2
    float r = 1.4117647f - 0.47058824f * m;
    for (int i = 0; i < 3; i++) {
        r = r + r * (1.0f - m * r);
    }
    return mpyml_f32_from_bits(mpyml_f32_to_bits(mpyml_neighbors_scale(r, -e)) | sign);
}

// sqrt(x) in float32 for x >= 0 (within 1 ulp); negative x gives NaN.
static inline float mpyml_neighbors_sqrt(float x) {
    uint32_t bits = mpyml_f32_to_bits(x);
    if (bits == 0 || bits == 0x80000000u || bits == 0x7f800000u || (bits & 0x7fffffffu) > 0x7f800000u) {
        return x;
    }
    if (bits & 0x80000000u) {
        return mpyml_f32_from_bits(0x7fc00000u);
    }
    int32_t adjust = 0;
    if (bits < 0x00800000u) {
        bits = mpyml_f32_to_bits(mpyml_f32_from_bits(bits) * 16777216.0f);
        adjust = 24;
    }
    int32_t e = (int32_t)(bits >> 23) - 127 - adjust;
    float m = mpyml_f32_from_bits((bits & 0x007fffffu) | 0x3f800000u);
    if (e & 1) {  // make the exponent even: 1 <= m < 4
        m = m * 2.0f;
        e -= 1;
    }
    float y = 1.2f - 0.2f * m;  // 1/sqrt(m) to about 15%
    for (int i = 0; i < 5; i++) {
        y = y * (1.5f - 0.5f * m * y * y);
    }
    float s = m * y;
    s = s + 0.5f * y * (m - s * s);
    return mpyml_neighbors_scale(s, e / 2);
}

// uint64 to float32, rounded to nearest even like a C cast, without libgcc's
// __floatundisf (which on armv6m pulls in soft double arithmetic).
static inline float mpyml_neighbors_u64_to_f32(uint64_t v) {
    if (v < 0x1000000u) {
        return (float)(uint32_t)v;  // exact
    }
    int32_t top = 63;
    while (!((v >> top) & 1u)) {
        top--;
    }
    int32_t drop = top - 23;                 // bits below the 24-bit mantissa
    uint64_t mantissa = v >> drop;
    uint64_t rest = v & (((uint64_t)1 << drop) - 1u);
    uint64_t half = (uint64_t)1 << (drop - 1);
    if (rest > half || (rest == half && (mantissa & 1u))) {
        mantissa++;
        if (mantissa == 0x1000000u) {
            mantissa >>= 1;
            drop++;
        }
    }
    uint32_t exponent = (uint32_t)(drop + 23 + 127);
    return mpyml_f32_from_bits((exponent << 23) | ((uint32_t)mantissa & 0x7fffffu));
}

// ---------------------------------------------------------------- distances

static inline uint32_t mpyml_neighbors_abs_diff16(int16_t a, int16_t b) {
    int32_t d = (int32_t)a - (int32_t)b;
    return (uint32_t)(d < 0 ? -d : d);
}

static inline float mpyml_neighbors_abs_f32(float v) {
    return mpyml_f32_from_bits(mpyml_f32_to_bits(v) & 0x7fffffffu);
}

// Internal metric: euclidean on int16 items and a query whose |values| sum below 16384.
#define MPYML_NEIGHBORS_EUCLIDEAN_SMALL 4

// Inlined into each (dtype, metric) case of the search, so every inner loop is specialised.
#define MPYML_NEIGHBORS_INLINE static inline __attribute__((always_inline))

// Distance key of x to item `row`. Stops early once the partial key is above
// `bound` (every metric only grows feature by feature) and then returns a key above bound.
MPYML_NEIGHBORS_INLINE uint64_t mpyml_neighbors_key_with(uint8_t dtype, uint8_t metric, uint32_t n,
                                                         const void *x, const uint8_t *row, uint64_t bound) {
    if (dtype == MPYML_DTYPE_INT16) {
        const int16_t *a = (const int16_t *)x;
        const int16_t *b = (const int16_t *)(const void *)row;
        uint64_t acc = 0;
        uint32_t i = 0;
        if (metric == MPYML_NEIGHBORS_EUCLIDEAN_SMALL) {
            // Every |difference| is below 16384: 16 squares sum exactly in 32 bits.
            if (n <= 16) {
                uint32_t sum = 0;
                for (; i < n; i++) {
                    int32_t d = (int32_t)a[i] - (int32_t)b[i];
                    sum += (uint32_t)(d * d);
                }
                return sum;
            }
            while (i < n) {
                uint32_t stop = n - i > 16 ? i + 16 : n;
                uint32_t chunk = 0;
                for (; i < stop; i++) {
                    // The difference fits int16 here: 16-bit lanes, as SIMD multiply-adds want.
                    int16_t d = (int16_t)(a[i] - b[i]);
                    chunk += (uint32_t)((int32_t)d * d);
                }
                acc += chunk;
                if (acc > bound) {
                    return acc;
                }
            }
            return acc;
        }
        while (i < n) {
            uint32_t stop = n - i > 8 ? i + 8 : n;
            if (metric == MPYML_METRIC_EUCLIDEAN) {
                for (; i < stop; i++) {
                    uint32_t d = mpyml_neighbors_abs_diff16(a[i], b[i]);
                    acc += d * d;
                }
            } else if (metric == MPYML_METRIC_MANHATTAN) {
                for (; i < stop; i++) {
                    acc += mpyml_neighbors_abs_diff16(a[i], b[i]);
                }
            } else {
                for (; i < stop; i++) {
                    uint32_t d = mpyml_neighbors_abs_diff16(a[i], b[i]);
                    if (d > acc) {
                        acc = d;
                    }
                }
            }
            if (acc > bound) {
                return acc;
            }
        }
        return acc;
    }
    const float *a = (const float *)x;
    const float *b = (const float *)(const void *)row;
    float acc = 0.0f;
    uint32_t i = 0;
    while (i < n) {
        uint32_t stop = n - i > 8 ? i + 8 : n;
        if (metric == MPYML_METRIC_EUCLIDEAN) {
            for (; i < stop; i++) {
                float d = a[i] - b[i];
                acc = acc + d * d;
            }
        } else if (metric == MPYML_METRIC_MANHATTAN) {
            for (; i < stop; i++) {
                acc = acc + mpyml_neighbors_abs_f32(a[i] - b[i]);
            }
        } else {
            for (; i < stop; i++) {
                float d = mpyml_neighbors_abs_f32(a[i] - b[i]);
                // NaN propagates: a NaN difference makes the key NaN.
                if (!(d <= acc)) {
                    acc = d;
                }
            }
        }
        uint64_t key = mpyml_f32_to_bits(acc) & 0x7fffffffu;
        if (key > bound) {
            return key;
        }
    }
    return mpyml_f32_to_bits(acc) & 0x7fffffffu;
}

// The distance a key stands for, in float32 (euclidean: the square root of the key).
static inline float mpyml_neighbors_distance(const mpyml_neighbors_t *nb, uint64_t key) {
    float v = nb->shape.dtype == MPYML_DTYPE_INT16 ? mpyml_neighbors_u64_to_f32(key) : mpyml_f32_from_bits((uint32_t)key);
    return nb->shape.metric == MPYML_METRIC_EUCLIDEAN ? mpyml_neighbors_sqrt(v) : v;
}

// Inserts (key, item) into the sorted buffer of `count` entries (the last one
// drops out when count == k): after any equal keys, so lower indices stay first.
MPYML_NEIGHBORS_INLINE void mpyml_neighbors_insert(uint64_t *keys, uint32_t *index, uint32_t pos, uint64_t key, uint32_t item) {
    while (pos > 0 && keys[pos - 1] > key) {
        keys[pos] = keys[pos - 1];
        index[pos] = index[pos - 1];
        pos--;
    }
    keys[pos] = key;
    index[pos] = item;
}

MPYML_NEIGHBORS_INLINE void mpyml_neighbors_search_with(mpyml_neighbors_t *nb, const void *x, uint8_t dtype, uint8_t metric) {
    const uint32_t k = nb->k;
    const uint32_t n = nb->shape.n_features;
    const uint32_t n_items = nb->n_items;
    uint64_t *keys = nb->best_key;
    uint32_t *index = nb->best_index;
    const uint32_t row_bytes = n * (dtype == MPYML_DTYPE_FLOAT32 ? 4u : 2u);
    const uint8_t *row = (const uint8_t *)nb->items;
    uint32_t item = 0;
    // The first k items fill the buffer; the search (k <= n_items) then only
    // inserts items nearer than the current k-th.
    for (; item < k; item++, row += row_bytes) {
        mpyml_neighbors_insert(keys, index, item, mpyml_neighbors_key_with(dtype, metric, n, x, row, UINT64_MAX), item);
    }
    uint64_t bound = keys[k - 1];
    for (; item < n_items; item++, row += row_bytes) {
        uint64_t key = mpyml_neighbors_key_with(dtype, metric, n, x, row, bound);
        if (key < bound) {
            mpyml_neighbors_insert(keys, index, k - 1, key, item);
            bound = keys[k - 1];
        }
    }
    nb->n_best = k;
}

// Finds the k nearest items to x into best_key / best_index, nearest first
// (equal keys: lower index first). Keeps a sorted buffer of k and inserts
// into it, so the cost is n_items distances plus a few shifts, never a sort.
MPYML_HOT static mpyml_err_t mpyml_neighbors_search(mpyml_neighbors_t *nb, const void *x) {
    if (nb->k > nb->n_items) {
        return MPYML_ERR_NB_TOO_FEW_ITEMS;
    }
    uint8_t metric = nb->shape.metric;
    if (nb->shape.dtype == MPYML_DTYPE_INT16) {
        if (metric == MPYML_METRIC_EUCLIDEAN && nb->max_abs + mpyml_neighbors_max_abs16((const int16_t *)x, nb->shape.n_features) < 16384u) {
            mpyml_neighbors_search_with(nb, x, MPYML_DTYPE_INT16, MPYML_NEIGHBORS_EUCLIDEAN_SMALL);
        } else if (metric == MPYML_METRIC_EUCLIDEAN) {
            mpyml_neighbors_search_with(nb, x, MPYML_DTYPE_INT16, MPYML_METRIC_EUCLIDEAN);
        } else if (metric == MPYML_METRIC_MANHATTAN) {
            mpyml_neighbors_search_with(nb, x, MPYML_DTYPE_INT16, MPYML_METRIC_MANHATTAN);
        } else {
            mpyml_neighbors_search_with(nb, x, MPYML_DTYPE_INT16, MPYML_METRIC_CHEBYSHEV);
        }
    } else {
        // One copy for the three float32 metrics keeps the module small.
        mpyml_neighbors_search_with(nb, x, MPYML_DTYPE_FLOAT32, metric);
    }
    return MPYML_OK;
}

// ---------------------------------------------------------------- scikit-learn's float64 vote

// Distance from x to neighbour j of the last search as scikit-learn computes it in float64:
// int16 items: the exact integer key (euclidean: its correctly rounded square root, as
// scikit-learn's sqrt of the exact float64 sum of squares of whole numbers, under every search
// algorithm); float32 items: the float64 sum of |x - item| (manhattan), of (x - item)**2 then
// its square root (euclidean) or their maximum (chebyshev), in feature order, as scikit-learn's
// DistanceMetric. Its brute search sums float euclidean distances by matrix products instead,
// whose rounding depends on the BLAS: those are not reproduced.
static double mpyml_neighbors_distance64(const mpyml_neighbors_t *nb, const void *x, uint32_t j) {
    uint64_t key = nb->best_key[j];
    uint8_t metric = nb->shape.metric;
    if (nb->shape.dtype == MPYML_DTYPE_INT16) {
        return metric == MPYML_METRIC_EUCLIDEAN ? mpyml_f64_sqrt_u62(key, 0) : mpyml_f64_from_u53(key);
    }
    const float *a = (const float *)x;
    const float *b = (const float *)(const void *)mpyml_neighbors_row(nb, nb->best_index[j]);
    double acc = 0.0;
    for (uint32_t i = 0; i < nb->shape.n_features; i++) {
        double d = (double)a[i] - (double)b[i];
        d = mpyml_f64_from_bits(mpyml_f64_to_bits(d) & 0x7fffffffffffffffull);
        if (metric == MPYML_METRIC_EUCLIDEAN) {
            acc = acc + mpyml_f64_square(d);   // |d| of float32s: 0 or 2**-149 .. 2**129
        } else if (metric == MPYML_METRIC_MANHATTAN) {
            acc = acc + d;
        } else if (d > acc) {
            acc = d;
        }
    }
    if (metric == MPYML_METRIC_EUCLIDEAN && acc > 0.0 && mpyml_f64_is_finite(acc)) {
        return mpyml_f64_sqrt(acc);
    }
    return acc;
}

// Neighbour j's term in class `label`'s sum: 1/distance in float64, 0.0 for the other classes.
static double mpyml_neighbors_term64(const mpyml_neighbors_t *nb, const void *x, uint32_t label, uint32_t j) {
    if (nb->labels[nb->best_index[j]] != label) {
        return 0.0;
    }
    double d = mpyml_neighbors_distance64(nb, x, j);
    // An infinite distance (a float32 query of infinities) weighs 0, as 1.0 / inf; the class totals
    // compared in float64 have no NaN or zero distance (mpyml_neighbors_vote), the test is defensive.
    if (!(d > 0.0) || !mpyml_f64_is_finite(d)) {
        return 0.0;
    }
    return mpyml_f64_div(1.0, d);
}

// numpy's sum of the terms of neighbours start .. start + n - 1 (scikit-learn's weighted_mode
// sums a row of k terms, zeros for the other classes): pairwise summation, below 8 terms one
// after another, up to 128 in 8 interleaved partial sums, above that the two halves apart.
static double mpyml_neighbors_sum64(const mpyml_neighbors_t *nb, const void *x, uint32_t label, uint32_t start, uint32_t n) {
    if (n < 8) {
        double sum = 0.0;
        for (uint32_t i = 0; i < n; i++) {
            sum = sum + mpyml_neighbors_term64(nb, x, label, start + i);
        }
        return sum;
    }
    if (n <= 128) {
        double r[8];
        for (uint32_t j = 0; j < 8; j++) {
            r[j] = mpyml_neighbors_term64(nb, x, label, start + j);
        }
        uint32_t i = 8;
        for (; i < n - n % 8; i += 8) {
            for (uint32_t j = 0; j < 8; j++) {
                r[j] = r[j] + mpyml_neighbors_term64(nb, x, label, start + i + j);
            }
        }
        double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) {
            sum = sum + mpyml_neighbors_term64(nb, x, label, start + i);
        }
        return sum;
    }
    uint32_t half = n / 2;
    half -= half % 8;
    return mpyml_neighbors_sum64(nb, x, label, start, half) + mpyml_neighbors_sum64(nb, x, label, start + half, n - half);
}

// Whether neighbour j of the last search is the nearest of its class.
static inline int mpyml_neighbors_first_of_class(const mpyml_neighbors_t *nb, uint32_t j) {
    uint32_t label = nb->labels[nb->best_index[j]];
    for (uint32_t i = 0; i < j; i++) {
        if (nb->labels[nb->best_index[i]] == label) {
            return 0;
        }
    }
    return 1;
}

// Float32 total of the class of neighbour j (its nearest) over neighbours j .. k-1, nearest
// first: votes (uniform) or 1/distance (distance; when a neighbour is at distance 0, those
// neighbours get weight 1 and all others 0, as scikit-learn).
static inline float mpyml_neighbors_total32(const mpyml_neighbors_t *nb, uint32_t j, int any_zero) {
    uint32_t label = nb->labels[nb->best_index[j]];
    float total = 0.0f;
    for (uint32_t i = j; i < nb->n_best; i++) {
        if (nb->labels[nb->best_index[i]] != label) {
            continue;
        }
        float w = 1.0f;
        if (nb->shape.weights == MPYML_WEIGHTS_DISTANCE) {
            if (any_zero) {
                w = nb->best_key[i] == 0 ? 1.0f : 0.0f;
            } else {
                w = mpyml_neighbors_recip(mpyml_neighbors_distance(nb, nb->best_key[i]));
            }
        }
        total = total + w;
    }
    return total;
}

// Class of the k nearest found by the last search for x: most votes (uniform) or the largest
// sum of 1/distance (distance), lowest label on ties, by the float32 totals. With distance
// weights, when the runner-up's total lies within `slack` of the best one's, the classes within
// it are decided by scikit-learn's float64 sums (mpyml_neighbors_sum64). The bound: each float32
// weight is within (n_features / 2 + 3) * 2**-23 relative of the exact 1/distance (int16: the
// conversion, square root and reciprocal, 5 * 2**-24; float32 items add about a rounding per
// feature to the distance), the float32 additions of positive terms add at most k * 2**-24 of
// the total, scikit-learn's float64 sums are far closer, so two classes whose float32 totals
// differ by more than (n_features + k + 8) * 2**-23 times their sum (twice the sum of both
// errors) compare alike in float64.
static inline uint32_t mpyml_neighbors_vote(const mpyml_neighbors_t *nb, const void *x) {
    uint32_t k = nb->n_best;
    int any_zero = 0;
    for (uint32_t j = 0; j < k; j++) {
        any_zero |= nb->best_key[j] == 0;
    }
    uint32_t best_label = 0;
    float best_total = -1.0f, runner_up = -1.0f;
    for (uint32_t j = 0; j < k; j++) {
        if (!mpyml_neighbors_first_of_class(nb, j)) {
            continue;
        }
        uint32_t label = nb->labels[nb->best_index[j]];
        float total = mpyml_neighbors_total32(nb, j, any_zero);
        if (total > best_total || (total == best_total && label < best_label)) {
            runner_up = best_total;
            best_total = total;
            best_label = label;
        } else if (total > runner_up) {
            runner_up = total;
        }
    }
    // Votes and the 0/1 weights of the zero-distance rule sum exactly.
    if (nb->shape.weights != MPYML_WEIGHTS_DISTANCE || any_zero) {
        return best_label;
    }
    uint32_t terms = k + 8u + (nb->shape.dtype == MPYML_DTYPE_FLOAT32 ? nb->shape.n_features : 0u);
    float slack = (float)terms * 1.1920929e-7f;  // terms * 2**-23
    // Written so that NaN totals (NaN features) keep the float32 decision.
    if (!(best_total - runner_up <= slack * (best_total + runner_up))) {
        return best_label;
    }
    uint32_t exact_label = best_label;
    double exact_best = -1.0;
    for (uint32_t j = 0; j < k; j++) {
        if (!mpyml_neighbors_first_of_class(nb, j)) {
            continue;
        }
        uint32_t label = nb->labels[nb->best_index[j]];
        float total = mpyml_neighbors_total32(nb, j, 0);
        if (!(best_total - total <= slack * (best_total + total))) {
            continue;
        }
        double sum = mpyml_neighbors_sum64(nb, x, label, 0, k);
        if (sum > exact_best || (sum == exact_best && label < exact_label)) {
            exact_best = sum;
            exact_label = label;
        }
    }
    return exact_label;
}

static inline mpyml_err_t mpyml_neighbors_predict(mpyml_neighbors_t *nb, const void *x, uint32_t *label) {
    mpyml_err_t err = mpyml_neighbors_search(nb, x);
    if (err == MPYML_OK) {
        *label = mpyml_neighbors_vote(nb, x);
    }
    return err;
}

// Novelty score: the distance from x to its k-th nearest item.
static inline mpyml_err_t mpyml_neighbors_score(mpyml_neighbors_t *nb, const void *x, float *score) {
    mpyml_err_t err = mpyml_neighbors_search(nb, x);
    if (err == MPYML_OK) {
        *score = mpyml_neighbors_distance(nb, nb->best_key[nb->n_best - 1]);
    }
    return err;
}

#endif // MPYML_NEIGHBORS_H
