// emlneighbors: MicroPython glue for the portable k-NN core (../common/mpyml_neighbors.h).
// Parses arguments, checks buffers, owns the item block and raises; the file
// reader and writer are emlneighbors_file.py, linked into the same .mpy.
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_COMMON(X) MPYML_ERRORS_NEIGHBORS(X) MPYML_ERRORS_LINEAR(X)

// A text-format loader: mpyml_glue.h provides _crc32 and _hex_row.
#define MPYML_TEXT_FORMATS
#include "mpyml_glue.h"
#include "mpyml_neighbors.h"
// Only the search over the items (mpyml_neighbors.h, above) is hot: on x64, where the Makefile
// unrolls and vectorises for speed, the glue and the pipeline steps are compiled for size so the
// module stays below 32 KB.
#if defined(__x86_64__)
#pragma GCC optimize("Os", "fp-contract=off")
#endif
#include "mpyml_steps_glue.h"

typedef struct {
    mp_obj_base_t base;
    uint32_t max_items, n_features, max_k;
    uint32_t n_classes;         // labelled models: labels are 0..n_classes-1
    uint8_t labeled;            // LABELS_*
    uint8_t classes_fixed;      // a loaded file's n_classes bounds the labels
    uint8_t has_threshold;
    float threshold;
    void *block;                // owns the items; NULL until the dtype is known
    mpyml_neighbors_t nb;
    // Pipeline steps (format version 2) that map raw features to the items' space, or NULL.
    // They run only once the file has loaded (steps_ready): the file's items are already transformed.
    void *steps_block;          // owns every array of `steps`, including its work rows
    uint8_t steps_ready;
    mpyml_linear_t steps;
    mp_obj_t classes, feature_names;  // lists of labels from a loaded file, or None
} model_t;

enum { LABELS_UNKNOWN, LABELS_NONE, LABELS_YES };

// Not static: mpy_ld cannot relocate static bss variables.
mp_obj_full_type_t model_type;

static model_t *get_model(mp_obj_t self_in) {
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emlneighbors model, got %s", 1, mpyml_type_name(self_in));
    }
    return (model_t *)MP_OBJ_TO_PTR(self_in);
}

static void model_clear(model_t *self) {
    if (self->block != NULL) {
        m_free(self->block);
        self->block = NULL;
    }
    if (self->steps_block != NULL) {
        m_free(self->steps_block);
        self->steps_block = NULL;
    }
    self->steps_ready = 0;
    self->classes = mp_const_none;
    self->feature_names = mp_const_none;
    self->n_classes = 0;
    self->labeled = LABELS_UNKNOWN;
    self->classes_fixed = 0;
    self->has_threshold = 0;
    self->threshold = 0.0f;
    self->nb.n_items = 0;
    self->nb.k = self->max_k;
}

// Allocates the item block for a dtype and metric/weights; the model is then empty.
static void configure(model_t *self, uint8_t dtype, uint8_t metric, uint8_t weights) {
    model_clear(self);
    mpyml_neighbors_shape_t shape;
    shape.dtype = dtype;
    shape.metric = metric;
    shape.weights = weights;
    shape.n_features = self->n_features;
    shape.max_items = self->max_items;
    shape.max_k = self->max_k;
    mpyml_check(mpyml_neighbors_check_shape(&shape));
    uint32_t bytes = mpyml_neighbors_bytes(&shape);
    self->block = mpyml_malloc(bytes, "the items");
    mpyml_neighbors_bind(&self->nb, &shape, self->max_k, self->block);
}

static int model_typecode(const model_t *self) {
    return self->nb.shape.dtype == MPYML_DTYPE_FLOAT32 ? 'f' : 'h';
}

static mpyml_neighbors_t *ready(model_t *self) {
    if (self->block == NULL || self->nb.n_items == 0) {
        mp_raise_msg(&mp_type_RuntimeError, "no items stored: load a model file or add items first");
    }
    return &self->nb;
}

// The width of the rows callers pass: the steps' input when the model has steps, else the items'.
static uint32_t input_features(const model_t *self) {
    return self->steps_ready ? self->steps.shape.n_features : self->n_features;
}

