// Small sequential networks, float32 or int8: validation of an mpyml-nets
// payload (docs/formats.md) and inference over a caller-supplied arena.
// Portable C99, header-only, no MicroPython headers, no libc/libm, no
// allocation, no division: builds for the host too (tests/test_nets_core.py).
// Weights are read in place from the payload, which must be 4-byte aligned;
// multi-byte values are little-endian, as on every MicroPython target.
#ifndef MPYML_NETS_H
#define MPYML_NETS_H

#include <stddef.h>
#include <stdint.h>

#include "mpyml_common.h"
#include "mpyml_math.h"

// x64 builds use SSE2 for the int8 kernels; MPYML_NO_SIMD selects the scalar
// kernels of the Cortex-M builds instead (tests/test_nets_core.py runs both).
#if defined(__SSE2__) && !defined(MPYML_NO_SIMD)
#define MPYML_NETS_SSE2 1
#include <emmintrin.h>
#else
#define MPYML_NETS_SSE2 0
#endif

enum { MPYML_NET_FLOAT32 = 1, MPYML_NET_INT8 = 2 };
enum { MPYML_LAYER_DENSE = 1, MPYML_LAYER_CONV2D, MPYML_LAYER_DEPTHWISE, MPYML_LAYER_MAX_POOL, MPYML_LAYER_AVG_POOL };
enum { MPYML_ACT_LINEAR, MPYML_ACT_RELU, MPYML_ACT_RELU6 };
enum { MPYML_OUT_LINEAR, MPYML_OUT_SOFTMAX, MPYML_OUT_SIGMOID };

#define MPYML_NET_FILE_HEADER_BYTES 16u
#define MPYML_NET_HEADER_BYTES 52u
#define MPYML_NET_LAYER_BYTES 48u
#define MPYML_NET_MAX_LAYERS 255u
// Activations and parameter blocks are limited so every size fits an int32.
#define MPYML_NET_MAX_ITEMS 0x10000000u
// The largest |sum of products| an int8 layer may reach, so the int32 accumulator cannot overflow.
#define MPYML_NET_MAX_ACC 0x7fffffffLL
#define MPYML_NET_NO_LAYER 0xffffffffu

#if defined(__GNUC__)
#define MPYML_ALWAYS_INLINE __attribute__((always_inline))
#else
#define MPYML_ALWAYS_INLINE
#endif

typedef struct {
    uint8_t kind, activation, stride_h, stride_w;
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t kernel_h, kernel_w, pad_top, pad_left;
    int32_t in_zp, out_zp, act_min, act_max;
    uint32_t params_offset, params_bytes;
} mpyml_layer_t;

typedef struct {
    const uint8_t *payload;
    uint32_t payload_bytes;
    uint8_t dtype, output_activation;
    uint32_t n_layers;
    uint32_t in_h, in_w, in_c;
    uint32_t n_inputs, n_outputs, arena_bytes, weights_bytes;
    float input_scale, input_inv_scale, output_scale;
    int32_t input_zp, output_zp;
    uint32_t buffer_bytes;  // one of the two ping-pong buffers of the arena
} mpyml_net_t;

