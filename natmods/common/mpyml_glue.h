// MicroPython-side helpers shared by the glue files of all mpyml natmods:
// raising exceptions with formatted messages and checking array arguments.
// Include only from a natmod's glue file, after "py/dynruntime.h".
#ifndef MPYML_GLUE_H
#define MPYML_GLUE_H

#include <stdarg.h>

#include "mpyml_common.h"

// mpy_ld starts a module with a jump to mpy_init that reaches only 2 KB on
// armv6m, so mpy_init comes first in every glue file and calls the module's
// own mpyml_module_init, which the glue file defines (anywhere).
static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    return mpyml_module_init(self, n_args, n_kw, args);
}

// An nlr buffer with room for any port's registers or jmp_buf: nlr_push through the natmod
// function table writes the firmware's nlr_buf_t, whose size the natmod cannot see.
typedef union {
    nlr_buf_t nlr;
    uintptr_t room[64];
} mpyml_nlr_t;
#define MPYML_NLR_PUSH(b) (mp_fun_table.nlr_push(&(b)->nlr))
#define MPYML_NLR_POP() (mp_fun_table.nlr_pop())

static size_t mpyml_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) {
        n++;
    }
    return n;
}

static inline mp_obj_t mpyml_str(const char *s) {
    return mp_obj_new_str(s, mpyml_strlen(s));
}

// Raises type(fmt % (args...)) with n_args object arguments, formatted by
// MicroPython's own str % tuple. Pass ints with mp_obj_new_int, strings with mpyml_str.
static NORETURN void mpyml_raise_fmt(const mp_obj_type_t *type, const char *fmt, size_t n_args, ...) {
    mp_obj_t items[4];
    va_list ap;
    va_start(ap, n_args);
    for (size_t i = 0; i < n_args && i < 4; i++) {
        items[i] = va_arg(ap, mp_obj_t);
    }
    va_end(ap);
    mp_obj_t message = mpyml_str(fmt);
    if (n_args > 0) {
        message = mp_binary_op(MP_BINARY_OP_MODULO, message, mp_obj_new_tuple(n_args < 4 ? n_args : 4, items));
    }
    mp_raise_type_arg(type, message);
}

// m_malloc that raises MemoryError naming what did not fit (dynruntime's m_malloc raises a bare
// "memory allocation failed").
static inline void *mpyml_malloc(size_t bytes, const char *what) {
    void *block = m_realloc_maybe(NULL, bytes, false);
    if (block == NULL) {
        const mp_obj_type_t *memory_error = (const mp_obj_type_t *)MP_OBJ_TO_PTR(mp_load_global(MP_QSTR_MemoryError));
        mpyml_raise_fmt(memory_error, "not enough memory for %s: %d bytes needed", 2, mpyml_str(what), mp_obj_new_int(bytes));
    }
    return block;
}

static NORETURN void mpyml_raise_err(mpyml_err_t err) {
    mp_raise_ValueError(mpyml_error_message(err));
}

static inline void mpyml_check(mpyml_err_t err) {
    if (err != MPYML_OK) {
        mpyml_raise_err(err);
    }
}

// log2 of the bytes per item of the array typecodes mpyml natmods accept; -1 for any other.
static inline int mpyml_typecode_shift(int typecode) {
    switch (typecode) {
        case 'b': case 'B': return 0;
        case 'h': case 'H': return 1;
        case 'i': case 'I': case 'f': return 2;
        default: return -1;
    }
}

// Entry i of a type's locals table (filled in a module's init: natmods cannot
// relocate a constant table of qstrs): the method `fun` under `name`.
static inline void mpyml_add_method(mp_map_elem_t *table, size_t i, qstr name, const void *fun) {
    table[i] = (mp_map_elem_t){ MP_OBJ_NEW_QSTR(name), MP_OBJ_FROM_PTR(fun) };
}

// An integer argument in lo..hi, else ValueError(err). The range is checked on the Python int itself:
// the dynruntime's mp_obj_get_int truncates a big int (2**64 + 1 would pass as 1).
static inline mp_int_t mpyml_get_int(mp_obj_t obj, mp_int_t lo, mp_int_t hi, mpyml_err_t err) {
    mp_int_t value = mp_obj_get_int(obj);  // TypeError for a non-integer
    if (!mp_obj_is_small_int(obj) || value < lo || value > hi) {
        mpyml_raise_err(err);
    }
    return value;
}