// One caller's feature row of the model's typecode and input width, as an item-space row:
// with steps, their output in the steps' work rows (owned by the model, nothing allocated).
static const void *get_row(model_t *self, mp_obj_t x_in, const char *what) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(x_in, model_typecode(self), what, MP_BUFFER_READ, &buf);
    if (n != input_features(self)) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: expected %d features, got %d", 3, mpyml_str(what),
            mp_obj_new_int(input_features(self)), mp_obj_new_int(n));
    }
    return self->steps_ready ? (const void *)mpyml_linear_run(&self->steps, (const float *)buf.buf) : buf.buf;
}

static uint32_t get_index(model_t *self, mp_obj_t index_in, uint32_t limit) {
    mp_int_t index = mp_obj_get_int(index_in);
    if (index < 0 || (mp_uint_t)index >= limit) {
        mpyml_raise_fmt(&mp_type_IndexError, "item index %d out of range: %d items stored", 2,
            mp_obj_new_int(index), mp_obj_new_int(self->nb.n_items));
    }
    return (uint32_t)index;
}

static void check_search(model_t *self, mpyml_err_t err) {
    if (err == MPYML_ERR_NB_TOO_FEW_ITEMS) {
        mpyml_raise_fmt(&mp_type_ValueError, "k=%d is larger than the %d items stored", 2,
            mp_obj_new_int(self->nb.k), mp_obj_new_int(self->nb.n_items));
    }
    mpyml_check(err);
}