static inline uint32_t mpyml_rd16(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static inline uint32_t mpyml_rd32(const uint8_t *p) {
    return mpyml_rd16(p) | (mpyml_rd16(p + 2) << 16);
}

// Layer i's record, unpacked (no checks: mpyml_net_init validated it).
static inline void mpyml_net_layer(const mpyml_net_t *net, uint32_t i, mpyml_layer_t *l) {
    const uint8_t *r = net->payload + MPYML_NET_HEADER_BYTES + i * MPYML_NET_LAYER_BYTES;
    l->kind = r[0];
    l->activation = r[1];
    l->stride_h = r[2];
    l->stride_w = r[3];
    l->in_h = (int32_t)mpyml_rd16(r + 4);
    l->in_w = (int32_t)mpyml_rd16(r + 6);
    l->in_c = (int32_t)mpyml_rd16(r + 8);
    l->out_h = (int32_t)mpyml_rd16(r + 10);
    l->out_w = (int32_t)mpyml_rd16(r + 12);
    l->out_c = (int32_t)mpyml_rd16(r + 14);
    l->kernel_h = r[16];
    l->kernel_w = r[17];
    l->pad_top = r[18];
    l->pad_left = r[19];
    l->in_zp = (int32_t)mpyml_rd32(r + 20);
    l->out_zp = (int32_t)mpyml_rd32(r + 24);
    l->act_min = (int32_t)mpyml_rd32(r + 28);
    l->act_max = (int32_t)mpyml_rd32(r + 32);
    l->params_offset = mpyml_rd32(r + 36);
    l->params_bytes = mpyml_rd32(r + 40);
}

static inline int mpyml_layer_has_weights(const mpyml_layer_t *l) {
    return l->kind == MPYML_LAYER_DENSE || l->kind == MPYML_LAYER_CONV2D || l->kind == MPYML_LAYER_DEPTHWISE;
}

// Products summed into one output value.
static inline uint64_t mpyml_layer_taps(const mpyml_layer_t *l) {
    if (l->kind == MPYML_LAYER_DENSE) {
        return (uint64_t)l->in_h * (uint64_t)l->in_w * (uint64_t)l->in_c;
    }
    return (uint64_t)l->kernel_h * (uint64_t)l->kernel_w * (l->kind == MPYML_LAYER_CONV2D ? (uint64_t)l->in_c : 1u);
}

static inline uint64_t mpyml_layer_n_weights(const mpyml_layer_t *l) {
    if (!mpyml_layer_has_weights(l)) {
        return 0;
    }
    return mpyml_layer_taps(l) * (l->kind == MPYML_LAYER_DEPTHWISE ? 1u : (uint64_t)l->out_c)
        * (l->kind == MPYML_LAYER_DEPTHWISE ? (uint64_t)l->out_c : 1u);
}

// Bytes of the layer's parameter block (padded to 4), as docs/formats.md lays it out.
static inline uint64_t mpyml_layer_params_bytes(const mpyml_layer_t *l, uint8_t dtype) {
    uint64_t n_w = mpyml_layer_n_weights(l);
    if (l->kind == MPYML_LAYER_MAX_POOL) {
        return 0;
    }
    if (dtype == MPYML_NET_FLOAT32) {
        return l->kind == MPYML_LAYER_AVG_POOL ? 4u : 4u * (n_w + (uint64_t)l->out_c);
    }
    if (l->kind == MPYML_LAYER_AVG_POOL) {
        return 8u;
    }
    return (12u * (uint64_t)l->out_c + n_w + 3u) & ~(uint64_t)3u;
}

static inline int mpyml_is_int8(int32_t v) {
    return v >= -128 && v <= 127;
}

static inline int mpyml_positive_finite(float v) {
    return v > 0.0f && mpyml_is_finite(v);
}

static inline mpyml_err_t mpyml_check_requant(const uint8_t *mult, const uint8_t *shift, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        int32_t m = (int32_t)mpyml_rd32(mult + 4 * i), s = (int32_t)mpyml_rd32(shift + 4 * i);
        if (m < 0 || s < 1 || s > 62) {
            return MPYML_ERR_NET_QUANT;
        }
    }
    return MPYML_OK;
}

static mpyml_err_t mpyml_net_check_layer(const mpyml_net_t *net, const mpyml_layer_t *l, uint32_t prev_h,
                                         uint32_t prev_w, uint32_t prev_c, uint64_t *weights_bytes) {
    if (l->kind < MPYML_LAYER_DENSE || l->kind > MPYML_LAYER_AVG_POOL) {
        return MPYML_ERR_NET_LAYER_KIND;
    }
    if (l->activation > MPYML_ACT_RELU6) {
        return MPYML_ERR_NET_ACTIVATION;
    }
    if ((uint32_t)l->in_h != prev_h || (uint32_t)l->in_w != prev_w || (uint32_t)l->in_c != prev_c) {
        return MPYML_ERR_NET_SHAPE;
    }
    if (l->out_h < 1 || l->out_w < 1 || l->out_c < 1 ||
        (uint64_t)l->out_h * (uint64_t)l->out_w * (uint64_t)l->out_c > MPYML_NET_MAX_ITEMS) {
        return MPYML_ERR_NET_SHAPE;
    }
    if (l->kind == MPYML_LAYER_DENSE) {
        if (l->out_h != 1 || l->out_w != 1 || l->kernel_h != 1 || l->kernel_w != 1 || l->pad_top || l->pad_left ||
            l->stride_h != 1 || l->stride_w != 1) {
            return MPYML_ERR_NET_SHAPE;
        }
    } else {
        if (l->kernel_h < 1 || l->kernel_w < 1 || l->pad_top >= l->kernel_h || l->pad_left >= l->kernel_w ||
            l->stride_h < 1 || l->stride_w < 1) {
            return MPYML_ERR_NET_SHAPE;
        }
        // Every window overlaps the input: its last row and column start inside it.
        if ((l->out_h - 1) * l->stride_h - l->pad_top >= l->in_h || (l->out_w - 1) * l->stride_w - l->pad_left >= l->in_w) {
            return MPYML_ERR_NET_SHAPE;
        }
        if (l->kind != MPYML_LAYER_CONV2D && l->out_c != l->in_c) {
            return MPYML_ERR_NET_SHAPE;
        }
    }
    uint64_t expected = mpyml_layer_params_bytes(l, net->dtype);
    uint32_t table_end = MPYML_NET_HEADER_BYTES + net->n_layers * MPYML_NET_LAYER_BYTES;
    if (mpyml_layer_n_weights(l) > MPYML_NET_MAX_ITEMS || l->params_bytes != expected || (l->params_offset & 3u) ||
        l->params_offset < table_end || l->params_offset > net->payload_bytes ||
        l->params_bytes > net->payload_bytes - l->params_offset) {
        return MPYML_ERR_NET_PARAMS;
    }
    *weights_bytes += expected;
    const uint8_t *p = net->payload + l->params_offset;
    if (net->dtype == MPYML_NET_FLOAT32) {
        // weights, biases and the average pool's reciprocal: float32 values only, no padding
        for (uint32_t i = 0; i < (uint32_t)expected; i += 4) {
            if (!mpyml_is_finite(mpyml_f32_from_bits(mpyml_rd32(p + i)))) {
                return MPYML_ERR_NET_NOT_FINITE;
            }
        }
        return MPYML_OK;
    }
    if (!mpyml_is_int8(l->in_zp) || !mpyml_is_int8(l->out_zp) || !mpyml_is_int8(l->act_min) ||
        !mpyml_is_int8(l->act_max) || l->act_min > l->act_max) {
        return MPYML_ERR_NET_QUANT;
    }
    uint64_t taps = mpyml_layer_taps(l);
    if (l->kind == MPYML_LAYER_AVG_POOL) {
        if (taps * 255u > (uint64_t)MPYML_NET_MAX_ACC) {
            return MPYML_ERR_NET_ACC_RANGE;
        }
        return mpyml_check_requant(p, p + 4, 1);
    }
    if (l->kind == MPYML_LAYER_MAX_POOL) {
        return MPYML_OK;
    }
    uint32_t n_c = (uint32_t)l->out_c;
    mpyml_err_t err = mpyml_check_requant(p + 4 * n_c, p + 8 * n_c, n_c);
    if (err != MPYML_OK) {
        return err;
    }
    // |x - zp| <= 255 and |w| <= 128: the bias plus every product must fit the int32 accumulator.
    int64_t products = (int64_t)(taps * 255u * 128u);
    for (uint32_t c = 0; c < n_c; c++) {
        int64_t bias = (int32_t)mpyml_rd32(p + 4 * c);
        if (taps > MPYML_NET_MAX_ITEMS || (bias < 0 ? -bias : bias) + products > MPYML_NET_MAX_ACC) {
            return MPYML_ERR_NET_ACC_RANGE;
        }
    }
    return MPYML_OK;
}

