// The device's reader of mpyml's text formats (docs/formats.md, "Text formats"): line records
// streamed from a file through its stream protocol into a small fixed buffer (or, for a source
// that has only that, through readline()), tokenized by mpyml_text.h, with the end record's count
// and CRC-32 checked.
// Every module that reads a text format reads it with this; each format's own parser calls the
// records_* functions below. Errors are ValueError("<what> line N: ...") as docs/formats.md says.
// Include from a glue file after mpyml_glue.h; the module's SRC lists this header so that mpy_ld
// finds its qstrs: MP_QSTR_readline MP_QSTR_close MP_QSTR_open MP_QSTR_rb MP_QSTR_isinstance
// MP_QSTR_str MP_QSTR_int MP_QSTR_float
#ifndef MPYML_RECORDS_GLUE_H
#define MPYML_RECORDS_GLUE_H

#include "mpyml_text.h"

#define MPYML_READ_CHUNK 64
// Functions a format may not use: no warning where it does not.
#define RECORDS_OPTIONAL static inline

typedef struct {
    mp_obj_t file;
    const mp_stream_p_t *stream;  // the file's stream protocol, read straight into buf
    mp_obj_t readline;        // else its readline method
    mp_obj_t chunk;           // the last line readline() gave
    const uint8_t *data;
    size_t pos, len;
    int eof;
    uint32_t lineno, n_records;
    uint32_t crc, crc_before;  // of every byte read, and of those before the last line
    mp_int_t size;             // bytes from the start to the end of the file, or -1 where unknown
    mpyml_line_event_t pending;  // the event of the last byte fed to `line`, not yet taken
    mpyml_line_t line;
    uint8_t buf[MPYML_READ_CHUNK];
} mpyml_records_t;

// An nlr buffer with room for any port's registers or jmp_buf: nlr_push through the natmod
// function table writes the firmware's nlr_buf_t, whose size the natmod cannot see.
typedef union {
    nlr_buf_t nlr;
    uintptr_t room[64];
} mpyml_nlr_t;
#define MPYML_NLR_PUSH(b) (mp_fun_table.nlr_push(&(b)->nlr))
#define MPYML_NLR_POP() (mp_fun_table.nlr_pop())

static NORETURN void records_corrupt(const char *fmt, size_t n_args, mp_obj_t a, mp_obj_t b) {
    mp_obj_t items[2] = { a, b };
    mp_obj_t message = mp_binary_op(MP_BINARY_OP_MODULO, mpyml_str(fmt), mp_obj_new_tuple(n_args, items));
    mp_raise_type_arg(&mp_type_ValueError, mp_binary_op(MP_BINARY_OP_ADD, mpyml_str("the file is truncated or corrupt: "), message));
}

static mp_obj_t records_text(const uint8_t *text, size_t n) {
    return mp_obj_new_str((const char *)text, n);
}

// The kept start of a field (at most 24 characters: callers quote fewer through %.Ns-free slicing).
static mp_obj_t records_prefix(const uint8_t *text, size_t n, uint32_t chars);
static mp_obj_t records_field_text(const mpyml_field_t *f, uint32_t chars) {
    return records_prefix(f->text, f->n_kept, chars);
}

// An int object of any value the readers report (mp_obj_new_int takes only a machine word).
static mp_obj_t records_int(int64_t v) {
    return v < 0 ? mp_obj_new_int((mp_int_t)v) : mp_obj_new_int_from_uint((mp_uint_t)v);
}

// The first `chars` characters of UTF-8 text.
static mp_obj_t records_prefix(const uint8_t *text, size_t n, uint32_t chars) {
    size_t i = 0;
    uint32_t c = 0;
    while (i < n && (c < chars || (text[i] & 0xc0) == 0x80)) {
        c += (text[i] & 0xc0) != 0x80;
        i++;
    }
    return mp_obj_new_str((const char *)text, i);
}

static mp_obj_t records_head(const mpyml_records_t *r) {
    return records_text(r->line.head, r->line.n_head);
}

static mp_obj_t records_call(mp_obj_t obj, qstr method, size_t n_args, mp_obj_t *args) {
    return mp_call_function_n_kw(mp_load_attr(obj, method), n_args, 0, args);
}

