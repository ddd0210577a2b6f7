// Shared portable C99 pieces of every mpyml native module: error codes and
// their messages, feature dtypes, and float helpers that need neither libm nor
// libgcc's float division (which MicroPython's mpy_ld cannot link on armv6m).
// Never includes MicroPython headers, so it also builds for the host.
#ifndef MPYML_COMMON_H
#define MPYML_COMMON_H

#include <stddef.h>
#include <stdint.h>

// Speed over size for a hot loop: on a microcontroller a natmod's code lives in the heap, so
// the modules build for size (-Os) and mark only their inner loops for speed: -O2, on x86-64
// also vectorized, peeled and unswitched as -O3 would, without the rest of -O3's growth
// (-O3 itself made the k-NN loops slower and larger on Cortex-M).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MPYML_HOT __attribute__((optimize("O2", "tree-vectorize", "vect-cost-model=dynamic", "peel-loops", "unswitch-loops")))
#elif defined(__GNUC__) && !defined(__clang__)
#define MPYML_HOT __attribute__((optimize("O2")))
#else
#define MPYML_HOT
#endif

typedef enum {
    MPYML_DTYPE_INT16 = 1,
    MPYML_DTYPE_FLOAT32 = 2,
} mpyml_dtype_t;

// zlib's CRC-32 (reflected polynomial 0xEDB88320), bit by bit: no table to keep in RAM.
// Chains like zlib.crc32(data, crc): start with 0, pass each result back in.
static inline uint32_t mpyml_crc32_update(uint32_t crc, const uint8_t *data, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

// Error codes and their messages, one X-macro list per module family; X(NAME, "message").
// The lists stand here in the order MPYML_ERRORS joins them (tests/c_errors.py reads them
// in file order). A glue file names the families it raises in MPYML_ERROR_MESSAGES before
// including this header, so a module carries only its own messages.
// Error lists begin
// every module
#define MPYML_ERRORS_BASE(X) \
    X(OK, "ok")
// the model families that check feature dtypes and sizes (emltrees, emlneighbors, emlmixture)
#define MPYML_ERRORS_MODEL(X) \
    X(BAD_DTYPE, "unknown feature dtype") \
    X(BAD_N_FEATURES, "n_features must be 1..65535") \
    X(TOO_BIG, "model too big for this device")
// the text formats' float32 fields
#define MPYML_ERRORS_HEX(X) \
    X(BAD_HEX, "expected 8 hex digits (IEEE-754 float32 bits)")
#define MPYML_ERRORS_COMMON(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_MODEL(X) MPYML_ERRORS_HEX(X)

// emltrees
#define MPYML_ERRORS_TREES(X) \
    X(BAD_KIND, "unknown model kind") \
    X(BAD_N_CLASSES, "n_classes must be at least 1 for a classifier and 0 for a regressor") \
    X(NO_TREES, "a forest needs at least one tree") \
    X(BAD_N_LEAVES, "n_leaves must be 1..32768") \
    X(NODE_REF_RANGE, "node reference past the last node") \
    X(LEAF_REF_RANGE, "leaf reference past the last leaf") \
    X(CHILD_BEFORE_PARENT, "child offset must be positive: a child node comes after its parent") \
    X(CHILD_TOO_FAR, "child offset above 32767") \
    X(FEATURE_RANGE, "feature index not below n_features") \
    X(THRESHOLD_RANGE, "int16 threshold out of range -32768..32767") \
    X(NAN, "threshold is NaN") \
    X(NOT_FINITE, "leaf value is not finite") \
    X(CLASS_RANGE, "leaf class not an integer below n_classes") \
    X(LEAF_WIDTH, "wrong number of values in leaf") \
    X(TOO_MANY_TREES, "more tree records than the header's n_trees") \
    X(TOO_MANY_NODES, "more node records than the header's n_nodes") \
    X(TOO_MANY_LEAVES, "more leaf records than the header's n_leaves") \
    X(MISSING_TREES, "fewer tree records than the header's n_trees") \
    X(MISSING_NODES, "fewer node records than the header's n_nodes") \
    X(MISSING_LEAVES, "fewer leaf records than the header's n_leaves") \
    X(TREES_N_FEATURES, "n_features must be 1..32767 for trees") \
    X(BAD_HEX64, "expected 16 hex digits (IEEE-754 float64 bits)") \
    X(TREE_WEIGHT, "tree weight must be finite and >= 0, and the weight sum finite and > 0") \
    X(LEAF_COUNTS, "leaf class counts must be 0..65535 and not all 0") \
    X(LEAF_PROBA, "leaf probabilities must be finite and in 0..1") \
    X(THRESHOLD_BYTES, "threshold_dtype must be int8 or int16 for int16 forests and float32 for float32 forests") \
    X(LEAF_PAIRS, "soft-vote leaves: pairs and totals must fit the header's 'pairs,<n_pairs>,<max_count>,<n_totals>'") \
    X(BOOST_SHAPE, "boosting: n_groups and link do not fit the model kind (regressor: 1 group; binary: 1 group, logistic or isolation; multiclass: n_classes groups, softmax)") \
    X(BOOST_VALUE, "boosting: tree group, base score, threshold, scale or leaf value out of range (float32 sums take float32 values)")

// emliir
#define MPYML_ERRORS_IIR(X) \
    X(SOS_LENGTH, "sos length must be a positive multiple of 6 (b0, b1, b2, a0, a1, a2 per stage)") \
    X(IIR_TOO_MANY_STAGES, "more than 65535 filter stages") \
    X(SOS_NOT_FINITE, "sos coefficient is NaN or infinite") \
    X(SOS_A0, "a0 (the 4th number of the stage) must be 1") \
    X(Q15_A0, "a0 (the 4th number of the stage) must be 2**frac with frac 0..14") \
    X(Q15_COEFF_SUM, "|b0|+|b1|+|b2|+|a1|+|a2| above 65535 could overflow the int32 accumulator")

// emlfft
#define MPYML_ERRORS_FFT(X) \
    X(FFT_SIZE, "FFT size must be a power of two from 8 to 4096")

// emlneighbors
#define MPYML_ERRORS_NEIGHBORS(X) \
    X(NB_BAD_METRIC, "unknown metric") \
    X(NB_BAD_WEIGHTS, "unknown weights") \
    X(NB_BAD_MAX_ITEMS, "max_items must be 1..16777216") \
    X(NB_BAD_K, "k must be 1..65535 and at most the k given to new()") \
    X(NB_FULL, "over capacity: no room for another item") \
    X(NB_ITEM_INDEX, "item index out of range") \
    X(NB_LABEL_RANGE, "label out of range") \
    X(NB_TOO_FEW_ITEMS, "k is larger than the number of items stored")

// emlcnn
#define MPYML_ERRORS_NETS(X) \
    X(NET_ALIGN, "model payload must be 4-byte aligned") \
    X(NET_CRC, "CRC32 of the payload does not match the file header: the file is corrupt") \
    X(NET_TRUNCATED, "payload shorter than its header and layer table") \
    X(NET_DTYPE, "unknown network dtype (1 float32, 2 int8)") \
    X(NET_OUTPUT_ACTIVATION, "unknown output activation (0 linear, 1 softmax, 2 sigmoid)") \
    X(NET_N_LAYERS, "a network needs 1..255 layers") \
    X(NET_LAYER_KIND, "unknown layer kind") \
    X(NET_ACTIVATION, "unknown fused activation (0 linear, 1 relu, 2 relu6)") \
    X(NET_SHAPE, "shape does not follow from the previous layer, kernel, stride and padding") \
    X(NET_PARAMS, "parameter block misaligned, outside the payload or of the wrong size for the layer") \
    X(NET_QUANT, "int8 parameter out of range (zero point, clamp, scale, multiplier or shift)") \
    X(NET_ACC_RANGE, "int8 bias and products could overflow the int32 accumulator") \
    X(NET_HEADER, "header's n_outputs, arena_bytes or weights_bytes disagree with the layers") \
    X(NET_NOT_FINITE, "a weight, bias or scale is NaN or infinite")

// emllinear, and emltrees' pipeline steps
#define MPYML_ERRORS_LINEAR(X) \
    X(LIN_HEADER, "bad header: kind, proba, n_features, n_outputs, n_steps (1..255) or max_width (1..65535)") \
    X(LIN_STEP_KIND, "unknown step kind (affine, select or matrix)") \
    X(LIN_STEP_CHAIN, "a step's input width differs from the previous step's output width (or n_features)") \
    X(LIN_STEP_WIDTH, "a step is wider than the header's max_width, or an affine step changes the width") \
    X(LIN_TOO_MANY_STEPS, "more step records than the header's n_steps") \
    X(LIN_TOO_MANY_VALUES, "more values than the step or the header's n_values hold") \
    X(LIN_MISSING, "fewer steps or values than the header says") \
    X(LIN_INDEX, "select index not below the step's input width") \
    X(LIN_NOT_FINITE, "step value is NaN or infinite") \
    X(LIN_OUTPUT, "the last step's width does not fit the model kind, n_outputs and proba") \
    X(LIN_MAX_WIDTH, "max_width is not the widest of n_features and every step's n_out")

// emlmixture
#define MPYML_ERRORS_MIXTURE(X) \
    X(MIX_HEADER, "bad header: kind, covariance type, n_features or n_components (1..65535) or threshold") \
    X(MIX_ROW_WIDTH, "wrong number of values in the row") \
    X(MIX_TOO_MANY_ROWS, "more rows than the header says") \
    X(MIX_MISSING_ROWS, "fewer rows than the header says") \
    X(MIX_NOT_FINITE, "value is NaN or infinite") \
    X(MIX_HEX64, "expected 16 hex digits (IEEE-754 float64 bits)") \
    X(MIX_COUNT, "k-means count must be 0..16777216")

// Error lists end
#define MPYML_ERRORS(X) MPYML_ERRORS_COMMON(X) MPYML_ERRORS_TREES(X) MPYML_ERRORS_IIR(X) MPYML_ERRORS_FFT(X) MPYML_ERRORS_NEIGHBORS(X) MPYML_ERRORS_NETS(X) MPYML_ERRORS_LINEAR(X) MPYML_ERRORS_MIXTURE(X)

#define MPYML_ERROR_ENUM(name, message) MPYML_ERR_##name,
typedef enum {
    MPYML_ERRORS(MPYML_ERROR_ENUM)
    MPYML_ERR_COUNT
} mpyml_err_t;
#define MPYML_OK MPYML_ERR_OK
#undef MPYML_ERROR_ENUM

#ifndef MPYML_ERROR_MESSAGES
#define MPYML_ERROR_MESSAGES MPYML_ERRORS
#endif

// The messages of MPYML_ERROR_MESSAGES as one string, each followed by a NUL, and their codes in
// the same order: a lookup is a short loop, where a switch costs a jump-table entry, a load and a
// pointer per message (about 8 bytes each on Thumb-2). Its own section, so that
// benchmarks/footprint.py counts it with the other message strings.
#define MPYML_ERROR_CODE(name, message) MPYML_ERR_##name,
#define MPYML_ERROR_TEXT(name, message) message "\0"
typedef char mpyml_err_codes_fit_a_byte[MPYML_ERR_COUNT <= 256 ? 1 : -1];

static inline const char *mpyml_error_message(mpyml_err_t err) {
    static const uint8_t codes[] = { MPYML_ERROR_MESSAGES(MPYML_ERROR_CODE) };
    static const char texts[] __attribute__((section(".rodata.mpyml_messages"))) = MPYML_ERROR_MESSAGES(MPYML_ERROR_TEXT) "error without a message in this module";
    const char *text = texts;
    for (size_t i = 0; i < sizeof codes && codes[i] != err; i++) {
        while (*text++ != '\0') {
        }
    }
    return text;
}
#undef MPYML_ERROR_CODE
#undef MPYML_ERROR_TEXT

static inline float mpyml_f32_from_bits(uint32_t bits) {
    union { uint32_t u; float f; } v;
    v.u = bits;
    return v.f;
}

static inline uint32_t mpyml_f32_to_bits(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    return v.u;
}

static inline int mpyml_is_finite(float f) {
    return (mpyml_f32_to_bits(f) & 0x7f800000u) != 0x7f800000u;
}

// Unsigned division by shift-and-subtract. armv6m has no divide instruction
// and libgcc's division helpers do not link into natmods there.
static inline uint32_t mpyml_udiv(uint32_t n, uint32_t d, uint32_t *remainder) {
    uint32_t q = 0, r = 0;
    for (int bit = 31; bit >= 0; bit--) {
        r = (r << 1) | ((n >> bit) & 1u);
        if (r >= d) {
            r -= d;
            q |= 1u << bit;
        }
    }
    if (remainder != NULL) {
        *remainder = r;
    }
    return q;
}

// Parses exactly 8 hex digits (either case) into *bits.
static inline mpyml_err_t mpyml_parse_hex32(const char *text, size_t len, uint32_t *bits) {
    if (len != 8) {
        return MPYML_ERR_BAD_HEX;
    }
    uint32_t value = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        uint32_t digit;
        if (c >= '0' && c <= '9') {
            digit = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = (uint32_t)(c - 'A' + 10);
        } else {
            return MPYML_ERR_BAD_HEX;
        }
        value = (value << 4) | digit;
    }
    *bits = value;
    return MPYML_OK;
}

#endif // MPYML_COMMON_H
