// emlfft: MicroPython glue for the portable FFT core (../common/mpyml_fft.h).
// Parses arguments, checks buffers and raises; the FFT object owns one memory
// block (twiddles and scratch) allocated at construction, so the transforms
// allocate nothing.
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_HEX(X) MPYML_ERRORS_FFT(X)

#include "mpyml_glue.h"
#include "mpyml_fft.h"

typedef struct {
    mp_obj_base_t base;
    mpyml_fft_t fft;
} fft_obj_t;

// Not static: mpy_ld cannot relocate static bss variables.
mp_obj_full_type_t fft_type;

static fft_obj_t *get_fft(mp_obj_t self_in) {
    // Methods taken from the type (emlfft.FFT.run(obj, ...)) can be handed any object.
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&fft_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emlfft.FFT, got %s", 1, mpyml_type_name(self_in));
    }
    return (fft_obj_t *)MP_OBJ_TO_PTR(self_in);
}

// The float buffer of an array('f') argument of exactly `expected` items.
static float *get_floats(mp_obj_t obj, const char *what, size_t expected, mp_uint_t flags) {
    mp_buffer_info_t buf;
    size_t n = mpyml_get_array(obj, 'f', what, flags, &buf);
    if (n != expected) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: expected %d values, got %d", 3,
            mpyml_str(what), mp_obj_new_int(expected), mp_obj_new_int(n));
    }
    return (float *)buf.buf;
}

// emlfft.FFT(n)
static mp_obj_t fft_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, 1, false);
    mp_int_t n = mp_obj_get_int(args[0]);  // TypeError for non-integers; big ints come back truncated
    uint32_t log2n = 0;
    if (!mp_obj_is_small_int(args[0]) || n < 0 || n > 0x7fffffff || mpyml_fft_check_size((uint32_t)n, &log2n) != MPYML_OK) {
        mpyml_raise_fmt(&mp_type_ValueError, "emlfft.FFT: n must be a power of two from %d to %d, got %d", 3,
            mp_obj_new_int(1 << MPYML_FFT_MIN_LOG2), mp_obj_new_int(1 << MPYML_FFT_MAX_LOG2), args[0]);
    }
    fft_obj_t *self = mpyml_malloc(sizeof(fft_obj_t), "the FFT object");
    void *block = mpyml_malloc(mpyml_fft_bytes((uint32_t)n), "the FFT tables");
    self->base.type = type;
    mpyml_fft_init(&self->fft, (uint32_t)n, log2n, block);
    return MP_OBJ_FROM_PTR(self);
}

static void get_complex(const mpyml_fft_t *f, mp_obj_t real_in, mp_obj_t imag_in, float **re, float **im) {
    *re = get_floats(real_in, "real", f->n, MP_BUFFER_WRITE);
    *im = get_floats(imag_in, "imag", f->n, MP_BUFFER_WRITE);
    if (*re == *im) {
        mp_raise_ValueError("real and imag must be two different arrays");
    }
}

// fft.run(real, imag): forward transform in place
static mp_obj_t fft_run(mp_obj_t self_in, mp_obj_t real_in, mp_obj_t imag_in) {
    const mpyml_fft_t *f = &get_fft(self_in)->fft;
    float *re, *im;
    get_complex(f, real_in, imag_in, &re, &im);
    mpyml_fft_forward(f, re, im);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(fft_run_obj, fft_run);

// fft.inverse(real, imag): inverse transform in place, scaled by 1/n
static mp_obj_t fft_inverse(mp_obj_t self_in, mp_obj_t real_in, mp_obj_t imag_in) {
    const mpyml_fft_t *f = &get_fft(self_in)->fft;
    float *re, *im;
    get_complex(f, real_in, imag_in, &re, &im);
    mpyml_fft_inverse(f, re, im);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(fft_inverse_obj, fft_inverse);

static mp_obj_t real_spectrum(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in, int kind) {
    const mpyml_fft_t *f = &get_fft(self_in)->fft;
    const float *x = get_floats(x_in, "x", f->n, MP_BUFFER_READ);
    float *out = get_floats(out_in, "out", f->n / 2 + 1, MP_BUFFER_WRITE);
    mpyml_fft_real_spectrum(f, x, out, kind);
    return out_in;
}

// fft.magnitude(x, out): |rfft(x)| into out (n/2 + 1 values); returns out
static mp_obj_t fft_magnitude(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return real_spectrum(self_in, x_in, out_in, MPYML_SPECTRUM_MAGNITUDE);
}
static MP_DEFINE_CONST_FUN_OBJ_3(fft_magnitude_obj, fft_magnitude);

// fft.power(x, out): |rfft(x)|**2 into out (n/2 + 1 values); returns out
static mp_obj_t fft_power(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    return real_spectrum(self_in, x_in, out_in, MPYML_SPECTRUM_POWER);
}
static MP_DEFINE_CONST_FUN_OBJ_3(fft_power_obj, fft_power);

// Read-only attribute n; anything else falls through to the methods.
static void fft_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] == MP_OBJ_NULL && attr == MP_QSTR_n) {
        dest[0] = mp_obj_new_int(get_fft(self_in)->fft.n);
    } else if (dest[0] == MP_OBJ_NULL) {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

mp_map_elem_t fft_locals_table[4];
static MP_DEFINE_CONST_DICT(fft_locals, fft_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    fft_type.base.type = (void *)&mp_type_type;
    fft_type.flags = MP_TYPE_FLAG_NONE;
    fft_type.name = MP_QSTR_FFT;
    mpyml_add_method(fft_locals_table, 0, MP_QSTR_run, &fft_run_obj);
    mpyml_add_method(fft_locals_table, 1, MP_QSTR_inverse, &fft_inverse_obj);
    mpyml_add_method(fft_locals_table, 2, MP_QSTR_magnitude, &fft_magnitude_obj);
    mpyml_add_method(fft_locals_table, 3, MP_QSTR_power, &fft_power_obj);
    MP_OBJ_TYPE_SET_SLOT(&fft_type, make_new, fft_make_new, 0);
    MP_OBJ_TYPE_SET_SLOT(&fft_type, attr, fft_attr, 1);
    MP_OBJ_TYPE_SET_SLOT(&fft_type, locals_dict, (void *)&fft_locals, 2);

    mp_store_global(MP_QSTR_FFT, MP_OBJ_FROM_PTR(&fft_type));

    MP_DYNRUNTIME_INIT_EXIT
}