// The next byte of the file, -1 at its end; every byte goes into the CRC.
static int records_byte(mpyml_records_t *r) {
    if (r->pos == r->len) {
        if (r->eof) {
            return -1;
        }
        r->pos = 0;
        if (r->stream != NULL) {
            int err = 0;
            mp_uint_t n = r->stream->read(r->file, r->buf, MPYML_READ_CHUNK, &err);
            if (n == MP_STREAM_ERROR) {
                mp_raise_OSError(err);
            }
            r->len = n;
        } else {
            r->chunk = mp_call_function_n_kw(r->readline, 0, 0, NULL);
            r->data = (const uint8_t *)mp_obj_str_get_data(r->chunk, &r->len);
        }
        if (r->len == 0) {
            r->eof = 1;
            return -1;
        }
    }
    uint8_t b = r->data[r->pos++];
    r->crc = mpyml_crc32_update(r->crc, &b, 1);
    return b;
}

// Checks a line that ended: UTF-8, and only the end record may lack its line end.
static void records_check_line(mpyml_records_t *r) {
    if (r->line.utf8_bad) {
        records_corrupt("line %d is not UTF-8 text", 1, mp_obj_new_int(r->lineno), mp_const_none);
    }
    if (r->line.cut && !mpyml_line_starts_with(&r->line, "end,")) {
        records_corrupt("it ends inside line %d", 1, mp_obj_new_int(r->lineno), mp_const_none);
    }
}

// Starts the next line that is neither blank nor a comment; 0 at the end of the file.
static int records_line(mpyml_records_t *r) {
    for (;;) {
        uint32_t crc = r->crc;
        int c = records_byte(r);
        if (c < 0) {
            return 0;
        }
        r->lineno++;
        r->crc_before = crc;
        mpyml_line_reset(&r->line);
        for (;;) {
            mpyml_line_event_t event = mpyml_line_push(&r->line, c);
            if (event == MPYML_LINE_END) {
                break;
            }
            if (r->line.started && !r->line.comment) {
                r->n_records++;
                r->pending = event;
                return 1;
            }
            c = records_byte(r);
        }
        records_check_line(r);
        if (r->line.started && !r->line.comment) {  // a one-byte record at the end of the file
            r->n_records++;
            r->pending = MPYML_LINE_END;
            return 1;
        }
    }
}

// The next field of the line started: MPYML_LINE_FIELD (more follow) or MPYML_LINE_END (its last).
static mpyml_line_event_t records_field(mpyml_records_t *r) {
    mpyml_line_event_t event = r->pending;
    r->pending = MPYML_LINE_MORE;
    while (event == MPYML_LINE_MORE) {
        event = mpyml_line_push(&r->line, records_byte(r));
    }
    return event;
}

// Reads the rest of the line, checks it (UTF-8, line end) and returns its number of fields.
// Called before any error about the line's content, which the old line-at-a-time reader
// reported only for a whole, valid line.
static uint32_t records_finish(mpyml_records_t *r) {
    if (!r->line.ended) {
        while (records_field(r) != MPYML_LINE_END) {
        }
    }
    records_check_line(r);
    return r->line.n_fields;
}

static NORETURN void records_expected(mpyml_records_t *r, uint32_t lineno, mp_obj_t what) {
    records_corrupt("it ends after line %d, expected %s", 2, mp_obj_new_int(lineno), what);
}

// A whole record of n_fields fields (any number with 0), the first `n_keep` kept in `fields`:
// the line is read to its end and checked before anything about its fields is reported.
static uint32_t records_fields(mpyml_records_t *r, uint32_t n_fields, mp_obj_t what, mpyml_field_t *fields, uint32_t n_keep) {
    if (!records_line(r)) {
        records_expected(r, r->lineno, what);
    }
    uint32_t i = 0;
    mpyml_line_event_t event;
    do {
        event = records_field(r);
        if (i < n_keep) {
            mpyml_field_copy(&fields[i], &r->line.field);
        }
        i++;
    } while (event != MPYML_LINE_END);
    records_check_line(r);
    if (mpyml_field_is(&fields[0], "end")) {
        records_expected(r, r->lineno - 1, what);
    }
    if (n_fields && i != n_fields) {
        mp_obj_t args[4] = { what, mp_obj_new_int(n_fields), mp_obj_new_int(i), records_head(r) };
        mp_raise_type_arg(&mp_type_ValueError, mp_binary_op(MP_BINARY_OP_MODULO,
            mpyml_str("%s needs %d fields, got %d: '%s'"), mp_obj_new_tuple(4, args)));
    }
    return i;
}