// emlneighbors.new(max_items, n_features, k)
static mp_obj_t emlneighbors_new(mp_obj_t items_in, mp_obj_t features_in, mp_obj_t k_in) {
    mp_int_t max_items = mp_obj_get_int(items_in);
    mp_int_t n_features = mp_obj_get_int(features_in);
    mp_int_t k = mp_obj_get_int(k_in);
    if (max_items < 1 || max_items > (mp_int_t)MPYML_NEIGHBORS_MAX_ITEMS) {
        mpyml_raise_fmt(&mp_type_ValueError, "emlneighbors.new: max_items must be 1..%d, got %d", 2,
            mp_obj_new_int(MPYML_NEIGHBORS_MAX_ITEMS), mp_obj_new_int(max_items));
    }
    if (n_features < 1 || n_features > (mp_int_t)MPYML_NEIGHBORS_MAX_FEATURES) {
        mpyml_raise_fmt(&mp_type_ValueError, "emlneighbors.new: n_features must be 1..%d, got %d", 2,
            mp_obj_new_int(MPYML_NEIGHBORS_MAX_FEATURES), mp_obj_new_int(n_features));
    }
    if (k < 1 || k > max_items || k > (mp_int_t)MPYML_NEIGHBORS_MAX_K) {
        mpyml_raise_fmt(&mp_type_ValueError, "emlneighbors.new: k must be 1..max_items (%d), got %d", 2,
            mp_obj_new_int(max_items), mp_obj_new_int(k));
    }
    model_t *self = mpyml_malloc(sizeof(model_t), "the model object");
    self->base.type = (const mp_obj_type_t *)&model_type;
    self->max_items = (uint32_t)max_items;
    self->n_features = (uint32_t)n_features;
    self->max_k = (uint32_t)k;
    self->block = NULL;
    self->steps_block = NULL;
    self->nb.shape.dtype = MPYML_DTYPE_INT16;
    self->nb.shape.metric = MPYML_METRIC_EUCLIDEAN;
    self->nb.shape.weights = MPYML_WEIGHTS_UNIFORM;
    model_clear(self);
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_3(emlneighbors_new_obj, emlneighbors_new);

// model._begin(dtype, metric, weights, n_features, k, n_classes, threshold or None)
// empties the model and sets it up for a file's items (n_classes 0: no labels).
static mp_obj_t model_begin(size_t n_args, const mp_obj_t *args) {
    model_t *self = get_model(args[0]);
    model_clear(self);
    mp_int_t v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = mp_obj_get_int(args[i + 1]);
        if (v[i] < 0 || v[i] > 0x7fffffff) {
            mp_raise_ValueError("header values must be non-negative integers");
        }
    }
    if (v[3] != (mp_int_t)self->n_features) {
        mpyml_raise_fmt(&mp_type_ValueError, "the file's items have %d features but this model was made for %d", 2,
            mp_obj_new_int(v[3]), mp_obj_new_int(self->n_features));
    }
    if (v[4] < 1 || v[4] > (mp_int_t)self->max_k) {
        mpyml_raise_fmt(&mp_type_ValueError, "the file's k=%d is not within 1..%d, the k given to emlneighbors.new()", 2,
            mp_obj_new_int(v[4]), mp_obj_new_int(self->max_k));
    }
    if (v[5] > (mp_int_t)MPYML_NEIGHBORS_MAX_LABEL + 1) {
        mpyml_raise_fmt(&mp_type_ValueError, "n_classes must be 0..%d, got %d", 2,
            mp_obj_new_int(MPYML_NEIGHBORS_MAX_LABEL + 1), mp_obj_new_int(v[5]));
    }
    if (v[0] > 255 || v[1] > 255 || v[2] > 255) {
        mpyml_raise_err(v[0] > 255 ? MPYML_ERR_BAD_DTYPE : (v[1] > 255 ? MPYML_ERR_NB_BAD_METRIC : MPYML_ERR_NB_BAD_WEIGHTS));
    }
    configure(self, (uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2]);
    self->nb.k = (uint32_t)v[4];
    self->n_classes = (uint32_t)v[5];
    self->labeled = v[5] > 0 ? LABELS_YES : LABELS_NONE;
    self->classes_fixed = 1;
    if (args[7] != mp_const_none) {
        self->threshold = mp_obj_get_float_to_f(args[7]);
        self->has_threshold = 1;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_begin_obj, 8, 8, model_begin);

// model._steps(n_input_features, n_steps, n_values, max_width), after _begin and before the items:
// the steps that map raw features to the items' n_features; they run once _finish() has checked them.
static mp_obj_t model_steps(size_t n_args, const mp_obj_t *args) {
    model_t *self = get_model(args[0]);
    if (self->block == NULL || self->steps_block != NULL || self->nb.n_items != 0 ||
        self->nb.shape.dtype != MPYML_DTYPE_FLOAT32) {
        mp_raise_ValueError("steps need float32 items and come once, before the items");
    }
    mp_int_t v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = mp_obj_get_int(args[i + 1]);
        if (v[i] < 0 || v[i] > 0x3fffffff) {
            mp_raise_ValueError("header values must be integers 0..1073741823");
        }
    }
    mpyml_linear_shape_t shape = { MPYML_LINEAR_TRANSFORMER, MPYML_PROBA_NONE, (uint32_t)v[0], self->n_features,
                                   (uint32_t)v[1], (uint32_t)v[2], (uint32_t)v[3] };
    mpyml_check(mpyml_linear_check_shape(&shape));
    self->steps_block = mpyml_malloc(mpyml_linear_bytes(&shape), "the steps");
    mpyml_linear_bind(&self->steps, &shape, self->steps_block);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_steps_obj, 5, 5, model_steps);

static mpyml_linear_t *loading_steps(mp_obj_t self_in) {
    model_t *self = get_model(self_in);
    if (self->steps_block == NULL || self->steps_ready) {
        mp_raise_msg(&mp_type_RuntimeError, "no steps are being loaded");
    }
    return &self->steps;
}

// Step records (../common/mpyml_steps.py): the work is in mpyml_steps_glue.h.
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

// model._finish(classes, feature_names): the file's items are in; from now on rows go through the
// steps. The file's label lists (or None), checked by the loader, become model.classes and
// model.feature_names.
static mp_obj_t model_finish(mp_obj_t self_in, mp_obj_t classes_in, mp_obj_t names_in) {
    model_t *self = get_model(self_in);
    if (self->steps_block != NULL && !self->steps_ready) {
        mpyml_check(mpyml_linear_check_complete(&self->steps));
        self->steps_ready = 1;
    }
    self->classes = classes_in;
    self->feature_names = names_in;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_finish_obj, model_finish);

static const mpyml_linear_step_t *get_step(model_t *self, mp_obj_t index_in) {
    mp_int_t i = mp_obj_get_int(index_in);
    if (!self->steps_ready || i < 0 || i >= (mp_int_t)self->steps.shape.n_steps) {
        mpyml_raise_fmt(&mp_type_IndexError, "step %d out of range: the model has %d steps", 2,
            mp_obj_new_int(i), mp_obj_new_int(self->steps_ready ? self->steps.shape.n_steps : 0));
    }
    return &self->steps.steps[i];
}

