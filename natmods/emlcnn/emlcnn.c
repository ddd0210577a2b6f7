// emlcnn: MicroPython glue for the portable network core (../common/mpyml_nets.h).
// Parses arguments, checks buffers, owns the arena and raises exceptions; the
// file reader is emlcnn_load.py, linked into the same .mpy.
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_HEX(X) MPYML_ERRORS_NETS(X)

#include "mpyml_glue.h"
#include "mpyml_nets.h"

typedef struct {
    mp_obj_base_t base;
    uint32_t arena_capacity;
    uint32_t loaded;
    uint8_t *arena;
    mp_obj_t payload;           // the bytearray the weights are read from, kept alive here
    mp_obj_t classes, feature_names;  // lists of labels from the file, or None
    mpyml_net_t net;
} net_obj_t;

// Not static: mpy_ld cannot relocate static bss variables.
mp_obj_full_type_t net_type;

static net_obj_t *get_net(mp_obj_t self_in) {
    if (mp_obj_get_type(self_in) != (const mp_obj_type_t *)&net_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected an emlcnn network from emlcnn.new(), got %s", 1, mpyml_type_name(self_in));
    }
    return (net_obj_t *)MP_OBJ_TO_PTR(self_in);
}

static const mpyml_net_t *ready_net(net_obj_t *self) {
    if (!self->loaded) {
        mp_raise_msg(&mp_type_RuntimeError, "no model loaded: call emlcnn.load_model(net, file) first (a failed load leaves the network empty)");
    }
    return &self->net;
}

// emlcnn.new(arena_bytes)
static mp_obj_t emlcnn_new(mp_obj_t arena_in) {
    mp_int_t arena_bytes = mp_obj_get_int(arena_in);
    if (arena_bytes < 0 || arena_bytes > 0x7ffffff0) {
        mpyml_raise_fmt(&mp_type_ValueError, "emlcnn.new: arena_bytes must be 0..2147483632, got %d", 1, mp_obj_new_int(arena_bytes));
    }
    uint32_t capacity = (uint32_t)((arena_bytes + 3) & ~3);
    void *arena = capacity ? mpyml_malloc(capacity, "the arena") : NULL;
    net_obj_t *self = mpyml_malloc(sizeof(net_obj_t), "the network object");
    self->base.type = (const mp_obj_type_t *)&net_type;
    self->arena_capacity = capacity;
    self->loaded = 0;
    self->payload = mp_const_none;
    self->classes = mp_const_none;
    self->feature_names = mp_const_none;
    self->arena = arena;
    return MP_OBJ_FROM_PTR(self);
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlcnn_new_obj, emlcnn_new);