// Validates the payload (everything after the 16-byte file header) and fills
// `net`. On an error in a layer record, *bad_layer is its index, otherwise
// MPYML_NET_NO_LAYER. The payload must stay alive and unchanged while `net` is used.
static mpyml_err_t mpyml_net_init(mpyml_net_t *net, const uint8_t *payload, uint32_t payload_bytes, uint32_t crc,
                                  uint32_t *bad_layer) {
    *bad_layer = MPYML_NET_NO_LAYER;
    if (((uintptr_t)payload & 3u) != 0) {
        return MPYML_ERR_NET_ALIGN;
    }
    if (mpyml_crc32_update(0, payload, payload_bytes) != crc) {
        return MPYML_ERR_NET_CRC;
    }
    if (payload_bytes < MPYML_NET_HEADER_BYTES) {
        return MPYML_ERR_NET_TRUNCATED;
    }
    const uint8_t *h = payload;
    net->payload = payload;
    net->payload_bytes = payload_bytes;
    net->dtype = h[0];
    net->output_activation = h[1];
    net->n_layers = mpyml_rd16(h + 2);
    net->in_h = mpyml_rd16(h + 4);
    net->in_w = mpyml_rd16(h + 6);
    net->in_c = mpyml_rd16(h + 8);
    net->n_outputs = mpyml_rd32(h + 12);
    net->arena_bytes = mpyml_rd32(h + 16);
    net->weights_bytes = mpyml_rd32(h + 20);
    net->input_scale = mpyml_f32_from_bits(mpyml_rd32(h + 24));
    net->input_zp = (int32_t)mpyml_rd32(h + 28);
    net->input_inv_scale = mpyml_f32_from_bits(mpyml_rd32(h + 32));
    net->output_scale = mpyml_f32_from_bits(mpyml_rd32(h + 36));
    net->output_zp = (int32_t)mpyml_rd32(h + 40);
    if (net->dtype != MPYML_NET_FLOAT32 && net->dtype != MPYML_NET_INT8) {
        return MPYML_ERR_NET_DTYPE;
    }
    if (net->output_activation > MPYML_OUT_SIGMOID) {
        return MPYML_ERR_NET_OUTPUT_ACTIVATION;
    }
    if (net->n_layers < 1 || net->n_layers > MPYML_NET_MAX_LAYERS) {
        return MPYML_ERR_NET_N_LAYERS;
    }
    if (net->in_h < 1 || net->in_w < 1 || net->in_c < 1 ||
        (uint64_t)net->in_h * net->in_w * net->in_c > MPYML_NET_MAX_ITEMS) {
        return MPYML_ERR_NET_SHAPE;
    }
    if (net->dtype == MPYML_NET_INT8 && (!mpyml_is_finite(net->input_scale) ||
        !mpyml_is_finite(net->input_inv_scale) || !mpyml_is_finite(net->output_scale))) {
        return MPYML_ERR_NET_NOT_FINITE;
    }
    if (net->dtype == MPYML_NET_INT8 && (!mpyml_positive_finite(net->input_scale) ||
        !mpyml_positive_finite(net->input_inv_scale) || !mpyml_positive_finite(net->output_scale) ||
        !mpyml_is_int8(net->input_zp) || !mpyml_is_int8(net->output_zp))) {
        return MPYML_ERR_NET_QUANT;
    }
    if (payload_bytes < MPYML_NET_HEADER_BYTES + net->n_layers * MPYML_NET_LAYER_BYTES) {
        return MPYML_ERR_NET_TRUNCATED;
    }
    net->n_inputs = net->in_h * net->in_w * net->in_c;
    uint32_t h_prev = net->in_h, w_prev = net->in_w, c_prev = net->in_c;
    uint32_t largest = net->n_inputs;
    uint64_t weights_bytes = 0;
    for (uint32_t i = 0; i < net->n_layers; i++) {
        mpyml_layer_t l;
        mpyml_net_layer(net, i, &l);
        mpyml_err_t err = mpyml_net_check_layer(net, &l, h_prev, w_prev, c_prev, &weights_bytes);
        if (err != MPYML_OK) {
            *bad_layer = i;
            return err;
        }
        h_prev = (uint32_t)l.out_h;
        w_prev = (uint32_t)l.out_w;
        c_prev = (uint32_t)l.out_c;
        if (h_prev * w_prev * c_prev > largest) {
            largest = h_prev * w_prev * c_prev;
        }
    }
    uint32_t item = net->dtype == MPYML_NET_FLOAT32 ? 4u : 1u;
    net->buffer_bytes = (largest * item + 3u) & ~3u;
    if (net->n_outputs != h_prev * w_prev * c_prev || net->arena_bytes != 2u * net->buffer_bytes ||
        weights_bytes != net->weights_bytes) {
        return MPYML_ERR_NET_HEADER;
    }
    return MPYML_OK;
}

