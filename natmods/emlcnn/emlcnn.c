// emlcnn: MicroPython glue for the portable network core (../common/mpyml_nets.h).
// Parses arguments, checks buffers, owns the arena, reads model files (the 16-byte file header
// and the labels block here; the payload's records in mpyml_net_init) and raises exceptions.
// Qstrs of the file reader, for mpy_ld: MP_QSTR_open MP_QSTR_rb MP_QSTR_read MP_QSTR_close
// MP_QSTR_seek MP_QSTR_tell MP_QSTR_bytearray MP_QSTR_int MP_QSTR_float MP_QSTR_ValueError
// MP_QSTR_TypeError MP_QSTR_UnicodeError
#include "py/dynruntime.h"

// The error messages this module carries (see mpyml_common.h).
#define MPYML_ERROR_MESSAGES(X) MPYML_ERRORS_BASE(X) MPYML_ERRORS_HEX(X) MPYML_ERRORS_NETS(X)

#include "mpyml_glue.h"
#include "mpyml_nets.h"
#include "mpyml_text.h"

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
    mp_int_t arena_bytes = mpyml_get_arg_int(arena_in, "emlcnn.new: arena_bytes");
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

// Checks the payload (a bytearray holding everything after the file header) with the file
// header's CRC and loads it into the network, which keeps the bytearray: weights are read in place.
static void net_load(mp_obj_t self_in, mp_obj_t payload_in, uint32_t crc) {
    net_obj_t *self = get_net(self_in);
    net_unload(self_in);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(payload_in, &buf, MP_BUFFER_READ);
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
}

// The model file reader (docs/formats.md, mpyml-nets).
#define NET_FORMAT_VERSION 2

// obj.name(args...)
static mp_obj_t call_method(mp_obj_t obj, qstr name, size_t n_args, const mp_obj_t *args) {
    mp_obj_t dest[4];
    mp_load_method(obj, name, dest);
    for (size_t i = 0; i < n_args && i < 2; i++) {
        dest[2 + i] = args[i];
    }
    if (dest[1] == MP_OBJ_NULL) {  // a plain function attribute: no self
        return mp_call_function_n_kw(dest[0], n_args, 0, &dest[2]);
    }
    return mp_call_function_n_kw(dest[0], n_args + 1, 0, &dest[1]);
}

static int is_value_or_type_error(mp_obj_t error) {
    const mp_obj_type_t *type = mp_obj_get_type(error);
    while (type != NULL && type->base.type == &mp_type_type) {
        if (type->name == MP_QSTR_ValueError || type->name == MP_QSTR_TypeError) {
            return 1;
        }
        type = MP_OBJ_TYPE_GET_SLOT_OR_NULL(type, parent);  // a tuple of bases ends the walk
    }
    return 0;
}

