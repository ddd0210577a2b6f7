// The device's reader of mpyml's text formats (docs/formats.md, "Text formats"): line records
// streamed from a file through its stream protocol into a small fixed buffer (or, for a source
// that has only that, through readline()), tokenized by mpyml_text.h, with the end record's count
// and CRC-32 checked.
// Every module that reads a text format reads it with this; each format's own parser calls the
// records_* functions below. Errors are ValueError("<what> line N: ...") as docs/formats.md says.
// Include from a glue file after mpyml_glue.h; the module's SRC lists this header so that mpy_ld
// finds its qstrs: MP_QSTR_readline MP_QSTR_close MP_QSTR_seek MP_QSTR_open MP_QSTR_rb
// MP_QSTR_str MP_QSTR_int MP_QSTR_float MP_QSTR_ValueError MP_QSTR_TypeError MP_QSTR_RuntimeError
// MP_QSTR_IndexError
#ifndef MPYML_RECORDS_GLUE_H
#define MPYML_RECORDS_GLUE_H

#include "mpyml_text.h"

#define MPYML_READ_CHUNK 64
// Functions a format may not use: no warning where it does not.
#define RECORDS_OPTIONAL static inline

typedef struct {
    mp_obj_t file;
    const mp_stream_p_t *stream;  // the file's stream protocol, read straight into buf; else readline()
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

// Raises ValueError with a message formatted here in C (call sites stay small): a leading '!'
// puts "the file is truncated or corrupt: " first. %d int, %D int64_t, %s C string, %O str object,
// %x uint32_t as 8 lowercase hex digits, %<n>F the first n characters of a field (mpyml_field_t *),
// %H the first 40 characters of the line (mpyml_line_t *), %B the first 20 bytes of a field with
// non-ASCII ones as '?', %W a nested (format, argument) pair: the `what` of a record.
#define RECORDS_MESSAGE_BYTES 400

// What the reader expected, for messages: a format with at most one %s or %d, and its argument.
typedef struct {
    const char *fmt;
    intptr_t arg;
} records_what_t;


typedef struct {
    char text[RECORDS_MESSAGE_BYTES];
    size_t n;
} records_message_t;

static void records_put(records_message_t *m, const uint8_t *text, size_t n) {
    for (size_t i = 0; i < n && m->n < RECORDS_MESSAGE_BYTES; i++) {
        m->text[m->n++] = (char)text[i];
    }
}

// The first `chars` characters of UTF-8 text.
static void records_put_chars(records_message_t *m, const uint8_t *text, size_t n, uint32_t chars) {
    size_t i = 0;
    uint32_t c = 0;
    while (i < n && (c < chars || (text[i] & 0xc0) == 0x80)) {
        c += (text[i] & 0xc0) != 0x80;
        i++;
    }
    records_put(m, text, i);
}

static void records_put_int(records_message_t *m, int64_t v) {
    // Decimal digits by subtracting powers of ten: every int64 (a machine word on 64-bit ports can be beyond
    // 32 bits), without 64-bit division or multiplication, which some targets only have in libgcc.
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (v < 0) {
        records_put(m, (const uint8_t *)"-", 1);
    }
    uint64_t powers[20];
    int n = 0;
    powers[0] = 1;
    while (n < 19 && (powers[n] << 3) + (powers[n] << 1) <= u) {
        powers[n + 1] = (powers[n] << 3) + (powers[n] << 1);
        n++;
    }
    for (; n >= 0; n--) {
        uint8_t digit = '0';
        while (u >= powers[n]) {
            u -= powers[n];
            digit++;
        }
        records_put(m, &digit, 1);
    }
}

// `what`: the argument of a nested %W format's %s or %d, which takes it instead of the next one.
static void records_format(records_message_t *m, const char *fmt, va_list *ap, const intptr_t *what) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            records_put(m, (const uint8_t *)fmt, 1);
            continue;
        }
        uint32_t chars = 0;
        while (*++fmt >= '0' && *fmt <= '9') {
            chars = chars * 10 + (uint32_t)(*fmt - '0');
        }
        switch (*fmt) {
            case 'd': records_put_int(m, what ? *what : va_arg(*ap, int)); break;
            case 'D': records_put_int(m, va_arg(*ap, int64_t)); break;
            case 'c': {
                uint8_t c = (uint8_t)va_arg(*ap, int);
                records_put(m, &c, 1);
                break;
            }
            case 's': {
                const char *text = what ? (const char *)*what : va_arg(*ap, const char *);
                records_put(m, (const uint8_t *)text, mpyml_strlen(text));
                break;
            }
            case 'O': {
                size_t n;
                const char *text = mp_obj_str_get_data(va_arg(*ap, mp_obj_t), &n);
                records_put(m, (const uint8_t *)text, n);
                break;
            }
            case 'x': {
                uint32_t v = va_arg(*ap, uint32_t);
                for (int i = 28; i >= 0; i -= 4) {
                    records_put(m, (const uint8_t *)&"0123456789abcdef"[(v >> i) & 15], 1);
                }
                break;
            }
            case 'F': {
                const mpyml_field_t *f = va_arg(*ap, const mpyml_field_t *);
                records_put_chars(m, f->text, f->n_kept, chars);
                break;
            }
            case 'H': {
                const mpyml_line_t *l = va_arg(*ap, const mpyml_line_t *);
                records_put(m, l->head, l->n_head);
                break;
            }
            case 'B': {
                const mpyml_field_t *f = va_arg(*ap, const mpyml_field_t *);
                for (uint32_t i = 0; i < f->n_kept && i < 20; i++) {
                    records_put(m, (f->text[i] & 0x80) ? (const uint8_t *)"?" : &f->text[i], 1);
                }
                break;
            }
            case 'W': {
                records_what_t w = va_arg(*ap, records_what_t);
                records_format(m, w.fmt, ap, &w.arg);
                break;
            }
            default: records_put(m, (const uint8_t *)fmt, 1); break;
        }
    }
}

