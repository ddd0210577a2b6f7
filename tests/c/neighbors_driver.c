// Host test driver for the portable k-NN core (natmods/common/mpyml_neighbors.h),
// run by tests/test_neighbors_core.py under ASan and UBSan.
//
// Reads commands from stdin, one a line, whitespace-separated (a test format):
//
//   shape DTYPE METRIC WEIGHTS N_FEATURES MAX_ITEMS MAX_K
//                     mpyml_neighbors_check_shape; on success binds a malloc'd block of
//                     exactly mpyml_neighbors_bytes() bytes (k = MAX_K); prints "bytes N"
//   k K               mpyml_neighbors_set_k
//   add LABEL X...    mpyml_neighbors_set_item at n_items (append)
//   set INDEX LABEL X...  mpyml_neighbors_set_item at INDEX
//   remove INDEX      mpyml_neighbors_remove
//   query X...        prints "LABEL | KEY... | INDEX... | DIST... | SCORE": the vote,
//                     then per neighbour the key (decimal), the item index and the
//                     float32 bits of the distance, then the score's bits
//   end               frees the block; prints "end"
//
// X values are decimal int32 for int16 models (cast to int16) and 8 hex digits
// (float32 bits) for float32 models, read into a malloc'd array of exactly
// n_features values. Commands other than query and shape print "ok". A call
// the core rejects prints "error CODE" and the driver goes on.
//
// `neighbors_driver helpers` reads lines "recip BITS", "sqrt BITS" (hex float32
// bits) and "u64 N" (decimal) and prints the result's float32 bits in hex, and
// lines "isqrt64 N" (mpyml_f64_sqrt_u62(N, 0)), "sqrt64 BITS", "square64 BITS"
// (hex; BITS those of a double) and prints the double result's bits in hex.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpyml_neighbors.h"

#define MAX_TOKENS 70000

static char *tokens[MAX_TOKENS];
static mpyml_neighbors_t nb;
static void *block = NULL;

static size_t split(char *line) {
    size_t n = 0;
    for (char *t = strtok(line, " \t\r\n"); t != NULL && n < MAX_TOKENS; t = strtok(NULL, " \t\r\n")) {
        tokens[n++] = t;
    }
    return n;
}

// The n_features values in tokens[first..]; NULL (after printing an error) if the count is wrong.
static void *read_row(size_t n_tokens, size_t first) {
    uint32_t n = nb.shape.n_features;
    if (n_tokens - first != n) {
        printf("badrow\n");
        return NULL;
    }
    if (nb.shape.dtype == MPYML_DTYPE_FLOAT32) {
        uint32_t *row = malloc(4u * n);
        for (uint32_t i = 0; i < n; i++) {
            row[i] = (uint32_t)strtoul(tokens[first + i], NULL, 16);
        }
        return row;
    }
    int16_t *row = malloc(2u * n);
    for (uint32_t i = 0; i < n; i++) {
        row[i] = (int16_t)strtol(tokens[first + i], NULL, 10);
    }
    return row;
}

static void report(mpyml_err_t err) {
    if (err == MPYML_OK) {
        printf("ok\n");
    } else {
        printf("error %d\n", (int)err);
    }
}