// The file header: checks magic, version and size; returns the payload size, *crc its CRC-32.
static uint32_t read_header(mp_obj_t f, uint32_t *crc) {
    mp_obj_t header = mp_const_none;
    mpyml_nlr_t nlr;
    mp_obj_t n_header = MP_OBJ_NEW_SMALL_INT(MPYML_NET_FILE_HEADER_BYTES);
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        header = call_method(f, MP_QSTR_read, 1, &n_header);
        MPYML_NLR_POP();
    } else if (mp_obj_get_type(MP_OBJ_FROM_PTR(nlr.nlr.ret_val))->name == MP_QSTR_UnicodeError) {
        header = MP_OBJ_NEW_QSTR(MP_QSTR_);  // a text-mode file
    } else {
        nlr_raise(MP_OBJ_FROM_PTR(nlr.nlr.ret_val));
    }
    if (mp_obj_get_type(header) == &mp_type_str) {
        mp_raise_TypeError("open the model file in binary mode ('rb')");
    }
    mp_buffer_info_t buf;
    buf.buf = NULL;
    buf.len = 0;
    if (header != mp_const_none) {
        mp_get_buffer_raise(header, &buf, MP_BUFFER_READ);
    }
    const uint8_t *h = (const uint8_t *)buf.buf;
    if (buf.len < MPYML_NET_FILE_HEADER_BYTES) {
        mpyml_raise_fmt(&mp_type_ValueError, "file truncated: the header needs %d bytes, got %d", 2,
            mp_obj_new_int(MPYML_NET_FILE_HEADER_BYTES), mp_obj_new_int(buf.len));
    }
    if (mpyml_rd32(h) != mpyml_rd32((const uint8_t *)"MPYN")) {
        mpyml_raise_fmt(&mp_type_ValueError, "bad magic %r: not an mpyml-nets model file (expected %r)", 2,
            mp_obj_new_bytes(h, 4), mp_obj_new_bytes((const uint8_t *)"MPYN", 4));
    }
    uint32_t version = mpyml_rd16(h + 4);
    if (version != NET_FORMAT_VERSION) {
        mpyml_raise_fmt(&mp_type_ValueError, version < NET_FORMAT_VERSION
            ? "version %d is no longer read by this emlcnn (it reads version %d): export the model again"
            : "format version %d is not supported (this emlcnn reads version %d)", 2,
            mp_obj_new_int(version), mp_obj_new_int(NET_FORMAT_VERSION));
    }
    if (mpyml_rd16(h + 6) != MPYML_NET_FILE_HEADER_BYTES) {
        mpyml_raise_fmt(&mp_type_ValueError, "header size %d, expected %d", 2, mp_obj_new_int(mpyml_rd16(h + 6)),
            mp_obj_new_int(MPYML_NET_FILE_HEADER_BYTES));
    }
    *crc = mpyml_rd32(h + 12);
    return mpyml_rd32(h + 8);
}

// Bytes from the file's position to its end, or -1 for a file that cannot tell and seek.
static mp_int_t file_remaining(mp_obj_t f) {
    mpyml_nlr_t nlr;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        mp_obj_t here = call_method(f, MP_QSTR_tell, 0, NULL);
        mp_obj_t args[2] = { MP_OBJ_NEW_SMALL_INT(0), MP_OBJ_NEW_SMALL_INT(2) };
        mp_obj_t end = call_method(f, MP_QSTR_seek, 2, args);
        if (end == mp_const_none) {  // some file objects return None from seek
            end = call_method(f, MP_QSTR_tell, 0, NULL);
        }
        call_method(f, MP_QSTR_seek, 1, &here);
        MPYML_NLR_POP();
        return mp_obj_get_int(end) - mp_obj_get_int(here);
    }
    return -1;
}

// Reads up to n bytes into buf through the file's stream protocol (else f.read); returns the count.
static size_t read_into(mp_obj_t f, uint8_t *buf, size_t n) {
    const mp_stream_p_t *stream = MP_OBJ_TYPE_GET_SLOT_OR_NULL(mp_obj_get_type(f), protocol);
    size_t got = 0;
    while (got < n) {
        size_t step;
        if (stream != NULL && stream->read != NULL) {
            int err = 0;
            mp_uint_t r = stream->read(f, buf + got, n - got, &err);
            if (r == MP_STREAM_ERROR) {
                mp_raise_OSError(err);
            }
            step = r;
        } else {
            mp_obj_t want = mp_obj_new_int(n - got);
            mp_obj_t chunk = call_method(f, MP_QSTR_read, 1, &want);
            mp_buffer_info_t b;
            b.buf = NULL;
            b.len = 0;
            if (chunk != mp_const_none) {
                mp_get_buffer_raise(chunk, &b, MP_BUFFER_READ);
            }
            step = b.len < n - got ? b.len : n - got;
            for (size_t i = 0; i < step; i++) {
                buf[got + i] = ((const uint8_t *)b.buf)[i];
            }
        }
        if (step == 0) {
            break;
        }
        got += step;
    }
    return got;
}

