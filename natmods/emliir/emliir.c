// emliir: MicroPython glue for the portable IIR core (../common/mpyml_iir.h).
// Parses arguments, checks buffers, owns each filter's stage memory and raises
// exceptions, and reads mpyml-iir coefficient files (docs/formats.md) with the shared C record
// reader (../common/mpyml_records_glue.h).
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_HEX(X) MPYML_ERRORS_IIR(X)

#include "mpyml_glue.h"
#include "mpyml_records_glue.h"
#include "mpyml_iir.h"

typedef struct {
    mp_obj_base_t base;
    uint32_t n_stages;
    int typecode;       // 'f': float32 stages, 'h': Q15 stages
    void *stages;
} filter_t;

// Not static: mpy_ld cannot relocate static bss variables.
mp_obj_full_type_t filter_type;

static filter_t *get_filter(mp_obj_t self_in) {
    // Methods taken from the type (emliir.IIR.run(obj, x)) can be handed any object.
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&filter_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emliir filter, got %s", 1, mpyml_type_name(self_in));
    }
    return (filter_t *)MP_OBJ_TO_PTR(self_in);
}

static NORETURN void raise_stage_error(const char *what, mpyml_err_t err, uint32_t stage) {
    mpyml_raise_fmt(&mp_type_ValueError, "%s stage %d: %s", 3, mpyml_str(what), mp_obj_new_int(stage), mpyml_str(mpyml_error_message(err)));
}

static uint32_t count_stages(const char *what, size_t n_values) {
    uint32_t n_stages = 0;
    mpyml_err_t err = mpyml_iir_count_stages(n_values, &n_stages);
    if (err != MPYML_OK) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: %s, got %d numbers", 3, mpyml_str(what), mpyml_str(mpyml_error_message(err)), mp_obj_new_int(n_values));
    }
    return n_stages;
}

static filter_t *new_filter(uint32_t n_stages, int typecode, size_t bytes) {
    filter_t *self = mpyml_malloc(sizeof(filter_t), "the filter object");
    self->base.type = (const mp_obj_type_t *)&filter_type;
    self->n_stages = n_stages;
    self->typecode = typecode;
    self->stages = NULL;
    self->stages = mpyml_malloc(bytes, "the filter");
    return self;
}

// emliir.new(sos): sos is array('f') of 6 numbers per stage, scipy's sos rows flattened.
static mp_obj_t emliir_new(mp_obj_t sos_in) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(sos_in, 'f', "sos", MP_BUFFER_READ, &buf);
    uint32_t n_stages = count_stages("sos", n), bad_stage = 0;
    mpyml_err_t err = mpyml_iir_f32_check((const float *)buf.buf, n_stages, &bad_stage);
    if (err != MPYML_OK) {
        raise_stage_error("sos", err, bad_stage);
    }
    filter_t *self = new_filter(n_stages, 'f', mpyml_iir_f32_bytes(n_stages));
    mpyml_iir_f32_init((mpyml_iir_f32_stage_t *)self->stages, (const float *)buf.buf, n_stages);
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emliir_new_obj, emliir_new);

// emliir.new_q15(sos): sos is array('h') of 6 integers per stage (mpyml.iir.quantize_q15).
static mp_obj_t emliir_new_q15(mp_obj_t sos_in) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(sos_in, 'h', "q15 sos", MP_BUFFER_READ, &buf);
    uint32_t n_stages = count_stages("q15 sos", n), bad_stage = 0;
    mpyml_err_t err = mpyml_iir_q15_check((const int16_t *)buf.buf, n_stages, &bad_stage);
    if (err != MPYML_OK) {
        raise_stage_error("q15 sos", err, bad_stage);
    }
    filter_t *self = new_filter(n_stages, 'h', mpyml_iir_q15_bytes(n_stages));
    mpyml_iir_q15_init((mpyml_iir_q15_stage_t *)self->stages, (const int16_t *)buf.buf, n_stages);
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emliir_new_q15_obj, emliir_new_q15);

// filt.run(values): filters values in place (array('f') or, for Q15 filters, array('h')); returns values.
static mp_obj_t filter_run(mp_obj_t self_in, mp_obj_t values_in) {
    filter_t *self = get_filter(self_in);
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(values_in, self->typecode, "values", MP_BUFFER_RW, &buf);
    if (self->typecode == 'f') {
        mpyml_iir_f32_run((mpyml_iir_f32_stage_t *)self->stages, self->n_stages, (float *)buf.buf, n);
    } else {
        mpyml_iir_q15_run((mpyml_iir_q15_stage_t *)self->stages, self->n_stages, (int16_t *)buf.buf, n);
    }
    return values_in;
}
static MP_DEFINE_CONST_FUN_OBJ_2(filter_run_obj, filter_run);

