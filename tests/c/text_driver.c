// Host driver of natmods/common/mpyml_text.h (the portable half of the text-format reader),
// built under ASan/UBSan by tests/test_text_core.py. Reads stdin whole; argv[1] picks the test:
//   lines    tokenizes every line as the device's reader does and prints, per line,
//            'B' (blank), 'C' (comment) or 'R <n_fields>' then 'F <len> <hex of the kept bytes>
//            <decimal status> <decimal value in -2**63..2**63-1>' per field and 'H <hex of the head>',
//            and 'U' (not UTF-8) / 'X' (no line end) flags as 'L <utf8_bad> <cut>'
//   decimal  per line "<lo> <hi> <text>": 'D <status> <value>'
//   unescape per line: 'E <ok> <hex of the result>'
//   utf8     per line: 'V <valid>'
//   hex      per line: 'X <status32> <bits32> <status64> <bits64>'
//   crc      'K <crc32 of stdin>'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpyml_text.h"

static void hex_bytes(const uint8_t *p, size_t n) {
    printf(" ");
    if (n == 0) {
        printf("-");
    }
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
}

static void print_field(const mpyml_field_t *f) {
    int64_t value = 0;
    mpyml_decimal_status_t status = mpyml_decimal_value(&f->decimal, INT64_MIN, INT64_MAX, &value);
    printf("F %u", (unsigned)f->len);
    hex_bytes(f->text, f->n_kept);
    printf(" %d %lld\n", (int)status, (long long)(status == MPYML_DECIMAL_OK ? value : 0));
}

static void lines(const uint8_t *data, size_t n) {
    size_t i = 0;
    while (i < n) {
        mpyml_line_t line;
        mpyml_line_reset(&line);
        for (;;) {
            int c = i < n ? data[i++] : -1;
            mpyml_line_event_t event = mpyml_line_push(&line, c);
            if (event != MPYML_LINE_MORE && line.started && !line.comment) {
                print_field(&line.field);
            }
            if (event == MPYML_LINE_END) {
                break;
            }
        }
        if (!line.started) {
            printf("B\n");
        } else if (line.comment) {
            printf("C\n");
        } else {
            printf("R %u\nH", (unsigned)line.n_fields);
            hex_bytes(line.head, line.n_head);
            printf("\n");
        }
        printf("L %d %d\n", line.utf8_bad, line.cut);
    }
}

int main(int argc, char **argv) {
    size_t cap = 1 << 16, n = 0;
    uint8_t *data = malloc(cap + 1);
    size_t got;
    while ((got = fread(data + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            data = realloc(data, (cap *= 2) + 1);
        }
    }
    data[n] = 0;  // strtoll stops there at the latest
    const char *mode = argc > 1 ? argv[1] : "lines";
    if (strcmp(mode, "lines") == 0) {
        lines(data, n);
    } else if (strcmp(mode, "crc") == 0) {
        printf("K %08x\n", (unsigned)mpyml_crc32_update(0, data, n));
    } else {
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && data[i] != '\n') {
                continue;
            }
            uint8_t *text = data + start;
            size_t len = i - start;
            start = i + 1;
            if (i == n && len == 0) {
                break;
            }
            if (strcmp(mode, "decimal") == 0) {
                // "<lo> <hi> <text>", one space each: the text may hold anything but '\n'
                char *end;
                long long lo = strtoll((const char *)text, &end, 10);
                long long hi = strtoll(end + 1, &end, 10);
                size_t skip = (size_t)(end + 1 - (char *)text);
                if (skip > len) {
                    return 2;
                }
                int64_t value = 0;
                mpyml_decimal_status_t status = mpyml_parse_decimal((const char *)text + skip, len - skip, lo, hi, &value);
                printf("D %d %lld\n", (int)status, (long long)(status == MPYML_DECIMAL_OK ? value : 0));
            } else if (strcmp(mode, "unescape") == 0) {
                size_t out = len;
                int ok = mpyml_label_unescape(text, &out);
                printf("E %d", ok);
                hex_bytes(text, ok ? out : 0);
                printf("\n");
            } else if (strcmp(mode, "utf8") == 0) {
                printf("V %d\n", mpyml_utf8_check(text, len));
            } else if (strcmp(mode, "hex") == 0) {
                uint32_t b32 = 0;
                uint64_t b64 = 0;
                int s32 = mpyml_parse_hex32((const char *)text, len, &b32);
                int s64 = mpyml_parse_hex64((const char *)text, len, &b64);
                printf("X %d %08x %d %016llx\n", s32, (unsigned)b32, s64, (unsigned long long)b64);
            } else {
                return 2;
            }
        }
    }
    free(data);
    return 0;
}