static mp_obj_t records_what(const char *fmt, const char *key) {
    return mp_binary_op(MP_BINARY_OP_MODULO, mpyml_str(fmt), mpyml_str(key));
}

// The value of a '<key>,<value>' record.
RECORDS_OPTIONAL void records_value(mpyml_records_t *r, const char *key, mpyml_field_t *value) {
    mpyml_field_t fields[2];
    records_fields(r, 2, records_what("'%s,<value>'", key), fields, 2);
    if (!mpyml_field_is(&fields[0], key)) {
        mpyml_raise_fmt(&mp_type_ValueError, "expected '%s,<value>', got '%s'", 2, mpyml_str(key), records_head(r));
    }
    mpyml_field_copy(value, &fields[1]);
}

// A decimal integer within lo..hi, checked on its full value before anything narrows it.
RECORDS_OPTIONAL int64_t records_int_in(const mpyml_field_t *f, int64_t lo, int64_t hi, const char *what) {
    int64_t value = 0;
    mpyml_decimal_status_t status = mpyml_decimal_value(&f->decimal, lo, hi, &value);
    if (status == MPYML_DECIMAL_SYNTAX) {
        mpyml_raise_fmt(&mp_type_ValueError, "%s: expected a decimal integer, got '%s'", 2, mpyml_str(what), records_field_text(f, 20));
    }
    if (status == MPYML_DECIMAL_RANGE) {
        mp_obj_t args[4] = { mpyml_str(what), records_int(lo), records_int(hi), records_field_text(f, 24) };
        mp_raise_type_arg(&mp_type_ValueError, mp_binary_op(MP_BINARY_OP_MODULO,
            mpyml_str("%s must be %d..%d, got %s"), mp_obj_new_tuple(4, args)));
    }
    return value;
}

// '<key>,<n>' with n a decimal within lo..hi.
RECORDS_OPTIONAL int64_t records_count(mpyml_records_t *r, const char *key, int64_t lo, int64_t hi) {
    mpyml_field_t value;
    records_value(r, key, &value);
    return records_int_in(&value, lo, hi, key);
}

// '<key>,<choice>': the index of the choice in `choices` (words separated by single spaces);
// `sorted` is the message's list, e.g. "float32 or int16".
RECORDS_OPTIONAL int records_choice(mpyml_records_t *r, const char *key, const char *choices, const char *sorted) {
    mpyml_field_t value;
    records_value(r, key, &value);
    int index = 0;
    const char *word = choices;
    for (;;) {
        uint32_t n = 0;
        while (word[n] && word[n] != ' ') {
            n++;
        }
        if (n == value.len && n <= value.n_kept) {
            uint32_t i = 0;
            while (i < n && value.text[i] == (uint8_t)word[i]) {
                i++;
            }
            if (i == n) {
                return index;
            }
        }
        if (!word[n]) {
            break;
        }
        word += n + 1;
        index++;
    }
    mp_obj_t args[3] = { mpyml_str(key), records_field_text(&value, 20), mpyml_str(sorted) };
    mp_raise_type_arg(&mp_type_ValueError, mp_binary_op(MP_BINARY_OP_MODULO,
        mpyml_str("unknown %s '%s' (expected %s)"), mp_obj_new_tuple(3, args)));
}

