// Host test driver for the integrity checks every format shares (natmods/common/mpyml_common.h):
// mpyml_crc32_update and mpyml_parse_hex32. Run by tests/test_common_core.py under ASan and UBSan.
// Commands on stdin, one a line, whitespace-separated tokens; every byte string is sent as hex
// digits (two per byte, "-" for no bytes) and handed to the core in a malloc'd buffer of exactly
// its length, with no terminating NUL, so that a read past its end is caught:
//
//   crc INIT DATA...     chains mpyml_crc32_update from INIT (8 hex digits) over each DATA in
//                        turn; prints the result as 8 lowercase hex digits
//   hex TEXT             mpyml_parse_hex32 of TEXT's bytes: prints "ok BITS" (8 lowercase hex
//                        digits) or "error CODE"
//
// Input that breaks the test format exits with status 2.
#define DRIVER_NAME "common_driver"
#define MAX_TOKENS 4096
#include "driver_input.h"

// The bytes of a token of hex digit pairs ("-": none) in a malloc'd block of exactly that size.
static uint8_t *bytes_of(const char *tok, size_t *n) {
    size_t len = strcmp(tok, "-") == 0 ? 0 : strlen(tok);
    if (len % 2 != 0) {
        fail("odd number of hex digits");
    }
    *n = len / 2;
    uint8_t *out = (uint8_t *)malloc(*n ? *n : 1);
    if (out == NULL) {
        fail("out of memory");
    }
    for (size_t i = 0; i < *n; i++) {
        char pair[3] = { tok[2 * i], tok[2 * i + 1], '\0' };
        char *end;
        unsigned long v = strtoul(pair, &end, 16);
        if (*end != '\0' || end != pair + 2) {
            free(out);
            fail("bad hex byte");
        }
        out[i] = (uint8_t)v;
    }
    return out;
}

int main(void) {
    (void)parse_int;  // driver_input.h's decimal parser: this driver reads none
    while (read_line(stdin) >= 0) {
        size_t n_tokens = split(line_buf);
        if (n_tokens == 0) {
            continue;
        }
        if (strcmp(tokens[0], "crc") == 0 && n_tokens >= 2) {
            uint32_t crc = parse_bits(tokens[1]);
            for (size_t i = 2; i < n_tokens; i++) {
                size_t n;
                uint8_t *data = bytes_of(tokens[i], &n);
                crc = mpyml_crc32_update(crc, data, n);
                free(data);
            }
            printf("%08x\n", crc);
        } else if (strcmp(tokens[0], "hex") == 0 && n_tokens == 2) {
            size_t n;
            uint8_t *text = bytes_of(tokens[1], &n);
            uint32_t bits = 0;
            mpyml_err_t err = mpyml_parse_hex32((const char *)text, n, &bits);
            free(text);
            if (err == MPYML_OK) {
                printf("ok %08x\n", bits);
            } else {
                printf("error %d\n", (int)err);
            }
        } else {
            fail("unknown command");
        }
    }
    free(line_buf);
    return 0;
}
