// emltrees: MicroPython glue for the portable forest core (../common/mpyml_trees.h).
// Parses arguments, checks buffers, owns the model's one memory block and raises
// exceptions, and reads the model file with the C record reader (../common/mpyml_records_glue.h).
#include "py/dynruntime.h"

// The features of the model files this build reads. The full build has every one. `mpyml build
// --for FILE...` (exporter/mpyml/build.py, trees_features) makes a trimmed build for those files:
// it defines MPYML_TREES_TRIMMED and, as 1, only the features they need; trees_read refuses a
// file that needs another, naming it. Hard voting on int16 features is in every build.
//   MPYML_TREES_WITH_FLOAT32     float32 features: float32 thresholds and NaN directions
//   MPYML_TREES_WITH_SOFT        soft voting, leaves as class counts (compact pairs, exact float64 ties)
//   MPYML_TREES_WITH_SOFT_EXACT  soft voting, leaves as float64 probabilities
//   MPYML_TREES_WITH_SAMME       AdaBoost (SAMME)
//   MPYML_TREES_WITH_REGRESSOR   forest regressors (the mean of the trees' leaf values)
//   MPYML_TREES_WITH_BOOST       gradient boosting and IsolationForest (decision_function, score_samples)
//   MPYML_TREES_WITH_STEPS       pipeline steps before the forest
#ifdef MPYML_TREES_TRIMMED
#define MPYML_TREES_BY_DEFAULT 0
#else
#define MPYML_TREES_BY_DEFAULT 1
#endif
#ifndef MPYML_TREES_WITH_FLOAT32
#define MPYML_TREES_WITH_FLOAT32 MPYML_TREES_BY_DEFAULT
#endif
#ifndef MPYML_TREES_WITH_SOFT
#define MPYML_TREES_WITH_SOFT MPYML_TREES_BY_DEFAULT
#endif
#ifndef MPYML_TREES_WITH_SOFT_EXACT
#define MPYML_TREES_WITH_SOFT_EXACT MPYML_TREES_BY_DEFAULT
#endif
#ifndef MPYML_TREES_WITH_SAMME
#define MPYML_TREES_WITH_SAMME MPYML_TREES_BY_DEFAULT
#endif
#ifndef MPYML_TREES_WITH_REGRESSOR
#define MPYML_TREES_WITH_REGRESSOR MPYML_TREES_BY_DEFAULT
#endif
#ifndef MPYML_TREES_WITH_BOOST
#define MPYML_TREES_WITH_BOOST MPYML_TREES_BY_DEFAULT
#endif
#ifndef MPYML_TREES_WITH_STEPS
#define MPYML_TREES_WITH_STEPS MPYML_TREES_BY_DEFAULT
#endif

// The error messages this module carries (see mpyml_common.h).
#if MPYML_TREES_WITH_STEPS
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_COMMON(X) MPYML_ERRORS_TREES(X) MPYML_ERRORS_LINEAR(X)
#else
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_COMMON(X) MPYML_ERRORS_TREES(X)
#endif

#include "mpyml_glue.h"
#include "mpyml_records_glue.h"
#if MPYML_TREES_WITH_STEPS
#include "mpyml_steps_glue.h"
#else
#include "mpyml_linear.h"
#endif
#include "mpyml_trees.h"

enum { MODEL_EMPTY, MODEL_LOADING, MODEL_READY };

typedef struct {
    mp_obj_base_t base;
    uint32_t max_trees, max_nodes, max_leaves;
    uint32_t state;
    void *block;                // owns every array of `forest`
    void *scratch;              // while loading: mpyml_forest_load_bytes of scratch, else NULL
    void *leaf_scratch;         // while loading soft-voting leaves: one leaf's values, else NULL
    mpyml_forest_t forest;
    mp_obj_t classes;           // the class labels (a list), or None
    // Pipeline steps that run before the forest (format version 2), or NULL.
    void *steps_block;          // owns every array of `steps`
    mpyml_linear_t steps;
} model_t;

// Not static: mpy_ld cannot relocate static bss variables.
mp_obj_full_type_t model_type;

static model_t *get_model(mp_obj_t self_in) {
    // Methods taken from the type (emltrees.Model.predict(obj, x)) can be handed any object.
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emltrees model, got %s", 1, mpyml_type_name(self_in));
    }
    return (model_t *)MP_OBJ_TO_PTR(self_in);
}

// Frees what only loading needs.
static void model_free_scratch(model_t *self) {
    if (self->scratch != NULL) {
        m_free(self->scratch);
        self->scratch = NULL;
    }
    if (self->leaf_scratch != NULL) {
        m_free(self->leaf_scratch);
        self->leaf_scratch = NULL;
    }
}

static void model_unload(model_t *self) {
    self->state = MODEL_EMPTY;
    self->classes = mp_const_none;
    if (self->block != NULL) {
        m_free(self->block);
        self->block = NULL;
    }
    model_free_scratch(self);
    if (self->steps_block != NULL) {
        m_free(self->steps_block);
        self->steps_block = NULL;
    }
}

// The core's predict functions choose by the forest's kind and dtype at run time. A trimmed build
// tells the compiler which ones a loaded forest can have (trees_read refuses the others), so that
// the others' code drops out; the full build assumes nothing.
#define MPYML_ASSUME(condition) do { if (!(condition)) { __builtin_unreachable(); } } while (0)

static inline void assume_built(const mpyml_forest_t *f) {
    uint32_t kind = f->shape.kind;  // one condition: gcc keeps the range of one, not of several in a row
    MPYML_ASSUME((MPYML_TREES_WITH_SOFT || kind != MPYML_TREES_SOFT_VOTE) &&
                 (MPYML_TREES_WITH_SOFT_EXACT || kind != MPYML_TREES_SOFT_EXACT) &&
                 (MPYML_TREES_WITH_SAMME || kind != MPYML_TREES_SAMME) &&
                 (MPYML_TREES_WITH_REGRESSOR || kind != MPYML_TREES_REGRESSOR) &&
                 (MPYML_TREES_WITH_BOOST || kind != MPYML_TREES_BOOST));
    MPYML_ASSUME(MPYML_TREES_WITH_FLOAT32 || f->shape.dtype == MPYML_DTYPE_INT16);
}

// The core's functions a trimmed build reaches through these wrappers: flatten inlines them early
// enough for the assumptions to drop the branches of the kinds it lacks. Not with boosting: its
// paths inlined into every wrapper make the module larger than the full build.
#if defined(MPYML_TREES_TRIMMED) && !MPYML_TREES_WITH_BOOST
#define MPYML_TREES_FOLD __attribute__((flatten))
#else
#define MPYML_TREES_FOLD
#endif