// ---------------------------------------------------------------- float32 layers

static inline float mpyml_act_f32(float v, uint8_t activation) {
    if (activation != MPYML_ACT_LINEAR && v < 0.0f) {
        v = 0.0f;
    }
    if (activation == MPYML_ACT_RELU6 && v > 6.0f) {
        v = 6.0f;
    }
    return v;
}

// The taps [*lo, *hi) of a window starting at `start` that fall inside an input of `size`.
static inline void mpyml_window(int32_t start, int32_t kernel, int32_t size, int32_t *lo, int32_t *hi) {
    *lo = start < 0 ? -start : 0;
    *hi = start + kernel > size ? size - start : kernel;
}

// Inlined once per layer kind (see mpyml_layer_f32), so the kind tests below fold away.
MPYML_ALWAYS_INLINE static inline void mpyml_spatial_f32(const mpyml_layer_t *l, const float *x, float *y, const uint8_t *params, int kind) {
    const float *w = (const float *)(const void *)params;
    const float *bias = w + mpyml_layer_n_weights(l);
    int32_t kh = l->kernel_h, kw = l->kernel_w, in_c = l->in_c, in_w = l->in_w;
    for (int32_t oy = 0; oy < l->out_h; oy++) {
        int32_t iy0 = oy * l->stride_h - l->pad_top, ky_lo, ky_hi;
        mpyml_window(iy0, kh, l->in_h, &ky_lo, &ky_hi);
        for (int32_t ox = 0; ox < l->out_w; ox++) {
            int32_t ix0 = ox * l->stride_w - l->pad_left, kx_lo, kx_hi;
            mpyml_window(ix0, kw, in_w, &kx_lo, &kx_hi);
            float *out = y + (oy * l->out_w + ox) * l->out_c;
            for (int32_t oc = 0; oc < l->out_c; oc++) {
                float acc;
                if (kind == MPYML_LAYER_MAX_POOL) {
                    acc = x[((iy0 + ky_lo) * in_w + ix0 + kx_lo) * in_c + oc];
                } else {
                    acc = kind == MPYML_LAYER_AVG_POOL ? 0.0f : bias[oc];
                }
                for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
                    for (int32_t kx = kx_lo; kx < kx_hi; kx++) {
                        const float *xp = x + ((iy0 + ky) * in_w + ix0 + kx) * in_c;
                        if (kind == MPYML_LAYER_CONV2D) {
                            const float *wp = w + ((oc * kh + ky) * kw + kx) * in_c;
                            for (int32_t ci = 0; ci < in_c; ci++) {
                                acc += xp[ci] * wp[ci];
                            }
                        } else if (kind == MPYML_LAYER_DEPTHWISE) {
                            acc += xp[oc] * w[(ky * kw + kx) * in_c + oc];
                        } else if (kind == MPYML_LAYER_MAX_POOL) {
                            acc = xp[oc] > acc ? xp[oc] : acc;
                        } else {
                            acc += xp[oc];
                        }
                    }
                }
                if (kind == MPYML_LAYER_AVG_POOL) {
                    acc *= w[0];  // 1/(kernel_h*kernel_w), computed on the host
                }
                out[oc] = mpyml_act_f32(acc, l->activation);
            }
        }
    }
}

