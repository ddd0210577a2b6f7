// emltrees: MicroPython glue for the portable forest core (../common/mpyml_trees.h).
// Parses arguments, checks buffers, owns the model's one memory block and raises
// exceptions; the file parser is emltrees_load.py, linked into the same .mpy.
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_COMMON(X) MPYML_ERRORS_TREES(X) MPYML_ERRORS_LINEAR(X)

#define MPYML_TEXT_FORMATS
#include "mpyml_glue.h"
#include "mpyml_steps_glue.h"
#include "mpyml_trees.h"

enum { MODEL_EMPTY, MODEL_LOADING, MODEL_READY };

typedef struct {
    mp_obj_base_t base;
    uint32_t max_trees, max_nodes, max_leaves;
    uint32_t state;
    void *block;                // owns every array of `forest`
    void *scratch;              // while loading: mpyml_forest_load_bytes of scratch, else NULL
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

static void model_unload(model_t *self) {
    self->state = MODEL_EMPTY;
    self->classes = mp_const_none;
    if (self->block != NULL) {
        m_free(self->block);
        self->block = NULL;
    }
    if (self->scratch != NULL) {
        m_free(self->scratch);
        self->scratch = NULL;
    }
    if (self->steps_block != NULL) {
        m_free(self->steps_block);
        self->steps_block = NULL;
    }
}

static const mpyml_forest_t *ready_forest(model_t *self) {
    if (self->state != MODEL_READY) {
        mp_raise_msg(&mp_type_RuntimeError, "no model loaded: call emltrees.load_model(model, file) first (a failed load leaves the model empty)");
    }
    return &self->forest;
}

// The caller's rows are raw features: the steps' input when the model has steps, else the forest's.
static int feature_typecode(const model_t *self) {
    return self->steps_block != NULL || self->forest.shape.dtype == MPYML_DTYPE_FLOAT32 ? 'f' : 'h';
}

static uint32_t input_features(const model_t *self) {
    return self->steps_block != NULL ? self->steps.shape.n_features : self->forest.shape.n_features;
}

static size_t row_bytes(const model_t *self) {
    return input_features(self) * (feature_typecode(self) == 'f' ? 4 : 2);
}

// The forest's input for one raw row: the row itself, or the steps' output (in the steps' work rows).
static inline const void *forest_input(const model_t *self, const void *row) {
    return self->steps_block != NULL ? (const void *)mpyml_linear_run(&self->steps, (const float *)row) : row;
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
    if (mpyml_trees_is_regressor(&f->shape)) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: the loaded model is a regressor; use predict", 1, mpyml_str(method));
    }
}