static int helpers(void) {
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = split(line);
        if (n != 2) {
            continue;
        }
        if (strcmp(tokens[0], "isqrt64") == 0 || strcmp(tokens[0], "sqrt64") == 0 || strcmp(tokens[0], "square64") == 0) {
            uint64_t v = (uint64_t)strtoull(tokens[1], NULL, 16);
            double r = tokens[0][0] == 'i' ? mpyml_f64_sqrt_u62(v, 0)
                       : tokens[0][1] == 'q' && tokens[0][2] == 'r' ? mpyml_f64_sqrt(mpyml_f64_from_bits(v))
                       : mpyml_f64_square(mpyml_f64_from_bits(v));
            printf("%016" PRIx64 "\n", mpyml_f64_to_bits(r));
            continue;
        }
        float result;
        if (strcmp(tokens[0], "recip") == 0) {
            result = mpyml_neighbors_recip(mpyml_f32_from_bits((uint32_t)strtoul(tokens[1], NULL, 16)));
        } else if (strcmp(tokens[0], "sqrt") == 0) {
            result = mpyml_neighbors_sqrt(mpyml_f32_from_bits((uint32_t)strtoul(tokens[1], NULL, 16)));
        } else {
            result = mpyml_neighbors_u64_to_f32((uint64_t)strtoull(tokens[1], NULL, 10));
        }
        printf("%08" PRIx32 "\n", mpyml_f32_to_bits(result));
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "helpers") == 0) {
        return helpers();
    }
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    while (fgets(line, (int)cap, stdin)) {
        size_t n = split(line);
        if (n == 0) {
            continue;
        }
        const char *cmd = tokens[0];
        if (strcmp(cmd, "shape") == 0 && n == 7) {
            mpyml_neighbors_shape_t s;
            s.dtype = (uint8_t)strtoul(tokens[1], NULL, 10);
            s.metric = (uint8_t)strtoul(tokens[2], NULL, 10);
            s.weights = (uint8_t)strtoul(tokens[3], NULL, 10);
            s.n_features = (uint32_t)strtoul(tokens[4], NULL, 10);
            s.max_items = (uint32_t)strtoul(tokens[5], NULL, 10);
            s.max_k = (uint32_t)strtoul(tokens[6], NULL, 10);
            mpyml_err_t err = mpyml_neighbors_check_shape(&s);
            if (err != MPYML_OK) {
                report(err);
                continue;
            }
            free(block);
            block = malloc(mpyml_neighbors_bytes(&s));
            mpyml_neighbors_bind(&nb, &s, s.max_k, block);
            printf("bytes %" PRIu32 "\n", mpyml_neighbors_bytes(&s));
        } else if (block == NULL) {
            printf("noshape\n");
        } else if (strcmp(cmd, "k") == 0 && n == 2) {
            report(mpyml_neighbors_set_k(&nb, (uint32_t)strtoul(tokens[1], NULL, 10)));
        } else if (strcmp(cmd, "add") == 0 && n >= 2) {
            void *row = read_row(n, 2);
            if (row != NULL) {
                report(mpyml_neighbors_set_item(&nb, nb.n_items, row, (uint32_t)strtoul(tokens[1], NULL, 10)));
                free(row);
            }
        } else if (strcmp(cmd, "set") == 0 && n >= 3) {
            void *row = read_row(n, 3);
            if (row != NULL) {
                report(mpyml_neighbors_set_item(&nb, (uint32_t)strtoul(tokens[1], NULL, 10), row,
                                                (uint32_t)strtoul(tokens[2], NULL, 10)));
                free(row);
            }
        } else if (strcmp(cmd, "remove") == 0 && n == 2) {
            report(mpyml_neighbors_remove(&nb, (uint32_t)strtoul(tokens[1], NULL, 10)));
        } else if (strcmp(cmd, "query") == 0) {
            void *row = read_row(n, 1);
            if (row == NULL) {
                continue;
            }
            uint32_t label = 0;
            mpyml_err_t err = mpyml_neighbors_predict(&nb, row, &label);
            if (err != MPYML_OK) {
                report(err);
                free(row);
                continue;
            }
            printf("%" PRIu32 " |", label);
            for (uint32_t j = 0; j < nb.n_best; j++) {
                printf(" %" PRIu64, nb.best_key[j]);
            }
            printf(" |");
            for (uint32_t j = 0; j < nb.n_best; j++) {
                printf(" %" PRIu32, nb.best_index[j]);
            }
            printf(" |");
            for (uint32_t j = 0; j < nb.n_best; j++) {
                printf(" %08" PRIx32, mpyml_f32_to_bits(mpyml_neighbors_distance(&nb, nb.best_key[j])));
            }
            float score = 0.0f;
            mpyml_neighbors_score(&nb, row, &score);
            printf(" | %08" PRIx32 "\n", mpyml_f32_to_bits(score));
            free(row);
        } else if (strcmp(cmd, "end") == 0) {
            free(block);
            block = NULL;
            printf("end\n");
        } else {
            printf("badcmd\n");
        }
    }
    free(block);
    free(line);
    return 0;
}
