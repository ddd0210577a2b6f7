// emlneighbors: MicroPython glue for the portable k-NN core (../common/mpyml_neighbors.h).
// Parses arguments, checks buffers, owns the item block and raises, and reads and writes
// mpyml-neighbors files (docs/formats.md) with the shared C record reader and writer
// (../common/mpyml_records_glue.h).
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_COMMON(X) MPYML_ERRORS_NEIGHBORS(X) MPYML_ERRORS_LINEAR(X)

#define MPYML_RECORDS_WRITER
#include "mpyml_glue.h"
#include "mpyml_neighbors.h"
// Only the search over the items (mpyml_neighbors.h, above) is hot: on x64, where the Makefile
// unrolls and vectorises for speed, the glue and the pipeline steps are compiled for size so the
// module stays below 32 KB.
#if defined(__x86_64__)
#pragma GCC optimize("Os", "fp-contract=off")
#endif
#include "mpyml_records_glue.h"
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
        records_raise(&mp_type_TypeError, "expected an emlneighbors model, got %O", mpyml_type_name(self_in));
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
        records_raise(&mp_type_ValueError, "%s: expected %d features, got %d", what, (int)input_features(self), (int)n);
    }
    return self->steps_ready ? (const void *)mpyml_linear_run(&self->steps, (const float *)buf.buf) : buf.buf;
}

static uint32_t get_index(model_t *self, mp_obj_t index_in, uint32_t limit) {
    mp_int_t index = mp_obj_get_int(index_in);  // TypeError for a non-integer; a big int comes back truncated
    if (mpyml_is_big_int(index_in) || index < 0 || (mp_uint_t)index >= limit) {
        mpyml_raise_fmt(&mp_type_IndexError, "item index %d out of range: %d items stored", 2, index_in,
            mp_obj_new_int(self->nb.n_items));
    }
    return (uint32_t)index;
}

static void check_search(model_t *self, mpyml_err_t err) {
    if (err == MPYML_ERR_NB_TOO_FEW_ITEMS) {
        records_fail("k=%d is larger than the %d items stored", (int)self->nb.k, (int)self->nb.n_items);
    }
    mpyml_check(err);
}