// 1 for an int beyond the port's small ints (a bool is not one): mp_obj_get_int would truncate it.
static inline int mpyml_is_big_int(mp_obj_t obj) {
    return !mp_obj_is_small_int(obj) && obj != mp_const_false && obj != mp_const_true;
}

// An integer argument (TypeError otherwise; a bool counts as 0 or 1) as a machine word. A big int, beyond
// the port's small ints (2**62 on 64-bit ports, 2**30 on 32-bit ones), raises ValueError("<what>: <value> is out
// of range"): the dynruntime's mp_obj_get_int truncates it (2**64 + 1 would pass as 1), and no size, capacity or
// index the modules take comes near it.
static inline mp_int_t mpyml_get_arg_int(mp_obj_t obj, const char *what) {
    mp_int_t value = mp_obj_get_int(obj);
    if (mpyml_is_big_int(obj)) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: %d is out of range", 2, mpyml_str(what), obj);
    }
    return value;
}

// 16 hex digits (str) -> the float64 with those IEEE-754 bits.
static inline double mpyml_get_hex64(mp_obj_t text_in, mpyml_err_t err) {
    size_t len;
    const char *text = mp_obj_str_get_data(text_in, &len);
    uint32_t high = 0, low = 0;
    if (len != 16 || mpyml_parse_hex32(text, 8, &high) != MPYML_OK || mpyml_parse_hex32(text + 8, 8, &low) != MPYML_OK) {
        mpyml_raise_err(err);
    }
    union { uint64_t u; double d; } v;
    v.u = ((uint64_t)high << 32) | low;
    return v.d;
}

static inline mp_obj_t mpyml_type_name(mp_obj_t obj) {
    return MP_OBJ_NEW_QSTR(mp_obj_get_type(obj)->name);
}

// bytes, bytearray and memoryviews of them: their buffer's typecode is a control character
// (BYTEARRAY_TYPECODE), which a message would show as nothing; errors name their type instead.
static inline int mpyml_is_bytes_buffer(const mp_buffer_info_t *buf) {
    return buf->typecode < ' ';
}

// Buffer of an array argument; returns its length in items. `what` names the
// argument in errors; flags is MP_BUFFER_READ for inputs, MP_BUFFER_WRITE for outputs.
static inline size_t mpyml_get_array_any(mp_obj_t obj, const char *what, mp_uint_t flags, mp_buffer_info_t *buf) {
    if (!mp_get_buffer(obj, buf, flags)) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: expected an array, got %s", 2, mpyml_str(what), mpyml_type_name(obj));
    }
    int shift = mpyml_typecode_shift(buf->typecode);
    if (shift < 0 && mpyml_is_bytes_buffer(buf)) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: expected an array, got %s", 2, mpyml_str(what), mpyml_type_name(obj));
    }
    if (shift < 0) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: unsupported array typecode '%c'", 2, mpyml_str(what), mp_obj_new_int(buf->typecode));
    }
    return buf->len >> shift;
}

// As mpyml_get_array_any, and checks that the typecode is `typecode`.
static size_t mpyml_get_array(mp_obj_t obj, int typecode, const char *what, mp_uint_t flags, mp_buffer_info_t *buf) {
    if (!mp_get_buffer(obj, buf, flags)) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: expected array('%c'), got %s", 3, mpyml_str(what), mp_obj_new_int(typecode), mpyml_type_name(obj));
    }
    if (buf->typecode != typecode && mpyml_is_bytes_buffer(buf)) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: expected array('%c'), got %s", 3, mpyml_str(what), mp_obj_new_int(typecode), mpyml_type_name(obj));
    }
    if (buf->typecode != typecode) {
        mpyml_raise_fmt(&mp_type_TypeError, "%s: expected array('%c'), got typecode '%c'", 3, mpyml_str(what), mp_obj_new_int(typecode), mp_obj_new_int(buf->typecode));
    }
    return buf->len >> mpyml_typecode_shift(typecode);
}

#endif // MPYML_GLUE_H