// Refuses a declared count before anything is allocated for it where the file cannot hold it.
RECORDS_OPTIONAL void records_check_size(mpyml_records_t *r, int64_t n, int64_t min_bytes_each, const char *what) {
    if (r->size >= 0 && n * min_bytes_each > r->size) {
        mp_obj_t args[4] = { records_int(n), mpyml_str(what),
            mp_binary_op(MP_BINARY_OP_MULTIPLY, records_int(n), records_int(min_bytes_each)), mp_obj_new_int(r->size) };
        records_corrupt("%s", 1, mp_binary_op(MP_BINARY_OP_MODULO,
            mpyml_str("file says %d %s (at least %d bytes), the file has %d bytes"), mp_obj_new_tuple(4, args)), mp_const_none);
    }
}

// A section line: the one word `name`.
RECORDS_OPTIONAL void records_section(mpyml_records_t *r, const char *name) {
    mpyml_field_t field;
    records_fields(r, 1, records_what("the '%s' section line", name), &field, 1);
    if (!mpyml_field_is(&field, name)) {
        mpyml_raise_fmt(&mp_type_ValueError, "expected the '%s' section line, got '%s'", 2, mpyml_str(name), records_head(r));
    }
}

// The next record as a row of fields, each handed to `take` as it is read (a row is never held
// whole); returns the number of fields, which the caller checks. A line whose first field is
// "end" (ROW_END_FIELD) or that starts with "end," (ROW_END_PREFIX) is the end record where the
// format expects a row: the file is cut short. With ROW_TAKE_ALL every field is taken and an
// error `take` raises stands; otherwise only the first n are, and a row of another width is
// reported (by the caller) before any error about its values, as the whole-line reader did.
typedef void (*records_take_fn)(void *ctx, const mpyml_field_t *field, uint32_t index);
enum { ROW_END_FIELD = 1, ROW_END_PREFIX = 2, ROW_TAKE_ALL = 4 };

RECORDS_OPTIONAL uint32_t records_row(mpyml_records_t *r, mp_obj_t what, records_take_fn take, void *ctx, uint32_t n, int flags) {
    if (!records_line(r)) {
        records_expected(r, r->lineno, what);
    }
    mpyml_nlr_t nlr;
    volatile uint32_t i = 0;
    volatile int ended_early = 0;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        mpyml_line_event_t event;
        do {
            event = records_field(r);
            if (i == 0 && mpyml_field_is(&r->line.field, "end")
                && ((flags & ROW_END_FIELD) || ((flags & ROW_END_PREFIX) && event == MPYML_LINE_FIELD))) {
                ended_early = 1;
                records_finish(r);
                records_expected(r, r->lineno - 1, what);
            }
            if (i < n || (flags & ROW_TAKE_ALL)) {
                take(ctx, &r->line.field, i);
            }
            i++;
        } while (event != MPYML_LINE_END);
        MPYML_NLR_POP();
    } else {
        // UTF-8 and the line end first, then the width (the caller's check), then the value.
        uint32_t got = records_finish(r);
        if (ended_early || (flags & ROW_TAKE_ALL) || got == n) {
            nlr_raise(MP_OBJ_FROM_PTR(nlr.nlr.ret_val));
        }
        return got;
    }
    records_check_line(r);
    return i;
}

// A field of exactly 8 hex digits: the float32 bits they spell (mpyml_parse_hex32, the one strict
// parser of every text format). The error quotes the field's first 20 bytes, non-ASCII ones as '?'.
RECORDS_OPTIONAL uint32_t records_hex32(const mpyml_field_t *f) {
    uint32_t bits = 0;
    if (f->len > f->n_kept || mpyml_parse_hex32((const char *)f->text, f->len, &bits) != MPYML_OK) {
        char shown[20];
        uint32_t n = f->n_kept < sizeof shown ? f->n_kept : sizeof shown;
        for (uint32_t j = 0; j < n; j++) {
            shown[j] = (f->text[j] & 0x80) ? '?' : (char)f->text[j];
        }
        mpyml_raise_fmt(&mp_type_ValueError, "%s, got '%s'", 2, mpyml_str(mpyml_error_message(MPYML_ERR_BAD_HEX)), mp_obj_new_str(shown, n));
    }
    return bits;
}