// emltrees.new(max_trees, max_nodes, max_leaves)
static mp_obj_t emltrees_new(mp_obj_t trees_in, mp_obj_t nodes_in, mp_obj_t leaves_in) {
    mp_int_t capacity[3] = { mp_obj_get_int(trees_in), mp_obj_get_int(nodes_in), mp_obj_get_int(leaves_in) };
    static const char *const names[3] = { "max_trees", "max_nodes", "max_leaves" };
    for (int i = 0; i < 3; i++) {
        if (capacity[i] < (i == 1 ? 0 : 1)) {
            mpyml_raise_fmt(&mp_type_ValueError, "emltrees.new: %s must be at least %d, got %d", 3,
                mpyml_str(names[i]), mp_obj_new_int(i == 1 ? 0 : 1), mp_obj_new_int(capacity[i]));
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

// model._begin(kind, dtype, n_features, n_classes, n_trees, n_nodes, n_leaves, tree_weight,
//              n_groups, link, sums64, threshold_bytes, n_pairs, max_count, n_totals): n_groups, link
//              and sums64 are 0 but for boosting, the pair fields 0 but for soft voting with counts
static mp_obj_t model_begin(size_t n_args, const mp_obj_t *args) {
    model_t *self = get_model(args[0]);
    model_unload(self);
    static const mpyml_err_t errors[14] = { MPYML_ERR_BAD_KIND, MPYML_ERR_BAD_DTYPE, MPYML_ERR_TREES_N_FEATURES,
        MPYML_ERR_BAD_N_CLASSES, MPYML_ERR_TOO_BIG, MPYML_ERR_TOO_BIG, MPYML_ERR_BAD_N_LEAVES,
        MPYML_ERR_BOOST_SHAPE, MPYML_ERR_BOOST_SHAPE, MPYML_ERR_BOOST_SHAPE, MPYML_ERR_THRESHOLD_BYTES,
        MPYML_ERR_LEAF_PAIRS, MPYML_ERR_LEAF_PAIRS, MPYML_ERR_LEAF_PAIRS };
    static const mp_int_t highs[14] = { 255, 255, MPYML_TREES_MAX_FEATURES, MPYML_TREES_MAX_CLASSES,
        MPYML_TREES_MAX_NODES, MPYML_TREES_MAX_NODES, MPYML_TREES_MAX_LEAVES, MPYML_TREES_MAX_CLASSES, MPYML_LINK_ISOLATION, 1,
        4, MPYML_TREES_MAX_PAIRS, MPYML_TREES_MAX_COUNT, MPYML_TREES_MAX_LEAVES };
    mp_int_t v[14];
    for (int i = 0; i < 14; i++) {
        const mp_obj_t arg = args[i < 7 ? i + 1 : i + 2];
        v[i] = mp_obj_get_int(arg);  // TypeError for a non-integer; a big int is checked below
        if (mp_obj_is_small_int(arg) && v[i] < 0) {
            mp_raise_ValueError("header values must be non-negative integers");
        }
        v[i] = mpyml_get_int(arg, 0, highs[i], errors[i]);
    }
    mpyml_forest_shape_t shape;
    shape.kind = (uint8_t)v[0];
    shape.dtype = (uint8_t)v[1];
    shape.n_features = (uint32_t)v[2];
    shape.n_classes = (uint16_t)v[3];
    shape.n_trees = (uint32_t)v[4];
    shape.n_nodes = (uint32_t)v[5];
    shape.n_leaves = (uint32_t)v[6];
    shape.n_groups = (uint16_t)v[7];
    shape.link = (uint8_t)v[8];
    shape.sums64 = (uint8_t)v[9];
    shape.threshold_bytes = (uint8_t)v[10];
    shape.n_pairs = (uint32_t)v[11];
    shape.max_count = (uint32_t)v[12];
    shape.n_totals = (uint32_t)v[13];
    mpyml_check(mpyml_forest_check_shape(&shape));
    check_capacity("trees", shape.n_trees, self->max_trees);
    check_capacity("decision nodes", shape.n_nodes, self->max_nodes);
    check_capacity("leaves", shape.n_leaves, self->max_leaves);
    size_t bytes = mpyml_forest_bytes(&shape);
    self->block = mpyml_malloc(bytes, "the model");
    size_t scratch = mpyml_forest_load_bytes(&shape);
    self->scratch = scratch ? mpyml_malloc(scratch, "loading the model") : NULL;
    mpyml_forest_bind(&self->forest, &shape, mp_obj_get_float_to_f(args[8]), self->block, self->scratch);
    self->state = MODEL_LOADING;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_begin_obj, 16, 16, model_begin);

static mpyml_forest_t *loading_forest(mp_obj_t self_in) {
    model_t *self = get_model(self_in);
    if (self->state != MODEL_LOADING) {
        mp_raise_msg(&mp_type_RuntimeError, "model is not being loaded");
    }
    return &self->forest;
}

// A root or child reference: leaves -32768..-1, nodes up to MPYML_TREES_MAX_NODES.
static int32_t get_ref(mp_obj_t ref_in) {
    return (int32_t)mpyml_get_int(ref_in, -(mp_int_t)MPYML_TREES_MAX_LEAVES, MPYML_TREES_MAX_NODES, MPYML_ERR_NODE_REF_RANGE);
}

// model._tree(root); for SAMME, model._tree(root, vote, other) with the votes as 16 hex digits;
// for boosting, model._tree(root, group)
static mp_obj_t model_tree(size_t n_args, const mp_obj_t *args) {
    mpyml_forest_t *f = loading_forest(args[0]);
    if ((n_args == 3) != (f->shape.kind == MPYML_TREES_BOOST)) {
        mp_raise_ValueError("boosted trees, and only they, carry a group");
    }
    if (n_args == 3) {
        uint32_t group = (uint32_t)mpyml_get_int(args[2], 0, MPYML_TREES_MAX_CLASSES, MPYML_ERR_BOOST_VALUE);
        mpyml_check(mpyml_forest_add_boost_tree(f, get_ref(args[1]), group));
        return mp_const_none;
    }
    double vote = 0.0, other = 0.0;
    if ((n_args == 4) != (f->shape.kind == MPYML_TREES_SAMME)) {
        mp_raise_ValueError("SAMME trees, and only they, carry two vote weights");
    }
    if (n_args == 4) {
        vote = mpyml_get_hex64(args[2], MPYML_ERR_BAD_HEX64);
        other = mpyml_get_hex64(args[3], MPYML_ERR_BAD_HEX64);
    }
    mpyml_check(mpyml_forest_add_tree(f, get_ref(args[1]), vote, other));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_tree_obj, 2, 4, model_tree);

// model._boost(threshold, scale, offset), each 16 hex digits: boosting's binary threshold, link scale
// and IsolationForest's offset_
static mp_obj_t model_boost(size_t n_args, const mp_obj_t *args) {
    mpyml_forest_t *f = loading_forest(args[0]);
    mpyml_check(mpyml_forest_set_boost(f, mpyml_get_hex64(args[1], MPYML_ERR_BAD_HEX64),
                                       mpyml_get_hex64(args[2], MPYML_ERR_BAD_HEX64),
                                       mpyml_get_hex64(args[3], MPYML_ERR_BAD_HEX64)));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_boost_obj, 4, 4, model_boost);

// model._base(hex16): the next group's base score
static mp_obj_t model_base(mp_obj_t self_in, mp_obj_t base_in) {
    mpyml_forest_t *f = loading_forest(self_in);
    mpyml_check(mpyml_forest_add_base(f, mpyml_get_hex64(base_in, MPYML_ERR_BAD_HEX64)));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_base_obj, model_base);

// model._weight_sum(hex16): SAMME's estimator_weights_.sum()
static mp_obj_t model_weight_sum(mp_obj_t self_in, mp_obj_t sum_in) {
    mpyml_forest_t *f = loading_forest(self_in);
    mpyml_check(mpyml_forest_set_weight_sum(f, mpyml_get_hex64(sum_in, MPYML_ERR_BAD_HEX64)));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_weight_sum_obj, model_weight_sum);

// model._classes(labels): the class labels, a list of n_classes
static mp_obj_t model_classes(mp_obj_t self_in, mp_obj_t labels_in) {
    mpyml_forest_t *f = loading_forest(self_in);
    if (mp_obj_get_int(mp_obj_len(labels_in)) != f->shape.n_classes) {
        mp_raise_ValueError("classes: expected n_classes labels");
    }
    get_model(self_in)->classes = labels_in;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_classes_obj, model_classes);

// model._node(feature, threshold, left, right, nan_left): threshold is an int for int16
// models and the 8 hex digits of the float32 bits (a str) for float32 models; nan_left 0 or 1.
static mp_obj_t model_node(size_t n_args, const mp_obj_t *args) {
    mpyml_forest_t *f = loading_forest(args[0]);
    mp_int_t feature = mpyml_get_int(args[1], 0, MPYML_TREES_MAX_FEATURES, MPYML_ERR_FEATURE_RANGE);
    int32_t threshold;
    if (f->shape.dtype == MPYML_DTYPE_FLOAT32) {
        size_t len;
        const char *text = mp_obj_str_get_data(args[2], &len);
        uint32_t bits = 0;
        mpyml_check(mpyml_parse_hex32(text, len, &bits));
        threshold = (int32_t)bits;
    } else {
        threshold = (int32_t)mpyml_get_int(args[2], INT16_MIN, INT16_MAX, MPYML_ERR_THRESHOLD_RANGE);
    }
    int nan_left = (int)mpyml_get_int(args[5], 0, 1, MPYML_ERR_THRESHOLD_RANGE);
    mpyml_check(mpyml_forest_add_node(f, (uint32_t)feature, threshold, get_ref(args[3]), get_ref(args[4]), nan_left));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_node_obj, 6, 6, model_node);

// model._leaf(value): soft voting with counts: array('H') of n_classes counts; soft voting with
// float64 probabilities: a str of n_classes x 16 hex digits; hard voting and SAMME: the class
// index; regressors: the float value.
static mp_obj_t model_leaf(mp_obj_t self_in, mp_obj_t value_in) {
    mpyml_forest_t *f = loading_forest(self_in);
    if (f->shape.kind == MPYML_TREES_SOFT_VOTE) {
        mp_buffer_info_t buf;
        size_t n = mpyml_get_array(value_in, 'H', "leaf counts", MP_BUFFER_READ, &buf);
        mpyml_check(mpyml_forest_add_leaf_counts(f, (const uint16_t *)buf.buf, n));
    } else if (f->shape.kind == MPYML_TREES_SOFT_EXACT) {
        size_t len;
        const char *text = mp_obj_str_get_data(value_in, &len);
        mpyml_check(mpyml_forest_add_leaf_exact(f, text, len));
    } else if (f->shape.kind == MPYML_TREES_BOOST) {
        double value;
        if (f->shape.sums64) {
            value = mpyml_get_hex64(value_in, MPYML_ERR_BAD_HEX64);
        } else {
            size_t len;
            const char *text = mp_obj_str_get_data(value_in, &len);
            uint32_t bits = 0;
            mpyml_check(len == 8 ? mpyml_parse_hex32(text, len, &bits) : MPYML_ERR_BAD_HEX);
            value = (double)mpyml_f32_from_bits(bits);
        }
        mpyml_check(mpyml_forest_add_leaf_boost(f, value));
    } else if (f->shape.kind == MPYML_TREES_REGRESSOR) {
        mpyml_check(mpyml_forest_add_leaf_value(f, mp_obj_get_float_to_f(value_in)));
    } else {
        mpyml_check(mpyml_forest_add_leaf_class(f, (uint32_t)mpyml_get_int(value_in, 0, MPYML_TREES_MAX_CLASSES, MPYML_ERR_CLASS_RANGE)));
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_leaf_obj, model_leaf);

// model._steps(n_input_features, n_steps, n_values, max_width): the steps that run before the forest
static mp_obj_t model_steps(size_t n_args, const mp_obj_t *args) {
    const mpyml_forest_t *f = loading_forest(args[0]);
    model_t *self = get_model(args[0]);
    if (self->steps_block != NULL || f->shape.dtype != MPYML_DTYPE_FLOAT32) {
        mp_raise_ValueError("steps need a float32 forest and come once");
    }
    mp_int_t v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = mp_obj_get_int(args[i + 1]);
        if (!mp_obj_is_small_int(args[i + 1]) || v[i] < 0 || v[i] > 0x3fffffff) {
            mp_raise_ValueError("header values must be integers 0..1073741823");
        }
    }
    mpyml_linear_shape_t shape = { MPYML_LINEAR_TRANSFORMER, MPYML_PROBA_NONE, (uint32_t)v[0], f->shape.n_features,
                                   (uint32_t)v[1], (uint32_t)v[2], (uint32_t)v[3] };
    mpyml_check(mpyml_linear_check_shape(&shape));
    size_t bytes = mpyml_linear_bytes(&shape);
    self->steps_block = mpyml_malloc(bytes, "the steps");
    mpyml_linear_bind(&self->steps, &shape, self->steps_block);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_steps_obj, 5, 5, model_steps);

static mpyml_linear_t *loading_steps(mp_obj_t self_in) {
    loading_forest(self_in);
    model_t *self = get_model(self_in);
    if (self->steps_block == NULL) {
        mp_raise_msg(&mp_type_RuntimeError, "no steps are being loaded");
    }
    return &self->steps;
}

// Step records (mpyml_steps.py): the work is in mpyml_steps_glue.h.
static mp_obj_t model_step(size_t n_args, const mp_obj_t *args) {
    mpyml_steps_add_step(loading_steps(args[0]), args + 1);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_step_obj, 4, 4, model_step);

static mp_obj_t model_floats(mp_obj_t self_in, mp_obj_t line_in) {
    mpyml_steps_add_floats(loading_steps(self_in), line_in);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_floats_obj, model_floats);

static mp_obj_t model_index(mp_obj_t self_in, mp_obj_t index_in) {
    mpyml_steps_add_index(loading_steps(self_in), index_in);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_index_obj, model_index);

static mp_obj_t model_finish(mp_obj_t self_in) {
    model_t *self = get_model(self_in);
    mpyml_check(mpyml_forest_check_complete(loading_forest(self_in)));
    if (self->scratch != NULL) {
        m_free(self->scratch);
        self->scratch = NULL;
    }
    if (self->steps_block != NULL) {
        mpyml_check(mpyml_linear_check_complete(&self->steps));
    }
    self->state = MODEL_READY;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_finish_obj, model_finish);

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
    if (mpyml_trees_is_regressor(&f->shape)) {
        return mp_obj_new_float_from_f(mpyml_forest_predict_value(f, x));
    }
    return mp_obj_new_int(mpyml_forest_predict_class(f, x));
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

static void check_proba(const mpyml_forest_t *f, const char *method) {
    check_classifier(f, method);
    if (f->shape.kind == MPYML_TREES_BOOST && f->shape.link == MPYML_LINK_ISOLATION) {
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
    if (f->shape.kind != MPYML_TREES_BOOST || (score && f->shape.link != MPYML_LINK_ISOLATION)) {
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
    mpyml_forest_predict_proba(f, x, (float *)out.buf);
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
    if (mpyml_trees_is_regressor(&f->shape)) {
        check_out_length("out", n_rows, mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &out));
        for (size_t i = 0; i < n_rows; i++, row += step) {
            ((float *)out.buf)[i] = mpyml_forest_predict_value(f, forest_input(self, row));
        }
        return out_in;
    }
    check_out_length("out", n_rows, mpyml_get_array_any(out_in, "out", MP_BUFFER_WRITE, &out));
    if (out.typecode == 'f' || (uint32_t)(f->shape.n_classes - 1) > typecode_max(out.typecode)) {
        mpyml_raise_fmt(&mp_type_TypeError, "out: array('%c') cannot hold class indices up to %d", 2,
            mp_obj_new_int(out.typecode), mp_obj_new_int(f->shape.n_classes - 1));
    }
    for (size_t i = 0; i < n_rows; i++, row += step) {
        store_class(&out, i, mpyml_forest_predict_class(f, forest_input(self, row)));
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
        mpyml_forest_predict_proba(f, forest_input(self, row), (float *)out.buf + i * n_classes);
    }
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_predict_proba_many_obj, model_predict_proba_many);

static mp_obj_t kind_name(const mpyml_forest_t *f) {
    return MP_OBJ_NEW_QSTR(mpyml_trees_is_regressor(&f->shape) ? MP_QSTR_regressor : MP_QSTR_classifier);
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
        dest[0] = mp_obj_new_int(self->steps_block != NULL ? self->steps.shape.n_steps : 0);
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

mp_map_elem_t model_locals_table[20];
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
    mpyml_add_method(model_locals_table, 4, MP_QSTR__begin, &model_begin_obj);
    mpyml_add_method(model_locals_table, 5, MP_QSTR__tree, &model_tree_obj);
    mpyml_add_method(model_locals_table, 6, MP_QSTR__node, &model_node_obj);
    mpyml_add_method(model_locals_table, 7, MP_QSTR__leaf, &model_leaf_obj);
    mpyml_add_method(model_locals_table, 8, MP_QSTR__finish, &model_finish_obj);
    mpyml_add_method(model_locals_table, 9, MP_QSTR_unload, &model_unload_obj);
    mpyml_add_method(model_locals_table, 10, MP_QSTR__steps, &model_steps_obj);
    mpyml_add_method(model_locals_table, 11, MP_QSTR__step, &model_step_obj);
    mpyml_add_method(model_locals_table, 12, MP_QSTR__floats, &model_floats_obj);
    mpyml_add_method(model_locals_table, 13, MP_QSTR__index, &model_index_obj);
    mpyml_add_method(model_locals_table, 14, MP_QSTR__weight_sum, &model_weight_sum_obj);
    mpyml_add_method(model_locals_table, 15, MP_QSTR__classes, &model_classes_obj);
    mpyml_add_method(model_locals_table, 16, MP_QSTR__boost, &model_boost_obj);
    mpyml_add_method(model_locals_table, 17, MP_QSTR__base, &model_base_obj);
    mpyml_add_method(model_locals_table, 18, MP_QSTR_decision_function, &model_decision_function_obj);
    mpyml_add_method(model_locals_table, 19, MP_QSTR_score_samples, &model_score_samples_obj);
    MP_OBJ_TYPE_SET_SLOT(&model_type, attr, model_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&model_type, locals_dict, (void *)&model_locals, 1);

    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emltrees_new_obj));
    mpyml_store_crc32();
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&model_type));

    MP_DYNRUNTIME_INIT_EXIT
}
