// emlmixture: MicroPython glue for the Gaussian-component core (../common/mpyml_mixture.h):
// GaussianMixture, BayesianGaussianMixture, GaussianNB, EllipticEnvelope, KMeans. Parses
// arguments, checks buffers, owns the model's memory block and raises exceptions, and reads
// mpyml-mixture files (and writes k-means ones) with the shared C record reader and writer
// (../common/mpyml_records_glue.h).
#include "py/dynruntime.h"

#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_MODEL(X) MPYML_ERRORS_HEX(X) MPYML_ERRORS_MIXTURE(X)

#define MPYML_RECORDS_WRITER
#include "mpyml_glue.h"
#include "mpyml_records_glue.h"
#include "mpyml_mixture.h"

enum { MODEL_EMPTY, MODEL_LOADING, MODEL_READY };
enum { ROWS_PROBA, ROWS_SCORE, ROWS_DECISION, ROWS_MAHALANOBIS, ROWS_TRANSFORM };

typedef struct {
    mp_obj_base_t base;
    uint32_t max_features, max_components;
    uint32_t state, has_threshold;
    void *block;
    mp_obj_t classes;  // GaussianNB's classes_ (a list), else None
    mpyml_mixture_t model;
} model_t;

mp_obj_full_type_t model_type;

static model_t *get_model(mp_obj_t self_in) {
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emlmixture model, got %s", 1, mpyml_type_name(self_in));
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
}

// qstrs are not constants in a natmod: no tables of them.
static qstr kind_name(uint32_t kind) {
    return kind == MPYML_MIX_GMM ? MP_QSTR_mixture : kind == MPYML_MIX_NB ? MP_QSTR_naive_bayes
        : kind == MPYML_MIX_ENVELOPE ? MP_QSTR_envelope : MP_QSTR_kmeans;
}

// The loaded model, which must be of `kind` (0: any); `method` names the call in errors.
static mpyml_mixture_t *ready_model(mp_obj_t self_in, uint32_t kind, const char *method) {
    model_t *self = get_model(self_in);
    if (self->state != MODEL_READY) {
        mp_raise_msg(&mp_type_RuntimeError, "no model loaded: call emlmixture.load_model(model, file) first (a failed load leaves the model empty)");
    }
    if (kind != 0 && self->model.shape.kind != kind) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: not available for a %s model", 2, mpyml_str(method),
            MP_OBJ_NEW_QSTR(kind_name(self->model.shape.kind)));
    }
    return &self->model;
}

static const float *get_rows(const mpyml_mixture_t *m, mp_obj_t x_in, int one_row, size_t *n_rows) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(x_in, 'f', "x", MP_BUFFER_READ, &buf), d = m->shape.n_features;
    uint32_t rest, rows = mpyml_udiv((uint32_t)n, (uint32_t)d, &rest);  // no division instruction on armv6m
    if (one_row ? n != d : (n == 0 || rest != 0)) {
        mpyml_raise_fmt(&mp_type_ValueError, one_row ? "x: expected %d features, got %d" : "x: expected rows of %d features, got %d values",
            2, mp_obj_new_int(d), mp_obj_new_int(n));
    }
    *n_rows = rows;
    return (const float *)buf.buf;
}

// emlmixture.new(max_features, max_components)
static mp_obj_t emlmixture_new(mp_obj_t features_in, mp_obj_t components_in) {
    mp_int_t max_features = mpyml_get_arg_int(features_in, "emlmixture.new: max_features");
    mp_int_t max_components = mpyml_get_arg_int(components_in, "emlmixture.new: max_components");
    if (max_features < 1 || max_features > 65535 || max_components < 1 || max_components > 65535) {
        mp_raise_ValueError("emlmixture.new: max_features and max_components must be 1..65535");
    }
    model_t *self = mpyml_malloc(sizeof(model_t), "the model object");
    self->base.type = (const mp_obj_type_t *)&model_type;
    self->max_features = (uint32_t)max_features;
    self->max_components = (uint32_t)max_components;
    self->state = MODEL_EMPTY;
    self->block = NULL;
    self->classes = mp_const_none;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlmixture_new_obj, emlmixture_new);

static void check_capacity(const char *what, uint32_t needed, uint32_t capacity) {
    if (needed > capacity) {
        mpyml_raise_fmt(&mp_type_ValueError, "model needs %d %s but emlmixture.new() was given capacity for %d", 3,
            mp_obj_new_int(needed), mpyml_str(what), mp_obj_new_int(capacity));
    }
}