static inline MPYML_TREES_FOLD uint32_t predict_class(const mpyml_forest_t *f, const void *x) {
    assume_built(f);
    return mpyml_forest_predict_class(f, x);
}

static inline MPYML_TREES_FOLD void predict_proba(const mpyml_forest_t *f, const void *x, float *out) {
    assume_built(f);
    mpyml_forest_predict_proba(f, x, out);
}

static inline MPYML_TREES_FOLD float predict_value(const mpyml_forest_t *f, const void *x) {
    assume_built(f);
    return mpyml_forest_predict_value(f, x);
}

static inline MPYML_TREES_FOLD mpyml_err_t check_complete(mpyml_forest_t *f) {
    assume_built(f);
    return mpyml_forest_check_complete(f);
}

// The forest is a regressor (a forest regressor, or a boosted one).
static inline int is_regressor(const mpyml_forest_t *f) {
    return (MPYML_TREES_WITH_REGRESSOR || MPYML_TREES_WITH_BOOST) && mpyml_trees_is_regressor(&f->shape);
}

// The forest is boosted (gradient boosting or IsolationForest).
static inline int is_boosted(const mpyml_forest_t *f) {
    return MPYML_TREES_WITH_BOOST && f->shape.kind == MPYML_TREES_BOOST;
}

static const mpyml_forest_t *ready_forest(model_t *self) {
    if (self->state != MODEL_READY) {
        mp_raise_msg(&mp_type_RuntimeError, "no model loaded: call emltrees.load_model(model, file) first (a failed load leaves the model empty)");
    }
    assume_built(&self->forest);
    return &self->forest;
}

// The model has pipeline steps before the forest.
static inline int has_steps(const model_t *self) {
    return MPYML_TREES_WITH_STEPS && self->steps_block != NULL;
}

// The caller's rows are raw features: the steps' input when the model has steps, else the forest's.
static int feature_typecode(const model_t *self) {
    return has_steps(self) || (MPYML_TREES_WITH_FLOAT32 && self->forest.shape.dtype == MPYML_DTYPE_FLOAT32) ? 'f' : 'h';
}

static uint32_t input_features(const model_t *self) {
    return has_steps(self) ? self->steps.shape.n_features : self->forest.shape.n_features;
}

static size_t row_bytes(const model_t *self) {
    return input_features(self) * (feature_typecode(self) == 'f' ? 4 : 2);
}

// The forest's input for one raw row: the row itself, or the steps' output (in the steps' work rows).
static inline const void *forest_input(const model_t *self, const void *row) {
    return has_steps(self) ? (const void *)mpyml_linear_run(&self->steps, (const float *)row) : row;
}

// The feature rows in `x_in`: checks typecode and that its length is a whole number of rows.
static size_t get_rows(const model_t *self, mp_obj_t x_in, const char *what, mp_buffer_info_t *buf) {
    size_t n = mpyml_get_array(x_in, feature_typecode(self), what, MP_BUFFER_READ, buf);
    uint32_t remainder;
    size_t n_rows = mpyml_udiv((uint32_t)n, input_features(self), &remainder);
    if (n == 0 || remainder != 0) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: expected a multiple of n_features=%d values, got %d", 3,
            mpyml_str(what), mp_obj_new_int(input_features(self)), mp_obj_new_int(n));
    }
    return n_rows;
}

static const void *get_one_row(const model_t *self, mp_obj_t x_in) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(x_in, feature_typecode(self), "x", MP_BUFFER_READ, &buf);
    if (n != input_features(self)) {
        mpyml_raise_fmt(&mp_type_ValueError, "x: expected %d features, got %d", 2, mp_obj_new_int(input_features(self)), mp_obj_new_int(n));
    }
    return forest_input(self, buf.buf);
}

static void check_out_length(const char *what, size_t expected, size_t got) {
    if (expected != got) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: expected %d items, got %d", 3, mpyml_str(what), mp_obj_new_int(expected), mp_obj_new_int(got));
    }
}

static void check_classifier(const mpyml_forest_t *f, const char *method) {
    if (is_regressor(f)) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: the loaded model is a regressor; use predict", 1, mpyml_str(method));
    }
}