// Undoes a str label's %XX escapes into a str.
RECORDS_OPTIONAL mp_obj_t records_label_str(uint8_t *text, size_t n) {
    size_t len = n;
    if (!mpyml_label_unescape(text, &len)) {
        mpyml_raise_fmt(&mp_type_ValueError, "bad %%XX escape in label '%s'", 1, records_prefix(text, n, 40));
    }
    if (!mpyml_utf8_check(text, len)) {
        mp_raise_ValueError("UnicodeError");
    }
    return records_text(text, len);
}

enum { LABEL_INT, LABEL_STR, LABEL_BOOL, LABEL_FLOAT };

// A 'label,<text>' record's text, of any length, parsed as a label of `type`.
RECORDS_OPTIONAL mp_obj_t records_label(mpyml_records_t *r, int type) {
    mp_obj_t what = mpyml_str("a 'label,<text>' record");
    if (!records_line(r)) {
        records_expected(r, r->lineno, what);
    }
    size_t cap = 32, n = 0;
    uint8_t *text = m_malloc(cap);
    mpyml_field_t first;
    mpyml_field_reset(&first);
    uint32_t i = 0;
    mpyml_line_event_t event = r->pending;
    r->pending = MPYML_LINE_MORE;
    for (;;) {
        if (event == MPYML_LINE_MORE) {
            int c = records_byte(r);
            event = mpyml_line_push(&r->line, c);
            if (event == MPYML_LINE_MORE && i == 1) {
                if (n == cap) {
                    text = m_realloc(text, cap *= 2);
                }
                text[n++] = (uint8_t)c;
            }
            continue;
        }
        if (i == 0) {
            mpyml_field_copy(&first, &r->line.field);
        }
        i++;
        if (event == MPYML_LINE_END) {
            break;
        }
        event = MPYML_LINE_MORE;
    }
    records_check_line(r);
    if (mpyml_field_is(&first, "end")) {
        records_expected(r, r->lineno - 1, what);
    }
    if (i != 2) {
        mp_obj_t args[4] = { what, mp_obj_new_int(2), mp_obj_new_int(i), records_head(r) };
        mp_raise_type_arg(&mp_type_ValueError, mp_binary_op(MP_BINARY_OP_MODULO,
            mpyml_str("%s needs %d fields, got %d: '%s'"), mp_obj_new_tuple(4, args)));
    }
    if (!mpyml_field_is(&first, "label")) {
        mpyml_raise_fmt(&mp_type_ValueError, "expected 'label,<text>', got '%s'", 1, records_head(r));
    }
    n = r->line.field.len;  // the text without the line's trailing whitespace
    mp_obj_t label;
    if (type == LABEL_STR) {
        label = records_label_str(text, n);
    } else if (type == LABEL_BOOL) {
        if (!(n == 1 && (text[0] == '0' || text[0] == '1'))) {
            mpyml_raise_fmt(&mp_type_ValueError, "bool label must be 0 or 1, got '%s'", 1, records_field_text(&r->line.field, 20));
        }
        label = mp_obj_new_bool(text[0] == '1');
    } else {
        mp_obj_t s = records_text(text, n);
        if (type == LABEL_INT) {
            int64_t unused;
            if (mpyml_parse_decimal((const char *)text, n, INT64_MIN, INT64_MAX, &unused) == MPYML_DECIMAL_SYNTAX) {
                mpyml_raise_fmt(&mp_type_ValueError, "int label: expected a decimal integer, got '%s'", 1, records_field_text(&r->line.field, 20));
            }
        }
        label = mp_call_function_n_kw(mp_load_global(type == LABEL_INT ? MP_QSTR_int : MP_QSTR_float), 1, 0, &s);
    }
    m_free(text);
    return label;
}

