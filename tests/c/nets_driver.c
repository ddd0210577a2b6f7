// Host test driver for the portable network core (natmods/common/mpyml_nets.h,
// mpyml_math.h), run by tests/test_nets_core.py under ASan and UBSan.
//
// `nets_driver predict MODEL N_ROWS f|b` reads an mpyml-nets file MODEL, copies
//     its payload into a malloc'd buffer of exactly its size, validates it with
//     mpyml_net_init (CRC from the file header), then reads N_ROWS input rows
//     from stdin (n_inputs float32 values, or int8 codes with `b`) and writes
//     n_outputs float32 values per row to stdout. The arena is malloc'd with
//     exactly the arena_bytes the core computed, each row and output too.
//     A payload the core rejects prints "error CODE LAYER" (LAYER -1 for the
//     header) and exits with status 3.
// `nets_driver exp` / `nets_driver recip` read float32 values from stdin and
//     write mpyml_expf / mpyml_recipf of each as float32.
// Anything else the driver cannot read exits with status 2.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpyml_nets.h"

static unsigned char *read_all(FILE *f, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    *n = len;
    return buf;
}

static int unary(int which) {
    size_t n;
    unsigned char *in = read_all(stdin, &n);
    for (size_t i = 0; i + 4 <= n; i += 4) {
        float x;
        memcpy(&x, in + i, 4);
        float y = which ? mpyml_recipf(x) : mpyml_expf(x);
        fwrite(&y, 4, 1, stdout);
    }
    free(in);
    return 0;
}

static int predict(const char *path, long n_rows, int int8_input) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return 2;
    }
    size_t n;
    unsigned char *file = read_all(f, &n);
    fclose(f);
    if (n < MPYML_NET_FILE_HEADER_BYTES) {
        free(file);
        return 2;
    }
    uint32_t payload_bytes = (uint32_t)(n - MPYML_NET_FILE_HEADER_BYTES);
    uint8_t *payload = malloc(payload_bytes ? payload_bytes : 1);
    memcpy(payload, file + MPYML_NET_FILE_HEADER_BYTES, payload_bytes);
    uint32_t crc = mpyml_rd32(file + 12);
    free(file);
    mpyml_net_t net;
    uint32_t bad_layer;
    mpyml_err_t err = mpyml_net_init(&net, payload, payload_bytes, crc, &bad_layer);
    if (err != MPYML_OK) {
        printf("error %d %d\n", (int)err, bad_layer == MPYML_NET_NO_LAYER ? -1 : (int)bad_layer);
        free(payload);
        return 3;
    }
    uint8_t *arena = malloc(net.arena_bytes);
    size_t row_bytes = net.n_inputs * (int8_input ? 1u : 4u);
    void *row = malloc(row_bytes);
    float *out = malloc(net.n_outputs * sizeof(float));
    for (long r = 0; r < n_rows; r++) {
        if (fread(row, 1, row_bytes, stdin) != row_bytes) {
            return 2;
        }
        mpyml_net_predict(&net, row, int8_input, arena, out);
        fwrite(out, sizeof(float), net.n_outputs, stdout);
    }
    free(out);
    free(row);
    free(arena);
    free(payload);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "exp") == 0) {
        return unary(0);
    }
    if (argc == 2 && strcmp(argv[1], "recip") == 0) {
        return unary(1);
    }
    if (argc == 5 && strcmp(argv[1], "predict") == 0) {
        return predict(argv[2], atol(argv[3]), argv[4][0] == 'b');
    }
    return 2;
}