// emltrees.new(max_trees, max_nodes, max_leaves)
static mp_obj_t emltrees_new(mp_obj_t trees_in, mp_obj_t nodes_in, mp_obj_t leaves_in) {
    mp_int_t capacity[3] = { mpyml_get_arg_int(trees_in, "emltrees.new: max_trees"),
                             mpyml_get_arg_int(nodes_in, "emltrees.new: max_nodes"),
                             mpyml_get_arg_int(leaves_in, "emltrees.new: max_leaves") };
    static const char *const names[3] = { "max_trees", "max_nodes", "max_leaves" };
    for (int i = 0; i < 3; i++) {
        if (capacity[i] < (i == 1 ? 0 : 1)) {
            mpyml_raise_fmt(&mp_type_ValueError, "emltrees.new: %s must be at least %d, got %d", 3,
                mpyml_str(names[i]), mp_obj_new_int(i == 1 ? 0 : 1), mp_obj_new_int(capacity[i]));
        }
        if (capacity[i] > 0x7fffffff) {  // kept in 32 bits: 2**32 would be 0
            mpyml_raise_fmt(&mp_type_ValueError, "emltrees.new: %s must be at most 2147483647, got %d", 2,
                mpyml_str(names[i]), mp_obj_new_int(capacity[i]));
        }
    }
    model_t *self = mpyml_malloc(sizeof(model_t), "the model object");
    self->base.type = (const mp_obj_type_t *)&model_type;
    self->max_trees = (uint32_t)capacity[0];
    self->max_nodes = (uint32_t)capacity[1];
    self->max_leaves = (uint32_t)capacity[2];
    self->state = MODEL_EMPTY;
    self->block = NULL;
    self->scratch = NULL;
    self->leaf_scratch = NULL;
    self->steps_block = NULL;
    self->classes = mp_const_none;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_3(emltrees_new_obj, emltrees_new);

static void check_capacity(const char *what, uint32_t needed, uint32_t capacity) {
    if (needed > capacity) {
        mpyml_raise_fmt(&mp_type_ValueError, "model needs %d %s but emltrees.new() was given capacity for %d (%d short)", 4,
            mp_obj_new_int(needed), mpyml_str(what), mp_obj_new_int(capacity), mp_obj_new_int(needed - capacity));
    }
}

// ---------------------------------------------------------------- the model file (docs/formats.md, mpyml-trees 3)
// Read by the C record reader (mpyml_records_glue.h) record by record into the forest; every
// record is validated by the core's mpyml_forest_add_* before the next is read.

// A decimal integer field of any size: a value beyond int64 reads as the int64 limit of its
// sign, which every range check below refuses.
static int64_t field_int(const mpyml_field_t *f, const char *what) {
    int64_t value = 0;
    mpyml_decimal_status_t status = mpyml_decimal_value(&f->decimal, INT64_MIN, INT64_MAX, &value);
    if (status == MPYML_DECIMAL_SYNTAX) {
        records_fail("%s: expected a decimal integer, got '%20F'", what, f);
    }
    return status == MPYML_DECIMAL_RANGE ? (f->decimal.negative ? INT64_MIN : INT64_MAX) : value;
}

// A decimal integer within lo..hi, else ValueError(err).
static int64_t field_int_err(const mpyml_field_t *f, const char *what, int64_t lo, int64_t hi, mpyml_err_t err) {
    int64_t value = field_int(f, what);
    if (value < lo || value > hi) {
        mpyml_raise_err(err);
    }
    return value;
}

// A header count '<key>,<n>', its range checked where the shape is.
static int64_t header_count(mpyml_records_t *r, const char *key) {
    mpyml_field_t value;
    records_value(r, key, &value);
    return field_int(&value, key);
}

// A root or child reference: leaves -32768..-1, nodes up to MPYML_TREES_MAX_NODES.
static int32_t field_ref(const mpyml_field_t *f, const char *what) {
    return (int32_t)field_int_err(f, what, -(int64_t)MPYML_TREES_MAX_LEAVES, MPYML_TREES_MAX_NODES, MPYML_ERR_NODE_REF_RANGE);
}

#if MPYML_TREES_WITH_SAMME || MPYML_TREES_WITH_BOOST
// 16 hex digits: the float64 with those IEEE-754 bits.
static double field_hex64(const mpyml_field_t *f) {
    uint64_t bits = 0;
    if (f->len > f->n_kept || mpyml_parse_hex64((const char *)f->text, f->len, &bits) != MPYML_OK) {
        mpyml_raise_err(MPYML_ERR_BAD_HEX64);
    }
    return mpyml_f64_from_bits(bits);
}
#endif

#if MPYML_TREES_WITH_STEPS
// The field is the decimal text of n as the writer writes it (no sign but '-', no leading zero).
static int field_is_int(const mpyml_field_t *f, int64_t n) {
    int64_t value;
    uint32_t digit = f->decimal.negative ? 1 : 0;
    return mpyml_decimal_value(&f->decimal, INT64_MIN, INT64_MAX, &value) == MPYML_DECIMAL_OK && value == n &&
        (f->text[digit] != '0' || f->len == digit + 1);
}
#endif

// The header values in mpyml_forest_shape_t's order from kind to n_totals, and for each its
// largest value and the error above it.
enum { H_KIND, H_DTYPE, H_FEATURES, H_CLASSES, H_TREES, H_NODES, H_LEAVES, H_GROUPS, H_LINK, H_SUMS64,
       H_THRESHOLD_BYTES, H_PAIRS, H_MAX_COUNT, H_TOTALS, N_HEADER };

// Checks the header's shape against the model's capacity and allocates the forest for it.
static void forest_begin(model_t *self, const int64_t v[N_HEADER]) {
    static const mpyml_err_t errors[N_HEADER] = { MPYML_ERR_BAD_KIND, MPYML_ERR_BAD_DTYPE, MPYML_ERR_TREES_N_FEATURES,
        MPYML_ERR_BAD_N_CLASSES, MPYML_ERR_TOO_BIG, MPYML_ERR_TOO_BIG, MPYML_ERR_BAD_N_LEAVES,
        MPYML_ERR_BOOST_SHAPE, MPYML_ERR_BOOST_SHAPE, MPYML_ERR_BOOST_SHAPE, MPYML_ERR_THRESHOLD_BYTES,
        MPYML_ERR_LEAF_PAIRS, MPYML_ERR_LEAF_PAIRS, MPYML_ERR_LEAF_PAIRS };
    static const uint32_t highs[N_HEADER] = { 255, 255, MPYML_TREES_MAX_FEATURES, MPYML_TREES_MAX_CLASSES,
        MPYML_TREES_MAX_NODES, MPYML_TREES_MAX_NODES, MPYML_TREES_MAX_LEAVES, MPYML_TREES_MAX_CLASSES, MPYML_LINK_ISOLATION, 1,
        4, MPYML_TREES_MAX_PAIRS, MPYML_TREES_MAX_COUNT, MPYML_TREES_MAX_LEAVES };
    for (int i = 0; i < N_HEADER; i++) {
        if (v[i] < 0) {
            records_fail("header values must be non-negative integers");
        }
        if (v[i] > highs[i]) {
            mpyml_raise_err(errors[i]);
        }
    }
    mpyml_forest_shape_t shape;
    shape.kind = (uint8_t)v[H_KIND];
    shape.dtype = (uint8_t)v[H_DTYPE];
    shape.n_features = (uint32_t)v[H_FEATURES];
    shape.n_classes = (uint16_t)v[H_CLASSES];
    shape.n_trees = (uint32_t)v[H_TREES];
    shape.n_nodes = (uint32_t)v[H_NODES];
    shape.n_leaves = (uint32_t)v[H_LEAVES];
    shape.n_groups = (uint16_t)v[H_GROUPS];
    shape.link = (uint8_t)v[H_LINK];
    shape.sums64 = (uint8_t)v[H_SUMS64];
    shape.threshold_bytes = (uint8_t)v[H_THRESHOLD_BYTES];
    shape.n_pairs = (uint32_t)v[H_PAIRS];
    shape.max_count = (uint32_t)v[H_MAX_COUNT];
    shape.n_totals = (uint32_t)v[H_TOTALS];
    mpyml_check(mpyml_forest_check_shape(&shape));
    check_capacity("trees", shape.n_trees, self->max_trees);
    check_capacity("decision nodes", shape.n_nodes, self->max_nodes);
    check_capacity("leaves", shape.n_leaves, self->max_leaves);
    self->block = mpyml_malloc(mpyml_forest_bytes(&shape), "the model");
    size_t scratch = mpyml_forest_load_bytes(&shape);
    self->scratch = scratch ? mpyml_malloc(scratch, "loading the model") : NULL;
    // The host mirror's float32(1.0 / n_trees), by MicroPython's division in the port's float type:
    // float32(1 / n) is the same from a double and from a float quotient for every n up to 2**24.
    mp_obj_t tree_weight = mp_binary_op(MP_BINARY_OP_TRUE_DIVIDE, MP_OBJ_NEW_SMALL_INT(1), mp_obj_new_int(shape.n_trees));
    mpyml_forest_bind(&self->forest, &shape, mp_obj_get_float_to_f(tree_weight), self->block, self->scratch);
    self->state = MODEL_LOADING;
}

// (kind, voting, leaf_values) -> mpyml_trees_kind_t, 0 where the triple is not a model kind.
static const uint8_t trees_kinds[2][5][4] = {
    // leaf_values: counts, class, float32, float64; voting: soft, hard, mean, samme, boost
    { { 1, 0, 0, 5 }, { 0, 2, 0, 0 }, { 0, 0, 0, 0 }, { 0, 4, 0, 0 }, { 0, 0, 6, 6 } },  // classifier
    { { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 3, 0 }, { 0, 0, 0, 0 }, { 0, 0, 6, 6 } },  // regressor
};

#if MPYML_TREES_WITH_BOOST
// The 'base,<hex64>,...' record of a boosted model: its first field, then each group's base score.
static void take_base(void *ctx, const mpyml_field_t *field, uint32_t index) {
    if (index == 0) {
        if (!mpyml_field_is(field, "base")) {
            records_fail("expected the 'base,...' line, got '%20F'", field);
        }
        return;
    }
    mpyml_check(mpyml_forest_add_base(ctx, field_hex64(field)));
}

// The boost line's threshold, scale and offset (fields 3..5), then the base record.
static inline void read_boost(mpyml_records_t *r, mpyml_forest_t *f, const mpyml_field_t *fields) {
    mpyml_check(mpyml_forest_set_boost(f, field_hex64(&fields[3]), field_hex64(&fields[4]), field_hex64(&fields[5])));
    uint32_t n = (uint32_t)f->shape.n_groups + 1;
    records_what_t what = records_what("'base' and one float64 per group", 0);
    uint32_t got = records_row(r, what, take_base, f, n, ROW_END_FIELD);
    if (got != n) {
        records_fail("%W needs %d fields, got %d: '%H'", what, (int)n, (int)got, &r->line);
    }
}
#endif

#if MPYML_TREES_WITH_STEPS
// Allocates the steps of a steps section (records_steps_section) for its checked header.
static mpyml_linear_t *steps_begin(void *ctx, const mpyml_linear_shape_t *shape) {
    model_t *self = ctx;
    if (self->forest.shape.dtype != MPYML_DTYPE_FLOAT32) {
        records_fail("steps need a float32 forest");
    }
    mpyml_check(mpyml_linear_check_shape(shape));
    self->steps_block = mpyml_malloc(mpyml_linear_bytes(shape), "the steps");
    mpyml_linear_bind(&self->steps, shape, self->steps_block);
    return &self->steps;
}
#endif

#if MPYML_TREES_WITH_SOFT || MPYML_TREES_WITH_SOFT_EXACT
// One 'class:<value>' pair of a soft-voting leaf: the class, and the value's field (after the ':').
static uint32_t leaf_pair(const mpyml_forest_t *f, const mpyml_field_t *field, const char *what, mpyml_field_t *value) {
    uint32_t colon = 0;
    while (colon < field->n_kept && field->text[colon] != ':') {
        colon++;
    }
    int64_t c = 0;
    mpyml_decimal_status_t status = mpyml_parse_decimal((const char *)field->text, colon, 0, (int64_t)f->shape.n_classes - 1, &c);
    mpyml_field_reset(value);
    for (uint32_t i = colon + 1; i < field->n_kept; i++) {
        if (field->text[i] == ':') {
            colon = field->n_kept;  // a second ':'
        }
        mpyml_keep_byte(value->text, &value->n_kept, &value->n_chars_kept, MPYML_TEXT_FIELD_CHARS, field->text[i]);
        mpyml_decimal_push(&value->decimal, field->text[i]);
    }
    value->len = value->len_solid = value->n_kept;
    if (colon >= field->n_kept || field->len > field->n_kept) {
        records_fail("leaf '%30F': expected class:%s pairs", field, what);
    }
    if (status == MPYML_DECIMAL_SYNTAX) {
        records_fail("a leaf class: expected a decimal integer, got '%20F'", field);
    }
    if (status == MPYML_DECIMAL_RANGE) {
        records_fail("leaf '%30F': class must be 0..%d, once", field, (int)f->shape.n_classes - 1);
    }
    return (uint32_t)c;
}

// A soft-voting leaf's pairs, gathered for mpyml_forest_add_leaf_counts / _exact in the model's
// leaf scratch: n_classes counts, or n_classes x 16 hex digits and n_classes flags.
static void take_leaf_pair(void *ctx, const mpyml_field_t *field, uint32_t index) {
    model_t *self = ctx;
    const mpyml_forest_t *f = &self->forest;
    uint32_t n = f->shape.n_classes;
    mpyml_field_t value;
    (void)index;
    if (f->shape.kind == MPYML_TREES_SOFT_VOTE) {
        uint16_t *counts = self->leaf_scratch;
        uint32_t c = leaf_pair(f, field, "count", &value);
        int64_t w = field_int(&value, "a leaf count");
        if (w < 1 || w > 65535 || counts[c]) {
            records_fail("leaf '%30F': class must be 0..%d, once, and its count 1..65535", field, (int)n - 1);
        }
        counts[c] = (uint16_t)w;
    } else {
        uint8_t *hex = self->leaf_scratch, *seen = hex + 16 * n;
        uint32_t c = leaf_pair(f, field, "<16 hex digits>", &value);
        if (value.len != 16 || seen[c]) {
            records_fail("leaf '%30F': class must be 0..%d, once, with 16 hex digits", field, (int)n - 1);
        }
        seen[c] = 1;
        for (int i = 0; i < 16; i++) {
            hex[16 * c + i] = value.text[i];
        }
    }
}

static void read_soft_leaf(mpyml_records_t *r, model_t *self) {
    mpyml_forest_t *f = &self->forest;
    uint32_t n = f->shape.n_classes;
    int counts = f->shape.kind == MPYML_TREES_SOFT_VOTE;
    uint8_t *scratch = self->leaf_scratch;
    for (uint32_t i = 0; i < n * (counts ? 2 : 17); i++) {
        scratch[i] = counts || i >= 16 * n ? 0 : '0';
    }
    records_row(r, records_what("a leaf", 0), take_leaf_pair, self, 0, ROW_END_FIELD | ROW_TAKE_ALL);
    mpyml_check(counts ? mpyml_forest_add_leaf_counts(f, self->leaf_scratch, n)
                : mpyml_forest_add_leaf_exact(f, self->leaf_scratch, 16 * n));
}
#endif

// A leaf of one field: a class, a regressor's value or a boosted tree's value.
static void read_leaf(mpyml_records_t *r, mpyml_forest_t *f) {
    uint32_t kind = f->shape.kind;
    mpyml_field_t field;
    records_fields(r, 1, records_what("a leaf", 0), &field, 1);
#if MPYML_TREES_WITH_BOOST
    if (kind == MPYML_TREES_BOOST) {
        double value;
        if (f->shape.sums64) {
            value = field_hex64(&field);
        } else {
            uint32_t bits = 0;
            mpyml_check(field.len == 8 && field.n_kept == 8 ? mpyml_parse_hex32((const char *)field.text, 8, &bits) : MPYML_ERR_BAD_HEX);
            value = (double)mpyml_f32_from_bits(bits);
        }
        mpyml_check(mpyml_forest_add_leaf_boost(f, value));
        return;
    }
#endif
#if MPYML_TREES_WITH_REGRESSOR
    if (kind == MPYML_TREES_REGRESSOR) {
        // A decimal number as the writer writes it (the shortest float32 text, far below the 24
        // characters a field keeps), read by MicroPython's float() as before.
        const char *text = (const char *)field.text;
        uint32_t digit = text[0] == '-' ? 1 : 0;
        if (field.len > field.n_kept || !(text[digit] >= '0' && text[digit] <= '9') || !mpyml_is_float_text(text, field.len)) {
            records_fail("a leaf value: expected a decimal number, got '%20F'", &field);
        }
        mp_obj_t s = mp_obj_new_str(text, field.len);
        mp_obj_t value = mp_call_function_n_kw(mp_load_global(MP_QSTR_float), 1, 0, &s);
        mpyml_check(mpyml_forest_add_leaf_value(f, mp_obj_get_float_to_f(value)));
        return;
    }
#endif
    (void)kind;
    mpyml_check(mpyml_forest_add_leaf_class(f, (uint32_t)field_int_err(&field, "a leaf class", 0, MPYML_TREES_MAX_CLASSES, MPYML_ERR_CLASS_RANGE)));
}

static void read_tree(mpyml_records_t *r, mpyml_forest_t *f) {
    mpyml_field_t fields[3];
#if MPYML_TREES_WITH_SAMME
    if (f->shape.kind == MPYML_TREES_SAMME) {
        records_fields(r, 3, records_what("a tree record 'root,<vote>,<other>'", 0), fields, 3);
        int32_t root = field_ref(&fields[0], "a tree root");
        double vote = field_hex64(&fields[1]), other = field_hex64(&fields[2]);
        mpyml_check(mpyml_forest_add_tree(f, root, vote, other));
        return;
    }
#endif
#if MPYML_TREES_WITH_BOOST
    if (f->shape.kind == MPYML_TREES_BOOST) {
        records_fields(r, 2, records_what("a tree record 'root,<group>'", 0), fields, 2);
        int32_t root = field_ref(&fields[0], "a tree root");
        uint32_t group = (uint32_t)field_int_err(&fields[1], "a tree's group", 0, MPYML_TREES_MAX_CLASSES, MPYML_ERR_BOOST_VALUE);
        mpyml_check(mpyml_forest_add_boost_tree(f, root, group));
        return;
    }
#endif
    records_fields(r, 1, records_what("a tree root", 0), fields, 1);
    mpyml_check(mpyml_forest_add_tree(f, field_ref(&fields[0], "a tree root"), 0.0, 0.0));
}

static void read_node(mpyml_records_t *r, mpyml_forest_t *f) {
    mpyml_field_t fields[5];
    int float32 = MPYML_TREES_WITH_FLOAT32 && f->shape.dtype == MPYML_DTYPE_FLOAT32;
    int nan_left = 0;
    int32_t threshold;
    if (float32) {
        records_fields(r, 5, records_what("a node 'feature,threshold,left,right,l|r'", 0), fields, 5);
        nan_left = mpyml_field_is(&fields[4], "l");
        if (!nan_left && !mpyml_field_is(&fields[4], "r")) {
            records_fail("a node's NaN direction must be 'l' or 'r', got '%10F'", &fields[4]);
        }
    } else {
        records_fields(r, 4, records_what("a node 'feature,threshold,left,right'", 0), fields, 4);
    }
    uint32_t feature = (uint32_t)field_int_err(&fields[0], "a feature index", 0, MPYML_TREES_MAX_FEATURES, MPYML_ERR_FEATURE_RANGE);
    if (float32) {
        threshold = (int32_t)records_hex32(&fields[1]);
    } else {
        threshold = (int32_t)field_int_err(&fields[1], "a threshold", INT16_MIN, INT16_MAX, MPYML_ERR_THRESHOLD_RANGE);
    }
    int32_t left = field_ref(&fields[2], "a child"), right = field_ref(&fields[3], "a child");
    mpyml_check(mpyml_forest_add_node(f, feature, threshold, left, right, nan_left));
}

// Refuses a file that needs a feature this (trimmed) build lacks.
static inline NORETURN void fail_not_built(const char *feature) {
    records_fail("this emltrees is built without %s, which this model file needs: build it with "
                 "'mpyml build --for' and this file, or the full one with 'mpyml build --arch ARCH'", feature);
}

static inline void check_built(int64_t kind) {
    if ((!MPYML_TREES_WITH_SOFT && kind == MPYML_TREES_SOFT_VOTE) || (!MPYML_TREES_WITH_SOFT_EXACT && kind == MPYML_TREES_SOFT_EXACT)) {
        fail_not_built(kind == MPYML_TREES_SOFT_VOTE ? "soft voting with class counts (MPYML_TREES_WITH_SOFT)"
                       : "soft voting with float64 leaves (MPYML_TREES_WITH_SOFT_EXACT)");
    }
    if (!MPYML_TREES_WITH_SAMME && kind == MPYML_TREES_SAMME) {
        fail_not_built("AdaBoost SAMME (MPYML_TREES_WITH_SAMME)");
    }
    if (!MPYML_TREES_WITH_REGRESSOR && kind == MPYML_TREES_REGRESSOR) {
        fail_not_built("forest regressors (MPYML_TREES_WITH_REGRESSOR)");
    }
    if (!MPYML_TREES_WITH_BOOST && kind == MPYML_TREES_BOOST) {
        fail_not_built("gradient boosting and IsolationForest (MPYML_TREES_WITH_BOOST)");
    }
}

static void trees_read(mpyml_records_t *r, void *ctx) {
    model_t *self = ctx;
    model_unload(self);
    mpyml_field_t fields[6];
    records_value(r, "mpyml-trees", &fields[0]);
    if (!mpyml_field_is(&fields[0], "3")) {
        records_fail(mpyml_field_is(&fields[0], "1") || mpyml_field_is(&fields[0], "2")
            ? "format version %12F is no longer read by this emltrees (it reads version 3): export the model again"
            : "format version %12F is not supported (this emltrees reads version 3)", &fields[0]);
    }
    records_value(r, "kind", &fields[0]);
    records_value(r, "voting", &fields[1]);
    records_value(r, "leaf_values", &fields[2]);
    int model_kind = records_word_index(&fields[0], "classifier regressor");
    int voting = records_word_index(&fields[1], "soft hard mean samme boost");
    int leaf_values = records_word_index(&fields[2], "counts class float32 float64");
    int64_t v[N_HEADER];
    for (int i = 0; i < N_HEADER; i++) {
        v[i] = 0;
    }
    v[H_KIND] = model_kind < 0 || voting < 0 || leaf_values < 0 ? 0 : trees_kinds[model_kind][voting][leaf_values];
    if (v[H_KIND] == 0) {
        records_fail("unknown model kind '%20F' with voting '%20F' and leaf values '%20F'", &fields[0], &fields[1], &fields[2]);
    }
    check_built(v[H_KIND]);
    int classifier = model_kind == 0, boost = MPYML_TREES_WITH_BOOST && v[H_KIND] == MPYML_TREES_BOOST;
    v[H_SUMS64] = boost && leaf_values == 3;
    v[H_DTYPE] = 1 + records_choice(r, "dtype", "int16 float32", "int16 or float32");  // MPYML_DTYPE_INT16, _FLOAT32
    if (!MPYML_TREES_WITH_FLOAT32 && v[H_DTYPE] == MPYML_DTYPE_FLOAT32) {
        fail_not_built("float32 features (MPYML_TREES_WITH_FLOAT32)");
    }
    records_value(r, "threshold_dtype", &fields[0]);
    int threshold_dtype = records_word_index(&fields[0], "int8 int16 float32");
    if (threshold_dtype < 0 || (threshold_dtype == 2) != (v[H_DTYPE] == MPYML_DTYPE_FLOAT32)) {
        mpyml_raise_err(MPYML_ERR_THRESHOLD_BYTES);
    }
    v[H_THRESHOLD_BYTES] = 1 << threshold_dtype;
    v[H_FEATURES] = header_count(r, "n_features");
    if (classifier) {
        v[H_CLASSES] = header_count(r, "n_classes");
    } else if (header_count(r, "n_outputs") != 1) {
        records_fail("n_outputs must be 1 (single-output regressors only)");
    }
    v[H_TREES] = header_count(r, "n_trees");
    v[H_NODES] = header_count(r, "n_nodes");
    v[H_LEAVES] = header_count(r, "n_leaves");
    int64_t n_steps = header_count(r, "n_steps");
    if (!MPYML_TREES_WITH_STEPS && n_steps != 0) {
        fail_not_built("pipeline steps (MPYML_TREES_WITH_STEPS)");
    }
    if (MPYML_TREES_WITH_SOFT && v[H_KIND] == MPYML_TREES_SOFT_VOTE) {
        records_fields(r, 4, records_what("'pairs,<n_pairs>,<max_count>,<n_totals>'", 0), fields, 4);
        if (!mpyml_field_is(&fields[0], "pairs")) {
            records_fail("expected 'pairs,<n_pairs>,<max_count>,<n_totals>', got '%20F'", &fields[0]);
        }
        v[H_PAIRS] = field_int(&fields[1], "n_pairs");
        v[H_MAX_COUNT] = field_int(&fields[2], "max_count");
        v[H_TOTALS] = field_int(&fields[3], "n_totals");
    }
    if (boost) {
        records_fields(r, 6, records_what("'boost,<link>,<n_groups>,<threshold>,<scale>,<offset>'", 0), fields, 6);
        v[H_LINK] = records_word_index(&fields[1], "identity exp logistic softmax isolation");  // mpyml_link_t
        if (!mpyml_field_is(&fields[0], "boost") || v[H_LINK] < 0) {
            records_fail("expected 'boost,<link>,...' with link identity, exp, logistic, softmax or isolation, got '%20F,%20F'",
                &fields[0], &fields[1]);
        }
        v[H_GROUPS] = field_int(&fields[2], "n_groups");
    }
    forest_begin(self, v);
    mpyml_forest_t *f = &self->forest;
#if MPYML_TREES_WITH_BOOST
    if (boost) {
        read_boost(r, f, fields);
    }
#endif
#if MPYML_TREES_WITH_SAMME
    if (v[H_KIND] == MPYML_TREES_SAMME) {
        records_value(r, "weight_sum", &fields[0]);
        mpyml_check(mpyml_forest_set_weight_sum(f, field_hex64(&fields[0])));
    }
#endif
#if MPYML_TREES_WITH_STEPS
    if (n_steps != 0) {
        uint32_t n_fields = records_fields(r, 5, records_what("'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'", 0), fields, 5);
        if (!field_is_int(&fields[2], n_steps)) {
            records_fail("expected the 'steps,...' line with n_steps=%D, got '%H'", n_steps, &r->line);
        }
        records_steps_section(r, fields, n_fields, f->shape.n_features, steps_begin, self);
    }
#endif
    if (classifier) {
        mp_obj_t classes = records_labels(r, "classes");
        if (mp_obj_get_int(mp_obj_len(classes)) != f->shape.n_classes) {
            records_fail("classes: expected n_classes labels");
        }
        self->classes = classes;
    }
    records_labels(r, "feature_names");  // read for the end record's check; the device does not keep them
    records_section(r, "trees");
    for (uint32_t i = 0; i < f->shape.n_trees; i++) {
        read_tree(r, f);
    }
    records_section(r, "nodes");
    for (uint32_t i = 0; i < f->shape.n_nodes; i++) {
        read_node(r, f);
    }
    records_section(r, "leaves");
#if MPYML_TREES_WITH_SOFT || MPYML_TREES_WITH_SOFT_EXACT
    if (mpyml_trees_is_soft(&f->shape)) {
        self->leaf_scratch = mpyml_malloc((size_t)f->shape.n_classes * (f->shape.kind == MPYML_TREES_SOFT_VOTE ? 2 : 17), "loading the model");
    }
#endif
    for (uint32_t i = 0; i < f->shape.n_leaves; i++) {
#if MPYML_TREES_WITH_SOFT || MPYML_TREES_WITH_SOFT_EXACT
        if (mpyml_trees_is_soft(&f->shape)) {
            read_soft_leaf(r, self);
            continue;
        }
#endif
        read_leaf(r, f);
    }
    records_end(r, "leaf");
    mpyml_check(check_complete(f));
    if (has_steps(self)) {
        mpyml_check(mpyml_linear_check_complete(&self->steps));
    }
    model_free_scratch(self);
    self->state = MODEL_READY;
}

static void trees_undo(void *ctx) {
    model_unload(ctx);
}

// emltrees.load_model(model, f): loads a model file (an open file, or a path) into `model` from emltrees.new().
static mp_obj_t emltrees_load_model(mp_obj_t model_in, mp_obj_t f) {
    if (mp_obj_get_type(model_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "load_model: expected a model from emltrees.new(), got %s", 1, mpyml_type_name(model_in));
    }
    mpyml_read_file(f, trees_read, MP_OBJ_TO_PTR(model_in), trees_undo, "model file", "load_model");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emltrees_load_model_obj, emltrees_load_model);

static mp_obj_t model_unload_method(mp_obj_t self_in) {
    model_unload(get_model(self_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_unload_obj, model_unload_method);

// model.predict(x) -> class index (classifier) or float (regressor)
static mp_obj_t model_predict(mp_obj_t self_in, mp_obj_t x_in) {
    model_t *self = get_model(self_in);
    const mpyml_forest_t *f = ready_forest(self);
    const void *x = get_one_row(self, x_in);
    if (is_regressor(f)) {
        return mp_obj_new_float_from_f(predict_value(f, x));
    }
    return mp_obj_new_int(predict_class(f, x));
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

static void check_proba(const mpyml_forest_t *f, const char *method) {
    check_classifier(f, method);
    if (is_boosted(f) && f->shape.link == MPYML_LINK_ISOLATION) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: an IsolationForest has score_samples and decision_function", 1, mpyml_str(method));
    }
}

// model.decision_function(X, out) / model.score_samples(X, out): boosted models; out is array('f')
// of n_rows * n_groups (decision_function: raw scores, IsolationForest: score_samples - offset_) or
// n_rows (score_samples: IsolationForest only)
static mp_obj_t boost_rows(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in, int score) {
    model_t *self = get_model(self_in);
    const mpyml_forest_t *f = ready_forest(self);
    const char *method = score ? "score_samples" : "decision_function";
    if (!is_boosted(f) || (score && f->shape.link != MPYML_LINK_ISOLATION)) {
        mpyml_raise_fmt(&mp_type_TypeError, score ? "%s: only IsolationForest models have it"
                        : "%s: only boosted models and IsolationForest have it", 1, mpyml_str(method));
    }
    mp_buffer_info_t xs, out;
    size_t n_rows = get_rows(self, x_in, "X", &xs);
    size_t width = score ? 1 : f->shape.n_groups;
    check_out_length("out", n_rows * width, mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &out));
    size_t step = row_bytes(self);
    const uint8_t *row = (const uint8_t *)xs.buf;
    float *values = (float *)out.buf;
    for (size_t i = 0; i < n_rows; i++, row += step) {
        if (score) {
            values[i] = mpyml_boost_score(f, forest_input(self, row));
        } else {
            mpyml_boost_decision(f, forest_input(self, row), values + i * width);
        }
    }
    return out_in;
}

static mp_obj_t model_decision_function(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return boost_rows(self_in, x_in, out_in, 0);
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_decision_function_obj, model_decision_function);

static mp_obj_t model_score_samples(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return boost_rows(self_in, x_in, out_in, 1);
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_score_samples_obj, model_score_samples);

// model.predict_proba(x, out) fills out (array('f') of n_classes) and returns it
static mp_obj_t model_predict_proba(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    model_t *self = get_model(self_in);
    const mpyml_forest_t *f = ready_forest(self);
    check_proba(f, "predict_proba");
    const void *x = get_one_row(self, x_in);
    mp_buffer_info_t out;
    check_out_length("out", f->shape.n_classes, mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &out));
    predict_proba(f, x, (float *)out.buf);
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_predict_proba_obj, model_predict_proba);

static void store_class(const mp_buffer_info_t *out, size_t i, uint32_t value) {
    switch (out->typecode) {
        case 'b': ((int8_t *)out->buf)[i] = (int8_t)value; break;
        case 'B': ((uint8_t *)out->buf)[i] = (uint8_t)value; break;
        case 'h': ((int16_t *)out->buf)[i] = (int16_t)value; break;
        case 'H': ((uint16_t *)out->buf)[i] = (uint16_t)value; break;
        default: ((int32_t *)out->buf)[i] = (int32_t)value; break;
    }
}

// The largest class index each integer typecode holds.
static uint32_t typecode_max(int typecode) {
    switch (typecode) {
        case 'b': return 127;
        case 'B': return 255;
        case 'h': return 32767;
        default: return 65535;
    }
}

// model.predict_many(X, out): X holds n rows back to back; out gets one
// prediction per row (integer array for classifiers, array('f') for regressors)
static mp_obj_t model_predict_many(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    model_t *self = get_model(self_in);
    const mpyml_forest_t *f = ready_forest(self);
    mp_buffer_info_t xs, out;
    size_t n_rows = get_rows(self, x_in, "X", &xs);
    size_t step = row_bytes(self);
    const uint8_t *row = (const uint8_t *)xs.buf;
    if (is_regressor(f)) {
        check_out_length("out", n_rows, mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &out));
        for (size_t i = 0; i < n_rows; i++, row += step) {
            ((float *)out.buf)[i] = predict_value(f, forest_input(self, row));
        }
        return out_in;
    }
    check_out_length("out", n_rows, mpyml_get_array_any(out_in, "out", MP_BUFFER_WRITE, &out));
    if (out.typecode == 'f' || (uint32_t)(f->shape.n_classes - 1) > typecode_max(out.typecode)) {
        mpyml_raise_fmt(&mp_type_TypeError, "out: array('%c') cannot hold class indices up to %d", 2,
            mp_obj_new_int(out.typecode), mp_obj_new_int(f->shape.n_classes - 1));
    }
    for (size_t i = 0; i < n_rows; i++, row += step) {
        store_class(&out, i, predict_class(f, forest_input(self, row)));
    }
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_predict_many_obj, model_predict_many);

