// The portable half of mpyml's text-format reader (docs/formats.md, "Text formats"): a line
// tokenizer fed one byte at a time, strict decimal and hex numbers with ranges, label unescaping
// and MicroPython's UTF-8 check. No MicroPython headers, no allocation: natmods/common/
// mpyml_records_glue.h feeds it bytes from a stream; tests/c/text_driver.c feeds it on the host.
//
// A line is stripped of ASCII whitespace at both ends (MicroPython's str.strip()) and split at
// every ','. Blank lines and lines whose first non-space byte is '#' are no records.
#ifndef MPYML_TEXT_H
#define MPYML_TEXT_H

#include "mpyml_common.h"

#define MPYML_TEXT_FIELD_CHARS 24u   // characters kept of each field: messages quote at most 24
#define MPYML_TEXT_HEAD_CHARS 40u    // characters kept of each line: messages quote at most 40

static inline int mpyml_text_is_space(int c) {
    return c == ' ' || (c >= '\t' && c <= '\r');  // \t \n \v \f \r
}

// MicroPython's utf8_check, one byte at a time: *need holds the continuation bytes still due.
// Returns 0 for a byte that cannot stand there.
static inline int mpyml_utf8_push(uint8_t *need, uint8_t c) {
    if (*need) {
        if ((c & 0xc0) != 0x80) {
            return 0;
        }
        (*need)--;
        return 1;
    }
    if (c >= 0xc0) {
        if (c >= 0xf8) {
            return 0;
        }
        *need = (uint8_t)((0xe5 >> ((c >> 3) & 0x6)) & 3);
    } else if (c >= 0x80) {
        return 0;
    }
    return 1;
}

static inline int mpyml_utf8_check(const uint8_t *p, size_t n) {
    uint8_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mpyml_utf8_push(&need, p[i])) {
            return 0;
        }
    }
    return need == 0;
}

// A decimal integer -?[0-9]+ (ASCII digits, leading zeros allowed), fed one byte at a time.
typedef struct {
    uint64_t magnitude;
    uint32_t n_bytes;
    uint8_t negative, n_digits, bad, overflow;
} mpyml_decimal_t;

static inline void mpyml_decimal_push(mpyml_decimal_t *d, uint8_t c) {
    if (c == '-' && d->n_bytes == 0) {
        d->negative = 1;
    } else if (c >= '0' && c <= '9') {
        if (d->magnitude > (UINT64_MAX - 9) / 10) {
            d->overflow = 1;
        } else {
            d->magnitude = d->magnitude * 10 + (uint64_t)(c - '0');
        }
        d->n_digits = 1;
    } else {
        d->bad = 1;
    }
    d->n_bytes++;
}

typedef enum { MPYML_DECIMAL_OK, MPYML_DECIMAL_SYNTAX, MPYML_DECIMAL_RANGE } mpyml_decimal_status_t;

// The number within lo..hi into *value, or why not (syntax before range).
static inline mpyml_decimal_status_t mpyml_decimal_value(const mpyml_decimal_t *d, int64_t lo, int64_t hi, int64_t *value) {
    if (d->bad || !d->n_digits) {
        return MPYML_DECIMAL_SYNTAX;
    }
    if (d->overflow || d->magnitude > (uint64_t)INT64_MAX) {
        return MPYML_DECIMAL_RANGE;
    }
    int64_t v = d->negative ? -(int64_t)d->magnitude : (int64_t)d->magnitude;
    if (v < lo || v > hi) {
        return MPYML_DECIMAL_RANGE;
    }
    *value = v;
    return MPYML_DECIMAL_OK;
}

static inline mpyml_decimal_status_t mpyml_parse_decimal(const char *text, size_t n, int64_t lo, int64_t hi, int64_t *value) {
    mpyml_decimal_t d;
    d.magnitude = 0;
    d.n_bytes = 0;
    d.negative = d.n_digits = d.bad = d.overflow = 0;
    for (size_t i = 0; i < n; i++) {
        mpyml_decimal_push(&d, (uint8_t)text[i]);
    }
    return mpyml_decimal_value(&d, lo, hi, value);
}

