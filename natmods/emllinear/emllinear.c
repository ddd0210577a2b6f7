// emllinear: MicroPython glue for the portable step-chain core (../common/mpyml_linear.h).
// Parses arguments, checks buffers, owns the model's one memory block and raises
// exceptions, and reads mpyml-linear files (docs/formats.md) with the shared C record reader
// (../common/mpyml_records_glue.h); emllinear_pipeline.py (Pipeline) is linked into the same .mpy.
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_HEX(X) MPYML_ERRORS_LINEAR(X)

#include "mpyml_glue.h"
#include "mpyml_records_glue.h"
#include "mpyml_steps_glue.h"

enum { MODEL_EMPTY, MODEL_LOADING, MODEL_READY };

typedef struct {
    mp_obj_base_t base;
    uint32_t max_steps, max_values;
    uint32_t state;
    void *block;  // owns every array of `model`
    mpyml_linear_t model;
    mp_obj_t classes, feature_names;  // lists of labels from the file, or None
} model_t;

// Not static: mpy_ld cannot relocate static bss variables.
mp_obj_full_type_t model_type;

static model_t *get_model(mp_obj_t self_in) {
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emllinear model, got %s", 1, mpyml_type_name(self_in));
    }
    return (model_t *)MP_OBJ_TO_PTR(self_in);
}

static void model_unload(model_t *self) {
    self->state = MODEL_EMPTY;
    self->classes = mp_const_none;
    self->feature_names = mp_const_none;
    if (self->block != NULL) {
        m_free(self->block);
        self->block = NULL;
    }
}

static const mpyml_linear_t *ready_model(mp_obj_t self_in) {
    model_t *self = get_model(self_in);
    if (self->state != MODEL_READY) {
        mp_raise_msg(&mp_type_RuntimeError, "no model loaded: call emllinear.load_model(model, file) first (a failed load leaves the model empty)");
    }
    return &self->model;
}

static const float *get_x(const mpyml_linear_t *m, mp_obj_t x_in) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(x_in, 'f', "x", MP_BUFFER_READ, &buf);
    if (n != m->shape.n_features) {
        mpyml_raise_fmt(&mp_type_ValueError, "x: expected %d features, got %d", 2, mp_obj_new_int(m->shape.n_features), mp_obj_new_int(n));
    }
    return (const float *)buf.buf;
}

static float *get_out(mp_obj_t out_in, size_t expected) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &buf);
    if (n != expected) {
        mpyml_raise_fmt(&mp_type_ValueError, "out: expected %d items, got %d", 2, mp_obj_new_int(expected), mp_obj_new_int(n));
    }
    return (float *)buf.buf;
}

static const char *kind_text(uint32_t kind) {
    return kind == MPYML_LINEAR_CLASSIFIER ? "a classifier" : (kind == MPYML_LINEAR_REGRESSOR ? "a regressor" : "a transformer");
}

static void require_kind(const mpyml_linear_t *m, const char *method, int ok, const char *use) {
    if (!ok) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: the loaded model is %s; use %s", 3, mpyml_str(method),
            mpyml_str(kind_text(m->shape.kind)), mpyml_str(use));
    }
}