// ValueError("labels block: " + fmt % (a, b)[:n_args]).
static NORETURN void labels_fail(const char *fmt, size_t n_args, mp_obj_t a, mp_obj_t b) {
    mp_obj_t args[2] = { a, b };
    mp_obj_t message = mpyml_str(fmt);
    if (n_args > 0) {
        message = mp_binary_op(MP_BINARY_OP_MODULO, message, mp_obj_new_tuple(n_args, args));
    }
    mpyml_raise_fmt(&mp_type_ValueError, "labels block: %s", 1, message);
}

// One label of the labels block: kind 1 int, 2 str, 3 bool, 4 float; text: n bytes.
static mp_obj_t read_label(int kind, const uint8_t *text, size_t n) {
    if (!mpyml_utf8_check(text, n)) {
        labels_fail("a label is not valid UTF-8", 0, NULL, NULL);
    }
    mp_obj_t label = mp_obj_new_str((const char *)text, n);
    const char *bad = NULL;
    if (kind == 3) {
        if (n == 1 && (text[0] == '0' || text[0] == '1')) {
            return mp_obj_new_bool(text[0] == '1');
        }
        bad = "bool label must be 0 or 1";
    } else if (kind == 1) {
        size_t start = n > 0 && text[0] == '-';
        int ok = n > start;
        for (size_t i = start; i < n; i++) {
            ok &= text[i] >= '0' && text[i] <= '9';
        }
        if (ok) {
            return mp_call_function_n_kw(mp_load_global(MP_QSTR_int), 1, 0, &label);
        }
        bad = "int label: expected a decimal integer";
    } else if (kind == 4) {
        mpyml_nlr_t nlr;
        if (MPYML_NLR_PUSH(&nlr) == 0) {
            label = mp_call_function_n_kw(mp_load_global(MP_QSTR_float), 1, 0, &label);
            MPYML_NLR_POP();
            return label;
        }
        if (mp_obj_get_type(MP_OBJ_FROM_PTR(nlr.nlr.ret_val)) != &mp_type_ValueError) {
            nlr_raise(MP_OBJ_FROM_PTR(nlr.nlr.ret_val));
        }
        bad = "float label: expected a number";
    } else {
        return label;
    }
    size_t shown = 0;  // the bytes of the first 20 characters
    for (size_t chars = 0; shown < n && (chars < 20 || (text[shown] & 0xc0) == 0x80); shown++) {
        chars += (text[shown] & 0xc0) != 0x80;
    }
    labels_fail("%s, got %r", 2, mpyml_str(bad), mp_obj_new_str((const char *)text, shown));
}

// The labels block that ends the checked payload p of n bytes (docs/formats.md): the class labels
// and the feature names into lists[0] and lists[1] (None for none).
static void read_labels(const uint8_t *p, size_t n, mp_obj_t lists[2]) {
    uint32_t n_layers = mpyml_rd16(p + 2), n_outputs = mpyml_rd32(p + 12);
    uint64_t offset = mpyml_rd32(p + 44), size = mpyml_rd32(p + 48);
    if ((offset & 3) || offset < MPYML_NET_HEADER_BYTES + (uint64_t)n_layers * MPYML_NET_LAYER_BYTES || size < 12 || offset + size != n) {
        labels_fail("misplaced (it must end the payload, after the layer table)", 0, NULL, NULL);
    }
    const uint8_t *block = p + offset;
    uint32_t class_type = block[0], n_classes = mpyml_rd32(block + 4), n_names = mpyml_rd32(block + 8);
    if (class_type < 1 || class_type > 4 || block[1] != 2 || mpyml_rd16(block + 2)) {
        labels_fail("unknown label type (1 int, 2 str, 3 bool, 4 float; feature names 2)", 0, NULL, NULL);
    }
    uint32_t expected = p[1] == 2 && n_outputs == 1 ? 2 : n_outputs;
    if (n_classes && n_classes != expected) {
        labels_fail("%d classes for %d outputs", 2, mp_obj_new_int_from_uint(n_classes), mp_obj_new_int_from_uint(n_outputs));
    }
    if (n_names > size / 2) {
        labels_fail("%d feature names cannot fit in %d bytes", 2, mp_obj_new_int_from_uint(n_names), mp_obj_new_int((mp_int_t)size));
    }
    size_t pos = (size_t)offset + 12, end = (size_t)(offset + size);
    for (int list = 0; list < 2; list++) {
        uint32_t count = list == 0 ? n_classes : n_names;
        lists[list] = count ? mp_obj_new_list(0, NULL) : mp_const_none;
        for (uint32_t i = 0; i < count; i++) {
            if (end - pos < 2 || end - pos - 2 < mpyml_rd16(p + pos)) {
                labels_fail("truncated", 0, NULL, NULL);
            }
            size_t len = mpyml_rd16(p + pos);
            mp_obj_list_append(lists[list], read_label(list == 0 ? (int)class_type : 2, p + pos + 2, len));
            pos += 2 + len;
        }
    }
    if (pos != end) {
        labels_fail("%d bytes after the last label", 1, mp_obj_new_int(end - pos), NULL);
    }
}