// A '<key>,<type>,<n>' line and n label records: the list of labels.
RECORDS_OPTIONAL mp_obj_t records_labels(mpyml_records_t *r, const char *key) {
    mpyml_field_t fields[3];
    records_fields(r, 3, records_what("'%s,<type>,<n>'", key), fields, 3);
    int type = -1;
    if (mpyml_field_is(&fields[1], "int")) {
        type = LABEL_INT;
    } else if (mpyml_field_is(&fields[1], "str")) {
        type = LABEL_STR;
    } else if (mpyml_field_is(&fields[1], "bool")) {
        type = LABEL_BOOL;
    } else if (mpyml_field_is(&fields[1], "float")) {
        type = LABEL_FLOAT;
    }
    if (!mpyml_field_is(&fields[0], key) || type < 0) {
        mpyml_raise_fmt(&mp_type_ValueError, "expected '%s,<int|str|bool|float>,<n>', got '%s'", 2, mpyml_str(key), records_head(r));
    }
    int64_t n = records_int_in(&fields[2], 0, (int64_t)1 << 31, "the number of labels");
    mp_obj_t labels = mp_obj_new_list(0, NULL);
    for (int64_t i = 0; i < n; i++) {
        mp_obj_list_append(labels, records_label(r, type));
    }
    return labels;
}

// The end record after the last record of the format: 'end,<n_records>,<crc32>', then nothing.
RECORDS_OPTIONAL void records_end(mpyml_records_t *r, const char *last) {
    uint32_t n_before = r->n_records;
    if (!records_line(r)) {
        records_corrupt("it ends after line %d without its end record", 1, mp_obj_new_int(r->lineno), mp_const_none);
    }
    mpyml_field_t fields[3];
    uint32_t n = 0;
    mpyml_line_event_t event;
    do {
        event = records_field(r);
        if (n < 3) {
            mpyml_field_copy(&fields[n], &r->line.field);
        }
        n++;
    } while (event != MPYML_LINE_END);
    records_check_line(r);
    if (!mpyml_field_is(&fields[0], "end")) {
        mpyml_raise_fmt(&mp_type_ValueError, "unexpected line after the last %s: '%s'", 2, mpyml_str(last), records_head(r));
    }
    if (n != 3 || fields[2].len != 8) {
        records_corrupt("expected 'end,<n_records>,<crc32>', got '%s'", 1, records_head(r), mp_const_none);
    }
    char digits[12];
    uint32_t n_digits = 0, v = n_before;
    do {
        uint32_t rem;
        v = mpyml_udiv(v, 10, &rem);
        digits[n_digits++] = (char)('0' + rem);
    } while (v);
    int same = fields[1].len == n_digits;
    for (uint32_t i = 0; same && i < n_digits; i++) {
        same = fields[1].text[i] == (uint8_t)digits[n_digits - 1 - i];
    }
    if (!same) {
        records_corrupt("%d records before the end record, which says %s", 2, mp_obj_new_int(n_before), records_field_text(&fields[1], 12));
    }
    char crc[8];
    for (int i = 0; i < 8; i++) {
        crc[i] = "0123456789abcdef"[(r->crc_before >> (28 - 4 * i)) & 15];
    }
    same = 1;
    for (int i = 0; i < 8; i++) {
        same &= fields[2].text[i] == (uint8_t)crc[i];
    }
    if (!same) {
        records_corrupt("its CRC-32 is %s, the end record says %s", 2, mp_obj_new_str(crc, 8), records_field_text(&fields[2], 8));
    }
    if (records_byte(r) >= 0) {
        records_corrupt("data after the end record", 0, mp_const_none, mp_const_none);
    }
}

// Bytes from the file's position to its end, or -1 where it cannot seek.
static mp_int_t records_file_size(mpyml_records_t *r) {
    if (r->stream == NULL || r->stream->ioctl == NULL) {
        return -1;
    }
    int err = 0;
    struct mp_stream_seek_t seek = { 0, 1 };  // SEEK_CUR
    if (r->stream->ioctl(r->file, MP_STREAM_SEEK, (uintptr_t)&seek, &err) == MP_STREAM_ERROR) {
        return -1;
    }
    mp_off_t here = seek.offset;
    seek.offset = 0;
    seek.whence = 2;  // SEEK_END
    if (r->stream->ioctl(r->file, MP_STREAM_SEEK, (uintptr_t)&seek, &err) == MP_STREAM_ERROR) {
        return -1;
    }
    mp_off_t end = seek.offset;
    seek.offset = here;
    seek.whence = 0;  // SEEK_SET
    if (r->stream->ioctl(r->file, MP_STREAM_SEEK, (uintptr_t)&seek, &err) == MP_STREAM_ERROR) {
        mp_raise_OSError(err);
    }
    return (mp_int_t)(end - here);
}