// model.predict_proba_many(X, out): out is array('f') of n_rows * n_classes
static mp_obj_t model_predict_proba_many(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    model_t *self = get_model(self_in);
    const mpyml_forest_t *f = ready_forest(self);
    check_proba(f, "predict_proba_many");
    mp_buffer_info_t xs, out;
    size_t n_rows = get_rows(self, x_in, "X", &xs);
    size_t n_classes = f->shape.n_classes;
    check_out_length("out", n_rows * n_classes, mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &out));
    size_t step = row_bytes(self);
    const uint8_t *row = (const uint8_t *)xs.buf;
    for (size_t i = 0; i < n_rows; i++, row += step) {
        predict_proba(f, forest_input(self, row), (float *)out.buf + i * n_classes);
    }
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_predict_proba_many_obj, model_predict_proba_many);

static mp_obj_t kind_name(const mpyml_forest_t *f) {
    return MP_OBJ_NEW_QSTR(is_regressor(f) ? MP_QSTR_regressor : MP_QSTR_classifier);
}

// Read-only attributes; anything else falls through to the methods.
static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return; // no stores or deletes
    }
    model_t *self = get_model(self_in);
    const mpyml_forest_t *f = &self->forest;
    int ready = self->state == MODEL_READY;
    if (attr == MP_QSTR_max_trees) {
        dest[0] = mp_obj_new_int(self->max_trees);
    } else if (attr == MP_QSTR_max_nodes) {
        dest[0] = mp_obj_new_int(self->max_nodes);
    } else if (attr == MP_QSTR_max_leaves) {
        dest[0] = mp_obj_new_int(self->max_leaves);
    } else if (attr == MP_QSTR_loaded) {
        dest[0] = mp_obj_new_bool(ready);
    } else if (!ready && (attr == MP_QSTR_n_features || attr == MP_QSTR_n_classes || attr == MP_QSTR_n_outputs ||
                          attr == MP_QSTR_n_trees || attr == MP_QSTR_n_nodes || attr == MP_QSTR_n_leaves ||
                          attr == MP_QSTR_kind || attr == MP_QSTR_typecode || attr == MP_QSTR_voting ||
                          attr == MP_QSTR_n_steps || attr == MP_QSTR_classes)) {
        dest[0] = mp_const_none;
    } else if (attr == MP_QSTR_classes) {
        dest[0] = self->classes;
    } else if (attr == MP_QSTR_n_features) {
        dest[0] = mp_obj_new_int(input_features(self));
    } else if (attr == MP_QSTR_n_steps) {
        dest[0] = mp_obj_new_int(has_steps(self) ? self->steps.shape.n_steps : 0);
    } else if (attr == MP_QSTR_n_classes) {
        dest[0] = mp_obj_new_int(f->shape.n_classes);
    } else if (attr == MP_QSTR_n_outputs) {
        dest[0] = mp_obj_new_int(1);
    } else if (attr == MP_QSTR_n_trees) {
        dest[0] = mp_obj_new_int(f->shape.n_trees);
    } else if (attr == MP_QSTR_n_nodes) {
        dest[0] = mp_obj_new_int(f->shape.n_nodes);
    } else if (attr == MP_QSTR_n_leaves) {
        dest[0] = mp_obj_new_int(f->shape.n_leaves);
    } else if (attr == MP_QSTR_kind) {
        dest[0] = kind_name(f);
    } else if (attr == MP_QSTR_voting) {
        dest[0] = f->shape.kind == MPYML_TREES_SOFT_VOTE ? MP_OBJ_NEW_QSTR(MP_QSTR_soft)
            : f->shape.kind == MPYML_TREES_SOFT_EXACT ? MP_OBJ_NEW_QSTR(MP_QSTR_soft)
            : f->shape.kind == MPYML_TREES_HARD_VOTE ? MP_OBJ_NEW_QSTR(MP_QSTR_hard)
            : f->shape.kind == MPYML_TREES_SAMME ? MP_OBJ_NEW_QSTR(MP_QSTR_samme)
            : f->shape.kind == MPYML_TREES_BOOST ? MP_OBJ_NEW_QSTR(MP_QSTR_boost) : mp_const_none;
    } else if (attr == MP_QSTR_typecode) {
        dest[0] = MP_OBJ_NEW_QSTR(feature_typecode(self) == 'f' ? MP_QSTR_f : MP_QSTR_h);
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

mp_map_elem_t model_locals_table[7];
static MP_DEFINE_CONST_DICT(model_locals, model_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    model_type.base.type = (void *)&mp_type_type;
    model_type.flags = MP_TYPE_FLAG_NONE;
    model_type.name = MP_QSTR_Model;
    mpyml_add_method(model_locals_table, 0, MP_QSTR_predict, &model_predict_obj);
    mpyml_add_method(model_locals_table, 1, MP_QSTR_predict_proba, &model_predict_proba_obj);
    mpyml_add_method(model_locals_table, 2, MP_QSTR_predict_many, &model_predict_many_obj);
    mpyml_add_method(model_locals_table, 3, MP_QSTR_predict_proba_many, &model_predict_proba_many_obj);
    mpyml_add_method(model_locals_table, 4, MP_QSTR_unload, &model_unload_obj);
    mpyml_add_method(model_locals_table, 5, MP_QSTR_decision_function, &model_decision_function_obj);
    mpyml_add_method(model_locals_table, 6, MP_QSTR_score_samples, &model_score_samples_obj);
    MP_OBJ_TYPE_SET_SLOT(&model_type, attr, model_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&model_type, locals_dict, (void *)&model_locals, 1);

    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emltrees_new_obj));
    mp_store_global(MP_QSTR_load_model, MP_OBJ_FROM_PTR(&emltrees_load_model_obj));
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&model_type));

    MP_DYNRUNTIME_INIT_EXIT
}