// f itself, or for a path the file opened 'rb' (then also in *opened, for the caller to close).
static mp_obj_t open_model_file(mp_obj_t f, mp_obj_t *opened) {
    *opened = MP_OBJ_NULL;
    if (mp_obj_get_type(f) == &mp_type_str) {
        mp_obj_t args[2] = { f, MP_OBJ_NEW_QSTR(MP_QSTR_rb) };
        return *opened = mp_call_function_n_kw(mp_load_global(MP_QSTR_open), 2, 0, args);
    }
    mp_obj_t dest[2];
    mp_load_method_maybe(f, MP_QSTR_read, dest);
    if (dest[0] == MP_OBJ_NULL) {
        mpyml_raise_fmt(&mp_type_TypeError, "expected a file opened with 'rb' or a path, got %s", 1, mpyml_type_name(f));
    }
    return f;
}

// Everything after the file's header: into the network, then its labels.
static void load_file(mp_obj_t net_in, mp_obj_t f) {
    uint32_t crc;
    uint32_t payload_bytes = read_header(f, &crc);
    mp_int_t remaining = file_remaining(f);
    if (remaining >= 0 && (mp_uint_t)remaining < payload_bytes) {
        mp_obj_t header_bytes = MP_OBJ_NEW_SMALL_INT(MPYML_NET_FILE_HEADER_BYTES);
        mpyml_raise_fmt(&mp_type_ValueError, "file says %d bytes, the file has %d", 2,
            mp_binary_op(MP_BINARY_OP_ADD, header_bytes, mp_obj_new_int_from_uint(payload_bytes)),
            mp_obj_new_int(MPYML_NET_FILE_HEADER_BYTES + remaining));
    }
    if (payload_bytes > 0x7ffffff0u) {
        mpyml_raise_fmt(&mp_type_ValueError, "payload size %d is not plausible", 1, mp_obj_new_int_from_uint(payload_bytes));
    }
    mp_obj_t n_obj = mp_obj_new_int(payload_bytes);
    mp_obj_t payload = mp_call_function_n_kw(mp_load_global(MP_QSTR_bytearray), 1, 0, &n_obj);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(payload, &buf, MP_BUFFER_WRITE);
    size_t got = read_into(f, (uint8_t *)buf.buf, payload_bytes);
    if (got < payload_bytes) {
        mpyml_raise_fmt(&mp_type_ValueError, "file truncated: the header announces a %d-byte payload, got %d", 2,
            mp_obj_new_int(payload_bytes), mp_obj_new_int(got));
    }
    net_load(net_in, payload, crc);
    net_obj_t *self = get_net(net_in);
    mp_obj_t lists[2];
    read_labels((const uint8_t *)buf.buf, buf.len, lists);
    self->classes = lists[0];
    self->feature_names = lists[1];
}