static NORETURN void records_raise_va(const mp_obj_type_t *type, const char *fmt, va_list *ap) {
    records_message_t m;
    m.n = 0;
    if (*fmt == '!') {
        fmt++;
        const char *corrupt = "the file is truncated or corrupt: ";
        records_put(&m, (const uint8_t *)corrupt, mpyml_strlen(corrupt));
    }
    records_format(&m, fmt, ap, NULL);
    mp_raise_type_arg(type, mp_obj_new_str(m.text, m.n));
}

static NORETURN void records_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    records_raise_va(&mp_type_ValueError, fmt, &ap);
}

// As records_fail, with another exception type: the glue's own messages, formatted in C.
static NORETURN __attribute__((unused)) void records_raise(const mp_obj_type_t *type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    records_raise_va(type, fmt, &ap);
}

// obj.method(), without making a bound method object.
static mp_obj_t records_call(mp_obj_t obj, qstr method) {
    mp_obj_t dest[2];
    mp_load_method(obj, method, dest);
    return mp_call_function_n_kw(dest[0], dest[1] == MP_OBJ_NULL ? 0 : 1, 0, &dest[1]);
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
            r->chunk = records_call(r->file, MP_QSTR_readline);
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
        records_fail("!line %d is not UTF-8 text", (int)r->lineno);
    }
    if (r->line.cut && !mpyml_line_starts_with(&r->line, "end,")) {
        records_fail("!it ends inside line %d", (int)r->lineno);
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
        mpyml_line_event_t event;
        while ((event = mpyml_line_push(&r->line, c)) != MPYML_LINE_END && !r->line.started) {
            c = records_byte(r);
        }
        if (event == MPYML_LINE_END) {
            records_check_line(r);
        }
        if (r->line.started && !r->line.comment) {
            r->n_records++;
            r->pending = event;
            return 1;
        }
        while (!r->line.ended) {  // a comment
            mpyml_line_push(&r->line, records_byte(r));
        }
        records_check_line(r);
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
// Called before any error about the line's content: the file's checks come first.
static uint32_t records_finish(mpyml_records_t *r) {
    if (!r->line.ended) {
        while (records_field(r) != MPYML_LINE_END) {
        }
    }
    records_check_line(r);
    return r->line.n_fields;
}

static records_what_t records_what(const char *fmt, intptr_t arg) {
    records_what_t what = { fmt, arg };
    return what;
}

static NORETURN void records_expected(uint32_t lineno, records_what_t what) {
    records_fail("!it ends after line %d, expected %W", (int)lineno, what);
}

// Starts a record where the format expects `what`.
static void records_start(mpyml_records_t *r, records_what_t what) {
    if (!records_line(r)) {
        records_expected(r->lineno, what);
    }
}

// A whole record of n_fields fields (any number with 0), the first `n_keep` kept in `fields`:
// the line is read to its end and checked before anything about its fields is reported.
static uint32_t records_fields(mpyml_records_t *r, uint32_t n_fields, records_what_t what, mpyml_field_t *fields, uint32_t n_keep) {
    records_start(r, what);
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
        records_expected(r->lineno - 1, what);
    }
    if (n_fields && i != n_fields) {
        records_fail("%W needs %d fields, got %d: '%H'", what, (int)n_fields, (int)i, &r->line);
    }
    return i;
}