// emllinear.new(max_steps, max_values)
static mp_obj_t emllinear_new(mp_obj_t steps_in, mp_obj_t values_in) {
    mp_int_t max_steps = mpyml_get_arg_int(steps_in, "emllinear.new: max_steps");
    mp_int_t max_values = mpyml_get_arg_int(values_in, "emllinear.new: max_values");
    if (max_steps < 1 || max_steps > (mp_int_t)MPYML_LINEAR_MAX_STEPS) {
        mpyml_raise_fmt(&mp_type_ValueError, "emllinear.new: max_steps must be 1..255, got %d", 1, mp_obj_new_int(max_steps));
    }
    if (max_values < 0 || max_values > 0x3fffffff) {
        mpyml_raise_fmt(&mp_type_ValueError, "emllinear.new: max_values must be 0..1073741823, got %d", 1, mp_obj_new_int(max_values));
    }
    model_t *self = mpyml_malloc(sizeof(model_t), "the model object");
    self->base.type = (const mp_obj_type_t *)&model_type;
    self->max_steps = (uint32_t)max_steps;
    self->max_values = (uint32_t)max_values;
    self->state = MODEL_EMPTY;
    self->block = NULL;
    self->classes = mp_const_none;
    self->feature_names = mp_const_none;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_2(emllinear_new_obj, emllinear_new);

static void check_capacity(const char *what, uint32_t needed, uint32_t capacity) {
    if (needed > capacity) {
        mpyml_raise_fmt(&mp_type_ValueError, "model needs %d %s but emllinear.new() was given capacity for %d (%d short)", 4,
            mp_obj_new_int(needed), mpyml_str(what), mp_obj_new_int(capacity), mp_obj_new_int(needed - capacity));
    }
}

// Sets the model up for a file's steps: one block for the shape.
static void model_begin(model_t *self, const mpyml_linear_shape_t *shape) {
    mpyml_check(mpyml_linear_check_shape(shape));
    check_capacity("steps", shape->n_steps, self->max_steps);
    check_capacity("values", shape->n_values, self->max_values);
    self->block = mpyml_malloc(mpyml_linear_bytes(shape), "the model");
    mpyml_linear_bind(&self->model, shape, self->block);
    self->state = MODEL_LOADING;
}

static void linear_read(mpyml_records_t *r, void *ctx) {
    model_t *self = ctx;
    model_unload(self);
    mpyml_field_t version;
    records_value(r, "mpyml-linear", &version);
    if (!mpyml_field_is(&version, "2")) {
        if (mpyml_field_is(&version, "1")) {
            mp_raise_ValueError("version 1 is no longer read by this emllinear (it reads version 2): export the model again");
        }
        mp_raise_ValueError("this file's format version is not supported (this emllinear reads version 2)");
    }
    mpyml_linear_shape_t shape;
    shape.kind = 1 + (uint32_t)records_choice(r, "kind", "classifier regressor transformer", "classifier or regressor or transformer");
    shape.proba = (uint32_t)records_choice(r, "proba", "none logistic softmax ovr", "logistic or none or ovr or softmax");
    shape.n_features = (uint32_t)records_count(r, "n_features", 1, 65535);
    shape.n_outputs = (uint32_t)records_count(r, "n_outputs", 1, 65535);
    shape.n_steps = (uint32_t)records_count(r, "n_steps", 1, MPYML_LINEAR_MAX_STEPS);
    shape.n_values = (uint32_t)records_count(r, "n_values", 0, 0x3fffffff);
    records_check_size(r, shape.n_values, 2, "step values");  // each takes at least 2 bytes, '0,'
    shape.max_width = (uint32_t)records_count(r, "max_width", 1, MPYML_LINEAR_MAX_WIDTH);
    mp_obj_t classes = mp_const_none, names;
    if (shape.kind == MPYML_LINEAR_CLASSIFIER) {
        classes = records_labels(r, "classes");
        size_t n = mp_obj_get_int(mp_obj_len(classes));
        if (n != shape.n_outputs) {
            records_fail("%d classes, but n_outputs is %d", (int)n, (int)shape.n_outputs);
        }
    }
    names = records_labels(r, "feature_names");
    size_t n_names = mp_obj_get_int(mp_obj_len(names));
    if (n_names == 0) {
        names = mp_const_none;
    } else if (n_names != shape.n_features) {
        records_fail("%d feature names, but n_features is %d", (int)n_names, (int)shape.n_features);
    }
    model_begin(self, &shape);
    records_steps(r, &self->model, shape.n_steps);
    records_end(r, "step");
    mpyml_check(mpyml_linear_check_complete(&self->model));
    self->classes = classes;
    self->feature_names = names;
    self->state = MODEL_READY;
}

static void linear_undo(void *ctx) {
    model_unload(ctx);
}

// emllinear.load_model(model, f): loads a model file (an open file, or a path) into `model` from emllinear.new().
static mp_obj_t emllinear_load_model(mp_obj_t model_in, mp_obj_t f) {
    if (mp_obj_get_type(model_in) != (const mp_obj_type_t *)&model_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "load_model: expected a model from emllinear.new(), got %s", 1, mpyml_type_name(model_in));
    }
    mpyml_read_file(f, linear_read, MP_OBJ_TO_PTR(model_in), linear_undo, "model file", "load_model");
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(emllinear_load_model_obj, emllinear_load_model);

static mp_obj_t model_unload_method(mp_obj_t self_in) {
    model_unload(get_model(self_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_unload_obj, model_unload_method);

// model.predict(x) -> class index (classifier) or float (regressor)
static mp_obj_t model_predict(mp_obj_t self_in, mp_obj_t x_in) {
    const mpyml_linear_t *m = ready_model(self_in);
    require_kind(m, "predict", m->shape.kind != MPYML_LINEAR_TRANSFORMER, "transform(x, out)");
    const float *x = get_x(m, x_in);
    if (m->shape.kind == MPYML_LINEAR_REGRESSOR) {
        return mp_obj_new_float_from_f(mpyml_linear_run(m, x)[0]);
    }
    return mp_obj_new_int(mpyml_linear_predict_class(m, x));
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

// model.predict_proba(x, out) fills out (array('f') of n_classes) and returns it
static mp_obj_t model_predict_proba(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    const mpyml_linear_t *m = ready_model(self_in);
    if (m->shape.kind != MPYML_LINEAR_CLASSIFIER || m->shape.proba == MPYML_PROBA_NONE) {
        mp_raise_TypeError("predict_proba: the loaded model has no probabilities (only LogisticRegression has)");
    }
    const float *x = get_x(m, x_in);
    mpyml_linear_predict_proba(m, x, get_out(out_in, m->shape.n_outputs));
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_predict_proba_obj, model_predict_proba);

// model.transform(x, out): the steps' output (transformers), or the decision values (models)
static mp_obj_t model_transform(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    const mpyml_linear_t *m = ready_model(self_in);
    const float *x = get_x(m, x_in);
    uint32_t width = mpyml_linear_width(m);
    float *out = get_out(out_in, width);
    const float *y = mpyml_linear_run(m, x);
    for (uint32_t i = 0; i < width; i++) {
        out[i] = y[i];
    }
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_transform_obj, model_transform);

static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return;  // no stores or deletes
    }
    model_t *self = get_model(self_in);
    const mpyml_linear_t *m = &self->model;
    int ready = self->state == MODEL_READY;
    if (attr == MP_QSTR_max_steps) {
        dest[0] = mp_obj_new_int(self->max_steps);
    } else if (attr == MP_QSTR_max_values) {
        dest[0] = mp_obj_new_int(self->max_values);
    } else if (attr == MP_QSTR_loaded) {
        dest[0] = mp_obj_new_bool(ready);
    } else if (attr == MP_QSTR_classes) {
        dest[0] = ready ? self->classes : mp_const_none;
    } else if (attr == MP_QSTR_feature_names) {
        dest[0] = ready ? self->feature_names : mp_const_none;
    } else if (!ready && (attr == MP_QSTR_n_features || attr == MP_QSTR_n_outputs || attr == MP_QSTR_n_classes ||
                          attr == MP_QSTR_n_steps || attr == MP_QSTR_kind || attr == MP_QSTR_width)) {
        dest[0] = mp_const_none;
    } else if (attr == MP_QSTR_n_features) {
        dest[0] = mp_obj_new_int(m->shape.n_features);
    } else if (attr == MP_QSTR_n_outputs) {
        dest[0] = mp_obj_new_int(m->shape.n_outputs);
    } else if (attr == MP_QSTR_n_classes) {
        dest[0] = mp_obj_new_int(m->shape.kind == MPYML_LINEAR_CLASSIFIER ? m->shape.n_outputs : 0);
    } else if (attr == MP_QSTR_n_steps) {
        dest[0] = mp_obj_new_int(m->shape.n_steps);
    } else if (attr == MP_QSTR_width) {
        dest[0] = mp_obj_new_int(mpyml_linear_width(m));
    } else if (attr == MP_QSTR_kind) {
        dest[0] = MP_OBJ_NEW_QSTR(m->shape.kind == MPYML_LINEAR_CLASSIFIER ? MP_QSTR_classifier
            : (m->shape.kind == MPYML_LINEAR_REGRESSOR ? MP_QSTR_regressor : MP_QSTR_transformer));
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

mp_map_elem_t model_locals_table[4];
static MP_DEFINE_CONST_DICT(model_locals, model_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    model_type.base.type = (void *)&mp_type_type;
    model_type.flags = MP_TYPE_FLAG_NONE;
    model_type.name = MP_QSTR_Model;
    mpyml_add_method(model_locals_table, 0, MP_QSTR_predict, &model_predict_obj);
    mpyml_add_method(model_locals_table, 1, MP_QSTR_predict_proba, &model_predict_proba_obj);
    mpyml_add_method(model_locals_table, 2, MP_QSTR_transform, &model_transform_obj);
    mpyml_add_method(model_locals_table, 3, MP_QSTR_unload, &model_unload_obj);
    MP_OBJ_TYPE_SET_SLOT(&model_type, attr, model_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&model_type, locals_dict, (void *)&model_locals, 1);

    mp_store_global(MP_QSTR_load_model, MP_OBJ_FROM_PTR(&emllinear_load_model_obj));
    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emllinear_new_obj));
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&model_type));

    MP_DYNRUNTIME_INIT_EXIT
}