MPYML_HOT static void mpyml_dense_f32(const mpyml_layer_t *l, const float *x, float *y, const uint8_t *params) {
    const float *w = (const float *)(const void *)params;
    int32_t n_in = l->in_h * l->in_w * l->in_c;
    const float *bias = w + (size_t)n_in * (size_t)l->out_c;
    for (int32_t o = 0; o < l->out_c; o++) {
        const float *wp = w + (size_t)o * (size_t)n_in;
        float acc = bias[o];
        for (int32_t i = 0; i < n_in; i++) {
            acc += x[i] * wp[i];
        }
        y[o] = mpyml_act_f32(acc, l->activation);
    }
}

// ---------------------------------------------------------------- int8 layers

// zp + round(acc * mult / 2**shift) (halves rounded up), clamped to [lo, hi].
static inline int8_t mpyml_requantize(int32_t acc, int32_t mult, int32_t shift, int32_t zp, int32_t lo, int32_t hi) {
    int64_t v = ((int64_t)acc * (int64_t)mult + ((int64_t)1 << (shift - 1))) >> shift;
    v += zp;
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#if MPYML_NETS_SSE2
// x64: eight output channels at a time in two int32x4 sums. Every product
// |(x - zp) * w| <= 255 * 128 fits an int16, so one 16-bit multiply is exact.
#define MPYML_I8_BLOCK 8

static inline __m128i mpyml_widen_i8(const int8_t *p) {
    __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)p);
    return _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8);
}

// Adds the eight int16 products to the two int32x4 sums.
static inline void mpyml_add_products(__m128i products, __m128i *lo, __m128i *hi) {
    *lo = _mm_add_epi32(*lo, _mm_srai_epi32(_mm_unpacklo_epi16(products, products), 16));
    *hi = _mm_add_epi32(*hi, _mm_srai_epi32(_mm_unpackhi_epi16(products, products), 16));
}

// Sums of output channels oc0..oc0+7 at one output position into acc[0..8), bias included.
MPYML_ALWAYS_INLINE static inline void mpyml_block_i8(const mpyml_layer_t *l, const int8_t *x, const int8_t *w,
                                                      const int32_t *bias, int32_t oc0, int32_t iy0, int32_t ix0,
                                                      int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi,
                                                      int kind, int32_t *acc) {
    int32_t kw = l->kernel_w, in_c = l->in_c, n_c = l->out_c;
    __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(bias + oc0));
    __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(bias + oc0 + 4));
    __m128i zp = _mm_set1_epi16((int16_t)l->in_zp);
    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
        const int8_t *xp = x + ((iy0 + ky) * l->in_w + ix0 + kx_lo) * in_c;
        if (kind == MPYML_LAYER_CONV2D) {
            // The window's taps in this row and their input channels are consecutive in x and in w.
            const int8_t *wp = w + (ky * kw + kx_lo) * in_c * n_c + oc0;
            int32_t run = (kx_hi - kx_lo) * in_c;
            for (int32_t r = 0; r < run; r++, wp += n_c) {
                __m128i xv = _mm_set1_epi16((int16_t)(xp[r] - l->in_zp));
                mpyml_add_products(_mm_mullo_epi16(xv, mpyml_widen_i8(wp)), &lo, &hi);
            }
        } else {
            const int8_t *wp = w + (ky * kw + kx_lo) * n_c + oc0;
            xp += oc0;
            for (int32_t kx = kx_lo; kx < kx_hi; kx++, xp += n_c, wp += n_c) {
                __m128i xv = _mm_sub_epi16(mpyml_widen_i8(xp), zp);
                mpyml_add_products(_mm_mullo_epi16(xv, mpyml_widen_i8(wp)), &lo, &hi);
            }
        }
    }
    _mm_storeu_si128((__m128i *)(void *)acc, lo);
    _mm_storeu_si128((__m128i *)(void *)(acc + 4), hi);
}
#else
// Scalar cores: four output channels at a time, so each input value is loaded
// and centred once for four multiply-accumulates into registers.
#define MPYML_I8_BLOCK 4