// Clears the reader's objects from the C stack, which the garbage collector scans: a stale
// pointer left there would keep the last file's objects alive (tests/test_soak.py).
static void records_forget(mpyml_records_t *r) {
    *(volatile mp_obj_t *)&r->chunk = MP_OBJ_NULL;
    *(const uint8_t *volatile *)&r->data = NULL;
}

typedef void (*records_read_fn)(mpyml_records_t *r, void *ctx);

static int records_is_instance(mp_obj_t obj, const mp_obj_type_t *type) {
    mp_obj_t args[2] = { obj, MP_OBJ_FROM_PTR(type) };
    return mp_obj_is_true(mp_call_function_n_kw(mp_load_global(MP_QSTR_isinstance), 2, 0, args));
}

// read(records, ctx) over a file (open, in text or binary mode, or a path). Any format error
// calls undo(ctx) and becomes ValueError("<what> line N: ..."); I/O and memory errors pass
// through after undo(ctx).
static void mpyml_read_file(mp_obj_t f, records_read_fn read, void *ctx, void (*undo)(void *), const char *what, const char *caller) {
    mp_obj_t opened = MP_OBJ_NULL;
    if (mp_obj_get_type(f) == &mp_type_str) {
        mp_obj_t args[2] = { f, MP_OBJ_NEW_QSTR(MP_QSTR_rb) };
        f = opened = mp_call_function_n_kw(mp_load_global(MP_QSTR_open), 2, 0, args);
    }
    mpyml_records_t records;
    mpyml_records_t *r = &records;
    r->file = f;
    r->stream = MP_OBJ_TYPE_GET_SLOT_OR_NULL(mp_obj_get_type(f), protocol);
    r->readline = r->chunk = MP_OBJ_NULL;
    if (r->stream == NULL || r->stream->read == NULL) {
        r->stream = NULL;
        mp_obj_t dest[2];
        mp_load_method_maybe(f, MP_QSTR_readline, dest);
        if (dest[0] == MP_OBJ_NULL) {
            mpyml_raise_fmt(&mp_type_TypeError, "%s: expected a file opened for reading or a path, got %s", 2, mpyml_str(caller), mpyml_type_name(f));
        }
        r->readline = mp_load_attr(f, MP_QSTR_readline);
    }
    r->data = r->buf;
    r->pos = r->len = 0;
    r->eof = 0;
    r->lineno = r->n_records = r->crc = r->crc_before = 0;
    r->pending = MPYML_LINE_MORE;
    mpyml_line_reset(&r->line);
    mpyml_nlr_t nlr;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        r->size = records_file_size(r);
        read(r, ctx);
        MPYML_NLR_POP();
        records_forget(r);
        if (opened != MP_OBJ_NULL) {
            records_call(opened, MP_QSTR_close, 0, NULL);
        }
        return;
    }
    records_forget(r);
    mp_obj_t error = MP_OBJ_FROM_PTR(nlr.nlr.ret_val);
    if (undo != NULL) {
        undo(ctx);
    }
    if (opened != MP_OBJ_NULL) {
        records_call(opened, MP_QSTR_close, 0, NULL);
    }
    if (records_is_instance(error, &mp_type_ValueError) || records_is_instance(error, &mp_type_TypeError)
        || records_is_instance(error, &mp_type_RuntimeError) || records_is_instance(error, &mp_type_IndexError)) {
        mp_obj_t text = mp_call_function_n_kw(mp_load_global(MP_QSTR_str), 1, 0, &error);
        size_t len;
        mp_obj_str_get_data(text, &len);
        mpyml_raise_fmt(&mp_type_ValueError, "%s line %d: %s", 3, mpyml_str(what),
            mp_obj_new_int(((volatile mpyml_records_t *)r)->lineno), len ? text : mpyml_type_name(error));
    }
    nlr_raise(error);
}

#endif // MPYML_RECORDS_GLUE_H