// emlneighbors.new(max_items, n_features, k)
static mp_obj_t emlneighbors_new(mp_obj_t items_in, mp_obj_t features_in, mp_obj_t k_in) {
    mp_int_t max_items = mpyml_get_arg_int(items_in, "emlneighbors.new: max_items");
    mp_int_t n_features = mpyml_get_arg_int(features_in, "emlneighbors.new: n_features");
    mp_int_t k = mpyml_get_arg_int(k_in, "emlneighbors.new: k");
    if (max_items < 1 || max_items > (mp_int_t)MPYML_NEIGHBORS_MAX_ITEMS) {
        records_fail("emlneighbors.new: max_items must be 1..%d, got %D", (int)MPYML_NEIGHBORS_MAX_ITEMS, (int64_t)max_items);
    }
    if (n_features < 1 || n_features > (mp_int_t)MPYML_NEIGHBORS_MAX_FEATURES) {
        records_fail("emlneighbors.new: n_features must be 1..%d, got %D", (int)MPYML_NEIGHBORS_MAX_FEATURES, (int64_t)n_features);
    }
    if (k < 1 || k > max_items || k > (mp_int_t)MPYML_NEIGHBORS_MAX_K) {
        records_fail("emlneighbors.new: k must be 1..max_items (%D), got %D", (int64_t)max_items, (int64_t)k);
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

// Empties the model and sets it up for a file's items (n_classes 0: no labels):
// v = dtype, metric, weights, n_features, k, n_classes, checked by the reader.
static void model_begin(model_t *self, const uint32_t *v, int has_threshold, uint32_t threshold_bits) {
    model_clear(self);
    if (v[3] != self->n_features) {
        records_fail("the file's items have %d features but this model was made for %d", (int)v[3], (int)self->n_features);
    }
    if (v[4] > self->max_k) {
        records_fail("the file's k=%d is not within 1..%d, the k given to emlneighbors.new()", (int)v[4], (int)self->max_k);
    }
    configure(self, (uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2]);
    self->nb.k = v[4];
    self->n_classes = v[5];
    self->labeled = v[5] > 0 ? LABELS_YES : LABELS_NONE;
    self->classes_fixed = 1;
    self->has_threshold = (uint8_t)has_threshold;
    self->threshold = mpyml_f32_from_bits(threshold_bits);
}

// The steps that map raw features to the items' n_features (after the header, before the items);
// they run once the file has loaded: its items are stored transformed.
static mpyml_linear_t *model_steps(void *ctx, const mpyml_linear_shape_t *shape) {
    model_t *self = ctx;
    if (self->nb.shape.dtype != MPYML_DTYPE_FLOAT32) {
        mp_raise_ValueError("steps need float32 items and come once, before the items");
    }
    mpyml_check(mpyml_linear_check_shape(shape));
    self->steps_block = mpyml_malloc(mpyml_linear_bytes(shape), "the steps");
    mpyml_linear_bind(&self->steps, shape, self->steps_block);
    return &self->steps;
}

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
    mp_int_t label = mpyml_get_arg_int(label_in, "label");
    mp_int_t limit = self->classes_fixed ? (mp_int_t)self->n_classes - 1 : (mp_int_t)MPYML_NEIGHBORS_MAX_LABEL;
    if (label < 0 || label > limit) {
        records_fail("label %D out of range 0..%d", (int64_t)label, (int)limit);
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

static void store_row(model_t *self, uint32_t index, const void *x, mp_obj_t label_in, uint32_t label) {
    if (index == self->nb.n_items && self->nb.n_items >= self->max_items) {
        records_fail("over capacity: all %d items of emlneighbors.new() are in use", (int)self->max_items);
    }
    mpyml_check(mpyml_neighbors_set_item(&self->nb, index, x, label));
    if (self->labeled == LABELS_UNKNOWN) {
        self->labeled = label_in == mp_const_none ? LABELS_NONE : LABELS_YES;
    }
    if (self->labeled == LABELS_YES && !self->classes_fixed && label + 1 > self->n_classes) {
        self->n_classes = label + 1;
    }
}

static void store(model_t *self, uint32_t index, mp_obj_t x_in, mp_obj_t label_in) {
    const void *x = get_row(self, x_in, "x");
    store_row(self, index, x, label_in, get_label(self, label_in));
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
        records_fail("out: expected %d items, got %d", (int)self->n_features, (int)n);
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
        records_fail("dist_out and index_out: expected k=%d items each, got %d and %d", (int)nb->k, (int)n_dist, (int)n_index);
    }
    if (index_typecode_max(index.typecode) < nb->n_items - 1) {
        records_raise(&mp_type_TypeError, "index_out: array('%c') cannot hold item indices up to %d", (int)index.typecode, (int)nb->n_items - 1);
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
            mp_int_t k = mpyml_get_arg_int(dest[1], "k");
            if (k < 1 || k > (mp_int_t)self->max_k) {
                records_fail("k must be 1..%d (the k given to emlneighbors.new()), got %D", (int)self->max_k, (int64_t)k);
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

// The mpyml-neighbors reader: a file's items replace the model's.
typedef struct {
    model_t *self;
    uint8_t *x;                 // the item being read
    uint32_t label;
    int bad_value;              // int16: the first value out of range, reported after the width
    mpyml_field_t bad;
} item_read_t;

static void take_item_field(void *ctx, const mpyml_field_t *field, uint32_t i) {
    item_read_t *it = ctx;
    model_t *self = it->self;
    uint32_t labeled = self->labeled == LABELS_YES;
    if (labeled && i == 0) {
        it->label = (uint32_t)records_int_in(field, 0, (int64_t)self->n_classes - 1, "label");
        return;
    }
    uint32_t j = i - labeled;
    if (self->nb.shape.dtype == MPYML_DTYPE_FLOAT32) {
        uint32_t bits = records_hex32(field);  // any field: a bad one is reported before the width
        if (j < self->n_features) {
            ((uint32_t *)it->x)[j] = bits;
        }
    } else if (j < self->n_features) {
        int64_t v = 0;
        if (mpyml_decimal_value(&field->decimal, -32768, 32767, &v) != MPYML_DECIMAL_OK) {
            if (!it->bad_value) {
                it->bad_value = 1;
                mpyml_field_copy(&it->bad, field);
            }
        } else {
            ((int16_t *)it->x)[j] = (int16_t)v;
        }
    }
}

static void neighbors_read(mpyml_records_t *r, void *ctx) {
    model_t *self = ctx;
    model_clear(self);
    mpyml_field_t fields[5];
    records_value(r, "mpyml-neighbors", &fields[0]);
    if (!mpyml_field_is(&fields[0], "3")) {
        if (mpyml_field_is(&fields[0], "1") || mpyml_field_is(&fields[0], "2")) {
            records_fail("version %s is no longer read by this emlneighbors (it reads version 3): export the model again",
                mpyml_field_is(&fields[0], "1") ? "1" : "2");
        }
        records_fail("this file's format version is not supported (this emlneighbors reads version 3)");
    }
    int labeled = records_choice(r, "kind", "classifier neighbors", "classifier or neighbors") == 0;
    uint32_t v[6];
    v[0] = 1 + (uint32_t)records_choice(r, "dtype", "int16 float32", "float32 or int16");
    v[1] = 1 + (uint32_t)records_choice(r, "metric", "euclidean manhattan chebyshev", "chebyshev or euclidean or manhattan");
    v[2] = 1 + (uint32_t)records_choice(r, "weights", "uniform distance", "distance or uniform");
    v[3] = (uint32_t)records_count(r, "n_features", 1, 65535);
    v[5] = (uint32_t)records_count(r, "n_classes", 0, 65535);
    if (labeled != (v[5] > 0)) {
        records_fail("n_classes must be at least 1 for a classifier and 0 for neighbors");
    }
    v[4] = (uint32_t)records_count(r, "k", 1, 65535);
    uint32_t n_items = (uint32_t)records_count(r, "n_items", 1, 1 << 24);
    if (n_items < v[4] || n_items > self->max_items) {
        records_fail("n_items=%d: must be k=%d..%d (the max_items of emlneighbors.new())", (int)n_items, (int)v[4], (int)self->max_items);
    }
    records_value(r, "threshold", &fields[0]);
    int has_threshold = !mpyml_field_is(&fields[0], "none");
    uint32_t threshold = has_threshold ? records_hex32(&fields[0]) : 0;
    mp_obj_t classes = mp_const_none, names;
    if (labeled) {
        classes = records_labels(r, "classes");
        size_t n = mp_obj_get_int(mp_obj_len(classes));
        if (n != v[5]) {
            records_fail("%d classes, but n_classes is %d", (int)n, (int)v[5]);
        }
    }
    names = records_labels(r, "feature_names");
    size_t n_names = mp_obj_get_int(mp_obj_len(names));
    model_begin(self, v, has_threshold, threshold);
    uint32_t n_fields = records_fields(r, 0, records_what("the 'items' section line (or 'steps,...' before it)", 0), fields, 5);
    uint32_t n_input_features = v[3];
    if (mpyml_field_is(&fields[0], "steps")) {
        n_input_features = records_steps_section(r, fields, n_fields, v[3], model_steps, self);
        n_fields = records_fields(r, 0, records_what("the 'items' section line", 0), fields, 1);
    }
    if (n_fields != 1 || !mpyml_field_is(&fields[0], "items")) {
        records_fail("expected the 'items' section line, got '%H'", &r->line);
    }
    if (n_names != 0 && n_names != n_input_features) {
        records_fail("%d feature names, but the model takes %d features", (int)n_names, (int)n_input_features);
    }
    item_read_t it;
    it.self = self;
    it.x = mpyml_malloc(v[3] * (v[0] == MPYML_DTYPE_FLOAT32 ? 4 : 2), "an item");
    records_what_t what = records_what("an item", 0);
    for (uint32_t i = 0; i < n_items; i++) {
        it.label = 0;
        it.bad_value = 0;
        uint32_t got = records_row(r, what, take_item_field, &it, 0, ROW_END_PREFIX | ROW_TAKE_ALL);
        if (labeled && got == 1) {  // a label alone: one empty value, as the line's split gave
            mpyml_field_reset(&it.bad);
            take_item_field(&it, &it.bad, 1);
            got = 2;
        }
        got -= labeled;
        if (v[0] == MPYML_DTYPE_FLOAT32) {
            if (got != v[3]) {
                records_fail("expected %d values, got %d", (int)v[3], (int)got);
            }
        } else {
            if (got != v[3]) {
                records_fail("an item needs %d features, got %d", (int)v[3], (int)got);
            }
            if (it.bad_value) {
                records_int_in(&it.bad, -32768, 32767, "an int16 feature");
            }
        }
        store_row(self, self->nb.n_items, it.x, labeled ? mp_const_true : mp_const_none, it.label);
    }
    m_free(it.x);
    records_end(r, "item");
    if (self->steps_block != NULL) {
        mpyml_check(mpyml_linear_check_complete(&self->steps));
        self->steps_ready = 1;
    }
    self->classes = classes;
    self->feature_names = n_names ? names : mp_const_none;
}

static void neighbors_undo(void *ctx) {
    model_clear(ctx);
}

static model_t *file_model(mp_obj_t model_in, const char *caller) {
    if (mp_obj_get_type(model_in) != (const mp_obj_type_t *)&model_type) {
        records_raise(&mp_type_TypeError, "%s: expected a model from emlneighbors.new(), got %O", caller, mpyml_type_name(model_in));
    }
    return MP_OBJ_TO_PTR(model_in);
}

// emlneighbors.load_model(model, f): a model file (an open file, or a path) replaces the model's items.
static mp_obj_t emlneighbors_load_model(mp_obj_t model_in, mp_obj_t f) {
    mpyml_read_file(f, neighbors_read, file_model(model_in, "load_model"), neighbors_undo, "model file", "load_model");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlneighbors_load_model_obj, emlneighbors_load_model);

// The label records of a list of ints, strs, bools or floats (docs/formats.md, "Labels"); an empty
// list is written as 'str,0', as the host writes it. None: n_classes labels 0..n_classes-1.
static void write_labels(mpyml_writer_t *w, const char *key, mp_obj_t labels, uint32_t n_classes) {
    size_t n = n_classes;
    mp_obj_t *items = NULL;
    if (labels != mp_const_none) {
        mp_obj_get_array(labels, &n, &items);
    }
    const char *kind = labels == mp_const_none ? "int" : "str";
    const mp_obj_type_t *first = n && items ? mp_obj_get_type(items[0]) : NULL;
    if (first != NULL) {
        kind = first == &mp_type_bool ? "bool" : first == &mp_type_int ? "int" : first == &mp_type_str ? "str"
            : first == (const mp_obj_type_t *)MP_OBJ_TO_PTR(mp_load_global(MP_QSTR_float)) ? "float" : NULL;
        for (size_t i = 0; kind != NULL && i < n; i++) {
            if (mp_obj_get_type(items[i]) != first) {
                kind = NULL;
            }
        }
        if (kind == NULL) {
            records_raise(&mp_type_TypeError, "save_model: %s must all be int, str, bool or float", key);
        }
    }
    writer_fmt(w, "%s,%s,%d\n", key, kind, (int)n);
    for (size_t i = 0; i < n; i++) {
        writer_fmt(w, "label,");
        if (items == NULL) {
            writer_fmt(w, "%d", (int)i);
        } else if (first == &mp_type_bool) {
            writer_fmt(w, items[i] == mp_const_true ? "1" : "0");
        } else {
            mp_obj_t text = first == &mp_type_str ? items[i] : mp_call_function_n_kw(mp_load_global(MP_QSTR_repr), 1, 0, &items[i]);
            size_t len;
            const uint8_t *b = (const uint8_t *)mp_obj_str_get_data(text, &len);
            for (size_t j = 0; j < len; j++) {  // str: %XX for '%', ',', '#', 0x00-0x20 and 0x7f
                int escape = first == &mp_type_str && (b[j] <= 32 || b[j] == '#' || b[j] == '%' || b[j] == ',' || b[j] == 127);
                char hex[3] = { '%', "0123456789ABCDEF"[b[j] >> 4], "0123456789ABCDEF"[b[j] & 15] };
                writer_put(w, escape ? hex : (const char *)&b[j], escape ? 3 : 1);
            }
        }
        writer_fmt(w, "\n");
    }
}

// n values and the line end: decimal (select indices) or 8 hex digits (float32 bits).
static void write_values(mpyml_writer_t *w, const uint32_t *values, uint32_t n, int decimal) {
    for (uint32_t i = 0; i < n; i++) {
        writer_fmt(w, decimal ? ",%d" + !i : ",%x" + !i, values[i]);
    }
    writer_fmt(w, "\n");
}

static void neighbors_write(mpyml_writer_t *w, void *ctx) {
    model_t *self = ctx;
    if (self->block == NULL || self->nb.n_items == 0) {
        mp_raise_msg(&mp_type_RuntimeError, "save_model: no items stored");
    }
    int labeled = self->labeled == LABELS_YES, float32 = model_typecode(self) == 'f';
    size_t len;
    writer_fmt(w, "mpyml-neighbors,3\nkind,%s\ndtype,%s\nmetric,%s\nweights,%s\nn_features,%d\nn_classes,%d\nk,%d\nn_items,%d\nthreshold,",
        labeled ? "classifier" : "neighbors", float32 ? "float32" : "int16",
        mp_obj_str_get_data(metric_name(self->nb.shape.metric), &len),
        self->nb.shape.weights == MPYML_WEIGHTS_DISTANCE ? "distance" : "uniform",
        (int)self->n_features, labeled ? (int)self->n_classes : 0, (int)self->nb.k, (int)self->nb.n_items);
    if (self->has_threshold) {
        writer_fmt(w, "%x\n", mpyml_f32_to_bits(self->threshold));
    } else {
        writer_fmt(w, "none\n");
    }
    if (labeled) {  // items learned on the device without a file have class indices as labels
        write_labels(w, "classes", self->classes, self->n_classes);
    }
    write_labels(w, "feature_names", self->feature_names == mp_const_none ? mp_obj_new_list(0, NULL) : self->feature_names, 0);
    if (self->steps_ready) {
        const mpyml_linear_t *m = &self->steps;
        uint32_t n_values = 0, max_width = m->shape.n_features;
        for (uint32_t i = 0; i < m->shape.n_steps; i++) {
            n_values += mpyml_step_values(m->steps[i].kind, m->steps[i].n_in, m->steps[i].n_out);
            max_width = m->steps[i].n_out > max_width ? m->steps[i].n_out : max_width;
        }
        writer_fmt(w, "steps,%d,%d,%d,%d\n", (int)m->shape.n_features, (int)m->shape.n_steps, (int)n_values, (int)max_width);
        for (uint32_t i = 0; i < m->shape.n_steps; i++) {
            const mpyml_linear_step_t *st = &m->steps[i];
            writer_fmt(w, "step,%s,%d,%d\n", st->kind == MPYML_STEP_AFFINE ? "affine" : st->kind == MPYML_STEP_SELECT ? "select" : "matrix",
                (int)st->n_in, (int)st->n_out);
            // select: the indices; affine: scales, shifts; matrix: n_out rows of n_in, then the biases
            const uint32_t *values = m->values + st->offset;
            uint32_t rows = st->kind == MPYML_STEP_MATRIX ? st->n_out : st->kind == MPYML_STEP_AFFINE ? 1 : 0;
            uint32_t width = st->kind == MPYML_STEP_MATRIX ? st->n_in : st->n_out;
            for (uint32_t row = 0; row < rows; row++, values += width) {
                write_values(w, values, width, 0);
            }
            write_values(w, values, st->n_out, st->kind == MPYML_STEP_SELECT);
        }
    }
    writer_fmt(w, "items\n");
    for (uint32_t i = 0; i < self->nb.n_items; i++) {
        const uint8_t *row = mpyml_neighbors_row(&self->nb, i);
        if (labeled) {
            writer_fmt(w, "%d,", (int)self->nb.labels[i]);
        }
        for (uint32_t j = 0; j < self->n_features; j++) {
            if (float32) {
                writer_fmt(w, ",%x" + !j, ((const uint32_t *)row)[j]);
            } else {
                writer_fmt(w, ",%d" + !j, (int)((const int16_t *)row)[j]);
            }
        }
        writer_fmt(w, "\n");
    }
    writer_end(w);
}

// emlneighbors.save_model(model, f): writes the items, labels and steps (an open text file, or a path)
// in the format load_model reads.
static mp_obj_t emlneighbors_save_model(mp_obj_t model_in, mp_obj_t f) {
    mpyml_write_file(f, neighbors_write, file_model(model_in, "save_model"), "save_model");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlneighbors_save_model_obj, emlneighbors_save_model);

mp_map_elem_t model_locals_table[9];
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
    MP_OBJ_TYPE_SET_SLOT(&model_type, attr, model_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&model_type, locals_dict, (void *)&model_locals, 1);

    mp_store_global(MP_QSTR_load_model, MP_OBJ_FROM_PTR(&emlneighbors_load_model_obj));
    mp_store_global(MP_QSTR_save_model, MP_OBJ_FROM_PTR(&emlneighbors_save_model_obj));
    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emlneighbors_new_obj));
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&model_type));

    MP_DYNRUNTIME_INIT_EXIT
}