// The value of a '<key>,<value>' record.
static void records_value(mpyml_records_t *r, const char *key, mpyml_field_t *value) {
    mpyml_field_t fields[2];
    records_fields(r, 2, records_what("'%s,<value>'", (intptr_t)key), fields, 2);
    if (!mpyml_field_is(&fields[0], key)) {
        records_fail("expected '%s,<value>', got '%H'", key, &r->line);
    }
    mpyml_field_copy(value, &fields[1]);
}

// A decimal integer within lo..hi, checked on its full value before anything narrows it.
static int64_t records_int_in(const mpyml_field_t *f, int64_t lo, int64_t hi, const char *what) {
    int64_t value = 0;
    mpyml_decimal_status_t status = mpyml_decimal_value(&f->decimal, lo, hi, &value);
    if (status == MPYML_DECIMAL_SYNTAX) {
        records_fail("%s: expected a decimal integer, got '%20F'", what, f);
    }
    if (status == MPYML_DECIMAL_RANGE) {
        records_fail("%s must be %D..%D, got %24F", what, lo, hi, f);
    }
    return value;
}

// '<key>,<n>' with n a decimal within lo..hi.
RECORDS_OPTIONAL int64_t records_count(mpyml_records_t *r, const char *key, int64_t lo, int64_t hi) {
    mpyml_field_t value;
    records_value(r, key, &value);
    return records_int_in(&value, lo, hi, key);
}

// The index of the field among `words` (separated by single spaces), or -1.
static int records_word_index(const mpyml_field_t *f, const char *words) {
    int index = 0;
    for (;;) {
        uint32_t n = 0;
        while (words[n] && words[n] != ' ') {
            n++;
        }
        uint32_t i = 0;
        while (i < n && i < f->n_kept && f->text[i] == (uint8_t)words[i]) {
            i++;
        }
        if (i == n && n == f->len) {
            return index;
        }
        if (!words[n]) {
            return -1;
        }
        words += n + 1;
        index++;
    }
}

// '<key>,<choice>': the index of the choice in `choices` (words separated by single spaces);
// `sorted` is the message's list, e.g. "float32 or int16".
static int records_choice(mpyml_records_t *r, const char *key, const char *choices, const char *sorted) {
    mpyml_field_t value;
    records_value(r, key, &value);
    int index = records_word_index(&value, choices);
    if (index < 0) {
        records_fail("unknown %s '%20F' (expected %s)", key, &value, sorted);
    }
    return index;
}

// Refuses a declared count before anything is allocated for it where the file cannot hold it.
RECORDS_OPTIONAL void records_check_size(mpyml_records_t *r, int64_t n, int64_t min_bytes_each, const char *what) {
    if (r->size >= 0 && n * min_bytes_each > r->size) {
        records_fail("!file says %D %s (at least %D bytes), the file has %D bytes", n, what, n * min_bytes_each, (int64_t)r->size);
    }
}