// emlcnn.load_model(net, f): f an open binary file or a path. Any format error leaves the network
// empty and is ValueError("model file: ..."); I/O and memory errors pass through.
static mp_obj_t emlcnn_load_model(mp_obj_t net_in, mp_obj_t f) {
    if (mp_obj_get_type(net_in) != (const mp_obj_type_t *)&net_type) {
        mpyml_raise_fmt(&mp_type_TypeError, "load_model: expected a network from emlcnn.new(), got %s", 1, mpyml_type_name(net_in));
    }
    mp_obj_t opened;
    f = open_model_file(f, &opened);
    net_unload(net_in);
    mpyml_nlr_t nlr;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        load_file(net_in, f);
        MPYML_NLR_POP();
        if (opened != MP_OBJ_NULL) {
            call_method(opened, MP_QSTR_close, 0, NULL);
        }
        return mp_const_none;
    }
    mp_obj_t error = MP_OBJ_FROM_PTR(nlr.nlr.ret_val);
    if (opened != MP_OBJ_NULL) {
        call_method(opened, MP_QSTR_close, 0, NULL);
    }
    if (!is_value_or_type_error(error)) {
        nlr_raise(error);
    }
    net_unload(net_in);
    mpyml_raise_fmt(&mp_type_ValueError, "model file: %s", 1, error);
}
static MP_DEFINE_CONST_FUN_OBJ_2(emlcnn_load_model_obj, emlcnn_load_model);

// emlcnn.arena_bytes(f): the arena the model file (an open binary file or a path) needs.
static mp_obj_t emlcnn_arena_bytes(mp_obj_t f) {
    mp_obj_t opened;
    f = open_model_file(f, &opened);
    mpyml_nlr_t nlr;
    volatile mp_obj_t arena = MP_OBJ_NULL;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        uint32_t crc;
        uint32_t payload_bytes = read_header(f, &crc);
        uint8_t head[20];
        if (read_into(f, head, sizeof head) < sizeof head || payload_bytes < sizeof head) {
            mp_raise_ValueError("file truncated: no network header");
        }
        arena = mp_obj_new_int_from_uint(mpyml_rd32(head + 16));
        MPYML_NLR_POP();
    }
    if (opened != MP_OBJ_NULL) {
        call_method(opened, MP_QSTR_close, 0, NULL);
    }
    if (arena == MP_OBJ_NULL) {
        nlr_raise(MP_OBJ_FROM_PTR(nlr.nlr.ret_val));
    }
    return arena;
}
static MP_DEFINE_CONST_FUN_OBJ_1(emlcnn_arena_bytes_obj, emlcnn_arena_bytes);

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

mp_map_elem_t net_locals_table[2];
static MP_DEFINE_CONST_DICT(net_locals, net_locals_table);

static mp_obj_t mpyml_module_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    net_type.base.type = (void *)&mp_type_type;
    net_type.flags = MP_TYPE_FLAG_NONE;
    net_type.name = MP_QSTR_Net;
    mpyml_add_method(net_locals_table, 0, MP_QSTR_predict, &net_predict_obj);
    mpyml_add_method(net_locals_table, 1, MP_QSTR_unload, &net_unload_obj);
    MP_OBJ_TYPE_SET_SLOT(&net_type, attr, net_attr, 0);
    MP_OBJ_TYPE_SET_SLOT(&net_type, locals_dict, (void *)&net_locals, 1);

    mp_store_global(MP_QSTR_new, MP_OBJ_FROM_PTR(&emlcnn_new_obj));
    mp_store_global(MP_QSTR_load_model, MP_OBJ_FROM_PTR(&emlcnn_load_model_obj));
    mp_store_global(MP_QSTR_arena_bytes, MP_OBJ_FROM_PTR(&emlcnn_arena_bytes_obj));
    mp_store_global(MP_QSTR_Net, MP_OBJ_FROM_PTR(&net_type));

    MP_DYNRUNTIME_INIT_EXIT
}