// filt.reset(): back to the zero state, as right after new().
static mp_obj_t filter_reset(mp_obj_t self_in) {
    filter_t *self = get_filter(self_in);
    if (self->typecode == 'f') {
        mpyml_iir_f32_reset((mpyml_iir_f32_stage_t *)self->stages, self->n_stages);
    } else {
        mpyml_iir_q15_reset((mpyml_iir_q15_stage_t *)self->stages, self->n_stages);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(filter_reset_obj, filter_reset);

// Read-only attributes; anything else falls through to the methods.
static void filter_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return; // no stores or deletes
    }
    filter_t *self = get_filter(self_in);
    if (attr == MP_QSTR_n_stages) {
        dest[0] = mp_obj_new_int(self->n_stages);
    } else if (attr == MP_QSTR_typecode) {
        dest[0] = MP_OBJ_NEW_QSTR(self->typecode == 'f' ? MP_QSTR_f : MP_QSTR_h);
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

mp_map_elem_t filter_locals_table[2];
static MP_DEFINE_CONST_DICT(filter_locals, filter_locals_table);

// The mpyml-iir reader: the stages are read whole before the end record is checked, then
// validated, an error naming the stage's line.
typedef struct {
    mp_obj_t filter;
} iir_load_t;

static void iir_read(mpyml_records_t *r, void *ctx) {
    mpyml_field_t version;
    records_value(r, "mpyml-iir", &version);
    if (!mpyml_field_is(&version, "2")) {
        if (mpyml_field_is(&version, "1")) {
            mp_raise_ValueError("version 1 is no longer read by this emliir (it reads version 2): export the filter again");
        }
        records_fail("format version %10F is not supported (this emliir reads version 2)", &version);
    }
    int float32 = records_choice(r, "dtype", "float32 int16", "float32 or int16") == 0;
    uint32_t n_stages = (uint32_t)records_count(r, "n_stages", 1, 65535);
    records_check_size(r, n_stages, 12, "stages");  // a stage is at least '0,0,0,0,0,0\n'
    records_section(r, "stages");
    // The stages' numbers (float32 bits or int16), then each stage's line.
    uint32_t *values = mpyml_malloc((size_t)n_stages * (6 * 4 + 4), "the filter");
    int16_t *q15 = (int16_t *)values;
    uint32_t *lines = values + 6 * n_stages;
    records_what_t what = records_what("a stage (b0,b1,b2,a0,a1,a2)", 0);
    for (uint32_t stage = 0; stage < n_stages; stage++) {
        mpyml_field_t fields[6];
        records_fields(r, 6, what, fields, 6);
        for (uint32_t i = 0; i < 6; i++) {
            if (float32) {
                values[6 * stage + i] = records_hex32(&fields[i]);
            } else {
                q15[6 * stage + i] = (int16_t)records_int_in(&fields[i], -32768, 32767, "a Q15 coefficient");
            }
        }
        lines[stage] = r->lineno;
    }
    records_end(r, "stage");
    uint32_t bad_stage = 0;
    mpyml_err_t err = float32 ? mpyml_iir_f32_check((const float *)values, n_stages, &bad_stage)
                              : mpyml_iir_q15_check(q15, n_stages, &bad_stage);
    if (err != MPYML_OK) {
        r->lineno = lines[bad_stage];
        mpyml_raise_err(err);
    }
    filter_t *self;
    if (float32) {
        self = new_filter(n_stages, 'f', mpyml_iir_f32_bytes(n_stages));
        mpyml_iir_f32_init((mpyml_iir_f32_stage_t *)self->stages, (const float *)values, n_stages);
    } else {
        self = new_filter(n_stages, 'h', mpyml_iir_q15_bytes(n_stages));
        mpyml_iir_q15_init((mpyml_iir_q15_stage_t *)self->stages, q15, n_stages);
    }
    m_free(values);
    ((iir_load_t *)ctx)->filter = MP_OBJ_FROM_PTR(self);
}

// emliir.load(f): a filter from a coefficients file (an open file, or a path).
static mp_obj_t emliir_load(mp_obj_t f) {
    iir_load_t load = { mp_const_none };
    mpyml_read_file(f, iir_read, &load, NULL, "filter file", "load");
    return load.filter;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emliir_load_obj, emliir_load);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    filter_type.base.type = (void *)&mp_type_type;
    filter_type.flags = MP_TYPE_FLAG_NONE;
    filter_type.name = MP_QSTR_IIR;
    mpyml_add_method(filter_locals_table, 0, MP_QSTR_run, &filter_run_obj);
    mpyml_add_method(filter_locals_table, 1, MP_QSTR_reset, &filter_reset_obj);
    MP_OBJ_TYPE_SET_SLOT(&filter_type, attr, filter_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&filter_type, locals_dict, (void *)&filter_locals, 1);

    mp_store_global(MP_QSTR_load, MP_OBJ_FROM_PTR(&emliir_load_obj));
    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emliir_new_obj));
    mp_store_global(MP_QSTR_new_q15, MP_OBJ_FROM_PTR(&emliir_new_q15_obj));
    mp_store_global(MP_QSTR_IIR, MP_OBJ_FROM_PTR(&filter_type));

    MP_DYNRUNTIME_INIT_EXIT
}