static mp_obj_t net_unload(mp_obj_t self_in) {
    net_obj_t *self = get_net(self_in);
    self->loaded = 0;
    self->payload = mp_const_none;
    self->classes = mp_const_none;
    self->feature_names = mp_const_none;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(net_unload_obj, net_unload);

// net._finish(classes, feature_names): the file's label lists (or None), checked by the loader.
static mp_obj_t net_finish(mp_obj_t self_in, mp_obj_t classes_in, mp_obj_t names_in) {
    net_obj_t *self = get_net(self_in);
    ready_net(self);
    self->classes = classes_in;
    self->feature_names = names_in;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(net_finish_obj, net_finish);

// net._load(payload, header): payload is a bytearray holding everything after
// the file header; header is the 16-byte file header (the loader checked magic and version).
static mp_obj_t net_load(mp_obj_t self_in, mp_obj_t payload_in, mp_obj_t header_in) {
    net_obj_t *self = get_net(self_in);
    net_unload(self_in);
    mp_buffer_info_t buf;
    if (!mp_get_buffer(payload_in, &buf, MP_BUFFER_READ)) {
        mp_raise_TypeError("payload: expected a bytearray");
    }
    mp_buffer_info_t header;
    if (!mp_get_buffer(header_in, &header, MP_BUFFER_READ) || header.len != MPYML_NET_FILE_HEADER_BYTES) {
        mp_raise_ValueError("file header must be 16 bytes");
    }
    uint32_t crc = mpyml_rd32((const uint8_t *)header.buf + 12);
    uint32_t bad_layer;
    mpyml_err_t err = mpyml_net_init(&self->net, (const uint8_t *)buf.buf, (uint32_t)buf.len, crc, &bad_layer);
    if (err != MPYML_OK) {
        if (bad_layer != MPYML_NET_NO_LAYER) {
            mpyml_raise_fmt(&mp_type_ValueError, "layer %d: %s", 2, mp_obj_new_int(bad_layer), mpyml_str(mpyml_error_message(err)));
        }
        mpyml_raise_err(err);
    }
    if (self->net.arena_bytes > self->arena_capacity) {
        mpyml_raise_fmt(&mp_type_ValueError, "arena too small: the model needs %d bytes, emlcnn.new() was given %d (%d short)", 3,
            mp_obj_new_int(self->net.arena_bytes), mp_obj_new_int(self->arena_capacity),
            mp_obj_new_int(self->net.arena_bytes - self->arena_capacity));
    }
    self->payload = payload_in;
    self->loaded = 1;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(net_load_obj, net_load);

// net.predict(x, out): x array('f') (or array('b') of input codes for int8 nets) of n_inputs,
// out array('f') of n_outputs; returns out. Allocates nothing.
static mp_obj_t net_predict(mp_obj_t self_in, mp_obj_t x_in, mp_obj_t out_in) {
    net_obj_t *self = get_net(self_in);
    const mpyml_net_t *net = ready_net(self);
    mp_buffer_info_t x, out;
    if (!mp_get_buffer(x_in, &x, MP_BUFFER_READ) || (x.typecode != 'f' && x.typecode != 'b')) {
        mpyml_get_array(x_in, 'f', "x", MP_BUFFER_READ, &x);  // raises with the typecode it got
    }
    int x_is_int8 = x.typecode == 'b';
    if (x_is_int8 && net->dtype != MPYML_NET_INT8) {
        mp_raise_TypeError("x: expected array('f'), got typecode 'b': array('b') inputs are for int8 models");
    }
    size_t n = x_is_int8 ? x.len : x.len / 4;
    if (n != net->n_inputs) {
        mpyml_raise_fmt(&mp_type_ValueError, "x: expected %d values, got %d", 2, mp_obj_new_int(net->n_inputs), mp_obj_new_int(n));
    }
    size_t n_out = mpyml_get_array(out_in, 'f', "out", MP_BUFFER_WRITE, &out);
    if (n_out != net->n_outputs) {
        mpyml_raise_fmt(&mp_type_ValueError, "out: expected %d values, got %d", 2, mp_obj_new_int(net->n_outputs), mp_obj_new_int(n_out));
    }
    mpyml_net_predict(net, x.buf, x_is_int8, self->arena, (float *)out.buf);
    return out_in;
}
static MP_DEFINE_CONST_FUN_OBJ_3(net_predict_obj, net_predict);

static void net_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    net_obj_t *self = get_net(self_in);
    const mpyml_net_t *net = &self->net;
    if (attr == MP_QSTR_arena_bytes) {
        dest[0] = mp_obj_new_int(self->arena_capacity);
    } else if (attr == MP_QSTR_loaded) {
        dest[0] = mp_obj_new_bool(self->loaded);
    } else if (attr == MP_QSTR_classes) {
        dest[0] = self->loaded ? self->classes : mp_const_none;
    } else if (attr == MP_QSTR_feature_names) {
        dest[0] = self->loaded ? self->feature_names : mp_const_none;
    } else if (!self->loaded && (attr == MP_QSTR_dtype || attr == MP_QSTR_n_inputs || attr == MP_QSTR_n_outputs ||
                                 attr == MP_QSTR_n_layers || attr == MP_QSTR_arena_needed || attr == MP_QSTR_weights_bytes ||
                                 attr == MP_QSTR_input_scale || attr == MP_QSTR_input_zero_point)) {
        dest[0] = mp_const_none;
    } else if (attr == MP_QSTR_dtype) {
        dest[0] = MP_OBJ_NEW_QSTR(net->dtype == MPYML_NET_INT8 ? MP_QSTR_int8 : MP_QSTR_float32);
    } else if (attr == MP_QSTR_n_inputs) {
        dest[0] = mp_obj_new_int(net->n_inputs);
    } else if (attr == MP_QSTR_n_outputs) {
        dest[0] = mp_obj_new_int(net->n_outputs);
    } else if (attr == MP_QSTR_n_layers) {
        dest[0] = mp_obj_new_int(net->n_layers);
    } else if (attr == MP_QSTR_arena_needed) {
        dest[0] = mp_obj_new_int(net->arena_bytes);
    } else if (attr == MP_QSTR_weights_bytes) {
        dest[0] = mp_obj_new_int(net->weights_bytes);
    } else if (attr == MP_QSTR_input_scale) {
        dest[0] = net->dtype == MPYML_NET_INT8 ? mp_obj_new_float_from_f(net->input_scale) : mp_const_none;
    } else if (attr == MP_QSTR_input_zero_point) {
        dest[0] = net->dtype == MPYML_NET_INT8 ? mp_obj_new_int(net->input_zp) : mp_const_none;
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

mp_map_elem_t net_locals_table[4];
static MP_DEFINE_CONST_DICT(net_locals, net_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    net_type.base.type = (void *)&mp_type_type;
    net_type.flags = MP_TYPE_FLAG_NONE;
    net_type.name = MP_QSTR_Net;
    mpyml_add_method(net_locals_table, 0, MP_QSTR_predict, &net_predict_obj);
    mpyml_add_method(net_locals_table, 1, MP_QSTR__load, &net_load_obj);
    mpyml_add_method(net_locals_table, 2, MP_QSTR_unload, &net_unload_obj);
    mpyml_add_method(net_locals_table, 3, MP_QSTR__finish, &net_finish_obj);
    MP_OBJ_TYPE_SET_SLOT(&net_type, attr, net_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&net_type, locals_dict, (void *)&net_locals, 1);

    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emlcnn_new_obj));
    mp_store_global(MP_QSTR_Net, MP_OBJ_FROM_PTR(&net_type));

    MP_DYNRUNTIME_INIT_EXIT
}