// A section line: the one word `name`.
RECORDS_OPTIONAL void records_section(mpyml_records_t *r, const char *name) {
    mpyml_field_t field;
    records_fields(r, 1, records_what("the '%s' section line", (intptr_t)name), &field, 1);
    if (!mpyml_field_is(&field, name)) {
        records_fail("expected the '%s' section line, got '%H'", name, &r->line);
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

RECORDS_OPTIONAL uint32_t records_row(mpyml_records_t *r, records_what_t what, records_take_fn take, void *ctx, uint32_t n, int flags) {
    records_start(r, what);
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
                records_expected(r->lineno - 1, what);
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
        records_fail("%s, got '%B'", mpyml_error_message(MPYML_ERR_BAD_HEX), f);
    }
    return bits;
}

enum { LABEL_INT, LABEL_STR, LABEL_BOOL, LABEL_FLOAT };

// A 'label,<text>' record's text, of any length, parsed as a label of `type`.
RECORDS_OPTIONAL mp_obj_t records_label(mpyml_records_t *r, int type) {
    records_what_t what = records_what("a 'label,<text>' record", 0);
    records_start(r, what);
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
        records_expected(r->lineno - 1, what);
    }
    if (i != 2) {
        records_fail("%W needs %d fields, got %d: '%H'", what, 2, (int)i, &r->line);
    }
    if (!mpyml_field_is(&first, "label")) {
        records_fail("expected 'label,<text>', got '%H'", &r->line);
    }
    const mpyml_field_t *field = &r->line.field;
    n = field->len;  // the text without the line's trailing whitespace
    mp_obj_t label;
    if (type == LABEL_STR) {
        size_t len = n;
        if (!mpyml_label_unescape(text, &len)) {
                        records_fail("bad %%XX escape in label '%40F'", field);
        }
        if (!mpyml_utf8_check(text, len)) {
            records_fail("UnicodeError");
        }
        label = mp_obj_new_str((const char *)text, len);
    } else if (type == LABEL_BOOL) {
        if (!(n == 1 && (text[0] == '0' || text[0] == '1'))) {
            records_fail("bool label must be 0 or 1, got '%20F'", field);
        }
        label = mp_obj_new_bool(text[0] == '1');
    } else {
        int64_t unused;
        if (type == LABEL_INT && mpyml_parse_decimal((const char *)text, n, INT64_MIN, INT64_MAX, &unused) == MPYML_DECIMAL_SYNTAX) {
            records_fail("int label: expected a decimal integer, got '%20F'", field);
        }
        if (type == LABEL_FLOAT && !mpyml_is_float_text((const char *)text, n)) {
            records_fail("float label: expected a decimal number, got '%20F'", field);
        }
        mp_obj_t s = mp_obj_new_str((const char *)text, n);
        label = mp_call_function_n_kw(mp_load_global(type == LABEL_INT ? MP_QSTR_int : MP_QSTR_float), 1, 0, &s);
    }
    m_free(text);
    return label;
}

// A '<key>,<type>,<n>' line and n label records: the list of labels.
RECORDS_OPTIONAL mp_obj_t records_labels(mpyml_records_t *r, const char *key) {
    mpyml_field_t fields[3];
    records_fields(r, 3, records_what("'%s,<type>,<n>'", (intptr_t)key), fields, 3);
    int type = records_word_index(&fields[1], "int str bool float");  // LABEL_INT...LABEL_FLOAT
    if (!mpyml_field_is(&fields[0], key) || type < 0) {
        records_fail("expected '%s,<int|str|bool|float>,<n>', got '%H'", key, &r->line);
    }
    int64_t n = records_int_in(&fields[2], 0, (int64_t)1 << 31, "the number of labels");
    mp_obj_t labels = mp_obj_new_list(0, NULL);
    for (int64_t i = 0; i < n; i++) {
        mp_obj_list_append(labels, records_label(r, type));
    }
    return labels;
}