MPYML_ALWAYS_INLINE static inline void mpyml_block_i8(const mpyml_layer_t *l, const int8_t *x, const int8_t *w,
                                                      const int32_t *bias, int32_t oc0, int32_t iy0, int32_t ix0,
                                                      int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi,
                                                      int kind, int32_t *acc) {
    int32_t kw = l->kernel_w, in_c = l->in_c, n_c = l->out_c, zp = l->in_zp;
    int32_t a0 = bias[oc0], a1 = bias[oc0 + 1], a2 = bias[oc0 + 2], a3 = bias[oc0 + 3];
    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
        const int8_t *xp = x + ((iy0 + ky) * l->in_w + ix0 + kx_lo) * in_c;
        if (kind == MPYML_LAYER_CONV2D) {
            const int8_t *wp = w + (ky * kw + kx_lo) * in_c * n_c + oc0;
            const int8_t *end = xp + (kx_hi - kx_lo) * in_c;
            for (; xp < end; xp++, wp += n_c) {
                int32_t xv = (int32_t)*xp - zp;
                a0 += xv * wp[0];
                a1 += xv * wp[1];
                a2 += xv * wp[2];
                a3 += xv * wp[3];
            }
        } else {
            const int8_t *wp = w + (ky * kw + kx_lo) * n_c + oc0;
            xp += oc0;
            for (int32_t kx = kx_lo; kx < kx_hi; kx++, xp += n_c, wp += n_c) {
                a0 += ((int32_t)xp[0] - zp) * wp[0];
                a1 += ((int32_t)xp[1] - zp) * wp[1];
                a2 += ((int32_t)xp[2] - zp) * wp[2];
                a3 += ((int32_t)xp[3] - zp) * wp[3];
            }
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

// Conv2d (weights [kh][kw][in_c][C]) or depthwise (weights [kh][kw][C]) sum of one output channel, bias included.
MPYML_ALWAYS_INLINE static inline int32_t mpyml_channel_i8(const mpyml_layer_t *l, const int8_t *x, const int8_t *w,
                                                          int32_t acc, int32_t oc, int32_t iy0, int32_t ix0,
                                                          int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi,
                                                          int kind) {
    int32_t kw = l->kernel_w, in_c = l->in_c, n_c = l->out_c, zp = l->in_zp;
    for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
        const int8_t *xp = x + ((iy0 + ky) * l->in_w + ix0 + kx_lo) * in_c;
        if (kind == MPYML_LAYER_CONV2D) {
            const int8_t *wp = w + (ky * kw + kx_lo) * in_c * n_c + oc;
            int32_t run = (kx_hi - kx_lo) * in_c;
            for (int32_t r = 0; r < run; r++, wp += n_c) {
                acc += ((int32_t)xp[r] - zp) * (int32_t)*wp;
            }
        } else {
            const int8_t *wp = w + (ky * kw + kx_lo) * n_c + oc;
            xp += oc;
            for (int32_t kx = kx_lo; kx < kx_hi; kx++, xp += n_c, wp += n_c) {
                acc += ((int32_t)*xp - zp) * (int32_t)*wp;
            }
        }
    }
    return acc;
}

MPYML_ALWAYS_INLINE static inline void mpyml_spatial_i8(const mpyml_layer_t *l, const int8_t *x, int8_t *y, const uint8_t *params, int kind) {
    int32_t n_c = l->out_c;
    // Parameter block: int8 conv2d/depthwise: bias, mult, shift (int32 per channel), weights; avg pool: mult, shift.
    const int32_t *bias = (const int32_t *)(const void *)params, *mult = bias, *shift = bias + 1;
    const int8_t *w = (const int8_t *)params;
    if (kind != MPYML_LAYER_MAX_POOL && kind != MPYML_LAYER_AVG_POOL) {
        mult = bias + n_c;
        shift = mult + n_c;
        w = (const int8_t *)(shift + n_c);
    }
    int32_t kh = l->kernel_h, kw = l->kernel_w, in_c = l->in_c, in_w = l->in_w, zp = l->in_zp;
    for (int32_t oy = 0; oy < l->out_h; oy++) {
        int32_t iy0 = oy * l->stride_h - l->pad_top, ky_lo, ky_hi;
        mpyml_window(iy0, kh, l->in_h, &ky_lo, &ky_hi);
        for (int32_t ox = 0; ox < l->out_w; ox++) {
            int32_t ix0 = ox * l->stride_w - l->pad_left, kx_lo, kx_hi;
            mpyml_window(ix0, kw, in_w, &kx_lo, &kx_hi);
            int8_t *out = y + (oy * l->out_w + ox) * n_c;
            if (kind == MPYML_LAYER_CONV2D || kind == MPYML_LAYER_DEPTHWISE) {
                int32_t oc = 0;
                for (; oc + MPYML_I8_BLOCK <= n_c; oc += MPYML_I8_BLOCK) {
                    int32_t acc[MPYML_I8_BLOCK];
                    mpyml_block_i8(l, x, w, bias, oc, iy0, ix0, ky_lo, ky_hi, kx_lo, kx_hi, kind, acc);
                    for (int32_t j = 0; j < MPYML_I8_BLOCK; j++) {
                        out[oc + j] = mpyml_requantize(acc[j], mult[oc + j], shift[oc + j], l->out_zp, l->act_min, l->act_max);
                    }
                }
                for (; oc < n_c; oc++) {
                    int32_t acc = mpyml_channel_i8(l, x, w, bias[oc], oc, iy0, ix0, ky_lo, ky_hi, kx_lo, kx_hi, kind);
                    out[oc] = mpyml_requantize(acc, mult[oc], shift[oc], l->out_zp, l->act_min, l->act_max);
                }
                continue;
            }
            for (int32_t oc = 0; oc < n_c; oc++) {
                int32_t acc = 0;
                if (kind == MPYML_LAYER_MAX_POOL) {
                    acc = x[((iy0 + ky_lo) * in_w + ix0 + kx_lo) * in_c + oc];
                }
                for (int32_t ky = ky_lo; ky < ky_hi; ky++) {
                    for (int32_t kx = kx_lo; kx < kx_hi; kx++) {
                        const int8_t *xp = x + ((iy0 + ky) * in_w + ix0 + kx) * in_c;
                        if (kind == MPYML_LAYER_MAX_POOL) {
                            acc = xp[oc] > acc ? xp[oc] : acc;
                        } else {
                            acc += (int32_t)xp[oc] - zp;
                        }
                    }
                }
                if (kind == MPYML_LAYER_MAX_POOL) {
                    out[oc] = (int8_t)(acc < l->act_min ? l->act_min : (acc > l->act_max ? l->act_max : acc));
                } else {
                    out[oc] = mpyml_requantize(acc, mult[0], shift[0], l->out_zp, l->act_min, l->act_max);
                }
            }
        }
    }
}

MPYML_HOT static void mpyml_dense_i8(const mpyml_layer_t *l, const int8_t *x, int8_t *y, const uint8_t *params) {
    int32_t n_c = l->out_c, n_in = l->in_h * l->in_w * l->in_c;
    const int32_t *bias = (const int32_t *)(const void *)params;
    const int32_t *mult = bias + n_c, *shift = mult + n_c;
    const int8_t *w = (const int8_t *)(shift + n_c);
    int32_t o = 0;
#if !MPYML_NETS_SSE2
    // Scalar cores: four outputs at a time, each input loaded once for four multiply-accumulates.
    for (; o + 4 <= n_c; o += 4) {
        const int8_t *w0 = w + (size_t)o * (size_t)n_in, *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
        int32_t a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
        for (int32_t i = 0; i < n_in; i++) {
            int32_t xv = x[i];
            a0 += xv * w0[i];
            a1 += xv * w1[i];
            a2 += xv * w2[i];
            a3 += xv * w3[i];
        }
        y[o] = mpyml_requantize(a0, mult[o], shift[o], l->out_zp, l->act_min, l->act_max);
        y[o + 1] = mpyml_requantize(a1, mult[o + 1], shift[o + 1], l->out_zp, l->act_min, l->act_max);
        y[o + 2] = mpyml_requantize(a2, mult[o + 2], shift[o + 2], l->out_zp, l->act_min, l->act_max);
        y[o + 3] = mpyml_requantize(a3, mult[o + 3], shift[o + 3], l->out_zp, l->act_min, l->act_max);
    }
#endif
    for (; o < n_c; o++) {
        const int8_t *wp = w + (size_t)o * (size_t)n_in;
        int32_t acc = bias[o], i = 0;  // the bias holds -in_zp * sum(w)
#if MPYML_NETS_SSE2
        // 16 products at a time: two multiply-adds of int16 pairs into int32x4 sums.
        __m128i sum = _mm_setzero_si128();
        for (; i + 16 <= n_in; i += 16) {
            __m128i xv = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
            __m128i wv = _mm_loadu_si128((const __m128i *)(const void *)(wp + i));
            sum = _mm_add_epi32(sum, _mm_madd_epi16(_mm_srai_epi16(_mm_unpacklo_epi8(xv, xv), 8),
                                                    _mm_srai_epi16(_mm_unpacklo_epi8(wv, wv), 8)));
            sum = _mm_add_epi32(sum, _mm_madd_epi16(_mm_srai_epi16(_mm_unpackhi_epi8(xv, xv), 8),
                                                    _mm_srai_epi16(_mm_unpackhi_epi8(wv, wv), 8)));
        }
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4e));
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xb1));
        acc += _mm_cvtsi128_si32(sum);