// model._begin(kind, cov, n_features, n_components, threshold_text)
static void model_begin(model_t *self, const mp_obj_t *args, const mpyml_field_t *threshold_text) {
    mpyml_mixture_shape_t shape;
    uint32_t *fields = &shape.kind;
    for (int i = 0; i < 4; i++) {
        // checked on the Python int: the dynruntime's mp_obj_get_int truncates a big int (2**64 + 4 would pass as 4)
        mp_int_t v = mp_obj_get_int(args[i]);
        fields[i] = (!mp_obj_is_small_int(args[i]) || v < 0 || v > 65535) ? 0 : (uint32_t)v;
    }
    mpyml_check(mpyml_mixture_check_shape(&shape));
    check_capacity("features", shape.n_features, self->max_features);
    check_capacity("components", shape.n_components, self->max_components);
    size_t len = threshold_text->len > threshold_text->n_kept ? 0 : threshold_text->len;
    const char *text = (const char *)threshold_text->text;
    int is_double = mpyml_mixture_is_double(&shape);
    double threshold = 0.0;
    int none = len == 4 && text[0] == 'n' && text[1] == 'o' && text[2] == 'n' && text[3] == 'e';
    // gmm: a float32 threshold or none; envelope: its float64 offset; nb and kmeans: none.
    int wanted = shape.kind == MPYML_MIX_ENVELOPE ? 1 : (shape.kind == MPYML_MIX_GMM ? -1 : 0);
    if (none ? wanted == 1 : (wanted == 0 || mpyml_mixture_parse_value(text, len, is_double, &threshold) != MPYML_OK)) {
        mpyml_raise_err(MPYML_ERR_MIX_HEADER);
    }
    size_t bytes = mpyml_mixture_bytes(&shape);
    if (bytes == 0) {
        mpyml_raise_err(MPYML_ERR_TOO_BIG);
    }
    self->block = mpyml_malloc(bytes, "the model");
    mpyml_mixture_bind(&self->model, &shape, self->block);
    self->model.threshold = threshold;
    self->has_threshold = !none;
    self->state = MODEL_LOADING;
}