// The end record after the last record of the format: 'end,<n_records>,<crc32>', then nothing.
static void records_end(mpyml_records_t *r, const char *last) {
    uint32_t n_before = r->n_records;
    if (!records_line(r)) {
        records_fail("!it ends after line %d without its end record", (int)r->lineno);
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
        records_fail("unexpected line after the last %s: '%H'", last, &r->line);
    }
    if (n != 3 || fields[2].len != 8) {
        records_fail("!expected 'end,<n_records>,<crc32>', got '%H'", &r->line);
    }
    // The count and the CRC as written: plain decimal digits, 8 lowercase hex digits.
    records_message_t expected;
    expected.n = 0;
    records_put_int(&expected, n_before);
    int same = fields[1].len == expected.n;
    for (uint32_t i = 0; same && i < expected.n; i++) {
        same = fields[1].text[i] == (uint8_t)expected.text[i];
    }
    if (!same) {
        records_fail("!%d records before the end record, which says %12F", (int)n_before, &fields[1]);
    }
    for (int i = 0; i < 8; i++) {
        if (fields[2].text[i] != (uint8_t)"0123456789abcdef"[(r->crc_before >> (28 - 4 * i)) & 15]) {
            records_fail("!its CRC-32 is %x, the end record says %8F", r->crc_before, &fields[2]);
        }
    }
    if (records_byte(r) >= 0) {
        records_fail("!data after the end record");
    }
}

// f.seek(offset, whence) -> the new position. (Through the method: the stream protocol's seek
// structure holds the port's mp_off_t, whose size a natmod cannot know.)
static mp_int_t records_seek(mp_obj_t f, mp_int_t offset, int whence) {
    mp_obj_t dest[4];
    mp_load_method(f, MP_QSTR_seek, dest);
    dest[2] = mp_obj_new_int(offset);
    dest[3] = MP_OBJ_NEW_SMALL_INT(whence);
    return mp_obj_get_int(mp_call_function_n_kw(dest[0], 3, 0, &dest[1]));
}

// Bytes from the file's position to its end, or -1 where it cannot tell and seek.
static mp_int_t records_file_size(mpyml_records_t *r) {
    mpyml_nlr_t nlr;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        mp_int_t here = records_seek(r->file, 0, 1);
        mp_int_t end = records_seek(r->file, 0, 2);
        records_seek(r->file, here, 0);
        MPYML_NLR_POP();
        return end - here;
    }
    return -1;
}

// Clears the reader's objects from the C stack, which the garbage collector scans.
static void records_forget(mpyml_records_t *r) {
    *(volatile mp_obj_t *)&r->file = MP_OBJ_NULL;
    *(volatile mp_obj_t *)&r->chunk = MP_OBJ_NULL;
    *(const uint8_t *volatile *)&r->data = NULL;
}

typedef void (*records_read_fn)(mpyml_records_t *r, void *ctx);

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
    r->chunk = MP_OBJ_NULL;
    if (r->stream == NULL || r->stream->read == NULL) {
        r->stream = NULL;
        mp_obj_t dest[2];
        mp_load_method_maybe(f, MP_QSTR_readline, dest);
        if (dest[0] == MP_OBJ_NULL) {
            records_raise(&mp_type_TypeError, "%s: expected a file opened for %s or a path, got %O", caller, "reading", mpyml_type_name(f));
        }
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
            records_call(opened, MP_QSTR_close);
        }
        return;
    }
    mp_obj_t error = MP_OBJ_FROM_PTR(nlr.nlr.ret_val);
    uint32_t lineno = ((volatile mpyml_records_t *)r)->lineno;
    records_forget(r);
    if (undo != NULL) {
        undo(ctx);
    }
    if (opened != MP_OBJ_NULL) {
        records_call(opened, MP_QSTR_close);
    }
    // Format errors are ValueError, TypeError, RuntimeError, IndexError or their subclasses.
    const mp_obj_type_t *type = mp_obj_get_type(error);
    while (type != NULL && type->base.type == &mp_type_type) {
        qstr name = type->name;
        if (name == MP_QSTR_ValueError || name == MP_QSTR_TypeError || name == MP_QSTR_RuntimeError || name == MP_QSTR_IndexError) {
            mp_obj_t text = mp_call_function_n_kw(mp_load_global(MP_QSTR_str), 1, 0, &error);
            size_t len;
            mp_obj_str_get_data(text, &len);
            records_fail("%s line %d: %O", what, (int)lineno, len ? text : mpyml_type_name(error));
        }
        type = MP_OBJ_TYPE_GET_SLOT_OR_NULL(type, parent);  // a tuple of bases ends the walk
    }
    nlr_raise(error);
}