#endif
        for (; i < n_in; i++) {
            acc += (int32_t)x[i] * (int32_t)wp[i];
        }
        y[o] = mpyml_requantize(acc, mult[o], shift[o], l->out_zp, l->act_min, l->act_max);
    }
}

MPYML_HOT static void mpyml_layer_f32(const mpyml_layer_t *l, const float *x, float *y, const uint8_t *params) {
    switch (l->kind) {
        case MPYML_LAYER_DENSE: mpyml_dense_f32(l, x, y, params); break;
        case MPYML_LAYER_CONV2D: mpyml_spatial_f32(l, x, y, params, MPYML_LAYER_CONV2D); break;
        case MPYML_LAYER_DEPTHWISE: mpyml_spatial_f32(l, x, y, params, MPYML_LAYER_DEPTHWISE); break;
        case MPYML_LAYER_MAX_POOL: mpyml_spatial_f32(l, x, y, params, MPYML_LAYER_MAX_POOL); break;
        default: mpyml_spatial_f32(l, x, y, params, MPYML_LAYER_AVG_POOL); break;
    }
}

MPYML_HOT static void mpyml_layer_i8(const mpyml_layer_t *l, const int8_t *x, int8_t *y, const uint8_t *params) {
    switch (l->kind) {
        case MPYML_LAYER_DENSE: mpyml_dense_i8(l, x, y, params); break;
        case MPYML_LAYER_CONV2D: mpyml_spatial_i8(l, x, y, params, MPYML_LAYER_CONV2D); break;
        case MPYML_LAYER_DEPTHWISE: mpyml_spatial_i8(l, x, y, params, MPYML_LAYER_DEPTHWISE); break;
        case MPYML_LAYER_MAX_POOL: mpyml_spatial_i8(l, x, y, params, MPYML_LAYER_MAX_POOL); break;
        default: mpyml_spatial_i8(l, x, y, params, MPYML_LAYER_AVG_POOL); break;
    }
}