static mp_obj_t model_unload_method(mp_obj_t self_in) {
    model_unload(get_model(self_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_unload_obj, model_unload_method);

// model.predict(x): component (mixture), class index (naive_bayes), centre (kmeans), +1 / -1 (envelope)
static mp_obj_t model_predict(mp_obj_t self_in, mp_obj_t x_in) {
    mpyml_mixture_t *m = ready_model(self_in, 0, "predict");
    size_t n;
    const float *x = get_rows(m, x_in, 1, &n);
    switch (m->shape.kind) {
        case MPYML_MIX_GMM: return mp_obj_new_int(mpyml_mixture_argmax(mpyml_mixture_gmm_log_probs(m, x), m->shape.n_components));
        case MPYML_MIX_NB: return mp_obj_new_int(mpyml_mixture_nb_predict(m, x));
        case MPYML_MIX_KMEANS: return mp_obj_new_int(mpyml_mixture_kmeans_predict(m, x));
        default: return mp_obj_new_int(-mpyml_mixture_mahalanobis(m, x) - m->threshold >= 0.0 ? 1 : -1);
    }
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

// model.is_outlier(x): mixture: score_samples(x) below the stored threshold; envelope: predict(x) == -1
static mp_obj_t model_is_outlier(mp_obj_t self_in, mp_obj_t x_in) {
    model_t *self = get_model(self_in);
    mpyml_mixture_t *m = ready_model(self_in, 0, "is_outlier");
    if (m->shape.kind == MPYML_MIX_ENVELOPE) {
        return mp_obj_new_bool(model_predict(self_in, x_in) == MP_OBJ_NEW_SMALL_INT(-1));
    }
    if (m->shape.kind != MPYML_MIX_GMM || !self->has_threshold) {
        mp_raise_TypeError("is_outlier: the model has no threshold (export a mixture with X to store one)");
    }
    size_t n;
    const float *x = get_rows(m, x_in, 1, &n);
    float score = mpyml_mixture_logsumexp(mpyml_mixture_gmm_log_probs(m, x), m->shape.n_components, NULL);
    return mp_obj_new_bool(score < (float)m->threshold);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_is_outlier_obj, model_is_outlier);

// model.partial_fit(x): k-means, moves the nearest centre toward x; returns its index
static mp_obj_t model_partial_fit(mp_obj_t self_in, mp_obj_t x_in) {
    mpyml_mixture_t *m = ready_model(self_in, MPYML_MIX_KMEANS, "partial_fit");
    size_t n;
    const float *x = get_rows(m, x_in, 1, &n);
    for (uint32_t i = 0; i < m->shape.n_features; i++) {
        if (!mpyml_is_finite(x[i])) {
            mp_raise_ValueError("partial_fit: x has NaN or infinite values");
        }
    }
    return mp_obj_new_int(mpyml_mixture_kmeans_learn(m, x));
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_partial_fit_obj, model_partial_fit);

// The methods that fill `out` for every row of X (rows back to back).
static mp_obj_t fill_rows(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in, int what, const char *name) {
    mpyml_mixture_t *m = ready_model(self_in, 0, name);
    uint32_t kind = m->shape.kind, k_n = m->shape.n_components;
    int ok = what == ROWS_PROBA ? (kind == MPYML_MIX_GMM || kind == MPYML_MIX_NB)
        : what == ROWS_SCORE ? (kind == MPYML_MIX_GMM || kind == MPYML_MIX_ENVELOPE)
        : what == ROWS_TRANSFORM ? kind == MPYML_MIX_KMEANS : kind == MPYML_MIX_ENVELOPE;
    if (!ok) {
        ready_model(self_in, kind == MPYML_MIX_ENVELOPE ? MPYML_MIX_GMM : MPYML_MIX_ENVELOPE, name);
    }
    size_t n_rows;
    const float *x = get_rows(m, x_in, 0, &n_rows);
    size_t width = (what == ROWS_PROBA || what == ROWS_TRANSFORM) ? k_n : 1;
    mp_buffer_info_t buf;
    size_t n_out = mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &buf);
    if (n_out != n_rows * width) {
        mpyml_raise_fmt(&mp_type_ValueError, "out: expected %d values, got %d", 2, mp_obj_new_int(n_rows * width), mp_obj_new_int(n_out));
    }
    float *out = (float *)buf.buf;
    for (size_t r = 0; r < n_rows; r++, x += m->shape.n_features, out += width) {
        if (kind == MPYML_MIX_GMM) {
            float score = mpyml_mixture_logsumexp(mpyml_mixture_gmm_log_probs(m, x), k_n, what == ROWS_PROBA ? out : NULL);
            if (what == ROWS_SCORE) {
                *out = score;
            }
        } else if (kind == MPYML_MIX_NB) {
            mpyml_mixture_nb_proba(m, x, out);
        } else if (kind == MPYML_MIX_KMEANS) {
            const float *dist = mpyml_mixture_kmeans_distances(m, x);
            for (uint32_t k = 0; k < k_n; k++) {
                out[k] = mpyml_sqrtf(dist[k]);
            }
        } else {
            double mahal = mpyml_mixture_mahalanobis(m, x);
            *out = (float)(what == ROWS_MAHALANOBIS ? mahal : (what == ROWS_SCORE ? -mahal : -mahal - m->threshold));
        }
    }
    return out_in;
}

static mp_obj_t model_predict_proba(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return fill_rows(self_in, x_in, out_in, ROWS_PROBA, "predict_proba");
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_predict_proba_obj, model_predict_proba);

static mp_obj_t model_score_samples(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return fill_rows(self_in, x_in, out_in, ROWS_SCORE, "score_samples");
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_score_samples_obj, model_score_samples);

static mp_obj_t model_decision_function(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return fill_rows(self_in, x_in, out_in, ROWS_DECISION, "decision_function");
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_decision_function_obj, model_decision_function);

static mp_obj_t model_mahalanobis(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return fill_rows(self_in, x_in, out_in, ROWS_MAHALANOBIS, "mahalanobis");
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_mahalanobis_obj, model_mahalanobis);

static mp_obj_t model_transform(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return fill_rows(self_in, x_in, out_in, ROWS_TRANSFORM, "transform");
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_transform_obj, model_transform);

static qstr cov_name(uint32_t cov) {
    return cov == MPYML_COV_FULL ? MP_QSTR_full : cov == MPYML_COV_TIED ? MP_QSTR_tied : cov == MPYML_COV_DIAG ? MP_QSTR_diag : MP_QSTR_spherical;
}

static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    model_t *self = get_model(self_in);
    const mpyml_mixture_shape_t *s = &self->model.shape;
    int ready = self->state == MODEL_READY;
    if (attr == MP_QSTR_max_features) {
        dest[0] = mp_obj_new_int(self->max_features);
    } else if (attr == MP_QSTR_max_components) {
        dest[0] = mp_obj_new_int(self->max_components);
    } else if (attr == MP_QSTR_loaded) {
        dest[0] = mp_obj_new_bool(ready);
    } else if (attr == MP_QSTR_classes) {
        dest[0] = self->classes;
    } else if (attr == MP_QSTR_n_features || attr == MP_QSTR_n_components || attr == MP_QSTR_kind ||
               attr == MP_QSTR_covariance_type || attr == MP_QSTR_threshold) {
        dest[0] = mp_const_none;
        if (!ready) {
            return;
        }
        if (attr == MP_QSTR_n_features) {
            dest[0] = mp_obj_new_int(s->n_features);
        } else if (attr == MP_QSTR_n_components) {
            dest[0] = mp_obj_new_int(s->n_components);
        } else if (attr == MP_QSTR_kind) {
            dest[0] = MP_OBJ_NEW_QSTR(kind_name(s->kind));
        } else if (attr == MP_QSTR_covariance_type) {
            dest[0] = MP_OBJ_NEW_QSTR(cov_name(s->cov));
        } else if (self->has_threshold) {
            dest[0] = mp_obj_new_float_from_d(self->model.threshold);
        }
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

// The mpyml-mixture reader: a row's values are checked as they come, then its width.
static void take_value(void *ctx, const mpyml_field_t *field, uint32_t i) {
    mpyml_mixture_t *m = ctx;
    const mpyml_mixture_shape_t *s = &m->shape;
    if (i >= mpyml_mixture_row_width(s, m->rows_added)) {
        mpyml_raise_err(MPYML_ERR_MIX_ROW_WIDTH);
    }
    double v;
    mpyml_check(mpyml_mixture_parse_value((const char *)field->text, field->len > field->n_kept ? 0 : field->len,
        mpyml_mixture_is_double(s), &v));
    if (s->kind == MPYML_MIX_KMEANS && m->rows_added == s->n_components && !(v >= 0.0 && v <= MPYML_MIX_MAX_COUNT)) {
        mpyml_raise_err(MPYML_ERR_MIX_COUNT);
    }
    if (mpyml_mixture_is_double(s)) {
        ((double *)m->values)[m->values_added + i] = v;
    } else {
        ((float *)m->values)[m->values_added + i] = (float)v;
    }
}

// '<key>,<n>' read as Python's int() reads it (the shape check narrows it).
// A header number: strict ASCII decimal here; beyond 0..65535 it becomes -1, which model_begin's
// shape check refuses as the host reader does ("bad header").
static mp_obj_t mixture_int(mpyml_records_t *r, const char *key) {
    mpyml_field_t value;
    records_value(r, key, &value);
    int64_t v = -1;
    if (mpyml_decimal_value(&value.decimal, 0, 65535, &v) == MPYML_DECIMAL_SYNTAX) {
        records_fail("%s: expected a decimal integer, got '%20F'", key, &value);
    }
    return mp_obj_new_int((mp_int_t)v);
}

static void mixture_read(mpyml_records_t *r, void *ctx) {
    model_t *self = ctx;
    model_unload(self);
    mpyml_field_t value;
    records_value(r, "mpyml-mixture", &value);
    if (!mpyml_field_is(&value, "1")) {
        records_fail("this file's format version is not supported (this emlmixture reads version 1)");
    }
    mp_obj_t shape[4];
    shape[0] = mp_obj_new_int(1 + records_choice(r, "kind", "mixture naive_bayes envelope kmeans", "envelope or kmeans or mixture or naive_bayes"));
    shape[1] = mp_obj_new_int(1 + records_choice(r, "covariance_type", "full tied diag spherical", "diag or full or spherical or tied"));
    shape[2] = mixture_int(r, "n_features");
    shape[3] = mixture_int(r, "n_components");
    records_value(r, "threshold", &value);
    model_begin(self, shape, &value);
    mpyml_mixture_t *m = &self->model;
    mp_obj_t classes = m->shape.kind == MPYML_MIX_NB ? records_labels(r, "classes") : mp_const_none;
    records_section(r, "values");
    records_what_t what = records_what("a row of values", 0);
    while (m->rows_added < mpyml_mixture_n_rows(&m->shape)) {
        uint32_t width = mpyml_mixture_row_width(&m->shape, m->rows_added);
        if (records_row(r, what, take_value, m, 0, ROW_TAKE_ALL) != width) {
            mpyml_raise_err(MPYML_ERR_MIX_ROW_WIDTH);
        }
        m->values_added += width;
        m->rows_added++;
    }
    records_end(r, "row");
    if (classes != mp_const_none && (size_t)mp_obj_get_int(mp_obj_len(classes)) != m->shape.n_components) {
        mp_raise_ValueError("the number of classes differs from n_components");
    }
    self->classes = classes;
    self->state = MODEL_READY;
}

static void mixture_undo(void *ctx) {
    model_unload(ctx);
}

// emlmixture.load_model(model, f): loads a model file (an open file, or a path) into `model` from emlmixture.new().
static mp_obj_t emlmixture_load_model(mp_obj_t model_in, mp_obj_t f) {
    if (mp_obj_get_type(model_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "load_model: expected a model from emlmixture.new(), got %s", 1, mpyml_type_name(model_in));
    }
    mpyml_read_file(f, mixture_read, MP_OBJ_TO_PTR(model_in), mixture_undo, "model file", "load_model");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlmixture_load_model_obj, emlmixture_load_model);

// A k-means model as partial_fit left it: centres, counts and (diag) weights.
static void kmeans_write(mpyml_writer_t *w, void *ctx) {
    const mpyml_mixture_t *m = ctx;
    const mpyml_mixture_shape_t *s = &m->shape;
    size_t len;
    writer_fmt(w, "mpyml-mixture,1\nkind,kmeans\ncovariance_type,%s\nn_features,%d\nn_components,%d\nthreshold,none\nvalues\n",
        mp_obj_str_get_data(MP_OBJ_NEW_QSTR(cov_name(s->cov)), &len), (int)s->n_features, (int)s->n_components);
    const uint32_t *values = m->values;
    for (uint32_t row = 0; row < mpyml_mixture_n_rows(s); row++) {
        uint32_t width = mpyml_mixture_row_width(s, row);
        for (uint32_t i = 0; i < width; i++) {
            writer_fmt(w, ",%x" + !i, *values++);
        }
        writer_fmt(w, "\n");
    }
    writer_end(w);
}

// emlmixture.save_model(model, f): writes a loaded k-means model to an open text file or a path.
static mp_obj_t emlmixture_save_model(mp_obj_t model_in, mp_obj_t f) {
    model_t *self = MP_OBJ_TO_PTR(model_in);
    if (mp_obj_get_type(model_in) != (const mp_obj_type_t *)&model_type || self->state != MODEL_READY
        || self->model.shape.kind != MPYML_MIX_KMEANS) {
        mp_raise_TypeError("save_model: expected a loaded emlmixture k-means model");
    }
    mpyml_write_file(f, kmeans_write, &self->model, "save_model");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlmixture_save_model_obj, emlmixture_save_model);

mp_map_elem_t model_locals_table[9];
static MP_DEFINE_CONST_DICT(model_locals, model_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    model_type.base.type = (void *)&mp_type_type;
    model_type.flags = MP_TYPE_FLAG_NONE;
    model_type.name = MP_QSTR_Model;
    mpyml_add_method(model_locals_table, 0, MP_QSTR_predict, &model_predict_obj);
    mpyml_add_method(model_locals_table, 1, MP_QSTR_predict_proba, &model_predict_proba_obj);
    mpyml_add_method(model_locals_table, 2, MP_QSTR_score_samples, &model_score_samples_obj);
    mpyml_add_method(model_locals_table, 3, MP_QSTR_decision_function, &model_decision_function_obj);
    mpyml_add_method(model_locals_table, 4, MP_QSTR_mahalanobis, &model_mahalanobis_obj);
    mpyml_add_method(model_locals_table, 5, MP_QSTR_transform, &model_transform_obj);
    mpyml_add_method(model_locals_table, 6, MP_QSTR_is_outlier, &model_is_outlier_obj);
    mpyml_add_method(model_locals_table, 7, MP_QSTR_partial_fit, &model_partial_fit_obj);
    mpyml_add_method(model_locals_table, 8, MP_QSTR_unload, &model_unload_obj);
    MP_OBJ_TYPE_SET_SLOT(&model_type, attr, model_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&model_type, locals_dict, (void *)&model_locals, 1);

    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emlmixture_new_obj));
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&model_type));
    mp_store_global(MP_QSTR_load_model, MP_OBJ_FROM_PTR(&emlmixture_load_model_obj));
    mp_store_global(MP_QSTR_save_model, MP_OBJ_FROM_PTR(&emlmixture_save_model_obj));

    MP_DYNRUNTIME_INIT_EXIT
}