// Exactly 16 hex digits into the 64 bits they spell.
// 1 when text is a decimal number as the writers write it, -?D+(.D+)?(e[+-]?D+)? (ASCII digits), or
// inf, -inf or nan (Python's repr of a float64); MicroPython's and CPython's float() accept more.
static inline int mpyml_is_float_text(const char *text, size_t n) {
    static const char *const specials[] = {"inf", "-inf", "nan"};
    for (size_t s = 0; s < 3; s++) {
        size_t k = 0;
        while (specials[s][k] && k < n && specials[s][k] == text[k]) {
            k++;
        }
        if (!specials[s][k] && k == n) {
            return 1;
        }
    }
    size_t i = (n > 0 && text[0] == '-') ? 1 : 0;
    for (int part = 0; part < 3; part++) {  // digits, then optional .digits, then optional e[+-]digits
        if (part == 1) {
            if (i == n || text[i] != '.') {
                continue;
            }
            i++;
        } else if (part == 2) {
            if (i == n) {
                break;
            }
            if (text[i] != 'e') {
                return 0;
            }
            i++;
            if (i < n && (text[i] == '+' || text[i] == '-')) {
                i++;
            }
        }
        size_t start = i;
        while (i < n && text[i] >= '0' && text[i] <= '9') {
            i++;
        }
        if (i == start) {
            return 0;
        }
    }
    return i == n;
}

static inline mpyml_err_t mpyml_parse_hex64(const char *text, size_t n, uint64_t *bits) {
    uint32_t high = 0, low = 0;
    if (n != 16 || mpyml_parse_hex32(text, 8, &high) != MPYML_OK || mpyml_parse_hex32(text + 8, 8, &low) != MPYML_OK) {
        return MPYML_ERR_BAD_HEX;
    }
    *bits = ((uint64_t)high << 32) | low;
    return MPYML_OK;
}

static inline int mpyml_upper_hex_digit(uint8_t c) {
    return c >= '0' && c <= '9' ? c - '0' : (c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1);
}

// Undoes the %XX escapes of a str label in place (two uppercase hex digits after each '%');
// *n becomes the unescaped length. Returns 0 for a bad escape.
static inline int mpyml_label_unescape(uint8_t *text, size_t *n) {
    size_t out = 0;
    for (size_t i = 0; i < *n; i++) {
        if (text[i] == '%') {
            int high = i + 2 < *n ? mpyml_upper_hex_digit(text[i + 1]) : -1;
            int low = i + 2 < *n ? mpyml_upper_hex_digit(text[i + 2]) : -1;
            if (high < 0 || low < 0) {
                return 0;
            }
            text[out++] = (uint8_t)(high * 16 + low);
            i += 2;
        } else {
            text[out++] = text[i];
        }
    }
    *n = out;
    return 1;
}

// One field of a line as the tokenizer saw it: its first characters, its length and its value
// as a decimal number. Whitespace inside a field is part of it (and makes the number bad).
typedef struct {
    uint8_t text[4 * MPYML_TEXT_FIELD_CHARS];
    uint32_t n_kept, n_chars_kept;  // bytes and characters of text
    uint32_t len;                   // the field's length in bytes
    uint32_t len_solid;             // length up to its last non-space byte
    mpyml_decimal_t decimal;
} mpyml_field_t;

static inline void mpyml_field_reset(mpyml_field_t *f) {
    f->n_kept = f->n_chars_kept = f->len = f->len_solid = 0;
    f->decimal.magnitude = 0;
    f->decimal.n_bytes = 0;
    f->decimal.negative = f->decimal.n_digits = f->decimal.bad = f->decimal.overflow = 0;
}

// *to = *from, without the libc memcpy a struct assignment may call (natmods link no libc).
static inline void mpyml_field_copy(mpyml_field_t *to, const mpyml_field_t *from) {
    for (uint32_t i = 0; i < from->n_kept; i++) {
        to->text[i] = from->text[i];
    }
    to->n_kept = from->n_kept;
    to->n_chars_kept = from->n_chars_kept;
    to->len = from->len;
    to->len_solid = from->len_solid;
    to->decimal.magnitude = from->decimal.magnitude;
    to->decimal.n_bytes = from->decimal.n_bytes;
    to->decimal.negative = from->decimal.negative;
    to->decimal.n_digits = from->decimal.n_digits;
    to->decimal.bad = from->decimal.bad;
    to->decimal.overflow = from->decimal.overflow;
}

// Appends a byte to a kept prefix of at most max_chars characters (UTF-8: a continuation byte
// belongs to the character before it). *n_chars passes max_chars once a character was left out.
static inline void mpyml_keep_byte(uint8_t *text, uint32_t *n_kept, uint32_t *n_chars, uint32_t max_chars, uint8_t c) {
    if ((c & 0xc0) != 0x80) {
        if (*n_chars >= max_chars) {
            *n_chars = max_chars + 1;
            return;
        }
        (*n_chars)++;
    } else if (*n_kept == 0 || *n_chars > max_chars || *n_kept >= 4 * max_chars) {
        return;
    }
    text[(*n_kept)++] = c;
}