// ---------------------------------------------------------------- the network

// A float input row to the int8 codes of the input: zp + round(x / scale), halves away from zero, clamped.
static inline int8_t mpyml_quantize_input(const mpyml_net_t *net, float x) {
    float v = x * net->input_inv_scale;
    if (!(v < 1.0e9f)) {
        v = v != v ? 0.0f : 1.0e9f;
    } else if (v < -1.0e9f) {
        v = -1.0e9f;
    }
    int32_t q = (int32_t)(v + (v >= 0.0f ? 0.5f : -0.5f)) + net->input_zp;
    return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
}

static void mpyml_quantize_inputs(const mpyml_net_t *net, const float *x, int8_t *q) {
    uint32_t i = 0;
#if MPYML_NETS_SSE2
    // 16 at a time, the same float32 operations as mpyml_quantize_input; the packs saturate to -128..127.
    __m128 inv = _mm_set1_ps(net->input_inv_scale), big = _mm_set1_ps(1.0e9f), zero = _mm_setzero_ps();
    __m128 half = _mm_set1_ps(0.5f), minus_half = _mm_set1_ps(-0.5f);
    __m128i zp = _mm_set1_epi32(net->input_zp);
    for (; i + 16 <= net->n_inputs; i += 16) {
        __m128i codes[4];
        for (int k = 0; k < 4; k++) {
            __m128 v = _mm_mul_ps(_mm_loadu_ps(x + i + 4 * k), inv);
            v = _mm_andnot_ps(_mm_cmpunord_ps(v, v), v);  // NaN -> 0
            v = _mm_max_ps(_mm_min_ps(v, big), _mm_sub_ps(zero, big));
            __m128 non_negative = _mm_cmpge_ps(v, zero);
            v = _mm_add_ps(v, _mm_or_ps(_mm_and_ps(non_negative, half), _mm_andnot_ps(non_negative, minus_half)));
            codes[k] = _mm_add_epi32(_mm_cvttps_epi32(v), zp);
        }
        __m128i packed = _mm_packs_epi16(_mm_packs_epi32(codes[0], codes[1]), _mm_packs_epi32(codes[2], codes[3]));
        _mm_storeu_si128((__m128i *)(void *)(q + i), packed);
    }
#endif
    for (; i < net->n_inputs; i++) {
        q[i] = mpyml_quantize_input(net, x[i]);
    }
}

// Softmax or sigmoid of the outputs, in place.
static void mpyml_output_activation(uint8_t activation, float *out, uint32_t n) {
    if (activation == MPYML_OUT_SOFTMAX) {
        mpyml_softmaxf(out, n);
    } else if (activation == MPYML_OUT_SIGMOID) {
        for (uint32_t i = 0; i < n; i++) {
            out[i] = mpyml_sigmoidf(out[i]);
        }
    }
}

// One inference. x: n_inputs float32 values, or (int8 nets only, x_is_int8)
// n_inputs int8 codes; arena: net->arena_bytes bytes, 4-byte aligned; out:
// n_outputs floats. The caller checks the lengths.
static void mpyml_net_predict(const mpyml_net_t *net, const void *x, int x_is_int8, uint8_t *arena, float *out) {
    const void *src = x;
    if (net->dtype == MPYML_NET_INT8 && !x_is_int8) {
        int8_t *q = (int8_t *)(arena + net->buffer_bytes);
        mpyml_quantize_inputs(net, (const float *)x, q);
        src = q;
    }
    for (uint32_t i = 0; i < net->n_layers; i++) {
        mpyml_layer_t l;
        mpyml_net_layer(net, i, &l);
        void *dst = arena + (i & 1u) * net->buffer_bytes;
        const uint8_t *params = net->payload + l.params_offset;
        if (net->dtype == MPYML_NET_FLOAT32) {
            mpyml_layer_f32(&l, (const float *)src, (float *)dst, params);
        } else {
            mpyml_layer_i8(&l, (const int8_t *)src, (int8_t *)dst, params);
        }
        src = dst;
    }
    for (uint32_t i = 0; i < net->n_outputs; i++) {
        if (net->dtype == MPYML_NET_FLOAT32) {
            out[i] = ((const float *)src)[i];
        } else {
            out[i] = (float)((int32_t)((const int8_t *)src)[i] - net->output_zp) * net->output_scale;
        }
    }
    mpyml_output_activation(net->output_activation, out, net->n_outputs);
}

#endif // MPYML_NETS_H