// model._stepinfo(i) -> (kind, n_in, n_out) of step i, for save_model
static mp_obj_t model_stepinfo(mp_obj_t self_in, mp_obj_t index_in) {
    const mpyml_linear_step_t *st = get_step(get_model(self_in), index_in);
    mp_obj_t items[3] = { mp_obj_new_int(st->kind), mp_obj_new_int(st->n_in), mp_obj_new_int(st->n_out) };
    return mp_obj_new_tuple(3, items);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_stepinfo_obj, model_stepinfo);

// model._stepvalues(i, out): copies step i's values (float32 bits, or select indices) into array('I') out
static mp_obj_t model_stepvalues(mp_obj_t self_in, mp_obj_t index_in, mp_obj_t out_in) {
    model_t *self = get_model(self_in);
    const mpyml_linear_step_t *st = get_step(self, index_in);
    uint32_t n = mpyml_step_values(st->kind, st->n_in, st->n_out);
    mp_buffer_info_t buf;
    size_t got = mpyml_get_array(out_in, 'I', "out", MP_BUFFER_WRITE, &buf);
    if (got != n) {
        mpyml_raise_fmt(&mp_type_ValueError, "out: expected %d items, got %d", 2, mp_obj_new_int(n), mp_obj_new_int(got));
    }
    for (uint32_t j = 0; j < n; j++) {
        ((uint32_t *)buf.buf)[j] = self->steps.values[st->offset + j];
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_stepvalues_obj, model_stepvalues);

static uint32_t get_label(model_t *self, mp_obj_t label_in) {
    if (self->labeled == LABELS_NONE && label_in != mp_const_none) {
        mp_raise_ValueError("label given, but this model's items have no labels (a NearestNeighbors model)");
    }
    if (self->labeled == LABELS_YES && label_in == mp_const_none) {
        mp_raise_ValueError("label missing: this model's items are labelled");
    }
    if (label_in == mp_const_none) {
        return 0;
    }
    mp_int_t label = mp_obj_get_int(label_in);
    mp_int_t limit = self->classes_fixed ? (mp_int_t)self->n_classes - 1 : (mp_int_t)MPYML_NEIGHBORS_MAX_LABEL;
    if (label < 0 || label > limit) {
        mpyml_raise_fmt(&mp_type_ValueError, "label %d out of range 0..%d", 2, mp_obj_new_int(label), mp_obj_new_int(limit));
    }
    return (uint32_t)label;
}

// The first item decides the dtype (from x's typecode); store() then decides whether items are labelled.
static void first_item(model_t *self, mp_obj_t x_in, mp_obj_t label_in) {
    if (self->block == NULL) {
        mp_buffer_info_t buf;
        if (!mp_get_buffer(x_in, &buf, MP_BUFFER_READ) || (buf.typecode != 'h' && buf.typecode != 'f')) {
            mp_raise_TypeError("x: expected array('h') or array('f')");
        }
        configure(self, buf.typecode == 'f' ? MPYML_DTYPE_FLOAT32 : MPYML_DTYPE_INT16,
            MPYML_METRIC_EUCLIDEAN, MPYML_WEIGHTS_UNIFORM);
    }
}

static void store(model_t *self, uint32_t index, mp_obj_t x_in, mp_obj_t label_in) {
    const void *x = get_row(self, x_in, "x");
    uint32_t label = get_label(self, label_in);
    if (index == self->nb.n_items && self->nb.n_items >= self->max_items) {
        mpyml_raise_fmt(&mp_type_ValueError, "over capacity: all %d items of emlneighbors.new() are in use", 1,
            mp_obj_new_int(self->max_items));
    }
    mpyml_check(mpyml_neighbors_set_item(&self->nb, index, x, label));
    if (self->labeled == LABELS_UNKNOWN) {
        self->labeled = label_in == mp_const_none ? LABELS_NONE : LABELS_YES;
    }
    if (self->labeled == LABELS_YES && !self->classes_fixed && label + 1 > self->n_classes) {
        self->n_classes = label + 1;
    }
}

// model.additem(x, label=None)
static mp_obj_t model_additem(size_t n_args, const mp_obj_t *args) {
    model_t *self = get_model(args[0]);
    mp_obj_t label_in = n_args > 2 ? args[2] : mp_const_none;
    first_item(self, args[1], label_in);
    store(self, self->nb.n_items, args[1], label_in);
    return mp_obj_new_int(self->nb.n_items - 1);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_additem_obj, 2, 3, model_additem);

// model.setitem(index, x, label=None) replaces an item
static mp_obj_t model_setitem(size_t n_args, const mp_obj_t *args) {
    model_t *self = get_model(args[0]);
    uint32_t index = get_index(self, args[1], self->nb.n_items);
    store(self, index, args[2], n_args > 3 ? args[3] : mp_const_none);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_setitem_obj, 3, 4, model_setitem);

// model.remove(index): later items move down one place
static mp_obj_t model_remove(mp_obj_t self_in, mp_obj_t index_in) {
    model_t *self = get_model(self_in);
    uint32_t index = get_index(self, index_in, self->block == NULL ? 0 : self->nb.n_items);
    mpyml_check(mpyml_neighbors_remove(&self->nb, index));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_remove_obj, model_remove);

// model.getitem(index, out) copies the item's features into out; returns its label (None without labels).
// With steps the item is stored transformed: out takes n_features (the steps' output), not raw features.
static mp_obj_t model_getitem(mp_obj_t self_in, mp_obj_t index_in, mp_obj_t out_in) {
    model_t *self = get_model(self_in);
    uint32_t index = get_index(self, index_in, self->block == NULL ? 0 : self->nb.n_items);
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(out_in, model_typecode(self), "out", MP_BUFFER_WRITE, &buf);
    if (n != self->n_features) {
        mpyml_raise_fmt(&mp_type_ValueError, "out: expected %d items, got %d", 2, mp_obj_new_int(self->n_features), mp_obj_new_int(n));
    }
    mpyml_neighbors_copy_row(&self->nb, (uint8_t *)buf.buf, mpyml_neighbors_row(&self->nb, index));
    return self->labeled == LABELS_YES ? mp_obj_new_int(self->nb.labels[index]) : mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_getitem_obj, model_getitem);

static mp_obj_t model_clear_method(mp_obj_t self_in) {
    model_clear(get_model(self_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_clear_obj, model_clear_method);

// model.predict(x) -> class index
static mp_obj_t model_predict(mp_obj_t self_in, mp_obj_t x_in) {
    model_t *self = get_model(self_in);
    mpyml_neighbors_t *nb = ready(self);
    if (self->labeled != LABELS_YES) {
        mp_raise_msg(&mp_type_RuntimeError, "predict: the items have no labels (a NearestNeighbors model); use kneighbors or score");
    }
    uint32_t label = 0;
    check_search(self, mpyml_neighbors_predict(nb, get_row(self, x_in, "x"), &label));
    return mp_obj_new_int(label);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

static void store_index(const mp_buffer_info_t *out, size_t i, uint32_t value) {
    switch (out->typecode) {
        case 'h': ((int16_t *)out->buf)[i] = (int16_t)value; break;
        case 'H': ((uint16_t *)out->buf)[i] = (uint16_t)value; break;
        default: ((int32_t *)out->buf)[i] = (int32_t)value; break;
    }
}

static uint32_t index_typecode_max(int typecode) {
    switch (typecode) {
        case 'h': return 32767;
        case 'H': return 65535;
        case 'i': return 0x7fffffff;
        case 'I': return 0xffffffff;
        default: return 0;
    }
}

// model.kneighbors(x, dist_out, index_out): distances (array('f') of k) and item
// indices (array 'h' 'H' 'i' or 'I' of k) of the k nearest items, nearest first; returns k
static mp_obj_t model_kneighbors(size_t n_args, const mp_obj_t *args) {
    mp_obj_t x_in = args[1], dist_in = args[2], index_in = args[3];
    model_t *self = get_model(args[0]);
    mpyml_neighbors_t *nb = ready(self);
    const void *x = get_row(self, x_in, "x");
    mp_buffer_info_t dist, index;
    size_t n_dist = mpyml_get_array(dist_in, 'f', "dist_out", MP_BUFFER_WRITE, &dist);
    size_t n_index = mpyml_get_array_any(index_in, "index_out", MP_BUFFER_WRITE, &index);
    if (n_dist != nb->k || n_index != nb->k) {
        mpyml_raise_fmt(&mp_type_ValueError, "dist_out and index_out: expected k=%d items each, got %d and %d", 3,
            mp_obj_new_int(nb->k), mp_obj_new_int(n_dist), mp_obj_new_int(n_index));
    }
    if (index_typecode_max(index.typecode) < nb->n_items - 1) {
        mpyml_raise_fmt(&mp_type_TypeError, "index_out: array('%c') cannot hold item indices up to %d", 2,
            mp_obj_new_int(index.typecode), mp_obj_new_int(nb->n_items - 1));
    }
    check_search(self, mpyml_neighbors_search(nb, x));
    for (uint32_t j = 0; j < nb->n_best; j++) {
        ((float *)dist.buf)[j] = mpyml_neighbors_distance(nb, nb->best_key[j]);
        store_index(&index, j, nb->best_index[j]);
    }
    return mp_obj_new_int(nb->n_best);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_kneighbors_obj, 4, 4, model_kneighbors);

static float score_of(model_t *self, mp_obj_t x_in) {
    mpyml_neighbors_t *nb = ready(self);
    float score = 0.0f;
    check_search(self, mpyml_neighbors_score(nb, get_row(self, x_in, "x"), &score));
    return score;
}

// model.score(x) -> novelty score: distance to the k-th nearest item
static mp_obj_t model_score(mp_obj_t self_in, mp_obj_t x_in) {
    return mp_obj_new_float_from_f(score_of(get_model(self_in), x_in));
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_score_obj, model_score);

// model.is_outlier(x) -> score(x) > threshold
static mp_obj_t model_is_outlier(mp_obj_t self_in, mp_obj_t x_in) {
    model_t *self = get_model(self_in);
    if (!self->has_threshold) {
        mp_raise_msg(&mp_type_RuntimeError, "is_outlier: no novelty threshold: export one with mpyml.export(..., novelty_percentile=...) or set model.threshold");
    }
    return mp_obj_new_bool(score_of(self, x_in) > self->threshold);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_is_outlier_obj, model_is_outlier);

static mp_obj_t metric_name(uint8_t metric) {
    return MP_OBJ_NEW_QSTR(metric == MPYML_METRIC_MANHATTAN ? MP_QSTR_manhattan
        : (metric == MPYML_METRIC_CHEBYSHEV ? MP_QSTR_chebyshev : MP_QSTR_euclidean));
}

static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    model_t *self = get_model(self_in);
    if (dest[0] == MP_OBJ_SENTINEL && dest[1] != MP_OBJ_NULL) {
        // stores: model.threshold = value (None removes it), model.k = value
        if (attr == MP_QSTR_threshold) {
            self->has_threshold = dest[1] != mp_const_none;
            self->threshold = self->has_threshold ? mp_obj_get_float_to_f(dest[1]) : 0.0f;
            dest[0] = MP_OBJ_NULL;
        } else if (attr == MP_QSTR_k) {
            mp_int_t k = mp_obj_get_int(dest[1]);
            if (k < 1 || k > (mp_int_t)self->max_k) {
                mpyml_raise_fmt(&mp_type_ValueError, "k must be 1..%d (the k given to emlneighbors.new()), got %d", 2,
                    mp_obj_new_int(self->max_k), mp_obj_new_int(k));
            }
            self->nb.k = (uint32_t)k;
            dest[0] = MP_OBJ_NULL;
        }
        return;
    }
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    int configured = self->block != NULL;
    if (attr == MP_QSTR_max_items) {
        dest[0] = mp_obj_new_int(self->max_items);
    } else if (attr == MP_QSTR_n_features) {
        dest[0] = mp_obj_new_int(self->n_features);
    } else if (attr == MP_QSTR_n_input_features) {
        dest[0] = mp_obj_new_int(input_features(self));
    } else if (attr == MP_QSTR_n_steps) {
        dest[0] = mp_obj_new_int(self->steps_ready ? self->steps.shape.n_steps : 0);
    } else if (attr == MP_QSTR_max_k) {
        dest[0] = mp_obj_new_int(self->max_k);
    } else if (attr == MP_QSTR_k) {
        dest[0] = mp_obj_new_int(self->nb.k);
    } else if (attr == MP_QSTR_n_items) {
        dest[0] = mp_obj_new_int(configured ? self->nb.n_items : 0);
    } else if (attr == MP_QSTR_n_classes) {
        dest[0] = mp_obj_new_int(self->labeled == LABELS_YES ? self->n_classes : 0);
    } else if (attr == MP_QSTR_classes) {
        dest[0] = self->classes;
    } else if (attr == MP_QSTR_feature_names) {
        dest[0] = self->feature_names;
    } else if (attr == MP_QSTR_labeled) {
        dest[0] = self->labeled == LABELS_UNKNOWN ? mp_const_none : mp_obj_new_bool(self->labeled == LABELS_YES);
    } else if (attr == MP_QSTR_threshold) {
        dest[0] = self->has_threshold ? mp_obj_new_float_from_f(self->threshold) : mp_const_none;
    } else if (attr == MP_QSTR_typecode) {
        dest[0] = configured ? MP_OBJ_NEW_QSTR(model_typecode(self) == 'f' ? MP_QSTR_f : MP_QSTR_h) : mp_const_none;
    } else if (attr == MP_QSTR_metric) {
        dest[0] = configured ? metric_name(self->nb.shape.metric) : mp_const_none;
    } else if (attr == MP_QSTR_weights) {
        dest[0] = configured ? MP_OBJ_NEW_QSTR(self->nb.shape.weights == MPYML_WEIGHTS_DISTANCE ? MP_QSTR_distance : MP_QSTR_uniform) : mp_const_none;
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

mp_map_elem_t model_locals_table[17];
static MP_DEFINE_CONST_DICT(model_locals, model_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    model_type.base.type = (void *)&mp_type_type;
    model_type.flags = MP_TYPE_FLAG_NONE;
    model_type.name = MP_QSTR_Model;
    mpyml_add_method(model_locals_table, 0, MP_QSTR_predict, &model_predict_obj);
    mpyml_add_method(model_locals_table, 1, MP_QSTR_kneighbors, &model_kneighbors_obj);
    mpyml_add_method(model_locals_table, 2, MP_QSTR_score, &model_score_obj);
    mpyml_add_method(model_locals_table, 3, MP_QSTR_is_outlier, &model_is_outlier_obj);
    mpyml_add_method(model_locals_table, 4, MP_QSTR_additem, &model_additem_obj);
    mpyml_add_method(model_locals_table, 5, MP_QSTR_setitem, &model_setitem_obj);
    mpyml_add_method(model_locals_table, 6, MP_QSTR_remove, &model_remove_obj);
    mpyml_add_method(model_locals_table, 7, MP_QSTR_getitem, &model_getitem_obj);
    mpyml_add_method(model_locals_table, 8, MP_QSTR_clear, &model_clear_obj);
    mpyml_add_method(model_locals_table, 9, MP_QSTR__begin, &model_begin_obj);
    mpyml_add_method(model_locals_table, 10, MP_QSTR__steps, &model_steps_obj);
    mpyml_add_method(model_locals_table, 11, MP_QSTR__step, &model_step_obj);
    mpyml_add_method(model_locals_table, 12, MP_QSTR__floats, &model_floats_obj);
    mpyml_add_method(model_locals_table, 13, MP_QSTR__index, &model_index_obj);
    mpyml_add_method(model_locals_table, 14, MP_QSTR__finish, &model_finish_obj);
    mpyml_add_method(model_locals_table, 15, MP_QSTR__stepinfo, &model_stepinfo_obj);
    mpyml_add_method(model_locals_table, 16, MP_QSTR__stepvalues, &model_stepvalues_obj);
    MP_OBJ_TYPE_SET_SLOT(&model_type, attr, model_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&model_type, locals_dict, (void *)&model_locals, 1);

    mpyml_store_crc32();
    mpyml_store_hex_row();
    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emlneighbors_new_obj));
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&model_type));

    MP_DYNRUNTIME_INIT_EXIT
}