#ifdef MPYML_RECORDS_WRITER
// The writer of the text formats on the device (emlneighbors.save_model, emlmixture.save_model):
// lines streamed through a small buffer into the file's stream protocol (a file or io.StringIO /
// BytesIO), counted and CRC-32ed as written for the end record. Enable with
// MPYML_RECORDS_WRITER; its qstr: MP_QSTR_w
typedef struct {
    mp_obj_t file;
    const mp_stream_p_t *stream;
    uint32_t n_records, crc;
    size_t n;
    uint8_t buf[MPYML_READ_CHUNK];
} mpyml_writer_t;

static void writer_flush(mpyml_writer_t *w) {
    for (size_t done = 0; done < w->n;) {
        int err = 0;
        mp_uint_t got = w->stream->write(w->file, w->buf + done, w->n - done, &err);
        if (got == MP_STREAM_ERROR) {
            mp_raise_OSError(err);
        }
        done += got;
    }
    w->n = 0;
}

// Every '\n' ends a record (the end record's own count is not used).
static void writer_put(mpyml_writer_t *w, const char *text, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (w->n == MPYML_READ_CHUNK) {
            writer_flush(w);
        }
        w->buf[w->n++] = (uint8_t)text[i];
        w->crc = mpyml_crc32_update(w->crc, (const uint8_t *)&text[i], 1);
        w->n_records += text[i] == '\n';
    }
}

// Writes text formatted as records_fail formats messages (%d, %D, %s, %x, ...).
static void writer_fmt(mpyml_writer_t *w, const char *fmt, ...) {
    records_message_t m;
    m.n = 0;
    va_list ap;
    va_start(ap, fmt);
    records_format(&m, fmt, &ap, NULL);
    va_end(ap);
    writer_put(w, m.text, m.n);
}

// The end record (outside the CRC it carries), then everything goes out.
static void writer_end(mpyml_writer_t *w) {
    writer_fmt(w, "end,%d,%x\n", (int)w->n_records, w->crc);
    writer_flush(w);
}

// write(writer, ctx) into f (an open file, or a path opened for writing and closed after).
static void mpyml_write_file(mp_obj_t f, void (*write)(mpyml_writer_t *w, void *ctx), void *ctx, const char *caller) {
    mp_obj_t opened = MP_OBJ_NULL;
    if (mp_obj_get_type(f) == &mp_type_str) {
        mp_obj_t args[2] = { f, MP_OBJ_NEW_QSTR(MP_QSTR_w) };
        f = opened = mp_call_function_n_kw(mp_load_global(MP_QSTR_open), 2, 0, args);
    }
    mpyml_writer_t w;
    w.file = f;
    w.stream = MP_OBJ_TYPE_GET_SLOT_OR_NULL(mp_obj_get_type(f), protocol);
    if (w.stream == NULL || w.stream->write == NULL) {
        records_raise(&mp_type_TypeError, "%s: expected a file opened for %s or a path, got %O", caller, "writing", mpyml_type_name(f));
    }
    w.n_records = w.crc = 0;
    w.n = 0;
    mpyml_nlr_t nlr;
    if (MPYML_NLR_PUSH(&nlr) == 0) {
        write(&w, ctx);
        MPYML_NLR_POP();
    } else if (opened == MP_OBJ_NULL) {
        nlr_raise(MP_OBJ_FROM_PTR(nlr.nlr.ret_val));
    } else {
        records_call(opened, MP_QSTR_close);
        nlr_raise(MP_OBJ_FROM_PTR(nlr.nlr.ret_val));
    }
    if (opened != MP_OBJ_NULL) {
        records_call(opened, MP_QSTR_close);
    }
}
#endif // MPYML_RECORDS_WRITER

#endif // MPYML_RECORDS_GLUE_H