static inline int mpyml_field_is(const mpyml_field_t *f, const char *word) {
    uint32_t n = 0;
    while (word[n]) {
        if (n >= f->n_kept || f->text[n] != (uint8_t)word[n]) {
            return 0;
        }
        n++;
    }
    return n == f->len;
}

// A line being read: fed every byte after the line's leading whitespace, up to and including
// its '\n' (or -1 at the end of the file).
typedef struct {
    mpyml_field_t field;      // the current field
    uint8_t head[4 * MPYML_TEXT_HEAD_CHARS];
    uint32_t n_head, n_head_chars, n_head_solid;  // the stripped line's first characters
    uint32_t n_fields;        // fields ended so far
    uint8_t utf8_need, utf8_bad;
    uint8_t started, comment, ended, cut, field_done;  // saw a non-space byte; '#' line; '\n' or EOF; EOF without '\n'
} mpyml_line_t;

typedef enum { MPYML_LINE_MORE, MPYML_LINE_FIELD, MPYML_LINE_END } mpyml_line_event_t;

static inline void mpyml_line_reset(mpyml_line_t *l) {
    mpyml_field_reset(&l->field);
    l->n_head = l->n_head_chars = l->n_head_solid = l->n_fields = 0;
    l->utf8_need = l->utf8_bad = l->started = l->comment = l->ended = l->cut = l->field_done = 0;
}

// Feeds the line one byte (c = -1: the file ended). MPYML_LINE_FIELD: a field ended at a ','
// (l->field holds it until the next call, which starts the next field); MPYML_LINE_END: the line
// ended (its last field, when l->started, is in l->field, stripped).
static inline mpyml_line_event_t mpyml_line_push(mpyml_line_t *l, int c) {
    if (l->field_done) {  // the byte after a ',' starts the next field
        mpyml_field_reset(&l->field);
        l->field_done = 0;
    }
    if (c < 0 || c == '\n') {
        l->ended = 1;
        l->cut = c < 0;
        if (l->utf8_need) {
            l->utf8_bad = 1;
        }
        l->n_head = l->n_head_solid;
        mpyml_field_t *f = &l->field;
        f->len = f->len_solid;
        if (f->n_kept > f->len) {  // trailing whitespace was kept: drop it
            f->n_kept = f->len;
        }
        if (l->started && !l->comment) {
            l->n_fields++;
        }
        return MPYML_LINE_END;
    }
    uint8_t b = (uint8_t)c;
    if (!mpyml_utf8_push(&l->utf8_need, b)) {
        l->utf8_bad = 1;
        l->utf8_need = 0;
    }
    int space = mpyml_text_is_space(b);
    if (!l->started) {
        if (space) {
            return MPYML_LINE_MORE;
        }
        l->started = 1;
        l->comment = b == '#';
    }
    if (l->comment) {
        return MPYML_LINE_MORE;
    }
    mpyml_keep_byte(l->head, &l->n_head, &l->n_head_chars, MPYML_TEXT_HEAD_CHARS, b);
    if (!space) {
        l->n_head_solid = l->n_head;
    }
    mpyml_field_t *f = &l->field;
    if (b == ',') {
        if (f->len != f->len_solid) {
            f->decimal.bad = 1;  // whitespace inside the field
        }
        l->n_fields++;
        l->field_done = 1;
        return MPYML_LINE_FIELD;
    }
    if (space) {
        f->len++;
    } else {
        if (f->len != f->len_solid) {
            f->decimal.bad = 1;  // whitespace before this byte, inside the field
        }
        mpyml_decimal_push(&f->decimal, b);
        f->len++;
        f->len_solid = f->len;
    }
    mpyml_keep_byte(f->text, &f->n_kept, &f->n_chars_kept, MPYML_TEXT_FIELD_CHARS, b);
    return MPYML_LINE_MORE;
}

// The line starts with `word` (its kept head, which holds at least the first 40 characters).
static inline int mpyml_line_starts_with(const mpyml_line_t *l, const char *word) {
    for (uint32_t i = 0; word[i]; i++) {
        if (i >= l->n_head || l->head[i] != (uint8_t)word[i]) {
            return 0;
        }
    }
    return 1;
}

#endif // MPYML_TEXT_H
